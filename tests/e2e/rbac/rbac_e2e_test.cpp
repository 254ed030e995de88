// The shipped RBAC is exactly what the operator needs. poolguard runs as its own ServiceAccount
// (system:serviceaccount:poolguard-system:poolguard) with nothing but the roles deploy/rbac installs, with leader
// election, through a scenario that uses every feature: Env and ConfigMap delivery, an HPA, Audit drift, a usage
// check that reads a Secret and PostgreSQL, Events, and a policy deletion. The API server's audit log then shows
// that no request of the operator was forbidden, and that every verb x resource granted by the ClusterRole and
// the leader-election Role was used at least once.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/cluster.h"
#include "support/e2e_helpers.h"
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

const json* container(const json& workload, const std::string& name) {
  if (!workload.is_object()) return nullptr;
  for (const auto& c : workload["spec"]["template"]["spec"]["containers"]) {
    if (c.value("name", "") == name) return &c;
  }
  return nullptr;
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

std::string policyYaml(const std::string& name, const std::string& app, int maxSize, const std::string& database,
                       const std::string& extra = "") {
  return "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata: {name: " + name +
         "}\nspec:\n  selector: {matchLabels: {app: " + app +
         "}}\n  containers: [app]\n  pool: {maxSize: " + std::to_string(maxSize) + "}\n  database: {name: " + database +
         ", maxConnections: 100}\n" + extra;
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
    ASSERT_NO_FATAL_FAILURE(installCrds());
    // The default install: namespace, ServiceAccount, roles and bindings, the manager Deployment (its pod stays
    // Pending here: there are no nodes) and the metrics Service.
    auto r = cluster().kubectl({"apply", "-k", sourceDir() + "/deploy/default"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }

  // A kubeconfig for a ServiceAccount of the system namespace: the admin kubeconfig's server and CA, and a fresh
  // token.
  static std::string serviceAccountKubeconfig(const std::string& serviceAccount = kServiceAccount) {
    auto token = cluster().kubectl({"-n", kSystemNamespace, "create", "token", serviceAccount, "--duration=1h"});
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
    std::string path = cluster().dir + "/" + serviceAccount + "-sa-" + std::to_string(getpid()) + ".kubeconfig";
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
  secret =
      cluster().kubectl({"-n", ns, "annotate", "secret", "db-monitor",
                         "poolguard.dev/allowed-servers=" + cluster().pgHost + ":" + std::to_string(cluster().pgPort)});
  ASSERT_EQ(secret.exitCode, 0) << secret.err;

  const std::string leaseName =
      "poolguard-rbac-" + std::to_string(getpid()) + "-" +
      std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000007);
  // Argo Rollouts' CRD as v1.9 ships it (a stand-in of the same schema for what poolguard reads and writes): its
  // Rollouts are watched and written, and the CRD itself is read once.
  auto crd = cluster().kubectl({"apply", "-f", sourceDir() + "/tests/testdata/argo-rollouts/rollout-crd-merging.yaml"});
  ASSERT_EQ(crd.exitCode, 0) << crd.err;
  ASSERT_EQ(cluster().waitEstablished("crd/rollouts.argoproj.io").exitCode, 0);
  const size_t auditStart = auditLineCount();
  // `poolguard run` as the ServiceAccount, with leader election.
  OperatorProcess op({"--leader-elect", "--leader-election-namespace=" + std::string(kSystemNamespace),
                      "--leader-election-id=" + leaseName},
                     kubeconfig);
  op.start();
  ASSERT_TRUE(op.waitReady(90)) << tail(op.logs(), 40);
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
    EXPECT_EQ(configMapValue(ns, "cache-sts-poolguard", "POOL_MAX_SIZE"), "4");
  }
  {
    SCOPED_TRACE("A DaemonSet, a CronJob and a Rollout");
    applyYaml(ns,
              "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, labels: {kinds: all}}\nspec:\n"
              "  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n"
              "    spec:\n      containers:\n      - {name: app, image: example.invalid/app:1}\n");
    applyYaml(ns,
              "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: report, labels: {kinds: all}}\nspec:\n"
              "  schedule: \"0 0 1 1 *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n"
              "          restartPolicy: Never\n          containers:\n"
              "          - {name: app, image: example.invalid/app:1}\n");
    applyYaml(ns,
              "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: canary, labels: {kinds: all}}\n"
              "spec:\n  replicas: 1\n  selector: {matchLabels: {app: canary}}\n  strategy: {canary: {}}\n"
              "  template:\n    metadata: {labels: {app: canary}}\n    spec:\n      containers:\n"
              "      - {name: app, image: example.invalid/app:1}\n");
    applyYaml(ns,
              "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata: {name: kinds}\nspec:\n"
              "  selector: {matchLabels: {kinds: all}}\n  kinds: [DaemonSet, CronJob, Rollout]\n"
              "  pool: {maxSize: 3}\n  database: {name: " +
                  db + "-kinds, maxConnections: 100}\n");
    ASSERT_TRUE(eventually([&] { return conditionIs(ns, "kinds", "Applied", "True", "AllApplied"); }, 60s))
        << dump("kinds");
    EXPECT_EQ(getJson(ns, "cpol/kinds")["status"]["workloads"].value("applied", -1), 3) << dump("kinds");
    EXPECT_EQ(envValue(getJson(ns, "rollout/canary"), "app", "POOL_MAX_SIZE"), "3");
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
    // Events aggregate by reason and message. Twice over and back gives two identical WithinBudget Events
    // whatever the first one said (on a slow run the policy may first report before it governs the Deployment).
    for (int round = 0; round < 2; ++round) {
      applyYaml(ns, hpaYaml("web", 20));
      ASSERT_TRUE(eventually([&] { return conditionIs(ns, "web", "WithinBudget", "False", "BudgetExceeded"); }, 60s))
          << dump("web");
      applyYaml(ns, hpaYaml("web", 2));
      ASSERT_TRUE(eventually([&] { return conditionIs(ns, "web", "WithinBudget", "True", "WithinBudget"); }, 60s))
          << dump("web");
    }
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
    SCOPED_TRACE("A ClusterConnectionBudget caps the pools of its database and gets its status");
    const std::string budget = db + "-cache";  // named after the database of the policy "cache"
    auto r = cluster().kubectl({"apply", "-f", "-"},
                               "apiVersion: poolguard.dev/v1alpha1\nkind: ClusterConnectionBudget\n"
                               "metadata: {name: " +
                                   budget +
                                   "}\nspec:\n  maxConnections: 50\n  ceilings: {maxSize: 3}\n"
                                   "  admission: {mode: Deny}\n");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_TRUE(eventually([&] { return configMapValue(ns, "cache-sts-poolguard", "POOL_MAX_SIZE") == "3"; }, 60s))
        << dump("cache");
    EXPECT_TRUE(eventually(
        [&] {
          auto b = cluster().kubectl({"get", "ccb", budget, "-o", "jsonpath={.status.maxConnections}"});
          return b.exitCode == 0 && b.out == "50";
        },
        60s))
        << cluster().kubectl({"get", "ccb", budget, "-o", "yaml"}).out;
    // admission.mode Deny: the policy, its binding and its parameters are created; None deletes them.
    const std::string vap = "poolguard-budget-" + budget;
    EXPECT_TRUE(eventually(
        [&] {
          return cluster().kubectl({"get", "validatingadmissionpolicybinding", vap}).exitCode == 0;
        },
        60s))
        << cluster().kubectl({"get", "ccb", budget, "-o", "yaml"}).out << tail(op.logs(), 30);
    r = cluster().kubectl({"patch", "ccb", budget, "--type=merge", "-p", R"({"spec":{"admission":{"mode":"None"}}})"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_TRUE(eventually(
        [&] {
          return cluster().kubectl({"get", "connectionallotment", vap}).exitCode != 0 &&
                 cluster().kubectl({"get", "validatingadmissionpolicy", vap}).exitCode != 0;
        },
        60s))
        << tail(op.logs(), 30);
    cluster().kubectl({"delete", "ccb", budget, "--ignore-not-found"});
  }
  {
    SCOPED_TRACE("A ClusterConnectionPoolPolicy gets its finalizer and its status, and its deletion completes");
    // It selects nothing the namespace's own policies govern: a label no workload carries.
    const std::string name = "rbac-baseline-" + ns;
    auto r =
        cluster().kubectl({"apply", "-f", "-"},
                          "apiVersion: poolguard.dev/v1alpha1\nkind: ClusterConnectionPoolPolicy\nmetadata:\n"
                          "  name: " +
                              name + "\nspec:\n  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: " + ns +
                              "}}\n  selector: {matchLabels: {app: nothing-here}}\n  pool: {maxSize: 2}\n"
                              "  database: {name: " +
                              db + "-baseline}\n");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_TRUE(eventually(
        [&] {
          auto st = cluster().kubectl({"get", "ccpol", name, "-o", "jsonpath={.status.observedGeneration}"});
          return st.exitCode == 0 && st.out == "1";
        },
        60s))
        << cluster().kubectl({"get", "ccpol", name, "-o", "yaml"}).out;
    auto del = cluster().kubectl({"delete", "ccpol", name, "--wait=true", "--timeout=60s"});
    EXPECT_EQ(del.exitCode, 0) << del.err << "\n" << tail(op.logs(), 30);
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
  EXPECT_EQ(op.stop(SIGTERM, 30s), 0) << tail(op.logs(), 30);
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
      // Checked by the API server when poolguard writes a ValidatingAdmissionPolicy whose paramKind it is, never
      // used as a request of its own.
      if (grant == "poolguard.dev/connectionallotments get") continue;
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

// The read-only roles the install ships for people and pipelines are enough for their commands, and needed: an
// identity bound to poolguard-status runs `poolguard status` with nothing left out, one bound to poolguard-plan-live
// runs `plan --live`, and without the binding status says what it could not read.
TEST_F(RbacE2E, TheReadOnlyRolesAreEnoughForStatusAndPlanLive) {
  const std::string ns = createNamespace("readers");
  applyYaml(ns,
            "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata: {name: p}\nspec:\n"
            "  selector: {matchLabels: {app: web}}\n  pool: {maxSize: 5}\n  database: {name: readers-" +
                ns + ", maxConnections: 50}\n");
  const std::string reader = "reader-" + ns;
  ASSERT_EQ(cluster().kubectl({"-n", kSystemNamespace, "create", "serviceaccount", reader}).exitCode, 0);
  const std::string kubeconfig = serviceAccountKubeconfig(reader);
  ASSERT_FALSE(HasFailure());
  auto status = [&] {
    return run({poolguardBinary(), "status", "--kubeconfig=" + kubeconfig, "--database=readers-" + ns, "-o", "json"});
  };

  // Not bound: each kind it may not list is a note, and nothing else is read.
  auto unbound = status();
  EXPECT_EQ(unbound.exitCode, 0) << unbound.err;
  const json unboundView = json::parse(unbound.out, nullptr, false);
  ASSERT_TRUE(unboundView.is_object()) << unbound.out << unbound.err;
  EXPECT_EQ(unboundView.value("notes", json::array()).size(), 4u) << unboundView.dump(2);

  const std::string subject = "--serviceaccount=" + std::string(kSystemNamespace) + ":" + reader;
  ASSERT_EQ(
      cluster()
          .kubectl({"create", "clusterrolebinding", reader + "-status", "--clusterrole=poolguard-status", subject})
          .exitCode,
      0);
  EXPECT_TRUE(eventually(
      [&] {
        auto bound = status();
        const json view = json::parse(bound.out, nullptr, false);
        return bound.exitCode == 0 && view.is_object() && view.value("notes", json::array()).empty() &&
               view.value("databases", json::array()).size() == 1;
      },
      30s))
      << status().out << status().err;
  // --watch prints the view again every interval, one JSON document per line, until interrupted.
  auto watched = run({"timeout", "3.5", poolguardBinary(), "status", "--kubeconfig=" + kubeconfig,
                      "--database=readers-" + ns, "--watch", "--interval=1", "-o", "json"});
  EXPECT_EQ(watched.exitCode, 124) << "still watching when interrupted: " << watched.err;
  int documents = 0;
  std::istringstream lines(watched.out);
  for (std::string line; std::getline(lines, line);) {
    const json view = json::parse(line, nullptr, false);
    if (view.is_object() && view.value("databases", json::array()).size() == 1) ++documents;
  }
  EXPECT_GE(documents, 2) << watched.out;
  auto planLive = [&] {
    return run({poolguardBinary(), "plan", "--live", "--kubeconfig=" + kubeconfig, "-o", "json"});
  };
  auto withoutPlanRole = planLive();
  EXPECT_EQ(withoutPlanRole.exitCode, 2) << "status' role reads no workloads: " << withoutPlanRole.err;
  EXPECT_NE(withoutPlanRole.err.find("plan --live needs get and list"), std::string::npos) << withoutPlanRole.err;

  ASSERT_EQ(cluster()
                .kubectl({"create", "clusterrolebinding", reader + "-plan-live", "--clusterrole=poolguard-plan-live",
                          subject})
                .exitCode,
            0);
  EXPECT_TRUE(eventually([&] { return planLive().exitCode != 2; }, 30s)) << planLive().err;
  for (const char* binding : {"-status", "-plan-live"})
    cluster().kubectl({"delete", "clusterrolebinding", reader + binding, "--ignore-not-found"});
}

}  // namespace
}  // namespace poolguard::testing
