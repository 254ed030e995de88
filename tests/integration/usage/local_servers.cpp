#include "local_servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace poolguard::usage::testing {

namespace {

const char* kPgBin = "/usr/lib/postgresql/15/bin";

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream f(path);
  f << content;
  if (!f) throw std::runtime_error("writing " + path + " failed");
}

void check(int rc, const std::string& what, const std::string& out) {
  if (rc != 0) throw std::runtime_error(what + " failed (" + std::to_string(rc) + "): " + out);
}

std::string makeTempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  return buf.data();
}

}  // namespace

int sh(const std::string& command, std::string* out) {
  std::string full = "(" + command + ") 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  int status = ::pclose(p);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string readFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void PostgresServer::start(int maxConnections) {
  dir_ = makeTempDir("poolguard-usage-pg");
  port_ = freePort();
  std::string out;
  const bool root = ::geteuid() == 0;
  runAs_ = root ? "runuser -u postgres -- " : "";
  const std::string d = dir_;
  // A CA that signs the server certificate (CN and SAN localhost, SAN 127.0.0.1), and an unrelated one.
  check(sh("cd " + d +
               " && "
               "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt "
               "-days 2 -subj /CN=poolguard-usage-test-ca && "
               "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout wrong-ca.key "
               "-out wrong-ca.crt -days 2 -subj /CN=unrelated-ca && "
               "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr "
               "-subj /CN=localhost && "
               "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext && "
               "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 "
               "-extfile server.ext && chmod 600 server.key",
           &out),
        "creating test certificates", out);
  if (root) check(sh("chmod 755 " + d + " && chown -R postgres " + d, &out), "chown", out);
  check(sh(runAs_ + kPgBin + "/initdb -D " + d + "/data -U postgres --auth=trust -E UTF8 --no-sync", &out), "initdb",
        out);
  writeFile(d + "/data/pg_hba.conf",
            "local all all trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n");
  if (root) sh("chown postgres " + d + "/data/pg_hba.conf");
  const std::string opts = "-p " + std::to_string(port_) + " -k " + d +
                           " -c listen_addresses=127.0.0.1 -c max_connections=" + std::to_string(maxConnections) +
                           " -c superuser_reserved_connections=3 -c ssl=on -c ssl_cert_file=" + d +
                           "/server.crt -c ssl_key_file=" + d +
                           "/server.key -c fsync=off -c shared_buffers=16MB -c password_encryption=scram-sha-256";
  check(sh(runAs_ + kPgBin + "/pg_ctl -D " + d + "/data -l " + d + "/postgres.log -w -t 60 -o '" + opts + "' start",
           &out),
        "pg_ctl start", out + readFile(d + "/postgres.log"));
  running_ = true;
  exec(std::string("CREATE ROLE ") + kMonitorUser + " LOGIN PASSWORD '" + kMonitorPassword + "'; GRANT pg_monitor TO " +
       kMonitorUser);
}

void PostgresServer::stop() {
  if (!running_) return;
  running_ = false;
  sh(runAs_ + kPgBin + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop");
  sh("rm -rf " + dir_);
}

PGconn* PostgresServer::connect(const std::string& applicationName) const {
  const std::string port = std::to_string(port_);
  const char* keys[] = {"host", "port", "user", "dbname", "application_name", nullptr};
  const char* values[] = {dir_.c_str(), port.c_str(), "postgres", "postgres", applicationName.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, 0);
  if (PQstatus(c) != CONNECTION_OK) {
    PQfinish(c);
    return nullptr;
  }
  return c;
}

std::string PostgresServer::exec(const std::string& sql) const {
  PGconn* c = connect("usage-test-admin");
  if (!c) throw std::runtime_error("superuser connection failed");
  PGresult* r = PQexec(c, sql.c_str());
  auto status = PQresultStatus(r);
  std::string value;
  if (status == PGRES_TUPLES_OK && PQntuples(r) > 0) value = PQgetvalue(r, 0, 0);
  std::string error = PQerrorMessage(c);
  PQclear(r);
  PQfinish(c);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) throw std::runtime_error(sql + ": " + error);
  return value;
}

void MetricsTarget::start() {
  listenFd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listenFd_, 16) != 0) {
    throw std::runtime_error("metrics target: bind/listen failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

void MetricsTarget::serve() {
  while (!stopping_) {
    int fd = ::accept(listenFd_, nullptr, nullptr);
    if (fd < 0) continue;
    char buf[4096];
    std::string request;
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    std::string body;
    {
      std::lock_guard l(mu_);
      body = body_;
    }
    std::string response =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    size_t sent = 0;
    while (sent < response.size()) {
      // A client that stops reading (an answer over its size limit) closes the connection: no SIGPIPE then.
      ssize_t n = ::send(fd, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    ::close(fd);
  }
}

void MetricsTarget::stop() {
  if (listenFd_ < 0) return;
  stopping_ = true;
  ::shutdown(listenFd_, SHUT_RDWR);  // wakes accept(); the socket is closed once the thread is done with it
  if (thread_.joinable()) thread_.join();
  ::close(listenFd_);
  listenFd_ = -1;
}

void PrometheusServer::start(const std::map<std::string, std::map<std::string, std::string>>& targets) {
  dir_ = makeTempDir("poolguard-usage-prom");
  port_ = freePort();
  std::string config =
      "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n- job_name: pools\n"
      "  scrape_interval: 1s\n  static_configs:\n";
  for (const auto& [target, labels] : targets) {
    config += "  - targets: ['" + target + "']\n    labels:\n";
    for (const auto& [k, v] : labels) config += "      " + k + ": '" + v + "'\n";
  }
  writeFile(dir_ + "/prometheus.yml", config);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::setsid();
    std::string log = dir_ + "/prometheus.log";
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    (void)f;
    ::dup2(::fileno(stdout), 2);
    std::string cfg = "--config.file=" + dir_ + "/prometheus.yml";
    std::string data = "--storage.tsdb.path=" + dir_ + "/data";
    std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
    ::execl("/usr/bin/prometheus", "prometheus", cfg.c_str(), data.c_str(), listen.c_str(),
            static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  for (int i = 0; i < 300; ++i) {
    if (sh("curl -sf " + url() + "/-/ready >/dev/null") == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("prometheus not ready: " + readFile(dir_ + "/prometheus.log"));
}

void PrometheusServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  sh("rm -rf " + dir_);
}

}  // namespace poolguard::usage::testing
