// The shipped RBAC is exactly what the operator needs. poolguard runs as its own ServiceAccount
// (system:serviceaccount:poolguard-system:poolguard) with nothing but the roles deploy/rbac installs, with leader
// election, through a scenario that uses every feature: Env and ConfigMap delivery, an HPA, Audit drift, a usage
// check that reads a Secret and PostgreSQL, Events, and a policy deletion. The API server's audit log then shows
// that no request of the operator was forbidden, and that every verb x resource granted by the ClusterRole and
// the leader-election Role was used at least once.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/cluster.h"
#include "support/operator_process.h"

namespace poolguard::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kSystemNamespace = "poolguard-system";
constexpr const char* kServiceAccount = "poolguard";
constexpr const char* kOperatorUser = "system:serviceaccount:poolguard-system:poolguard";
constexpr const char* kClusterRole = "poolguard-manager";
constexpr const char* kLeaderElectionRole = "poolguard-leader-election";

json getJson(const std::string& ns, const std::string& what) {
  auto r = cluster().kubectl({"-n", ns, "get", what, "-o", "json"});
  if (r.exitCode != 0) return json();
  return json::parse(r.out, nullptr, false);
}

void applyYaml(const std::string& ns, const std::string& yaml) {
  auto r = cluster().kubectl({"-n", ns, "apply", "-f", "-"}, yaml);
  ASSERT_EQ(r.exitCode, 0) << r.err << "\n" << yaml;
}

json condition(const json& policy, const std::string& type) {
  if (!policy.is_object() || !policy.contains("status") || !policy["status"].contains("conditions")) return json();
  for (const auto& c : policy["status"]["conditions"]) {
    if (c.value("type", "") == type) return c;
  }
  return json();
}

bool conditionIs(const std::string& ns, const std::string& policy, const std::string& type, const std::string& status,
                 const std::string& reason = "") {
  json p = getJson(ns, "cpol/" + policy);
  json c = condition(p, type);
  return !c.is_null() && c.value("status", "") == status && (reason.empty() || c.value("reason", "") == reason) &&
         p["status"].value("observedGeneration", 0) == p["metadata"].value("generation", -1);
}

const json* container(const json& workload, const std::string& name) {
  if (!workload.is_object()) return nullptr;
  for (const auto& c : workload["spec"]["template"]["spec"]["containers"]) {
    if (c.value("name", "") == name) return &c;
  }
  return nullptr;
}

std::string envValue(const json& workload, const std::string& containerName, const std::string& var) {
  const json* c = container(workload, containerName);
  if (c == nullptr || !c->contains("env")) return "";
  for (const auto& e : (*c)["env"]) {
    if (e.value("name", "") == var) return e.value("value", "");
  }
  return "";
}

bool hasConfigMapRef(const json& workload, const std::string& containerName, const std::string& configMap) {
  const json* c = container(workload, containerName);
  if (c == nullptr || !c->contains("envFrom")) return false;
  for (const auto& s : (*c)["envFrom"]) {
    if (s.contains("configMapRef") && s["configMapRef"].value("name", "") == configMap) return true;
  }
  return false;
}

std::string deploymentYaml(const std::string& name) {
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " + name + ", labels: {app: " + name +
         "}}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: " + name +
         "}}\n  template:\n    metadata: {labels: {app: " + name +
         "}}\n    spec:\n      containers:\n      - name: app\n        image: example.invalid/app:1\n"
         "        env:\n        - {name: KEEP_ME, value: mine}\n";
}

std::string hpaYaml(const std::string& target, int maxReplicas) {
  return "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: " + target +
         "}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: " + target +
         "}\n  minReplicas: 1\n  maxReplicas: " + std::to_string(maxReplicas) +
         "\n  metrics:\n  - type: Resource\n    resource: {name: cpu, target: {type: Utilization, "
         "averageUtilization: 80}}\n";
}

std::string policyYaml(const std::string& name, const std::string& app, int maxSize, const std::string& database,
                       const std::string& extra = "") {
  return "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata: {name: " + name +
         "}\nspec:\n  selector: {matchLabels: {app: " + app +
         "}}\n  containers: [app]\n  pool: {maxSize: " + std::to_string(maxSize) + "}\n  database: {name: " + database +
         ", maxConnections: 100}\n" + extra;
}

std::string tail(const std::string& s, int lines) {
  size_t pos = s.size();
  for (int i = 0; i < lines && pos > 0; ++i) pos = s.rfind('\n', pos - 1);
  return pos == std::string::npos ? s : s.substr(pos);
}

// `poolguard run` as the ServiceAccount. OperatorProcess always passes the admin kubeconfig (and --kubeconfig
// may be given once), so this test starts the binary itself.
class ServiceAccountOperator {
 public:
  ServiceAccountOperator(std::string kubeconfig, std::string leaseName)
      : kubeconfig_(std::move(kubeconfig)), leaseName_(std::move(leaseName)) {}
  ~ServiceAccountOperator() {
    if (pid_ > 0) stop(SIGKILL);
  }

  void start() {
    metricsPort_ = freePort();
    healthPort_ = freePort();
    logPath_ = cluster().dir + "/logs/poolguard-rbac-" + std::to_string(getpid()) + ".log";
    std::vector<std::string> argv{poolguardBinary(),
                                  "run",
                                  "--kubeconfig=" + kubeconfig_,
                                  "--leader-elect",
                                  "--leader-election-namespace=" + std::string(kSystemNamespace),
                                  "--leader-election-id=" + leaseName_,
                                  "--metrics-bind-address=127.0.0.1:" + std::to_string(metricsPort_),
                                  "--health-probe-bind-address=127.0.0.1:" + std::to_string(healthPort_),
                                  "--log-format=text",
                                  "--log-level=debug"};
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      // KUBECONFIG of the test environment must not matter: --kubeconfig wins, and nothing else is read.
      unsetenv("KUBECONFIG");
      int fd = open(logPath_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }

  bool running() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

  bool waitReady(int seconds = 90) {
    std::string url = "http://127.0.0.1:" + std::to_string(healthPort_) + "/readyz";
    return eventually(
               [&] {
                 if (!running()) return true;
                 return run({"curl", "-sf", "-o", "/dev/null", url}).exitCode == 0;
               },
               std::chrono::seconds(seconds)) &&
           running();
  }

  // Sends sig and returns the exit status (-1 when it had to be killed).
  int stop(int sig = SIGTERM) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    for (int i = 0; i < 600; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(50ms);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return -1;
  }

  std::string logs() const {
    std::ifstream in(logPath_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string metrics() const {
    auto r = run({"curl", "-sf", "http://127.0.0.1:" + std::to_string(metricsPort_) + "/metrics"});
    return r.exitCode == 0 ? r.out : "";
  }

 private:
  std::string kubeconfig_;
  std::string leaseName_;
  pid_t pid_ = -1;
  int metricsPort_ = 0;
  int healthPort_ = 0;
  std::string logPath_;
};

// Every audit event after `sinceLine` (any stage but RequestReceived, which the audit policy omits).
std::vector<json> auditEvents(size_t sinceLine) {
  std::vector<json> out;
  std::ifstream in(cluster().dir + "/logs/audit.log");
  std::string line;
  for (size_t i = 0; std::getline(in, line); ++i) {
    if (i < sinceLine) continue;
    auto j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

std::string username(const json& event) {
  return event.contains("user") && event["user"].is_object() ? event["user"].value("username", "") : "";
}

int responseCode(const json& event) {
  return event.contains("responseStatus") ? event["responseStatus"].value("code", 0) : 0;
}

// "group/resource[/subresource]" of an audit event; the core group is written "core".
std::string resourceOf(const json& event) {
  if (!event.contains("objectRef")) return "";
  const json& ref = event["objectRef"];
  std::string group = ref.value("apiGroup", "");
  std::string out = (group.empty() ? "core" : group) + "/" + ref.value("resource", "");
  if (!ref.value("subresource", "").empty()) out += "/" + ref.value("subresource", "");
  return out;
}

std::string describe(const json& event) {
  std::string what = event.value("verb", "") + " " + resourceOf(event);
  if (event.contains("objectRef")) {
    what += " " + event["objectRef"].value("namespace", "") + "/" + event["objectRef"].value("name", "");
  }
  what += " -> " + std::to_string(responseCode(event));
  if (event.contains("responseStatus")) what += " " + event["responseStatus"].value("message", "");
  return what;
}

// Requests the operator process made as the ServiceAccount.
std::vector<json> operatorEvents(const std::vector<json>& all) {
  std::vector<json> out;
  for (const auto& e : all) {
    if (username(e) == kOperatorUser && e.value("userAgent", "").rfind("poolguard/", 0) == 0) out.push_back(e);
  }
  return out;
}

std::vector<std::string> forbidden(const std::vector<json>& events) {
  std::set<std::string> out;
  for (const auto& e : events) {
    if (responseCode(e) == 403) out.insert(describe(e));
  }
  return {out.begin(), out.end()};
}

// The granted "group/resource verb" pairs of a role's rules (read back from the cluster, as installed).
std::set<std::string> grants(const json& role) {
  std::set<std::string> out;
  for (const auto& rule : role.value("rules", json::array())) {
    for (const auto& g : rule.value("apiGroups", json::array())) {
      for (const auto& r : rule.value("resources", json::array())) {
        for (const auto& v : rule.value("verbs", json::array())) {
          std::string group = g.get<std::string>();
          out.insert((group.empty() ? "core" : group) + "/" + r.get<std::string>() + " " + v.get<std::string>());
        }
      }
    }
  }
  return out;
}

// The "group/resource verb" pairs the requests used, per role that allowed them (from the RBAC authorizer's
// reason, "RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to ServiceAccount ..."). A server-side
// apply that creates its object is also authorized as "create", so a patch answered 201 uses "create" too.
std::map<std::string, std::set<std::string>> usedByRole(const std::vector<json>& events) {
  std::map<std::string, std::set<std::string>> out;
  for (const auto& e : events) {
    int code = responseCode(e);
    if (code == 403 || !e.contains("objectRef")) continue;
    std::string reason =
        e.contains("annotations") ? e["annotations"].value("authorization.k8s.io/reason", "") : std::string();
    std::vector<std::string> roles;
    for (std::string kind : {"ClusterRole", "Role"}) {
      for (const char* name : {kClusterRole, kLeaderElectionRole}) {
        if (reason.find(" of " + kind + " \"" + name + "\"") != std::string::npos) roles.push_back(kind + " " + name);
      }
    }
    std::vector<std::string> verbs{e.value("verb", "")};
    if (verbs.front() == "patch" && code == 201) verbs.push_back("create");
    for (const auto& role : roles) {
      for (const auto& v : verbs) out[role].insert(resourceOf(e) + " " + v);
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& items, const std::string& sep = "\n  ") {
  std::string out;
  for (const auto& i : items) out += sep + i;
  return out;
}

class RbacE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto r = cluster().kubectl({"apply", "-f", sourceDir() + "/crds/"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    r = cluster().kubectl(
        {"wait", "--for=condition=Established", "--timeout=60s", "crd/connectionpoolpolicies.poolguard.dev"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    // The default install: namespace, ServiceAccount, roles and bindings, the manager Deployment (its pod stays
    // Pending here: there are no nodes) and the metrics Service.
    r = cluster().kubectl({"apply", "-k", sourceDir() + "/deploy/default"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }

  // A kubeconfig for the ServiceAccount: the admin kubeconfig's server and CA, and a fresh token.
  static std::string serviceAccountKubeconfig() {
    auto token = cluster().kubectl({"-n", kSystemNamespace, "create", "token", kServiceAccount, "--duration=1h"});
    EXPECT_EQ(token.exitCode, 0) << token.err;
    std::string t = token.out;
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();

    std::ifstream admin(cluster().kubeconfig);
    std::string line, caLine;
    while (std::getline(admin, line)) {
      auto pos = line.find("certificate-authority");
      if (pos != std::string::npos && caLine.empty()) caLine = line.substr(pos);
    }
    EXPECT_FALSE(caLine.empty()) << "no certificate-authority in " << cluster().kubeconfig;
    std::string path = cluster().dir + "/poolguard-sa-" + std::to_string(getpid()) + ".kubeconfig";
    std::ofstream out(path);
    out << "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: " << cluster().server
        << "\n    " << caLine << "\nusers:\n- name: poolguard\n  user:\n    token: " << t
        << "\ncontexts:\n- name: poolguard\n  context: {cluster: local, user: poolguard, namespace: "
        << kSystemNamespace << "}\ncurrent-context: poolguard\n";
    return path;
  }
};

TEST_F(RbacE2E, TheShippedRolesAreExactlyWhatTheOperatorUses) {
  auto cr = cluster().kubectl({"get", "clusterrole", kClusterRole, "-o", "json"});
  const json clusterRole = json::parse(cr.out, nullptr, false);
  const json leaderRole = getJson(kSystemNamespace, "role/" + std::string(kLeaderElectionRole));
  ASSERT_TRUE(clusterRole.is_object() && leaderRole.is_object()) << "deploy/default did not install the roles";
  const std::string kubeconfig = serviceAccountKubeconfig();
  ASSERT_FALSE(HasFailure());

  const std::string ns = createNamespace("rbac");
  const std::string db = "rbac-" + ns;
  std::string pgRole = "monitor_" + ns;
  for (auto& c : pgRole) c = c == '-' ? '_' : c;
  auto pg = cluster().psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '" + pgRole +
                           "') THEN CREATE ROLE " + pgRole +
                           " LOGIN PASSWORD 'monitor' IN ROLE pg_monitor; END IF; "
                           "END $$");
  ASSERT_EQ(pg.exitCode, 0) << pg.err;
  auto secret = cluster().kubectl({"-n", ns, "create", "secret", "generic", "db-monitor",
                                   "--from-literal=username=" + pgRole, "--from-literal=password=monitor"});
  ASSERT_EQ(secret.exitCode, 0) << secret.err;

  const std::string leaseName =
      "poolguard-rbac-" + std::to_string(getpid()) + "-" +
      std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000007);
  const size_t auditStart = auditLineCount();
  ServiceAccountOperator op(kubeconfig, leaseName);
  op.start();
  ASSERT_TRUE(op.waitReady()) << tail(op.logs(), 40);
  auto dump = [&](const std::string& name) { return getJson(ns, "cpol/" + name).dump(2) + "\n" + tail(op.logs(), 30); };

  {
    SCOPED_TRACE("Env delivery, an HPA, a usage check reading a Secret and PostgreSQL");
    applyYaml(ns, deploymentYaml("web"));
    applyYaml(ns, hpaYaml("web", 2));
    applyYaml(ns, policyYaml("web", "web", 10, db,
                             "  usage:\n    interval: 5s\n    postgres:\n      host: " + cluster().pgHost +
                                 "\n      port: " + std::to_string(cluster().pgPort) +
                                 "\n      database: " + cluster().pgDatabase +
                                 "\n      sslMode: disable\n      credentialsSecretRef: {name: db-monitor}\n"));
    ASSERT_TRUE(eventually([&] { return conditionIs(ns, "web", "Ready", "True"); }, 90s)) << dump("web");
    json d = getJson(ns, "deployment/web");
    EXPECT_EQ(envValue(d, "app", "POOL_MAX_SIZE"), "10");
    EXPECT_EQ(envValue(d, "app", "KEEP_ME"), "mine");
    json p = getJson(ns, "cpol/web");
    // HPA maximum 2 + 25% surge (1) = 3 pods x 10.
    EXPECT_EQ(p["status"]["budget"].value("worstCase", -1), 30);
    EXPECT_EQ(p["status"]["usage"].value("source", ""), "postgres");
    EXPECT_EQ(condition(p, "UsageHealthy").value("reason", ""), "Healthy");
  }
  {
    SCOPED_TRACE("ConfigMap delivery to a StatefulSet");
    applyYaml(ns,
              "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: cache, labels: {app: cache}}\nspec:\n"
              "  replicas: 1\n  serviceName: cache\n  selector: {matchLabels: {app: cache}}\n  template:\n"
              "    metadata: {labels: {app: cache}}\n    spec:\n      containers:\n      - name: app\n"
              "        image: example.invalid/app:1\n");
    applyYaml(ns, policyYaml("cache", "cache", 4, db + "-cache",
                             "  kinds: [StatefulSet]\n  delivery: {method: ConfigMap}\n"));
    ASSERT_TRUE(eventually([&] { return conditionIs(ns, "cache", "Applied", "True", "AllApplied"); }, 60s))
        << dump("cache");
    EXPECT_TRUE(hasConfigMapRef(getJson(ns, "statefulset/cache"), "app", "cache-sts-poolguard"));
    EXPECT_EQ(getJson(ns, "configmap/cache-sts-poolguard")["data"].value("POOL_MAX_SIZE", ""), "4");
  }
  {
    SCOPED_TRACE("Audit reports drift and writes nothing");
    applyYaml(ns, deploymentYaml("audited"));
    applyYaml(ns, policyYaml("audited", "audited", 6, db + "-audit", "  mode: Audit\n"));
    ASSERT_TRUE(eventually([&] { return conditionIs(ns, "audited", "Applied", "False", "Drifted"); }, 60s))
        << dump("audited");
    EXPECT_EQ(envValue(getJson(ns, "deployment/audited"), "app", "POOL_MAX_SIZE"), "");
  }
  {
    SCOPED_TRACE("The budget goes over and back: the repeated Event is aggregated (a patch)");
    applyYaml(ns, hpaYaml("web", 20));
    ASSERT_TRUE(eventually([&] { return conditionIs(ns, "web", "WithinBudget", "False", "BudgetExceeded"); }, 60s))
        << dump("web");
    applyYaml(ns, hpaYaml("web", 2));
    ASSERT_TRUE(eventually([&] { return conditionIs(ns, "web", "WithinBudget", "True", "WithinBudget"); }, 60s))
        << dump("web");
    EXPECT_TRUE(eventually(
        [&] {
          json events = getJson(ns, "events");
          if (!events.is_object()) return false;
          for (const auto& e : events["items"]) {
            if (e["involvedObject"].value("kind", "") == "ConnectionPoolPolicy" &&
                e["involvedObject"].value("name", "") == "web" && e.value("reason", "") == "WithinBudget" &&
                e.value("count", 0) >= 2)
              return true;
          }
          return false;
        },
        30s))
        << getJson(ns, "events").dump(2);
  }
  {
    SCOPED_TRACE("Deleting a policy gives its fields back and deletes its ConfigMap");
    auto del = cluster().kubectl({"-n", ns, "delete", "cpol/cache", "--wait=true", "--timeout=60s"});
    // Not fatal: a forbidden cleanup is reported from the audit log below, with the request that failed.
    EXPECT_EQ(del.exitCode, 0) << del.err << "\n" << tail(op.logs(), 30);
    EXPECT_TRUE(eventually(
        [&] { return !hasConfigMapRef(getJson(ns, "statefulset/cache"), "app", "cache-sts-poolguard"); }, 30s));
    EXPECT_TRUE(eventually(
        [&] {
          return cluster().kubectl({"-n", ns, "get", "configmap/cache-sts-poolguard"}).exitCode != 0;
        },
        30s));
  }

  json lease = getJson(kSystemNamespace, "lease/" + leaseName);
  EXPECT_FALSE(lease.is_null()) << "no Lease " << leaseName;
  std::string metrics = op.metrics();
  EXPECT_EQ(op.stop(SIGTERM), 0) << tail(op.logs(), 30);
  // SIGTERM releases the Lease (an update) so a standby need not wait for it to expire.
  EXPECT_TRUE(eventually(
      [&] {
        json l = getJson(kSystemNamespace, "lease/" + leaseName);
        return l.is_object() && l["spec"].value("holderIdentity", "").empty();
      },
      10s))
      << getJson(kSystemNamespace, "lease/" + leaseName).dump(2);
  cluster().kubectl({"-n", kSystemNamespace, "delete", "lease/" + leaseName, "--ignore-not-found"});

  // The audit reading below must be able to see a forbidden request: the ServiceAccount may get Secrets one by
  // one but never list them.
  auto listSecrets = run({"kubectl", "--kubeconfig=" + kubeconfig, "-n", ns, "get", "secrets"});
  EXPECT_NE(listSecrets.exitCode, 0) << "the ServiceAccount can list Secrets";
  std::vector<json> all;
  ASSERT_TRUE(eventually(
      [&] {
        all = auditEvents(auditStart);
        for (const auto& e : all) {
          if (username(e) == kOperatorUser && e.value("verb", "") == "list" && resourceOf(e) == "core/secrets" &&
              responseCode(e) == 403)
            return true;
        }
        return false;
      },
      10s))
      << "the audit log does not show the forbidden list of Secrets";

  const std::vector<json> requests = operatorEvents(all);
  ASSERT_GT(requests.size(), 20u) << "no requests of " << kOperatorUser << " in the audit log";

  auto denied = forbidden(requests);
  EXPECT_TRUE(denied.empty()) << denied.size() << " requests of the operator were forbidden:" << join(denied)
                              << "\n--- operator log tail:\n"
                              << tail(op.logs(), 40);
  EXPECT_EQ(metrics.find("code=\"403\""), std::string::npos) << "poolguard_api_requests_total counted a 403";

  auto used = usedByRole(requests);
  std::vector<std::string> unused;
  for (const auto& [kind, role] : {std::pair<std::string, json>{"ClusterRole", clusterRole}, {"Role", leaderRole}}) {
    std::string key = kind + " " + role["metadata"].value("name", "");
    for (const auto& grant : grants(role)) {
      if (!used[key].count(grant)) unused.push_back(key + ": " + grant);
    }
  }
  std::vector<std::string> usedList;
  for (const auto& [role, set] : used) {
    for (const auto& u : set) usedList.push_back(role + ": " + u);
  }
  EXPECT_TRUE(unused.empty()) << unused.size()
                              << " rules of the shipped roles were never used by the operator (remove them from "
                                 "deploy/rbac, deploy/rbac-namespaced and charts/poolguard, or exercise them here):"
                              << join(unused) << "\nused:" << join(usedList);
}

}  // namespace
}  // namespace poolguard::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  poolguard::testing::useLocalCluster();
  return RUN_ALL_TESTS();
}
