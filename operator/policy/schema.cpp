#include "policy/schema.h"

#include <algorithm>
#include <set>
#include <string_view>

#include "policy/parse.h"

namespace poolguard::policy::schema {

Node::Node() = default;

const char* const kDurationPattern = "^(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|\xC2\xB5s|\xCE\xBCs|ms|s|m|h))+)$";

const char* toString(Type t) {
  switch (t) {
    case Type::kObject:
    case Type::kStringMap:
      return "object";
    case Type::kArray:
      return "array";
    case Type::kString:
      return "string";
    case Type::kInteger:
      return "integer";
    case Type::kBoolean:
      return "boolean";
  }
  return "object";
}

const Node* Node::property(const std::string& name) const {
  for (const auto& [key, node] : properties) {
    if (key == name) return &node;
  }
  return nullptr;
}

namespace {

constexpr int64_t kInt32Min = -2147483648LL;
constexpr int64_t kInt32Max = 2147483647LL;
// PostgreSQL refuses max_connections above 2^18 - 1.
constexpr int64_t kPostgresMaxConnections = 262143;

const char* const kLabelValuePattern = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";
const char* const kLabelKeyPattern =
    "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$";
const char* const kDnsLabelPattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
const char* const kDnsSubdomainPattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
// One host name or IP address: libpq would read "a,b" (or "a b") as a list of hosts to try in turn.
const char* const kHostPattern = "^[A-Za-z0-9._:-]+$";

// Hand-written equivalents of the patterns above: std::regex recurses per character and could exhaust the stack
// on long hostile input, and these are simple enough to state directly.
bool isAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool isDnsLabel(std::string_view s) {
  if (s.empty() || !isLowerAlnum(s.front()) || !isLowerAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return isLowerAlnum(c) || c == '-'; });
}

bool isHost(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return isAlnum(c) || c == '.' || c == '_' || c == ':' || c == '-'; });
}

bool isDnsSubdomain(std::string_view s) {
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    if (!isDnsLabel(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start)))
      return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool isLabelValue(std::string_view s) {
  if (s.empty()) return true;
  if (!isAlnum(s.front()) || !isAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return isAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

bool isLabelKey(std::string_view s) {
  auto slash = s.find('/');
  if (slash != std::string_view::npos) {
    if (!isDnsSubdomain(s.substr(0, slash))) return false;
    s = s.substr(slash + 1);
  }
  return !s.empty() && isLabelValue(s);
}

bool isEnvName(std::string_view s) {
  if (s.empty() || (s.front() >= '0' && s.front() <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return isAlnum(c) || c == '_'; });
}

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; }

bool isHttpUrl(std::string_view s) {
  if (s.starts_with("http://")) {
    s.remove_prefix(7);
  } else if (s.starts_with("https://")) {
    s.remove_prefix(8);
  } else {
    return false;
  }
  size_t host = 0;
  while (host < s.size() && !isSpace(s[host]) && s[host] != '/' && s[host] != '?' && s[host] != '#') ++host;
  if (host == 0) return false;
  return std::none_of(s.begin() + static_cast<std::ptrdiff_t>(host), s.end(), isSpace);
}

bool isApplicationNameTemplate(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '}') return false;
    if (s[i] != '{') continue;
    if (s.substr(i).starts_with("{namespace}")) {
      i += 10;
    } else if (s.substr(i).starts_with("{name}")) {
      i += 5;
    } else {
      return false;
    }
  }
  return true;
}

std::optional<std::chrono::nanoseconds> durationOf(const json& v) {
  if (!v.is_string()) return std::nullopt;
  auto d = parseDurationNanos(v.get<std::string>());
  if (!d) return std::nullopt;
  return *d;
}

std::optional<int64_t> intAt(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return std::nullopt;
  if (it->is_number_unsigned()) {
    auto u = it->get<uint64_t>();
    return u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
  }
  return it->get<int64_t>();
}

Node str(int64_t maxLength, std::string hint = "") {
  Node n;
  n.type = Type::kString;
  n.maxLength = maxLength;
  n.hint = std::move(hint);
  return n;
}

Node integer(int64_t min, int64_t max, std::string hint) {
  Node n;
  n.type = Type::kInteger;
  n.minimum = min;
  n.maximum = max;
  n.hint = std::move(hint);
  return n;
}

Node boolean() {
  Node n;
  n.type = Type::kBoolean;
  return n;
}

Node enumeration(std::vector<std::string> values) {
  Node n;
  n.type = Type::kString;
  n.enumValues = std::move(values);
  return n;
}

Node array(Node items, int64_t maxItems) {
  Node n;
  n.type = Type::kArray;
  n.items = std::make_shared<Node>(std::move(items));
  n.maxItems = maxItems;
  return n;
}

Node object(std::vector<std::pair<std::string, Node>> properties, std::vector<std::string> required = {}) {
  Node n;
  n.type = Type::kObject;
  n.properties = std::move(properties);
  n.required = std::move(required);
  return n;
}

Node withDefault(Node n, json value) {
  n.defaultValue = std::move(value);
  return n;
}

Node withPattern(Node n, const char* pattern, bool (*check)(std::string_view)) {
  n.pattern = pattern;
  n.patternCheck = check;
  return n;
}

Node withRule(Node n, Rule rule) {
  n.rules.push_back(std::move(rule));
  return n;
}

const char* const kDurationMessage =
    "must be a duration such as 500ms, 30s, 10m or 1h30m: numbers with a unit (ns, us, ms, s, m, h) and no sign";

Node optionalDuration() {
  Node n = str(64);
  n.rules.push_back(Rule{kDurationMessage, "", [](const json& self) { return durationOf(self).has_value(); }});
  return n;
}

Node duration(const char* defaultValue) {
  Node n = optionalDuration();
  n.defaultValue = defaultValue;
  return n;
}

// A rule on a duration field that only applies once the syntax rule holds, as the CRD's
// `!self.matches(...) || ...` guard does, so one mistake yields one message.
Rule durationBound(std::string message, std::function<bool(std::chrono::nanoseconds)> ok) {
  return Rule{std::move(message), "", [ok = std::move(ok)](const json& self) {
                auto d = durationOf(self);
                return !d || ok(*d);
              }};
}

Node envName() {
  return withRule(str(128),
                  Rule{"must be an environment variable name: letters, digits and _, not starting with a digit", "",
                       [](const json& self) { return !self.is_string() || isEnvName(self.get<std::string>()); }});
}

Node labelValue() {
  return withPattern(str(63, "a label value: letters, digits, '-', '_' and '.', at most 63"), kLabelValuePattern,
                     isLabelValue);
}

Node buildSelector() {
  Node matchLabels;
  matchLabels.type = Type::kStringMap;
  matchLabels.items = std::make_shared<Node>(labelValue());
  matchLabels.maxProperties = 64;
  matchLabels.rules.push_back(
      Rule{"every matchLabels key must be a label key such as app or app.kubernetes.io/name", "", [](const json& self) {
             for (auto it = self.begin(); it != self.end(); ++it) {
               if (it.key().size() > 317 || !isLabelKey(it.key())) return false;
             }
             return true;
           }});

  Node values = array(labelValue(), 64);
  Node requirement = object(
      {
          {"key",
           withPattern(str(317, "a label key such as app or app.kubernetes.io/name"), kLabelKeyPattern, isLabelKey)},
          {"operator", enumeration({"In", "NotIn", "Exists", "DoesNotExist"})},
          {"values", values},
      },
      {"key", "operator"});
  requirement.rules.push_back(
      Rule{"values must be non-empty when operator is In or NotIn; list the label values to match", ".values",
           [](const json& self) {
             auto op = self.value("operator", "");
             if (op != "In" && op != "NotIn") return true;
             auto it = self.find("values");
             return it != self.end() && it->is_array() && !it->empty();
           }});
  requirement.rules.push_back(Rule{"values must be empty when operator is Exists or DoesNotExist; remove values",
                                   ".values", [](const json& self) {
                                     auto op = self.value("operator", "");
                                     if (op != "Exists" && op != "DoesNotExist") return true;
                                     auto it = self.find("values");
                                     return it == self.end() || !it->is_array() || it->empty();
                                   }});
  return object({
      {"matchLabels", matchLabels},
      {"matchExpressions", array(requirement, 32)},
  });
}

Node buildPool() {
  Node pool = object(
      {
          {"maxSize", integer(1, 10000, "set the connections one process's pool may open, 1..10000")},
          {"minIdle", withDefault(integer(0, 10000, "set 0..maxSize idle connections to keep open"), 0)},
          {"acquireTimeout", duration("30s")},
          {"idleTimeout", duration("10m")},
          {"maxLifetime", duration("30m")},
          {"leakDetectionThreshold",
           withRule(duration("0s"),
                    durationBound("leakDetectionThreshold must be 0s (off) or at least 2s; raise it or set 0s",
                                  [](auto d) { return d.count() == 0 || d >= std::chrono::seconds(2); }))},
          {"processesPerPod",
           withDefault(integer(1, 10000, "set the number of processes in one pod that each open their own pool"), 1)},
          {"overheadPerPod",
           withDefault(integer(0, 10000,
                               "set the connections each pod opens outside its pools (migrations, LISTEN, health "
                               "checks), 0..10000"),
                       0)},
          {"idleInTransactionTimeout",
           withRule(optionalDuration(), durationBound("idleInTransactionTimeout must be at least 1s; raise it or "
                                                      "leave it out",
                                                      [](auto d) { return d >= std::chrono::seconds(1); }))},
      },
      {"maxSize"});
  pool.rules.push_back(
      Rule{"minIdle must be <= maxSize; lower minIdle or raise maxSize", ".minIdle", [](const json& self) {
             auto maxSize = intAt(self, "maxSize");
             auto minIdle = intAt(self, "minIdle");
             return !maxSize || !minIdle || *minIdle <= *maxSize;
           }});
  pool.rules.push_back(
      Rule{"maxLifetime must be 0s (unlimited) or longer than idleTimeout; raise maxLifetime or "
           "lower idleTimeout",
           ".maxLifetime", [](const json& self) {
             auto life = durationOf(self.value("maxLifetime", json()));
             auto idle = durationOf(self.value("idleTimeout", json()));
             return !life || !idle || life->count() == 0 || *life > *idle;
           }});
  return pool;
}

Node buildDelivery() {
  Node envNames = object({
      {"maxSize", envName()},
      {"minIdle", envName()},
      {"acquireTimeout", envName()},
      {"idleTimeout", envName()},
      {"maxLifetime", envName()},
      {"leakDetectionThreshold", envName()},
      {"applicationName", envName()},
      {"idleInTransactionTimeout", envName()},
  });
  Node appName = withDefault(str(253), "{namespace}/{name}");
  appName.rules.push_back(Rule{
      "applicationName may use only the placeholders {namespace} and {name}; remove other "
      "braces",
      "", [](const json& self) { return !self.is_string() || isApplicationNameTemplate(self.get<std::string>()); }});
  return withDefault(object({
                         {"method", withDefault(enumeration({"Env", "ConfigMap"}), "Env")},
                         {"envNames", envNames},
                         {"applicationName", appName},
                     }),
                     json::object());
}

Node buildDatabase() {
  Node db = object(
      {
          {"name",
           [] {
             Node n = str(253, "name the database; every policy naming it shares one budget");
             n.minLength = 1;
             return n;
           }()},
          {"maxConnections", integer(1, kPostgresMaxConnections, "set the server's max_connections, 1..262143")},
          {"reservedConnections",
           withDefault(integer(0, kPostgresMaxConnections, "set the connections kept free for admins, >= 0"), 3)},
      },
      {"name"});
  db.rules.push_back(
      Rule{"reservedConnections must be < maxConnections; lower reservedConnections or raise "
           "maxConnections",
           ".reservedConnections", [](const json& self) {
             auto maxConn = intAt(self, "maxConnections");
             auto reserved = intAt(self, "reservedConnections");
             return !maxConn || !reserved || *reserved < *maxConn;
           }});
  return db;
}

Node secretName(const char* hint) { return withPattern(str(253, hint), kDnsSubdomainPattern, isDnsSubdomain); }

Node buildUsage() {
  Node credentials = object(
      {
          {"name", secretName("name the Secret holding the monitoring role's credentials")},
          {"usernameKey", withDefault(str(253), "username")},
          {"passwordKey", withDefault(str(253), "password")},
      },
      {"name"});
  Node ca = object(
      {
          {"name", secretName("name the Secret holding the CA certificate")},
          {"key", withDefault(str(253), "ca.crt")},
      },
      {"name"});
  Node host = withPattern(str(253, "set one PostgreSQL server: a host name or an IP address, without commas or spaces"),
                          kHostPattern, isHost);
  host.minLength = 1;
  Node database = str(63, "set the database to connect to");
  database.minLength = 1;
  Node postgres = object(
      {
          {"host", host},
          {"port", withDefault(integer(1, 65535, "set a TCP port, 1..65535"), 5432)},
          {"database", database},
          {"sslMode", withDefault(enumeration({"disable", "require", "verify-ca", "verify-full"}), "verify-full")},
          {"credentialsSecretRef", credentials},
          {"caSecretRef", ca},
      },
      {"host", "database", "credentialsSecretRef"});
  Node url = str(2048, "set the Prometheus base URL, such as http://prometheus.monitoring:9090");
  url.rules.push_back(Rule{"url must be an http:// or https:// URL such as http://prometheus.monitoring:9090", "",
                           [](const json& self) { return !self.is_string() || isHttpUrl(self.get<std::string>()); }});
  Node prometheus = object(
      {
          {"url", url},
          {"connectionsQuery", str(4096)},
          {"pendingQuery", str(4096)},
      },
      {"url"});
  Node thresholds =
      withDefault(object({
                      {"saturationPercent", withDefault(integer(1, 100, "set a percentage, 1..100"), 90)},
                      {"idleInTransaction",
                       withRule(duration("60s"), durationBound("idleInTransaction must be at least 1s",
                                                               [](auto d) { return d >= std::chrono::seconds(1); }))},
                  }),
                  json::object());
  Node terminateLeaked = object({
      {"enabled", withDefault(boolean(), false)},
      {"olderThan", withRule(optionalDuration(), durationBound("olderThan must be at least 1s",
                                                               [](auto d) { return d >= std::chrono::seconds(1); }))},
      {"maxPerCheck", withDefault(integer(1, 100, "set the sessions one check may end, 1..100"), 5)},
  });
  Node actions = object({{"terminateLeaked", terminateLeaked}});
  Node usage = object({
      {"interval", withRule(duration("30s"), durationBound("interval must be at least 5s; checking more often "
                                                           "loads the database",
                                                           [](auto d) { return d >= std::chrono::seconds(5); }))},
      {"postgres", postgres},
      {"prometheus", prometheus},
      {"thresholds", thresholds},
      {"actions", actions},
  });
  usage.rules.push_back(Rule{
      "actions.terminateLeaked.olderThan must be at least thresholds.idleInTransaction (a session is ended only once "
      "it counts as leaked); raise olderThan or lower thresholds.idleInTransaction",
      ".actions.terminateLeaked.olderThan", [](const json& self) {
        auto a = self.find("actions");
        if (a == self.end() || !a->is_object()) return true;
        auto t = a->find("terminateLeaked");
        if (t == a->end() || !t->is_object() || !t->contains("olderThan")) return true;
        auto th = self.find("thresholds");
        if (th == self.end() || !th->is_object() || !th->contains("idleInTransaction")) return true;
        auto older = durationOf((*t)["olderThan"]);
        auto threshold = durationOf((*th)["idleInTransaction"]);
        return !older || !threshold || *older >= *threshold;
      }});
  return withDefault(usage, json::object());
}

Node buildSpec() {
  Node kinds =
      withDefault(array(enumeration({"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Rollout"}), 6),
                  json::array({"Deployment", "StatefulSet"}));
  kinds.minItems = 1;
  kinds.setList = true;
  kinds.hint =
      "list some of Deployment, StatefulSet, DaemonSet, Job, CronJob and Rollout, or leave kinds out for "
      "Deployment and StatefulSet";
  Node containers =
      array(withPattern(str(63, "use a container name from the pod template"), kDnsLabelPattern, isDnsLabel), 32);
  containers.setList = true;
  return object(
      {
          {"selector", buildSelector()},
          {"kinds", kinds},
          {"containers", containers},
          {"mode", withDefault(enumeration({"Enforce", "Audit"}), "Enforce")},
          {"priority", withDefault(integer(kInt32Min, kInt32Max, "use a 32-bit integer"), 0)},
          {"suspend", withDefault(boolean(), false)},
          {"pool", buildPool()},
          {"profile", withDefault(enumeration({"SpringHikari", "GoSQL", "Pgxpool", "SQLAlchemy", "NodePostgres",
                                               "PgBouncer", "Generic"}),
                                  "Generic")},
          {"delivery", buildDelivery()},
          {"rollout", withDefault(object({{"restartOnChange", withDefault(boolean(), true)}}), json::object())},
          {"database", buildDatabase()},
          {"budget", withDefault(object({
                                     {"onExceeded", withDefault(enumeration({"Warn", "Clamp"}), "Warn")},
                                     {"weight", withDefault(integer(1, kInt32Max, "use a weight of 1 or more"), 1)},
                                     {"terminatingPods", withDefault(enumeration({"Ignore", "Count"}), "Ignore")},
                                 }),
                                 json::object())},
          {"usage", buildUsage()},
      },
      {"selector", "pool", "database"});
}

// A ClusterConnectionPoolPolicy's spec: a ConnectionPoolPolicy's, plus the namespaces it may govern.
Node buildClusterPolicySpec() {
  Node n = buildSpec();
  n.properties.insert(n.properties.begin(), {"namespaceSelector", buildSelector()});
  n.required.insert(n.required.begin(), "namespaceSelector");
  return n;
}

Node buildAllocations() {
  Node allocation = object(
      {
          {"name",
           withPattern(str(63, "name the allocation with a DNS label such as team-a"), kDnsLabelPattern, isDnsLabel)},
          {"namespaceSelector", buildSelector()},
          {"maxConnections",
           integer(1, kPostgresMaxConnections, "set the connections this allocation's namespaces may use, >= 1")},
      },
      {"name", "namespaceSelector", "maxConnections"});
  Node list = array(allocation, 64);
  list.mapListKey = "name";
  return list;
}

Node buildBudgetSpec() {
  Node b = object({
      {"maxConnections",
       integer(1, kPostgresMaxConnections, "set the server's max_connections, 1..262143; it wins over policies'")},
      {"reservedConnections",
       integer(0, kPostgresMaxConnections, "set the connections kept free for admins, >= 0; it wins over policies'")},
      {"allocations", buildAllocations()},
      {"ceilings",
       withDefault(object({
                       {"maxSize", integer(1, 10000, "set the most connections one pool may open, 1..10000")},
                       {"requireLeakDetection", withDefault(boolean(), false)},
                   }),
                   json::object())},
      {"admission",
       withDefault(object({{"mode", withDefault(enumeration({"None", "Warn", "Deny"}), "None")}}), json::object())},
      {"usage", buildUsage()},
  });
  b.rules.push_back(
      Rule{"reservedConnections must be < maxConnections; lower reservedConnections or raise maxConnections",
           ".reservedConnections", [](const json& self) {
             auto max = intAt(self, "maxConnections");
             auto reserved = intAt(self, "reservedConnections");
             return !max || !reserved || *reserved < *max;
           }});
  return b;
}

}  // namespace

const Node& spec() {
  static const Node kSpec = buildSpec();
  return kSpec;
}

const Node& clusterPolicySpec() {
  static const Node kSpec = buildClusterPolicySpec();
  return kSpec;
}

const Node& budgetSpec() {
  static const Node kSpec = buildBudgetSpec();
  return kSpec;
}

}  // namespace poolguard::policy::schema

namespace poolguard::policy {
namespace {

using schema::Node;
using schema::Type;

std::string child(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }
std::string mapKey(const std::string& path, const std::string& key) { return path + "[" + key + "]"; }
std::string index(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

std::string show(const json& v) {
  std::string s = v.is_structured() ? (v.is_object() ? "\"object\"" : "\"array\"")
                                    : v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

bool hasType(const json& v, Type t) {
  switch (t) {
    case Type::kObject:
    case Type::kStringMap:
      return v.is_object();
    case Type::kArray:
      return v.is_array();
    case Type::kString:
      return v.is_string();
    case Type::kInteger:
      return v.is_number_integer();
    case Type::kBoolean:
      return v.is_boolean();
  }
  return false;
}

// Integers compared without overflow, whatever their JSON width.
bool below(const json& v, int64_t bound) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX) && v.get<int64_t>() < bound;
  return v.get<int64_t>() < bound;
}
bool above(const json& v, int64_t bound) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX) || v.get<int64_t>() > bound;
  return v.get<int64_t>() > bound;
}

std::string withHint(std::string message, const Node& n) {
  if (!n.hint.empty()) message += "; " + n.hint;
  return message;
}

std::string joinQuoted(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "\"" : ", \"") + v + "\"";
  return out;
}

class Checker {
 public:
  std::vector<FieldError> errors;
  // Errors after which admission skips the CEL rules: wrong types, and sizes beyond maxLength/maxItems (the
  // rules' cost estimates assume those bounds hold).
  bool blocking = false;

  void add(std::string field, std::string message) { errors.push_back({std::move(field), std::move(message)}); }

  void structure(const json& v, const Node& n, const std::string& path) {
    if (!hasType(v, n.type)) {
      blocking = true;
      add(path, "Invalid value: " + show(v) + ": must be of type " + schema::toString(n.type));
      return;
    }
    switch (n.type) {
      case Type::kObject:
        object(v, n, path);
        break;
      case Type::kStringMap:
        if (n.maxProperties && static_cast<int64_t>(v.size()) > *n.maxProperties) {
          blocking = true;
          add(path, "Too many: " + std::to_string(v.size()) + ": must have at most " +
                        std::to_string(*n.maxProperties) + " items");
        }
        for (auto it = v.begin(); it != v.end(); ++it) {
          if (!it->is_null()) structure(*it, *n.items, mapKey(path, it.key()));
        }
        break;
      case Type::kArray: {
        if (n.minItems && static_cast<int64_t>(v.size()) < *n.minItems) {
          add(path, withHint("Invalid value: " + std::to_string(v.size()) + ": should have at least " +
                                 std::to_string(*n.minItems) + " items",
                             n));
        }
        if (n.maxItems && static_cast<int64_t>(v.size()) > *n.maxItems) {
          blocking = true;
          add(path, "Too many: " + std::to_string(v.size()) + ": must have at most " + std::to_string(*n.maxItems) +
                        " items");
        }
        std::set<std::string> seen;
        for (size_t i = 0; i < v.size(); ++i) {
          structure(v[i], *n.items, index(path, i));
          if (n.setList && !seen.insert(v[i].dump(-1, ' ', false, json::error_handler_t::replace)).second) {
            add(index(path, i), "Duplicate value: " + show(v[i]) + "; list each value once");
          }
          if (!n.mapListKey.empty() && v[i].is_object()) {
            auto key = v[i].find(n.mapListKey);
            if (key != v[i].end() && key->is_string() && !seen.insert(key->get<std::string>()).second) {
              add(index(path, i), "Duplicate value: {\"" + n.mapListKey + "\":" + show(*key) +
                                      "}; give each item its own " + n.mapListKey);
            }
          }
        }
        break;
      }
      case Type::kString:
        scalarString(v.get<std::string>(), v, n, path);
        break;
      case Type::kInteger:
        if (n.minimum && below(v, *n.minimum)) {
          add(path, withHint("Invalid value: " + show(v) + ": should be greater than or equal to " +
                                 std::to_string(*n.minimum),
                             n));
        }
        if (n.maximum && above(v, *n.maximum)) {
          add(path,
              withHint("Invalid value: " + show(v) + ": should be less than or equal to " + std::to_string(*n.maximum),
                       n));
        }
        break;
      case Type::kBoolean:
        break;
    }
  }

  void object(const json& v, const Node& n, const std::string& path) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const Node* prop = n.property(it.key());
      if (prop == nullptr) {
        std::string allowed;
        for (const auto& [name, unused] : n.properties) allowed += (allowed.empty() ? "" : ", ") + name;
        add(child(path, it.key()),
            "unknown field \"" + child(path, it.key()) + "\"; fields allowed in " + path + ": " + allowed);
        continue;
      }
      // The API server prunes nulls before defaulting, so a null is the same as leaving the field out.
      if (!it->is_null()) structure(*it, *prop, child(path, it.key()));
    }
    for (const auto& name : n.required) {
      auto it = v.find(name);
      if (it == v.end() || it->is_null()) {
        const Node* prop = n.property(name);
        add(child(path, name), withHint("Required value", *prop));
      }
    }
  }

  void scalarString(const std::string& s, const json& v, const Node& n, const std::string& path) {
    if (!n.enumValues.empty()) {
      if (std::find(n.enumValues.begin(), n.enumValues.end(), s) == n.enumValues.end()) {
        add(path, "Unsupported value: " + show(v) + ": supported values: " + joinQuoted(n.enumValues));
      }
      return;
    }
    if (n.minLength && static_cast<int64_t>(s.size()) < *n.minLength) {
      add(path,
          withHint("Invalid value: " + show(v) + ": should be at least " + std::to_string(*n.minLength) + " chars long",
                   n));
    }
    if (n.maxLength && static_cast<int64_t>(s.size()) > *n.maxLength) {
      blocking = true;
      add(path, "Too long: may not be more than " + std::to_string(*n.maxLength) + " bytes");
      return;  // patterns are not run on oversized input
    }
    if (!n.pattern.empty() && n.patternCheck != nullptr && !n.patternCheck(s)) {
      add(path, withHint("Invalid value: " + show(v) + ": should match '" + n.pattern + "'", n));
    }
  }

  void rules(const json& v, const Node& n, const std::string& path) {
    if (!hasType(v, n.type)) return;
    for (const auto& rule : n.rules) {
      if (rule.holds(v)) continue;
      std::string field = path;
      json shown = v;
      if (!rule.fieldPath.empty()) {
        std::string key = rule.fieldPath.substr(1);
        field = child(path, key);
        shown = v.value(key, json());
      }
      add(field, "Invalid value: " + show(shown) + ": " + rule.message);
    }
    if (n.type == Type::kObject) {
      for (const auto& [name, prop] : n.properties) {
        auto it = v.find(name);
        if (it != v.end() && !it->is_null()) rules(*it, prop, child(path, name));
      }
    } else if (n.type == Type::kArray) {
      for (size_t i = 0; i < v.size(); ++i) rules(v[i], *n.items, index(path, i));
    }
  }
};

void defaults(json& v, const Node& n) {
  if (n.type == Type::kObject && v.is_object()) {
    for (const auto& [name, prop] : n.properties) {
      auto it = v.find(name);
      if (it != v.end() && it->is_null()) {
        v.erase(it);
        it = v.end();
      }
      if (it == v.end()) {
        if (!prop.defaultValue) continue;
        v[name] = *prop.defaultValue;
      }
      defaults(v[name], prop);
    }
  } else if (n.type == Type::kArray && v.is_array()) {
    for (auto& item : v) defaults(item, *n.items);
  }
}

const char* const kSubdomainMessage =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const char* const kLabelMessage =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end "
    "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

void checkMetadata(const json& obj, Checker& c, const std::string& explainName) {
  auto it = obj.find("metadata");
  if (it == obj.end() || it->is_null()) {
    c.add("metadata.name", "Required value: name or generateName is required");
    return;
  }
  if (!it->is_object()) {
    c.blocking = true;
    c.add("metadata", "Invalid value: " + show(*it) + ": must be of type object");
    return;
  }
  static const std::set<std::string> kAllowed{"name",
                                              "generateName",
                                              "namespace",
                                              "selfLink",
                                              "uid",
                                              "resourceVersion",
                                              "generation",
                                              "creationTimestamp",
                                              "deletionTimestamp",
                                              "deletionGracePeriodSeconds",
                                              "labels",
                                              "annotations",
                                              "ownerReferences",
                                              "finalizers",
                                              "managedFields"};
  const json& meta = *it;
  for (auto m = meta.begin(); m != meta.end(); ++m) {
    if (!kAllowed.count(m.key())) {
      c.add("metadata." + m.key(), "unknown field \"metadata." + m.key() + "\"; see `kubectl explain " + explainName +
                                       ".metadata` for the fields of ObjectMeta");
    }
  }
  auto name = meta.find("name");
  bool hasName = name != meta.end() && !name->is_null();
  bool hasGenerateName = meta.contains("generateName") && !meta["generateName"].is_null();
  if (!hasName && !hasGenerateName) {
    c.add("metadata.name", "Required value: name or generateName is required");
  } else if (hasName) {
    if (!name->is_string()) {
      c.blocking = true;
      c.add("metadata.name", "Invalid value: " + show(*name) + ": must be of type string");
    } else {
      const auto& s = name->get_ref<const std::string&>();
      if (s.size() > 253) {
        c.add("metadata.name", "Invalid value: " + show(*name) + ": must be no more than 253 characters");
      } else if (!schema::isDnsSubdomain(s)) {
        c.add("metadata.name", "Invalid value: " + show(*name) + ": " + kSubdomainMessage);
      }
    }
  }
  auto ns = meta.find("namespace");
  if (ns != meta.end() && !ns->is_null()) {
    if (!ns->is_string()) {
      c.blocking = true;
      c.add("metadata.namespace", "Invalid value: " + show(*ns) + ": must be of type string");
    } else if (!ns->get<std::string>().empty() &&
               (ns->get<std::string>().size() > 63 || !schema::isDnsLabel(ns->get<std::string>()))) {
      c.add("metadata.namespace", "Invalid value: " + show(*ns) + ": " + kLabelMessage);
    }
  }
  for (const char* key : {"labels", "annotations"}) {
    auto m = meta.find(key);
    if (m == meta.end() || m->is_null()) continue;
    std::string path = std::string("metadata.") + key;
    if (!m->is_object()) {
      c.blocking = true;
      c.add(path, "Invalid value: " + show(*m) + ": must be of type object");
      continue;
    }
    for (auto e = m->begin(); e != m->end(); ++e) {
      if (!e->is_string()) {
        c.blocking = true;
        c.add(mapKey(path, e.key()), "Invalid value: " + show(*e) + ": must be of type string");
      }
    }
  }
}

bool pathLess(const FieldError& a, const FieldError& b) { return a.field < b.field; }

// What validation needs to know of a kind: its name, its spec's schema, and what a missing spec means.
struct KindSchema {
  const char* kind;
  const char* explainName;  // for `kubectl explain`
  const Node& (*spec)();
  const char* missingSpec;  // the message for a missing spec; nullptr: the spec is optional
};

const KindSchema kPolicyKind{"ConnectionPoolPolicy", "connectionpoolpolicy", &schema::spec,
                             "Required value: a ConnectionPoolPolicy needs a spec with at least selector, "
                             "pool.maxSize and database.name"};
const KindSchema kClusterPolicyKind{
    "ClusterConnectionPoolPolicy", "clusterconnectionpoolpolicy", &schema::clusterPolicySpec,
    "Required value: a ClusterConnectionPoolPolicy needs a spec with at least namespaceSelector, selector, "
    "pool.maxSize and database.name"};
// The policy kind an object says it is: a ClusterConnectionPoolPolicy, else a ConnectionPoolPolicy (whose checks
// then report any other kind).
const KindSchema& policyKindOf(const json& obj) {
  if (obj.is_object() && obj.value("kind", json()) == kClusterPolicyKind.kind) return kClusterPolicyKind;
  return kPolicyKind;
}
const KindSchema kBudgetKind{"ClusterConnectionBudget", "clusterconnectionbudget", &schema::budgetSpec, nullptr};

json defaultsFor(const json& obj, const KindSchema& k) {
  json out = obj;
  if (out.is_object()) {
    auto spec = out.find("spec");
    if (spec != out.end() && spec->is_object()) defaults(*spec, k.spec());
  }
  return out;
}

std::vector<FieldError> validateKind(const json& obj, const KindSchema& k) {
  const std::string kind = k.kind;
  Checker c;
  if (!obj.is_object()) {
    c.add("", "Invalid value: " + show(obj) + ": a " + kind + " must be an object");
    return c.errors;
  }
  static const std::set<std::string> kTopLevel{"apiVersion", "kind", "metadata", "spec", "status"};
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (!kTopLevel.count(it.key())) {
      c.add(it.key(), "unknown field \"" + it.key() +
                          "\"; fields allowed at the top level: apiVersion, kind, "
                          "metadata, spec, status");
    }
  }
  auto apiVersion = obj.find("apiVersion");
  if (apiVersion == obj.end() || apiVersion->is_null()) {
    c.add("apiVersion", "Required value: set apiVersion: poolguard.dev/v1alpha1");
  } else if (*apiVersion != "poolguard.dev/v1alpha1") {
    c.add("apiVersion", "Unsupported value: " + show(*apiVersion) + ": supported values: \"poolguard.dev/v1alpha1\"");
  }
  auto kindField = obj.find("kind");
  if (kindField == obj.end() || kindField->is_null()) {
    c.add("kind", "Required value: set kind: " + kind);
  } else if (*kindField != kind) {
    c.add("kind", "Unsupported value: " + show(*kindField) + ": supported values: \"" + kind + "\"");
  }
  checkMetadata(obj, c, k.explainName);
  auto spec = obj.find("spec");
  if (spec == obj.end() || spec->is_null()) {
    if (k.missingSpec) c.add("spec", k.missingSpec);
  } else {
    c.structure(*spec, k.spec(), "spec");
  }
  std::stable_sort(c.errors.begin(), c.errors.end(), pathLess);
  if (c.blocking) {
    // Same behaviour as admission: rules are not evaluated on an object with values of the wrong type or size.
    c.add("",
          "some validation rules were not checked because the object was invalid; correct the existing errors "
          "to complete validation");
  } else if (spec != obj.end() && spec->is_object()) {
    json defaulted = defaultsFor(obj, k);
    Checker rules;
    rules.rules(defaulted["spec"], k.spec(), "spec");
    std::stable_sort(rules.errors.begin(), rules.errors.end(), pathLess);
    c.errors.insert(c.errors.end(), rules.errors.begin(), rules.errors.end());
    std::stable_sort(c.errors.begin(), c.errors.end(), pathLess);
  }
  return c.errors;
}

}  // namespace

json applyDefaults(const json& obj) { return defaultsFor(obj, policyKindOf(obj)); }
json applyBudgetDefaults(const json& obj) { return defaultsFor(obj, kBudgetKind); }

std::vector<FieldError> validate(const json& obj) { return validateKind(obj, policyKindOf(obj)); }
std::vector<FieldError> validateBudget(const json& obj) { return validateKind(obj, kBudgetKind); }

}  // namespace poolguard::policy
