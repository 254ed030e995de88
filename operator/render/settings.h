#pragma once
// Pool settings in the names and units of the library a policy's profile targets. Pure: a policy and the
// workload's identity in, the rendered settings out. docs/profiles.md lists every profile's names, units and
// mapping; the golden files under tests/testdata/golden/ show the output.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy/types.h"

namespace poolguard::render {

// Setting keys as delivery.envNames takes them.
inline constexpr const char* kMaxSize = "maxSize";
inline constexpr const char* kMinIdle = "minIdle";
inline constexpr const char* kAcquireTimeout = "acquireTimeout";
inline constexpr const char* kIdleTimeout = "idleTimeout";
inline constexpr const char* kMaxLifetime = "maxLifetime";
inline constexpr const char* kLeakDetectionThreshold = "leakDetectionThreshold";
inline constexpr const char* kApplicationName = "applicationName";
inline constexpr const char* kIdleInTransactionTimeout = "idleInTransactionTimeout";
// Generic renders pool.idleInTransactionTimeout twice: in milliseconds under kIdleInTransactionTimeout, and as
// PGOPTIONS under this profile-internal key (not renamed by delivery.envNames).
inline constexpr const char* kPgOptions = "pgOptions";

// Every key delivery.envNames accepts, in canonical order.
const std::vector<std::string>& settingKeys();

struct RenderOptions {
  // The maxSize after a budget Clamp (budget::Plan). Unset: the policy's pool.maxSize. minIdle is lowered to it
  // when larger, so the rendered pool stays valid.
  std::optional<int32_t> effectiveMaxSize;
  // A ClusterConnectionBudget requires leak detection: a pool.leakDetectionThreshold of 0 renders
  // policy::kRequiredLeakDetection.
  bool requireLeakDetection = false;
};

struct EnvSetting {
  std::string key;   // a settingKeys() entry, or a profile-internal key (PgBouncer's reservePoolSize)
  std::string name;  // the environment variable
  std::string value;

  bool operator==(const EnvSetting&) const = default;
};

struct RenderedSettings {
  policy::Profile profile = policy::Profile::kGeneric;
  int32_t maxSize = 0;          // after effectiveMaxSize
  std::string applicationName;  // expanded; "" when disabled
  std::vector<EnvSetting> env;  // in the profile's canonical order
  std::string pgbouncerIni;     // [pgbouncer] settings to %include (no header); PgBouncer only, else ""
  std::string hash;             // settingsHash of the above
};

// Expands {namespace} and {name} in delivery.applicationName.
std::string expandApplicationName(const std::string& tmpl, const std::string& ns, const std::string& name);

// The settings for one workload (its namespace and name feed the application name).
RenderedSettings renderSettings(const policy::Policy& p, const std::string& workloadNamespace,
                                const std::string& workloadName, const RenderOptions& options = {});

// First 16 hex digits of SHA-256 over the env entries ("name=value\n", canonical order) and the PgBouncer ini.
// Stable across releases for equal settings: a changed hash restarts pods, an unchanged one never does.
std::string settingsHash(const std::vector<EnvSetting>& env, const std::string& pgbouncerIni);

// pool.idleInTransactionTimeout as server options, the form of libpq's PGOPTIONS and PgJDBC's options property:
// "-c idle_in_transaction_session_timeout=45000" (milliseconds, PostgreSQL's unit for it).
std::string idleInTransactionOptions(policy::Millis d);
// Whether `value` has exactly that form (for some number of milliseconds).
bool isIdleInTransactionOptions(const std::string& value);
// What the libraries a profile names do not read of pool.idleInTransactionTimeout as rendered, with what to do
// instead; nullopt when each of them reads it (docs/profiles.md "Idle in transaction").
std::optional<std::string> idleInTransactionCaveat(policy::Profile profile);
// Whether the entry is a server-options variable (PGOPTIONS, or SpringHikari's options property). Applications set
// these for their own reasons (search_path, statement_timeout), so renderWorkload writes one only into a container
// that does not set it itself; docs/profiles.md has the rule.
bool isServerOptions(const EnvSetting& e);

// Time values in the units libraries take.
std::string millisString(policy::Millis d);       // "30000"
std::string secondsString(policy::Millis d);      // "30", "1.5"
int64_t wholeSecondsRoundedUp(policy::Millis d);  // 1500ms -> 2

}  // namespace poolguard::render
