#include "usage/postgres_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/base64.h"
#include "usage/grant.h"
#include "usage/libpq.h"

namespace poolguard::usage {

namespace {

Error pgError(ErrorCode code, const char* reason, std::string message) {
  return Error(code, std::move(message)).withReason(reason);
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws));
  auto end = s.find_last_not_of(ws);
  s.erase(end == std::string::npos ? 0 : end + 1);
  return s;
}

// libpq reports every address it tried on its own line, prefixed with `connection to server at "h" (ip),
// port p failed: ` and with hint lines starting with a tab. Keep the distinct causes only.
std::string conciseLibpqMessage(const std::string& raw) {
  std::vector<std::string> causes;
  std::istringstream lines(raw);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line[0] == '\t') continue;
    if (line.rfind("connection to server", 0) == 0) {
      auto pos = line.find(" failed: ");
      if (pos != std::string::npos) line = line.substr(pos + 9);
    }
    for (const char* prefix : {"FATAL:  ", "ERROR:  "}) {
      if (line.rfind(prefix, 0) == 0) line = line.substr(std::string_view(prefix).size());
    }
    line = trim(line);
    if (line.empty()) continue;
    bool seen = false;
    for (const auto& c : causes) seen = seen || c == line;
    if (!seen) causes.push_back(line);
  }
  std::string out;
  for (const auto& c : causes) out += (out.empty() ? "" : "; ") + c;
  return out.empty() ? trim(raw) : out;
}

// PostgreSQL keeps the first 63 bytes of a longer name, fewer when that would cut a character (4 bytes at most).
constexpr size_t kNameMaxBytes = 63;
constexpr size_t kShortestCutName = kNameMaxBytes - 3;

// How many bytes of `text` from `at` are `value`, whole or as PostgreSQL cuts a name; 0 when none.
size_t echoLength(std::string_view text, size_t at, std::string_view value) {
  if (value.empty()) return 0;
  std::string_view rest = text.substr(at);
  size_t n = 0;
  while (n < rest.size() && n < value.size() && rest[n] == value[n]) ++n;
  if (n == value.size()) return n;
  return value.size() > kNameMaxBytes && n >= kShortestCutName ? n : 0;
}

const char* sslModeKeyword(policy::SslMode m) {
  switch (m) {
    case policy::SslMode::kDisable:
      return "disable";
    case policy::SslMode::kRequire:
      return "require";
    case policy::SslMode::kVerifyCa:
      return "verify-ca";
    case policy::SslMode::kVerifyFull:
      return "verify-full";
  }
  return "verify-full";
}

bool verifiesCertificate(policy::SslMode m) {
  return m == policy::SslMode::kVerifyCa || m == policy::SslMode::kVerifyFull;
}

std::string defaultSystemCaBundle() {
  for (const char* p : {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                        "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"}) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(p, ec)) return p;
  }
  return "";
}

// The CA lives on disk only while libpq opens the connection: libpq reads sslrootcert at connect time and
// takes nothing but a path.
class PrivateTempFile {
 public:
  static Result<std::unique_ptr<PrivateTempFile>> write(const std::string& content) {
    std::error_code ec;
    auto dir = std::filesystem::temp_directory_path(ec);
    if (ec) dir = "/tmp";
    std::string path = (dir / "poolguard-ca-XXXXXX").string();
    std::vector<char> buf(path.begin(), path.end());
    buf.push_back('\0');
    int fd = ::mkstemp(buf.data());  // creates the file 0600
    if (fd < 0) {
      return Error(ErrorCode::kInternal, "creating a temporary file for the CA in " + dir.string() + " failed");
    }
    auto file = std::unique_ptr<PrivateTempFile>(new PrivateTempFile(buf.data()));
    ::fchmod(fd, S_IRUSR | S_IWUSR);
    size_t written = 0;
    while (written < content.size()) {
      ssize_t n = ::write(fd, content.data() + written, content.size() - written);
      if (n <= 0) {
        ::close(fd);
        return Error(ErrorCode::kInternal, "writing the CA to " + file->path() + " failed");
      }
      written += static_cast<size_t>(n);
    }
    ::close(fd);
    return file;
  }
  ~PrivateTempFile() { ::unlink(path_.c_str()); }
  PrivateTempFile(const PrivateTempFile&) = delete;
  PrivateTempFile& operator=(const PrivateTempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  explicit PrivateTempFile(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

struct PgResult {
  PGresult* r;
  explicit PgResult(PGresult* res) : r(res) {}
  ~PgResult() { libpq().PQclear(r); }
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
};

constexpr const char* kSettingsSql =
    "SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int, "
    "coalesce(current_setting('reserved_connections', true), '0')::int";

// Grouped by application, state, role and client address; the ages of idle-in-transaction sessions come along per group
// so the threshold is applied by the analysis against the injected clock. Only client backends take slots counted by
// max_connections; this session is poolguard's own and left out.
constexpr const char* kActivitySql =
    "SELECT coalesce(application_name, ''), coalesce(state, 'unknown'), count(*)::int, "
    "array_to_string(array_agg(round(extract(epoch FROM clock_timestamp() - state_change)::numeric, 3)) "
    "FILTER (WHERE state IN ('idle in transaction', 'idle in transaction (aborted)') AND state_change IS NOT NULL),"
    " ','), coalesce(usename::text, ''), coalesce(host(client_addr), 'local') "
    "FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1, 2, 5, 6";

int32_t intField(PGresult* r, int row, int col) {
  if (libpq().PQgetisnull(r, row, col)) return 0;
  return static_cast<int32_t>(std::strtol(libpq().PQgetvalue(r, row, col), nullptr, 10));
}

struct Connection {
  std::mutex mu;
  PGconn* conn = nullptr;
  size_t fingerprint = 0;

  void close() {
    if (conn) libpq().PQfinish(conn);
    conn = nullptr;
  }
  ~Connection() { close(); }
};

}  // namespace

std::string hideCredentials(const std::string& libpqMessage, const PostgresCredentials& credentials,
                            const std::string& database) {
  struct Hidden {
    std::string_view value;
    std::string placeholder;
  };
  std::vector<Hidden> hidden;
  auto hide = [&](const std::string& value, const std::string& from, const char* otherwise) {
    if (!value.empty()) hidden.push_back({value, "<" + (from.empty() ? std::string(otherwise) : from) + ">"});
  };
  hide(credentials.username, credentials.usernameFrom, "the user name");
  hide(credentials.password, credentials.passwordFrom, "the password");
  constexpr std::string_view kDatabaseQuoted = "database \"";
  const std::string_view text = libpqMessage;
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    // The longest match: a password that begins with the user name goes whole (the user name wins a tie).
    const Hidden* found = nullptr;
    size_t length = 0;
    for (const auto& h : hidden) {
      if (size_t n = echoLength(text, i, h.value); n > length) {
        found = &h;
        length = n;
      }
    }
    if (found) {
      out += found->placeholder;
      i += length;
    } else if (text.substr(i).starts_with(kDatabaseQuoted)) {
      const size_t name = i + kDatabaseQuoted.size();
      const size_t end = name + echoLength(text, name, database);
      out.append(text.substr(i, end - i));
      i = end;
    } else {
      out += text[i++];
    }
  }
  return out;
}

const char* requireAuthFor(policy::SslMode mode) {
  // verify-ca proves only that the CA signed the server's certificate, not that it was issued for this server.
  return mode == policy::SslMode::kVerifyFull ? nullptr : "!password";
}

bool libpqAccepts(const char* keyword) {
  if (!loadLibpq()) return false;
  PQconninfoOption* options = libpq().PQconndefaults();
  if (!options) return false;
  bool found = false;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (std::string_view(o->keyword) == keyword) found = true;
  }
  libpq().PQconninfoFree(options);
  return found;
}

Result<PostgresCredentials> fetchCredentials(kube::Client& client, const std::string& ns,
                                             const policy::PostgresSource& source) {
  // Each Secret is read once, and used only when it allows the policy's server (usage/grant.h).
  std::map<std::string, kube::json> secrets;
  auto secretNamed = [&](const std::string& secretName) -> Result<const kube::json*> {
    const std::string where = "secret " + ns + "/" + secretName;
    if (secretName.empty()) {
      return pgError(ErrorCode::kInvalidArgument, postgres_reasons::kCredentials, where + ": no Secret name given");
    }
    if (auto it = secrets.find(secretName); it != secrets.end()) return &it->second;
    auto secret = client.get(kube::resources::secrets(), ns, secretName);
    if (!secret) {
      return pgError(secret.error().code(), postgres_reasons::kCredentials, where + ": " + secret.error().message());
    }
    if (auto granted = checkSecretGrant(*secret, ns, secretName, source); !granted.ok()) return granted.error();
    return &secrets.emplace(secretName, std::move(*secret)).first->second;
  };
  auto readKey = [&](const std::string& secretName, const std::string& key) -> Result<std::string> {
    auto secret = secretNamed(secretName);
    if (!secret) return secret.error();
    const std::string where = "secret " + ns + "/" + secretName;
    const kube::json& obj = **secret;
    auto data = obj.find("data");
    if (data == obj.end() || !data->is_object() || !data->contains(key) || !(*data)[key].is_string()) {
      return pgError(ErrorCode::kInvalidArgument, postgres_reasons::kCredentials,
                     where + " has no key \"" + key + "\"");
    }
    auto decoded = decodeBase64((*data)[key].get<std::string>());
    if (!decoded) {
      return pgError(ErrorCode::kInvalidArgument, postgres_reasons::kCredentials,
                     where + ": key \"" + key + "\" is not valid base64");
    }
    return *decoded;
  };

  const auto& ref = source.credentialsSecretRef;
  const std::string usernameKey = ref.usernameKey.empty() ? "username" : ref.usernameKey;
  const std::string passwordKey = ref.passwordKey.empty() ? "password" : ref.passwordKey;
  PostgresCredentials creds;
  auto user = readKey(ref.name, usernameKey);
  if (!user) return user.error();
  auto password = readKey(ref.name, passwordKey);
  if (!password) return password.error();
  creds.username = std::move(*user);
  creds.password = std::move(*password);
  auto from = [&](const std::string& key) {
    return "the value of key \"" + key + "\" of Secret " + ns + "/" + ref.name;
  };
  creds.usernameFrom = from(usernameKey);
  creds.passwordFrom = from(passwordKey);
  if (source.caSecretRef) {
    auto ca = readKey(source.caSecretRef->name, source.caSecretRef->key.empty() ? "ca.crt" : source.caSecretRef->key);
    if (!ca) return ca.error();
    creds.caPem = std::move(*ca);
  }
  return creds;
}

Error classifyConnectionError(const std::string& endpoint, const std::string& libpqMessage) {
  // Messages go into one-line status conditions and logs.
  std::string concise = conciseLibpqMessage(libpqMessage);
  for (char& ch : concise) {
    if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
  }
  std::string where = "postgres " + endpoint + ": ";
  // Authentication first: "no pg_hba.conf entry ... SSL off" is about access, not TLS.
  const bool unknownRole = contains(concise, "role \"") && contains(concise, "does not exist");
  for (const char* marker : {"password authentication failed", "authentication failed", "no pg_hba.conf entry",
                             "no password supplied", "pg_hba.conf rejects"}) {
    if (unknownRole || contains(concise, marker)) {
      return pgError(ErrorCode::kUnauthorized, postgres_reasons::kAuthFailed, where + concise);
    }
  }
  if (contains(concise, "does not support SSL") || contains(concise, "SSL was required")) {
    return pgError(ErrorCode::kForbidden, postgres_reasons::kTls, where + "TLS refused: " + concise);
  }
  for (const char* marker : {"certificate", "SSL", "ssl", "root cert", "does not match host name", "TLS"}) {
    if (contains(concise, marker)) {
      return pgError(ErrorCode::kForbidden, postgres_reasons::kTls,
                     where.append("TLS verification failed: ") + concise);
    }
  }
  if (contains(concise, "timeout expired")) {
    return pgError(ErrorCode::kTimeout, postgres_reasons::kUnreachable, where + "unreachable: connect timed out");
  }
  return pgError(ErrorCode::kUnavailable, postgres_reasons::kUnreachable, where + "unreachable: " + concise);
}

struct PostgresReader::Impl {
  const Clock& clock;
  PostgresReaderOptions options;
  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<Connection>> connections;
  std::atomic<size_t> connects{0};

  Impl(const Clock& c, PostgresReaderOptions o) : clock(c), options(std::move(o)) {
    if (options.systemCaBundle.empty()) options.systemCaBundle = defaultSystemCaBundle();
  }

  std::shared_ptr<Connection> entryFor(const std::string& key) {
    std::lock_guard lock(mu);
    auto& entry = connections[key];
    if (!entry) entry = std::make_shared<Connection>();
    return entry;
  }

  Result<PGconn*> connect(const policy::PostgresSource& s, const PostgresCredentials& c, const std::string& endpoint) {
    if (auto lib = loadLibpq(); !lib) {
      return pgError(ErrorCode::kUnavailable, postgres_reasons::kUnreachable,
                     "postgres " + endpoint + ": " + lib.error().message());
    }
    std::unique_ptr<PrivateTempFile> caFile;
    std::string rootCert;
    if (verifiesCertificate(s.sslMode)) {
      if (c.caPem) {
        auto written = PrivateTempFile::write(*c.caPem);
        if (!written) {
          return pgError(ErrorCode::kInternal, postgres_reasons::kTls,
                         "postgres " + endpoint + ": " + written.error().message());
        }
        caFile = std::move(*written);
        rootCert = caFile->path();
      } else if (!options.systemCaBundle.empty()) {
        rootCert = options.systemCaBundle;
      } else {
        return pgError(ErrorCode::kInvalidArgument, postgres_reasons::kTls,
                       "postgres " + endpoint + ": sslMode " + sslModeKeyword(s.sslMode) +
                           " needs a CA: set usage.postgres.caSecretRef (no system CA bundle found)");
      }
    }
    const std::string port = std::to_string(s.port);
    const std::string connectTimeout = std::to_string(std::max<int64_t>(2, options.connectTimeout.count()));
    const std::string serverOptions = "-c statement_timeout=" + std::to_string(options.statementTimeout.count());
    const std::string userTimeout = std::to_string(options.connectTimeout.count() * 2000);
    std::vector<const char*> keys{"host",      "port",       "dbname",          "user",
                                  "password",  "sslmode",    "connect_timeout", "application_name",
                                  "options",   "keepalives", "keepalives_idle", "tcp_user_timeout",
                                  "gssencmode"};
    std::vector<const char*> values{s.host.c_str(),
                                    port.c_str(),
                                    s.database.c_str(),
                                    c.username.c_str(),
                                    c.password.c_str(),
                                    sslModeKeyword(s.sslMode),
                                    connectTimeout.c_str(),
                                    kOwnApplicationName,
                                    serverOptions.c_str(),
                                    "1",
                                    "10",
                                    userTimeout.c_str(),
                                    "disable"};
    if (!rootCert.empty()) {
      keys.push_back("sslrootcert");
      values.push_back(rootCert.c_str());
    }
    // Debian 12's libpq 15 has no require_auth: there the Secret's grant is the only guard (docs/security.md).
    static const bool canRefuseCleartext = libpqAccepts("require_auth");
    if (const char* requireAuth = requireAuthFor(s.sslMode); requireAuth && canRefuseCleartext) {
      keys.push_back("require_auth");
      values.push_back(requireAuth);
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    PGconn* conn = libpq().PQconnectdbParams(keys.data(), values.data(), 0);
    ++connects;
    if (conn == nullptr) {
      return pgError(ErrorCode::kInternal, postgres_reasons::kUnreachable,
                     "postgres " + endpoint + ": libpq could not allocate a connection");
    }
    if (libpq().PQstatus(conn) != CONNECTION_OK) {
      std::string message = hideCredentials(libpq().PQerrorMessage(conn), c, s.database);
      libpq().PQfinish(conn);
      return classifyConnectionError(endpoint, message);
    }
    return conn;
  }

  Result<ServerSnapshot> query(PGconn* conn, const std::string& where, const PostgresCredentials& c,
                               const std::string& database) {
    auto failure = [&] { return conciseLibpqMessage(hideCredentials(libpq().PQerrorMessage(conn), c, database)); };
    ServerSnapshot snap;
    {
      PgResult res(libpq().PQexec(conn, kSettingsSql));
      if (libpq().PQresultStatus(res.r) != PGRES_TUPLES_OK || libpq().PQntuples(res.r) != 1) {
        return pgError(ErrorCode::kUnavailable, postgres_reasons::kQueryFailed,
                       where + ": reading max_connections failed: " + failure());
      }
      snap.maxConnections = intField(res.r, 0, 0);
      snap.reservedConnections = intField(res.r, 0, 1) + intField(res.r, 0, 2);
    }
    PgResult res(libpq().PQexec(conn, kActivitySql));
    snap.readAt = clock.now();
    if (libpq().PQresultStatus(res.r) != PGRES_TUPLES_OK) {
      return pgError(ErrorCode::kUnavailable, postgres_reasons::kQueryFailed,
                     where + ": reading pg_stat_activity failed: " + failure());
    }
    std::map<std::tuple<std::string, std::string, std::string>, int32_t> clients;
    for (int row = 0; row < libpq().PQntuples(res.r); ++row) {
      ApplicationActivity& a = snap.byApplication[libpq().PQgetvalue(res.r, row, 0)];
      a.countByState[libpq().PQgetvalue(res.r, row, 1)] += intField(res.r, row, 2);
      clients[{libpq().PQgetvalue(res.r, row, 0), libpq().PQgetvalue(res.r, row, 4),
               libpq().PQgetvalue(res.r, row, 5)}] += intField(res.r, row, 2);
      if (libpq().PQgetisnull(res.r, row, 3)) continue;
      std::istringstream ages(libpq().PQgetvalue(res.r, row, 3));
      std::string age;
      while (std::getline(ages, age, ',')) {
        double seconds = std::strtod(age.c_str(), nullptr);
        a.idleInTransactionSince.push_back(snap.readAt - std::chrono::duration_cast<Clock::time_point::duration>(
                                                             std::chrono::duration<double>(std::max(0.0, seconds))));
      }
    }
    for (const auto& [k, n] : clients)
      snap.clients.push_back(ClientSessions{std::get<0>(k), std::get<1>(k), std::get<2>(k), n});
    return snap;
  }
};

PostgresReader::PostgresReader(const Clock& clock, PostgresReaderOptions options)
    : impl_(std::make_unique<Impl>(clock, std::move(options))) {}

PostgresReader::~PostgresReader() = default;

template <typename T>
Result<T> PostgresReader::withConnection(const policy::PostgresSource& source, const PostgresCredentials& credentials,
                                         const std::function<Result<T>(PGconn*, const std::string& where)>& use,
                                         bool retry) {
  const std::string endpoint = source.host + ":" + std::to_string(source.port);
  const std::string key = connectionKey(source, credentials.username);
  // Settings that change what a new connection would be: when they differ, the open one is stale.
  const size_t fingerprint = std::hash<std::string>{}(credentials.password + '\0' + sslModeKeyword(source.sslMode) +
                                                      '\0' + credentials.caPem.value_or(""));
  auto entry = impl_->entryFor(key);
  std::lock_guard lock(entry->mu);
  for (int attempt = 0;; ++attempt) {
    if (entry->conn && (entry->fingerprint != fingerprint || libpq().PQstatus(entry->conn) != CONNECTION_OK))
      entry->close();
    if (!entry->conn) {
      auto conn = impl_->connect(source, credentials, endpoint);
      if (!conn) return conn.error();
      entry->conn = *conn;
      entry->fingerprint = fingerprint;
    }
    auto result = use(entry->conn, "postgres " + endpoint + "/" + source.database);
    if (result) return result;
    // A connection the server or the network dropped shows only when used: reopen once.
    if (libpq().PQstatus(entry->conn) != CONNECTION_OK) {
      entry->close();
      if (attempt == 0 && retry) continue;
    }
    return result.error();
  }
}

Result<ServerSnapshot> PostgresReader::read(const policy::PostgresSource& source,
                                            const PostgresCredentials& credentials) {
  return withConnection<ServerSnapshot>(source, credentials, [&](PGconn* conn, const std::string& where) {
    return impl_->query(conn, where, credentials, source.database);
  });
}

namespace {

// A PostgreSQL text[] literal: each element double-quoted, with backslashes and quotes escaped.
std::string textArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char ch : items[i]) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

// Sessions idle in transaction past $2 seconds whose application_name is in $1 (not poolguard's own), of roles that
// are not superusers, oldest first, at most $3. state_change identifies this idle period for the termination.
constexpr const char* kIdleSessionsSql =
    "SELECT a.pid, coalesce(a.usename::text, ''), a.application_name, "
    "floor(extract(epoch FROM clock_timestamp() - a.state_change))::bigint, a.state_change::text "
    "FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid "
    "WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid() "
    "AND a.state IN ('idle in transaction', 'idle in transaction (aborted)') "
    "AND a.application_name = ANY($1::text[]) AND NOT r.rolsuper "
    "AND a.state_change IS NOT NULL AND clock_timestamp() - a.state_change > make_interval(secs => $2::float8) "
    "ORDER BY a.state_change LIMIT $3::int";

// Ends the session only while it is still in the same idle period.
constexpr const char* kTerminateSql =
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1::int "
    "AND state IN ('idle in transaction', 'idle in transaction (aborted)') AND state_change = $2::timestamptz";

}  // namespace

Result<TerminateOutcome> PostgresReader::terminateIdleInTransaction(const policy::PostgresSource& source,
                                                                    const PostgresCredentials& credentials,
                                                                    const std::vector<std::string>& applicationNames,
                                                                    std::chrono::milliseconds olderThan, int32_t limit,
                                                                    bool dryRun, const std::function<bool()>& mayEnd) {
  return withConnection<TerminateOutcome>(
      source, credentials,
      [&](PGconn* conn, const std::string& where) -> Result<TerminateOutcome> {
        auto failure = [&] {
          return conciseLibpqMessage(hideCredentials(libpq().PQerrorMessage(conn), credentials, source.database));
        };
        const std::string names = textArray(applicationNames);
        const std::string seconds = std::to_string(static_cast<double>(olderThan.count()) / 1000.0);
        const std::string max = std::to_string(limit);
        const char* params[] = {names.c_str(), seconds.c_str(), max.c_str()};
        PgResult listed(libpq().PQexecParams(conn, kIdleSessionsSql, 3, nullptr, params, nullptr, nullptr, 0));
        if (libpq().PQresultStatus(listed.r) != PGRES_TUPLES_OK) {
          return pgError(ErrorCode::kUnavailable, postgres_reasons::kQueryFailed,
                         where + ": listing sessions idle in transaction failed: " + failure());
        }
        TerminateOutcome out;
        for (int row = 0; row < libpq().PQntuples(listed.r); ++row) {
          IdleSession session;
          session.pid = intField(listed.r, row, 0);
          session.user = libpq().PQgetvalue(listed.r, row, 1);
          session.applicationName = libpq().PQgetvalue(listed.r, row, 2);
          session.idleSeconds = std::strtoll(libpq().PQgetvalue(listed.r, row, 3), nullptr, 10);
          if (!dryRun && !out.refused) {
            // Asked before each session: a replica that may have lost the leader's lease ends none after that.
            if (mayEnd && !mayEnd()) {
              out.stopped = true;
              break;
            }
            const std::string pid = std::to_string(session.pid);
            const char* args[] = {pid.c_str(), libpq().PQgetvalue(listed.r, row, 4)};
            PgResult ended(libpq().PQexecParams(conn, kTerminateSql, 2, nullptr, args, nullptr, nullptr, 0));
            if (libpq().PQresultStatus(ended.r) == PGRES_TUPLES_OK) {
              session.ended = libpq().PQntuples(ended.r) == 1 && std::string(libpq().PQgetvalue(ended.r, 0, 0)) == "t";
              if (libpq().PQntuples(ended.r) == 0) continue;  // it moved on: not a leak any more
            } else {
              const char* state = libpq().PQresultErrorField(ended.r, PG_DIAG_SQLSTATE);
              if (state == nullptr || std::string(state) != "42501") {
                // What was ended stays reported; the rest waits for the next check (never a second pass now).
                out.failed = where + ": ending session " + pid + " failed: " + failure();
                break;
              }
              out.refused = true;
            }
          }
          out.sessions.push_back(std::move(session));
        }
        return out;
      },
      /*retry=*/false);
}

std::string PostgresReader::connectionKey(const policy::PostgresSource& source, const std::string& username) {
  return source.host + '\0' + std::to_string(source.port) + '\0' + source.database + '\0' + username;
}

void PostgresReader::closeExcept(const std::set<std::string>& keep) {
  std::vector<std::shared_ptr<Connection>> unused;
  {
    std::lock_guard lock(impl_->mu);
    for (auto it = impl_->connections.begin(); it != impl_->connections.end();) {
      if (keep.count(it->first)) {
        ++it;
        continue;
      }
      unused.push_back(std::move(it->second));
      it = impl_->connections.erase(it);
    }
  }
  // Dropped outside the map's lock, and never waited for: an idle session ends here (its last reference goes); a
  // read in progress on another thread holds its own reference, so that session ends when the read is done, and
  // the caller (another target's check) is not held up by it.
  unused.clear();
}

size_t PostgresReader::openConnections() const {
  std::lock_guard lock(impl_->mu);
  size_t n = 0;
  for (const auto& [key, entry] : impl_->connections) {
    std::lock_guard entryLock(entry->mu);
    if (entry->conn) ++n;
  }
  return n;
}

size_t PostgresReader::connectsMade() const { return impl_->connects.load(); }

}  // namespace poolguard::usage
