#pragma once
// A server on 127.0.0.1 that speaks enough of PostgreSQL's wire protocol (version 3, no TLS, no password) for
// usage::PostgresReader: it answers the settings and pg_stat_activity reads with the rows a test sets, lists the
// sessions idle in transaction a test sets, and records every statement it is sent, pg_terminate_backend included,
// so a unit test sees which sessions poolguard would end without a real server. Header-only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace poolguard::usage::testing {

class FakePostgres {
 public:
  // One row of the pg_stat_activity read: application_name, state, sessions, their idle ages ("120,130"), user,
  // client address.
  struct ActivityRow {
    std::string applicationName;
    std::string state;
    int sessions = 1;
    std::string idleAges;
    std::string user = "app";
    std::string clientAddress = "10.0.0.1";
  };
  // A session the listing of sessions idle in transaction returns (when its application_name is asked for).
  struct IdleSession {
    int pid = 0;
    std::string user = "app";
    std::string applicationName;
    int64_t idleSeconds = 0;
  };

  FakePostgres() {
    listenFd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listenFd_, 16) != 0) return;
    socklen_t len = sizeof addr;
    if (::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~FakePostgres() {
    stopping_ = true;
    ::shutdown(listenFd_, SHUT_RDWR);
    if (acceptor_.joinable()) acceptor_.join();
    std::vector<std::thread> sessions;
    {
      std::lock_guard l(mu_);
      for (int fd : clientFds_) ::shutdown(fd, SHUT_RDWR);
      sessions = std::move(sessions_);
    }
    for (auto& t : sessions) t.join();
    // Closed only here: a descriptor closed earlier could be reused by the time shutdown() above ran.
    for (int fd : clientFds_) ::close(fd);
    ::close(listenFd_);
  }
  FakePostgres(const FakePostgres&) = delete;
  FakePostgres& operator=(const FakePostgres&) = delete;

  int port() const { return port_; }  // 0 when it could not listen

  void setActivity(std::vector<ActivityRow> rows) {
    std::lock_guard l(mu_);
    activity_ = std::move(rows);
  }
  void setIdleSessions(std::vector<IdleSession> sessions) {
    std::lock_guard l(mu_);
    idle_ = std::move(sessions);
  }
  // Every statement received, in order (simple and extended queries alike).
  std::vector<std::string> statements() const {
    std::lock_guard l(mu_);
    return statements_;
  }
  // The pids pg_terminate_backend was called for.
  std::vector<int> terminated() const {
    std::lock_guard l(mu_);
    return terminated_;
  }
  // The application_name arrays the listing of idle sessions asked for ("{\"ns1/web\"}").
  std::vector<std::string> listedNames() const {
    std::lock_guard l(mu_);
    return listedNames_;
  }

 private:
  static bool readAll(int fd, void* buf, size_t n) {
    auto* p = static_cast<char*>(buf);
    while (n > 0) {
      ssize_t r = ::read(fd, p, n);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }
  static void put32(std::string& out, int32_t v) {
    uint32_t n = htonl(static_cast<uint32_t>(v));
    out.append(reinterpret_cast<const char*>(&n), 4);
  }
  static void put16(std::string& out, int16_t v) {
    uint16_t n = htons(static_cast<uint16_t>(v));
    out.append(reinterpret_cast<const char*>(&n), 2);
  }
  static int32_t get32(const std::string& s, size_t at) {
    uint32_t n = 0;
    std::memcpy(&n, s.data() + at, 4);
    return static_cast<int32_t>(ntohl(n));
  }
  static int16_t get16(const std::string& s, size_t at) {
    uint16_t n = 0;
    std::memcpy(&n, s.data() + at, 2);
    return static_cast<int16_t>(ntohs(n));
  }
  static std::string message(char type, const std::string& body) {
    std::string out(1, type);
    put32(out, static_cast<int32_t>(body.size() + 4));
    return out + body;
  }
  static std::string rowDescription(size_t columns) {
    std::string body;
    put16(body, static_cast<int16_t>(columns));
    for (size_t i = 0; i < columns; ++i) {
      body += "c" + std::to_string(i) + '\0';
      put32(body, 0);   // table
      put16(body, 0);   // column
      put32(body, 25);  // text
      put16(body, -1);
      put32(body, -1);
      put16(body, 0);  // text format
    }
    return message('T', body);
  }
  static std::string dataRow(const std::vector<std::string>& values) {
    std::string body;
    put16(body, static_cast<int16_t>(values.size()));
    for (const auto& v : values) {
      put32(body, static_cast<int32_t>(v.size()));
      body += v;
    }
    return message('D', body);
  }

  // The rows a statement answers with; its column count in *columns.
  std::vector<std::vector<std::string>> answer(const std::string& sql, const std::vector<std::string>& params,
                                               size_t* columns) {
    std::lock_guard l(mu_);
    std::vector<std::vector<std::string>> rows;
    if (sql.find("current_setting('max_connections')") != std::string::npos) {
      *columns = 3;
      rows.push_back({"100", "3", "0"});
    } else if (sql.find("pg_terminate_backend") != std::string::npos) {
      *columns = 1;
      if (!params.empty()) {
        terminated_.push_back(std::stoi(params[0]));
        rows.push_back({"t"});
      }
    } else if (sql.find("ORDER BY a.state_change") != std::string::npos) {
      *columns = 5;
      if (!params.empty()) {
        listedNames_.push_back(params[0]);
        for (const auto& s : idle_) {
          if (params[0].find("\"" + s.applicationName + "\"") == std::string::npos) continue;
          rows.push_back({std::to_string(s.pid), s.user, s.applicationName, std::to_string(s.idleSeconds),
                          "2026-01-01 00:00:00+00"});
        }
      }
    } else if (sql.find("FROM pg_stat_activity") != std::string::npos) {
      *columns = 6;
      for (const auto& a : activity_) {
        rows.push_back({a.applicationName, a.state, std::to_string(a.sessions), a.idleAges, a.user, a.clientAddress});
      }
    } else {
      *columns = 0;
    }
    return rows;
  }

  void acceptLoop() {
    while (!stopping_) {
      int fd = ::accept(listenFd_, nullptr, nullptr);
      if (fd < 0) return;
      std::lock_guard l(mu_);
      clientFds_.push_back(fd);
      sessions_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void send(int fd, const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t w = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (w <= 0) return;
      sent += static_cast<size_t>(w);
    }
  }

  // Serves one client until it leaves; its descriptor is closed by the destructor.
  void serve(int fd) {
    // Startup: a length, then the protocol version (or an SSL/GSS request, declined).
    for (;;) {
      int32_t len = 0;
      if (!readAll(fd, &len, 4)) return;
      len = static_cast<int32_t>(ntohl(static_cast<uint32_t>(len)));
      if (len < 8 || len > 10000) return;
      std::string body(static_cast<size_t>(len - 4), '\0');
      if (!readAll(fd, body.data(), body.size())) return;
      const int32_t code = get32(body, 0);
      if (code == 80877103 || code == 80877104) {  // SSLRequest, GSSENCRequest
        send(fd, "N");
        continue;
      }
      break;
    }
    std::string hello;
    std::string ok;
    put32(ok, 0);
    hello += message('R', ok);
    for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{{"server_version", "15.0"},
                                                                               {"server_encoding", "UTF8"},
                                                                               {"client_encoding", "UTF8"},
                                                                               {"DateStyle", "ISO, MDY"},
                                                                               {"integer_datetimes", "on"},
                                                                               {"standard_conforming_strings", "on"}}) {
      hello += message('S', k + '\0' + v + '\0');
    }
    std::string key;
    put32(key, 4242);
    put32(key, 1);
    hello += message('K', key);
    hello += message('Z', "I");
    send(fd, hello);

    std::string sql;
    std::vector<std::string> params;
    for (;;) {
      char type = 0;
      int32_t len = 0;
      if (!readAll(fd, &type, 1) || !readAll(fd, &len, 4)) break;
      len = static_cast<int32_t>(ntohl(static_cast<uint32_t>(len)));
      if (len < 4 || len > 1000000) break;
      std::string body(static_cast<size_t>(len - 4), '\0');
      if (!readAll(fd, body.data(), body.size())) break;
      if (type == 'X') break;
      if (type == 'Q') {  // simple query
        sql = body.substr(0, body.find('\0'));
        record(sql);
        size_t columns = 0;
        auto rows = answer(sql, {}, &columns);
        std::string out = rowDescription(columns);
        for (const auto& r : rows) out += dataRow(r);
        out += message('C', "SELECT " + std::to_string(rows.size()) + '\0') + message('Z', "I");
        send(fd, out);
      } else if (type == 'P') {  // Parse: statement name, query
        size_t nameEnd = body.find('\0');
        sql = body.substr(nameEnd + 1, body.find('\0', nameEnd + 1) - nameEnd - 1);
        record(sql);
        send(fd, message('1', ""));
      } else if (type == 'B') {  // Bind: portal, statement, formats, parameters
        size_t at = body.find('\0') + 1;
        at = body.find('\0', at) + 1;
        const int16_t formats = get16(body, at);
        at += 2 + 2 * static_cast<size_t>(formats);
        const int16_t count = get16(body, at);
        at += 2;
        params.clear();
        for (int16_t i = 0; i < count; ++i) {
          const int32_t n = get32(body, at);
          at += 4;
          params.push_back(n < 0 ? "" : body.substr(at, static_cast<size_t>(n)));
          at += n < 0 ? 0 : static_cast<size_t>(n);
        }
        send(fd, message('2', ""));
      } else if (type == 'D') {  // Describe the portal: its columns
        size_t columns = 0;
        answerShape(sql, &columns);
        send(fd, rowDescription(columns));
      } else if (type == 'E') {  // Execute
        size_t columns = 0;
        auto rows = answer(sql, params, &columns);
        std::string out;
        for (const auto& r : rows) out += dataRow(r);
        send(fd, out + message('C', "SELECT " + std::to_string(rows.size()) + '\0'));
      } else if (type == 'S') {  // Sync
        send(fd, message('Z', "I"));
      }
    }
  }

  // The column count of a statement's answer, without acting on it (Describe comes before Execute).
  void answerShape(const std::string& sql, size_t* columns) {
    if (sql.find("pg_terminate_backend") != std::string::npos) {
      *columns = 1;
    } else if (sql.find("ORDER BY a.state_change") != std::string::npos) {
      *columns = 5;
    } else {
      answer(sql, {}, columns);
    }
  }

  void record(const std::string& sql) {
    std::lock_guard l(mu_);
    statements_.push_back(sql);
  }

  int listenFd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<int> clientFds_;
  std::vector<std::thread> sessions_;
  std::vector<ActivityRow> activity_;
  std::vector<IdleSession> idle_;
  std::vector<std::string> statements_;
  std::vector<int> terminated_;
  std::vector<std::string> listedNames_;
};

}  // namespace poolguard::usage::testing
