#pragma once
// Server-side usage from PostgreSQL: max_connections, the reserved slots and pg_stat_activity, read over libpq
// as a monitoring role (pg_monitor is enough). Credentials come from the Secret the policy names, fetched by
// name; the password only ever travels as a libpq keyword value, never in a DSN string or a log line.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "kube/client.h"
#include "policy/types.h"
#include "usage/analysis.h"

struct pg_conn;  // libpq's PGconn

namespace poolguard::usage {

// Error reasons (Error::reason()) of the PostgreSQL source; also the `reason` label of
// poolguard_usage_check_errors_total.
namespace postgres_reasons {
inline constexpr const char* kCredentials = "CredentialsUnavailable";  // Secret missing, key missing, bad base64
inline constexpr const char* kUnreachable = "PostgresUnreachable";     // refused, timed out, name not resolved
inline constexpr const char* kAuthFailed = "PostgresAuthFailed";       // wrong password, unknown role, pg_hba
inline constexpr const char* kTls = "PostgresTLSFailed";               // TLS refused or the certificate not trusted
inline constexpr const char* kQueryFailed = "PostgresQueryFailed";
}  // namespace postgres_reasons

struct PostgresCredentials {
  std::string username;
  std::string password;
  std::optional<std::string> caPem;  // from caSecretRef; the trust anchor for verify-ca / verify-full
  // What a message says instead of the user name and the password: `the value of key "password" of Secret
  // ns1/pg-monitor`; when empty, `the user name` and `the password`.
  std::string usernameFrom{};
  std::string passwordFrom{};
};

// Reads credentialsSecretRef (usernameKey, passwordKey) and, when set, caSecretRef (key default ca.crt) from
// the policy's namespace with a GET by name. A Secret that does not allow the policy's server (annotation
// poolguard.dev/allowed-servers, usage/grant.h) is not used: the error says what to add.
Result<PostgresCredentials> fetchCredentials(kube::Client& client, const std::string& ns,
                                             const policy::PostgresSource& source);

// `libpqMessage` with the user name and the password replaced, wherever they appear, by a placeholder that says
// where they came from (`<the value of key "password" of Secret ns1/pg-monitor>`): PostgreSQL quotes the user
// name back, and the policy author chooses which key of the Secret is sent as the user name. A value longer than a
// PostgreSQL name (63 bytes) is also found as PostgreSQL cuts it. The database name PostgreSQL quotes back
// (`database "..."`) is the policy's own and stays as it is whatever it equals: else naming a guess as the
// database would tell whether it is the password.
std::string hideCredentials(const std::string& libpqMessage, const PostgresCredentials& credentials,
                            const std::string& database);

// The require_auth poolguard asks for with this sslMode: "!password" (never answer a request for the password in
// clear text) unless verify-full proves the server's name; nullptr for none. Passed only where the libpq linked at
// run time knows the keyword (libpq 16 and later).
const char* requireAuthFor(policy::SslMode mode);

// Whether the libpq linked at run time knows a connection keyword (require_auth came with libpq 16).
bool libpqAccepts(const char* keyword);

// Turns a libpq connection failure (credentials already hidden) into a typed Error whose message says what
// failed: "postgres db.example:5432: password authentication failed for user "<the user name>"".
Error classifyConnectionError(const std::string& endpoint, const std::string& libpqMessage);

// A session terminateIdleInTransaction found: ended, or (dry run, or not permitted) only listed.
struct IdleSession {
  int32_t pid = 0;
  std::string user;
  std::string applicationName;
  int64_t idleSeconds = 0;  // in transaction, idle, for this long
  bool ended = false;
};

struct TerminateOutcome {
  std::vector<IdleSession> sessions;
  // The server refused to end a session: the monitoring role lacks pg_signal_backend. The sessions after it were
  // not tried.
  bool refused = false;
  // Ending a session failed otherwise (the connection dropped, say): why. The sessions listed before were ended and
  // are reported; the others are left to the next check.
  std::optional<std::string> failed;
  // mayEnd said no before a session was ended: the sessions before it are reported, the rest left alone.
  bool stopped = false;
};

struct PostgresReaderOptions {
  std::chrono::seconds connectTimeout{5};
  std::chrono::milliseconds statementTimeout{5000};
  // When sslmode is verify-ca/verify-full and no caSecretRef is given, the system's CA bundle is trusted.
  // Empty: the first of the usual distribution paths that exists.
  std::string systemCaBundle;
};

// Holds one connection per (host, port, database, user), reused across checks and reopened when it broke or
// when the settings used to open it (password, sslmode, CA) changed. Thread-safe; reads of one server are
// serialized on its connection.
class PostgresReader {
 public:
  explicit PostgresReader(const Clock& clock, PostgresReaderOptions options = {});
  ~PostgresReader();
  PostgresReader(const PostgresReader&) = delete;
  PostgresReader& operator=(const PostgresReader&) = delete;

  Result<ServerSnapshot> read(const policy::PostgresSource& source, const PostgresCredentials& credentials);

  // Ends (pg_terminate_backend) the client sessions idle in transaction longer than `olderThan` whose
  // application_name is one of `applicationNames`, oldest first, at most `limit`; with `dryRun`, only lists them.
  // Never poolguard's own session or application_name, never a superuser's session. A session that moved on since
  // it was listed (its state changed) is left alone. Uses the connection read() uses, and never runs twice in one
  // call (a dropped connection does not make it list and end again). `mayEnd`, when set, is asked before each
  // session is ended: once it says no, no further session is (TerminateOutcome::stopped).
  Result<TerminateOutcome> terminateIdleInTransaction(const policy::PostgresSource& source,
                                                      const PostgresCredentials& credentials,
                                                      const std::vector<std::string>& applicationNames,
                                                      std::chrono::milliseconds olderThan, int32_t limit, bool dryRun,
                                                      const std::function<bool()>& mayEnd = {});

  // The connection read() uses for this source and user: (host, port, database, user).
  static std::string connectionKey(const policy::PostgresSource& source, const std::string& username);
  // Closes every connection whose key is not in `keep`: a session to a server no policy checks any more must not
  // stay open (poolguard would hold the very kind of idle session it warns about). Never waits: a session whose read
  // is in progress on another thread ends when that read is done.
  void closeExcept(const std::set<std::string>& keep);

  // Connections currently open (for tests of reuse, and for shutdown diagnostics).
  size_t openConnections() const;
  // How many times a connection was opened since construction.
  size_t connectsMade() const;

 private:
  // Runs `use` on the connection of (source, user), opened or reopened as needed, and (with `retry`) once more
  // after a dropped one.
  template <typename T>
  Result<T> withConnection(const policy::PostgresSource& source, const PostgresCredentials& credentials,
                           const std::function<Result<T>(pg_conn*, const std::string& where)>& use, bool retry = true);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace poolguard::usage
