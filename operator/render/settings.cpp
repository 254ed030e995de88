#include "render/settings.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <functional>
#include <memory>
#include <string_view>

#include "policy/parse.h"

namespace poolguard::render {
namespace {

using policy::Millis;
using policy::PoolSettings;

// What a profile renders for one setting key. An entry with an empty defaultName is rendered only when
// delivery.envNames names it: the library has no such setting, but an application may still want the value.
struct ProfileEntry {
  const char* key;
  const char* defaultName;
  std::function<std::string(const PoolSettings&, const std::string& appName)> value;
};

// PgBouncer and Hikari read 0 as "no limit" differently from the API, so profiles convert explicitly.
// PgBouncer's server_lifetime 0 means "use each server connection once"; ten years stands for unlimited.
constexpr int64_t kPgBouncerUnlimitedSeconds = 315'360'000;
// Go's time.Duration tops out near 292 years; a century reads as "never" to pgxpool.
constexpr const char* kGoUnlimitedDuration = "876000h";

std::string num(int64_t v) { return std::to_string(v); }
std::string goDuration(Millis d) { return policy::formatDuration(d); }

std::string sqlLiteral(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "''";
    else
      out += c;
  }
  return out + "'";
}

std::string appNameValue(const PoolSettings&, const std::string& app) { return app; }

// pool.idleInTransactionTimeout, rendered only when set (renderSettings skips the entry otherwise).
Millis idleInTransaction(const PoolSettings& s) { return s.idleInTransactionTimeout.value_or(Millis(0)); }
std::string idleInTransactionOptionsValue(const PoolSettings& s, const std::string&) {
  return idleInTransactionOptions(idleInTransaction(s));
}

// Entries that exist only when the policy sets the value they carry.
bool present(const ProfileEntry& entry, const PoolSettings& s) {
  const std::string key = entry.key;
  if (key == kIdleInTransactionTimeout || key == kPgOptions) return s.idleInTransactionTimeout.has_value();
  return true;
}

const std::vector<ProfileEntry>& entriesFor(policy::Profile profile) {
  using P = policy::Profile;
  static const std::vector<ProfileEntry> generic = {
      {kMaxSize, "POOL_MAX_SIZE", [](const PoolSettings& s, const std::string&) { return num(s.maxSize); }},
      {kMinIdle, "POOL_MIN_IDLE", [](const PoolSettings& s, const std::string&) { return num(s.minIdle); }},
      {kAcquireTimeout, "POOL_ACQUIRE_TIMEOUT_MS",
       [](const PoolSettings& s, const std::string&) { return millisString(s.acquireTimeout); }},
      {kIdleTimeout, "POOL_IDLE_TIMEOUT_MS",
       [](const PoolSettings& s, const std::string&) { return millisString(s.idleTimeout); }},
      {kMaxLifetime, "POOL_MAX_LIFETIME_MS",
       [](const PoolSettings& s, const std::string&) { return millisString(s.maxLifetime); }},
      {kLeakDetectionThreshold, "POOL_LEAK_DETECTION_THRESHOLD_MS",
       [](const PoolSettings& s, const std::string&) { return millisString(s.leakDetectionThreshold); }},
      {kApplicationName, "PGAPPNAME", appNameValue},
      {kIdleInTransactionTimeout, "POOL_IDLE_IN_TRANSACTION_TIMEOUT_MS",
       [](const PoolSettings& s, const std::string&) { return millisString(idleInTransaction(s)); }},
      // libpq, and the drivers that read libpq's variables, send it at connection start.
      {kPgOptions, "PGOPTIONS", idleInTransactionOptionsValue},
  };
  // Spring Boot binds SPRING_DATASOURCE_HIKARI_X to spring.datasource.hikari.x (relaxed binding). HikariCP takes
  // milliseconds and reads 0 as "off" for maxLifetime, idleTimeout and leakDetectionThreshold, as the API does.
  // PgJDBC ignores PGAPPNAME, and a map key bound from an environment variable arrives lower-cased
  // ("applicationname"), which PgJDBC does not recognise; Hikari's connectionInitSql sets it instead. PgJDBC's
  // "options" property is lower-case already: it reaches the driver through Hikari's dataSourceProperties, and
  // PgJDBC sends it at connection start as libpq sends PGOPTIONS.
  static const std::vector<ProfileEntry> hikari = {
      {kMaxSize, "SPRING_DATASOURCE_HIKARI_MAXIMUMPOOLSIZE",
       [](const PoolSettings& s, const std::string&) { return num(s.maxSize); }},
      {kMinIdle, "SPRING_DATASOURCE_HIKARI_MINIMUMIDLE",
       [](const PoolSettings& s, const std::string&) { return num(s.minIdle); }},
      {kAcquireTimeout, "SPRING_DATASOURCE_HIKARI_CONNECTIONTIMEOUT",
       [](const PoolSettings& s, const std::string&) { return millisString(s.acquireTimeout); }},
      {kIdleTimeout, "SPRING_DATASOURCE_HIKARI_IDLETIMEOUT",
       [](const PoolSettings& s, const std::string&) { return millisString(s.idleTimeout); }},
      {kMaxLifetime, "SPRING_DATASOURCE_HIKARI_MAXLIFETIME",
       [](const PoolSettings& s, const std::string&) { return millisString(s.maxLifetime); }},
      {kLeakDetectionThreshold, "SPRING_DATASOURCE_HIKARI_LEAKDETECTIONTHRESHOLD",
       [](const PoolSettings& s, const std::string&) { return millisString(s.leakDetectionThreshold); }},
      {kApplicationName, "SPRING_DATASOURCE_HIKARI_CONNECTIONINITSQL",
       [](const PoolSettings&, const std::string& app) { return "SET application_name = " + sqlLiteral(app); }},
      {kIdleInTransactionTimeout, "SPRING_DATASOURCE_HIKARI_DATASOURCEPROPERTIES_OPTIONS",
       idleInTransactionOptionsValue},
  };
  // database/sql has a ceiling of idle connections, not a floor: MaxIdleConns is set to maxSize so that
  // ConnMaxIdleTime (idleTimeout) is what closes idle connections. The key minIdle names that variable.
  static const std::vector<ProfileEntry> gosql = {
      {kMaxSize, "DB_MAX_OPEN_CONNS", [](const PoolSettings& s, const std::string&) { return num(s.maxSize); }},
      {kMinIdle, "DB_MAX_IDLE_CONNS", [](const PoolSettings& s, const std::string&) { return num(s.maxSize); }},
      {kAcquireTimeout, "DB_ACQUIRE_TIMEOUT",
       [](const PoolSettings& s, const std::string&) { return goDuration(s.acquireTimeout); }},
      {kIdleTimeout, "DB_CONN_MAX_IDLE_TIME",
       [](const PoolSettings& s, const std::string&) { return goDuration(s.idleTimeout); }},
      {kMaxLifetime, "DB_CONN_MAX_LIFETIME",
       [](const PoolSettings& s, const std::string&) { return goDuration(s.maxLifetime); }},
      {kLeakDetectionThreshold, "",
       [](const PoolSettings& s, const std::string&) { return goDuration(s.leakDetectionThreshold); }},
      {kApplicationName, "PGAPPNAME", appNameValue},
      {kIdleInTransactionTimeout, "PGOPTIONS", idleInTransactionOptionsValue},
  };
  // pgxpool reads its settings from the connection string (pool_max_conns=...); the application appends these
  // variables to its DSN. pgxpool has no acquire timeout (a context deadline is): not rendered by default. pgx
  // reads PGOPTIONS itself from v5.7.5 on.
  static const std::vector<ProfileEntry> pgxpool = {
      {kMaxSize, "PGX_POOL_MAX_CONNS", [](const PoolSettings& s, const std::string&) { return num(s.maxSize); }},
      {kMinIdle, "PGX_POOL_MIN_CONNS", [](const PoolSettings& s, const std::string&) { return num(s.minIdle); }},
      {kAcquireTimeout, "", [](const PoolSettings& s, const std::string&) { return goDuration(s.acquireTimeout); }},
      {kIdleTimeout, "PGX_POOL_MAX_CONN_IDLE_TIME",
       [](const PoolSettings& s, const std::string&) { return goDuration(s.idleTimeout); }},
      {kMaxLifetime, "PGX_POOL_MAX_CONN_LIFETIME",
       [](const PoolSettings& s, const std::string&) {
         return s.maxLifetime.count() == 0 ? std::string(kGoUnlimitedDuration) : goDuration(s.maxLifetime);
       }},
      {kLeakDetectionThreshold, "",
       [](const PoolSettings& s, const std::string&) { return goDuration(s.leakDetectionThreshold); }},
      {kApplicationName, "PGAPPNAME", appNameValue},
      {kIdleInTransactionTimeout, "PGOPTIONS", idleInTransactionOptionsValue},
  };
  // QueuePool keeps pool_size connections and opens up to max_overflow more, closing those on check-in, so
  // pool_size + max_overflow = maxSize. pool_size is minIdle when set (what to keep), else maxSize: SQLAlchemy
  // has no idle timeout, and closing every connection on check-in would churn. pool_size 0 would mean
  // "unlimited" to SQLAlchemy, so it is never rendered.
  static const std::vector<ProfileEntry> sqlalchemy = {
      {kMinIdle, "SQLALCHEMY_POOL_SIZE",
       [](const PoolSettings& s, const std::string&) { return num(s.minIdle > 0 ? s.minIdle : s.maxSize); }},
      {kMaxSize, "SQLALCHEMY_MAX_OVERFLOW",
       [](const PoolSettings& s, const std::string&) {
         return num(s.maxSize - (s.minIdle > 0 ? s.minIdle : s.maxSize));
       }},
      {kAcquireTimeout, "SQLALCHEMY_POOL_TIMEOUT",
       [](const PoolSettings& s, const std::string&) { return secondsString(s.acquireTimeout); }},
      {kIdleTimeout, "", [](const PoolSettings& s, const std::string&) { return secondsString(s.idleTimeout); }},
      {kMaxLifetime, "SQLALCHEMY_POOL_RECYCLE",
       [](const PoolSettings& s, const std::string&) {
         return s.maxLifetime.count() == 0 ? std::string("-1") : num(wholeSecondsRoundedUp(s.maxLifetime));
       }},
      {kLeakDetectionThreshold, "",
       [](const PoolSettings& s, const std::string&) { return secondsString(s.leakDetectionThreshold); }},
      {kApplicationName, "PGAPPNAME", appNameValue},
      {kIdleInTransactionTimeout, "PGOPTIONS", idleInTransactionOptionsValue},
  };
  // node-postgres (pg.Pool): max, min, connectionTimeoutMillis, idleTimeoutMillis and maxLifetimeSeconds, each
  // reading 0 as "off". pg reads PGAPPNAME and PGOPTIONS itself.
  static const std::vector<ProfileEntry> nodepg = {
      {kMaxSize, "PG_POOL_MAX", [](const PoolSettings& s, const std::string&) { return num(s.maxSize); }},
      {kMinIdle, "PG_POOL_MIN", [](const PoolSettings& s, const std::string&) { return num(s.minIdle); }},
      {kAcquireTimeout, "PG_POOL_CONNECTION_TIMEOUT_MILLIS",
       [](const PoolSettings& s, const std::string&) { return millisString(s.acquireTimeout); }},
      {kIdleTimeout, "PG_POOL_IDLE_TIMEOUT_MILLIS",
       [](const PoolSettings& s, const std::string&) { return millisString(s.idleTimeout); }},
      {kMaxLifetime, "PG_POOL_MAX_LIFETIME_SECONDS",
       [](const PoolSettings& s, const std::string&) { return num(wholeSecondsRoundedUp(s.maxLifetime)); }},
      {kLeakDetectionThreshold, "",
       [](const PoolSettings& s, const std::string&) { return millisString(s.leakDetectionThreshold); }},
      {kApplicationName, "PGAPPNAME", appNameValue},
      {kIdleInTransactionTimeout, "PGOPTIONS", idleInTransactionOptionsValue},
  };
  // PgBouncer: one pool per database/user pair. reserve_pool_size is pinned to 0 because reserve connections
  // would exceed the budget computed from default_pool_size. PgBouncer does not pass its clients' options on to the
  // server; its idle_transaction_timeout disconnects a client idle in transaction itself, and the server connection
  // it held is closed with it.
  static const std::vector<ProfileEntry> pgbouncer = {
      {kMaxSize, "PGBOUNCER_DEFAULT_POOL_SIZE",
       [](const PoolSettings& s, const std::string&) { return num(s.maxSize); }},
      {kMinIdle, "PGBOUNCER_MIN_POOL_SIZE", [](const PoolSettings& s, const std::string&) { return num(s.minIdle); }},
      {"reservePoolSize", "PGBOUNCER_RESERVE_POOL_SIZE",
       [](const PoolSettings&, const std::string&) { return num(0); }},
      {kAcquireTimeout, "PGBOUNCER_QUERY_WAIT_TIMEOUT",
       [](const PoolSettings& s, const std::string&) { return secondsString(s.acquireTimeout); }},
      {kIdleTimeout, "PGBOUNCER_SERVER_IDLE_TIMEOUT",
       [](const PoolSettings& s, const std::string&) { return secondsString(s.idleTimeout); }},
      {kMaxLifetime, "PGBOUNCER_SERVER_LIFETIME",
       [](const PoolSettings& s, const std::string&) {
         return s.maxLifetime.count() == 0 ? num(kPgBouncerUnlimitedSeconds) : secondsString(s.maxLifetime);
       }},
      {kLeakDetectionThreshold, "",
       [](const PoolSettings& s, const std::string&) { return secondsString(s.leakDetectionThreshold); }},
      {kApplicationName, "PGAPPNAME", appNameValue},
      {kIdleInTransactionTimeout, "PGBOUNCER_IDLE_TRANSACTION_TIMEOUT",
       [](const PoolSettings& s, const std::string&) { return secondsString(idleInTransaction(s)); }},
  };
  switch (profile) {
    case P::kSpringHikari:
      return hikari;
    case P::kGoSQL:
      return gosql;
    case P::kPgxpool:
      return pgxpool;
    case P::kSQLAlchemy:
      return sqlalchemy;
    case P::kNodePostgres:
      return nodepg;
    case P::kPgBouncer:
      return pgbouncer;
    case P::kGeneric:
      return generic;
  }
  return generic;
}

// The [pgbouncer] keys, by the env entry they mirror.
const std::array<std::pair<const char*, const char*>, 7> kPgBouncerIniKeys = {{
    {"PGBOUNCER_DEFAULT_POOL_SIZE", "default_pool_size"},
    {"PGBOUNCER_MIN_POOL_SIZE", "min_pool_size"},
    {"PGBOUNCER_RESERVE_POOL_SIZE", "reserve_pool_size"},
    {"PGBOUNCER_QUERY_WAIT_TIMEOUT", "query_wait_timeout"},
    {"PGBOUNCER_SERVER_IDLE_TIMEOUT", "server_idle_timeout"},
    {"PGBOUNCER_SERVER_LIFETIME", "server_lifetime"},
    {"PGBOUNCER_IDLE_TRANSACTION_TIMEOUT", "idle_transaction_timeout"},
}};

}  // namespace

const std::vector<std::string>& settingKeys() {
  static const std::vector<std::string> keys = {kMaxSize,         kMinIdle,
                                                kAcquireTimeout,  kIdleTimeout,
                                                kMaxLifetime,     kLeakDetectionThreshold,
                                                kApplicationName, kIdleInTransactionTimeout};
  return keys;
}

std::string millisString(Millis d) { return std::to_string(d.count()); }

std::string secondsString(Millis d) {
  int64_t ms = d.count();
  std::string out = std::to_string(ms / 1000);
  if (ms % 1000 != 0) {
    std::string frac = std::to_string(ms % 1000 + 1000).substr(1);
    while (frac.back() == '0') frac.pop_back();
    out += "." + frac;
  }
  return out;
}

int64_t wholeSecondsRoundedUp(Millis d) { return (d.count() + 999) / 1000; }

namespace {
constexpr std::string_view kIdleInTransactionOptionsPrefix = "-c idle_in_transaction_session_timeout=";
}  // namespace

std::string idleInTransactionOptions(Millis d) {
  return std::string(kIdleInTransactionOptionsPrefix) + millisString(d);
}

bool isIdleInTransactionOptions(const std::string& value) {
  if (value.size() <= kIdleInTransactionOptionsPrefix.size() || value.rfind(kIdleInTransactionOptionsPrefix, 0) != 0)
    return false;
  return std::all_of(value.begin() + static_cast<std::ptrdiff_t>(kIdleInTransactionOptionsPrefix.size()), value.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<std::string> idleInTransactionCaveat(policy::Profile profile) {
  switch (profile) {
    case policy::Profile::kSQLAlchemy:
      return "asyncpg reads no PGOPTIONS (pass idle_in_transaction_session_timeout in connect_args' server_settings)";
    case policy::Profile::kGoSQL:
    case policy::Profile::kPgxpool:
      return "pgx before v5.7.5 reads no PGOPTIONS (add options to the DSN)";
    default:
      return std::nullopt;
  }
}

bool isServerOptions(const EnvSetting& e) {
  return (e.key == kIdleInTransactionTimeout || e.key == kPgOptions) && isIdleInTransactionOptions(e.value);
}

std::string expandApplicationName(const std::string& tmpl, const std::string& ns, const std::string& name) {
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    if (tmpl.compare(i, 11, "{namespace}") == 0) {
      out += ns;
      i += 11;
    } else if (tmpl.compare(i, 6, "{name}") == 0) {
      out += name;
      i += 6;
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

std::string settingsHash(const std::vector<EnvSetting>& env, const std::string& pgbouncerIni) {
  std::string canonical;
  for (const auto& e : env) canonical += e.name + "=" + e.value + "\n";
  canonical += "\n" + pgbouncerIni;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), canonical.data(), canonical.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest.data(), &len) != 1) {
    // Only an exhausted allocator gets here; an empty hash never equals a live one, so the write happens.
    return "";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < 8 && i < len; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

RenderedSettings renderSettings(const policy::Policy& p, const std::string& workloadNamespace,
                                const std::string& workloadName, const RenderOptions& options) {
  PoolSettings pool = p.spec.pool;
  if (options.effectiveMaxSize && *options.effectiveMaxSize >= 1) pool.maxSize = *options.effectiveMaxSize;
  if (pool.minIdle > pool.maxSize) pool.minIdle = pool.maxSize;
  if (options.requireLeakDetection && pool.leakDetectionThreshold.count() == 0) {
    pool.leakDetectionThreshold = policy::kRequiredLeakDetection;
  }

  RenderedSettings out;
  out.profile = p.spec.profile;
  out.maxSize = pool.maxSize;
  out.applicationName = expandApplicationName(p.spec.delivery.applicationName, workloadNamespace, workloadName);

  const auto& overrides = p.spec.delivery.envNames;
  for (const auto& entry : entriesFor(p.spec.profile)) {
    if (std::string(entry.key) == kApplicationName && out.applicationName.empty()) continue;
    if (!present(entry, pool)) continue;
    std::string name = entry.defaultName;
    if (auto it = overrides.find(entry.key); it != overrides.end() && !it->second.empty()) name = it->second;
    if (name.empty()) continue;
    out.env.push_back({entry.key, name, entry.value(pool, out.applicationName)});
  }

  if (p.spec.profile == policy::Profile::kPgBouncer) {
    // Values follow the default names, whatever envNames calls the variables. No [pgbouncer] header: PgBouncer
    // resets every [pgbouncer] setting read so far when the header appears a second time, so the file is
    // %include'd at the end of the application's own [pgbouncer] section instead (docs/profiles.md).
    std::string ini =
        "; Rendered by poolguard from a ConnectionPoolPolicy: change the policy, not this file.\n"
        "; %include this file as the last line of the [pgbouncer] section.\n";
    for (const auto& [envName, iniKey] : kPgBouncerIniKeys) {
      for (const auto& entry : entriesFor(policy::Profile::kPgBouncer)) {
        if (envName == std::string(entry.defaultName) && present(entry, pool)) {
          ini += std::string(iniKey) + " = " + entry.value(pool, out.applicationName) + "\n";
        }
      }
    }
    out.pgbouncerIni = ini;
  }
  out.hash = settingsHash(out.env, out.pgbouncerIni);
  return out;
}

}  // namespace poolguard::render
