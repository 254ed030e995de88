// The install manifests against a real API server: `kubectl apply -f crds/` and `kubectl apply -k deploy/`
// really apply, the manager pod passes Pod Security "restricted" admission, the ServiceAccount holds exactly
// the permissions it needs (asked of the API server's authorizer), the samples are accepted by the CRD's
// schema, the Helm chart lints, renders and installs, the alert rules are valid and fire as documented, and
// scripts/check-manifests passes and catches drift.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/cluster.h"

namespace poolguard::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* const kNameLabel = "app.kubernetes.io/name";
const char* const kOperatorNamespace = "poolguard-system";
const char* const kServiceAccount = "system:serviceaccount:poolguard-system:poolguard";

std::string src(const std::string& rel) { return sourceDir() + "/" + rel; }

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exitCode) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/poolguard-manifests-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

json kubectlJson(const std::vector<std::string>& args, const std::string& input = "") {
  std::vector<std::string> full = args;
  full.insert(full.end(), {"-o", "json"});
  auto r = cluster().kubectl(full, input);
  if (r.exitCode != 0) throw std::runtime_error("kubectl failed: " + describe(r));
  return json::parse(r.out);
}

// The objects of a List (kubectl get -o json), or the object itself.
std::vector<json> items(const json& j) {
  if (j.contains("items")) return j["items"].get<std::vector<json>>();
  return {j};
}

std::string labelOf(const json& obj, const std::string& key) {
  const auto& labels = obj["metadata"].value("labels", json::object());
  return labels.value(key, "");
}

std::vector<std::string> strings(const json& arr) {
  std::vector<std::string> out;
  if (arr.is_array())
    for (const auto& v : arr) out.push_back(v.get<std::string>());
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Rules with a wildcard, or any Secret access other than get: each is a finding.
std::vector<std::string> rbacFindings(const json& role) {
  std::vector<std::string> findings;
  std::string where = role["kind"].get<std::string>() + " " + role["metadata"]["name"].get<std::string>();
  for (const auto& rule : role.value("rules", json::array())) {
    for (const char* key : {"apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"}) {
      for (const auto& v : strings(rule.value(key, json::array())))
        if (v.find('*') != std::string::npos) findings.push_back(where + ": wildcard in " + key + ": " + rule.dump());
    }
    auto groups = strings(rule.value("apiGroups", json::array()));
    auto resources = strings(rule.value("resources", json::array()));
    if (contains(groups, "") && (contains(resources, "secrets") || contains(resources, "secrets/*"))) {
      for (const auto& verb : strings(rule.value("verbs", json::array())))
        if (verb != "get") findings.push_back(where + ": Secrets with verb " + verb);
    }
  }
  return findings;
}

// Asks the API server's authorizer whether `as` may do VERB on RESOURCE in NAMESPACE ("" = all namespaces).
bool canI(const std::string& as, const std::string& verb, const std::string& resource, const std::string& ns,
          const std::string& subresource = "") {
  std::vector<std::string> args{"auth", "can-i", verb, resource, "--as=" + as};
  if (ns.empty())
    args.push_back("--all-namespaces");
  else
    args.push_back("--namespace=" + ns);
  if (!subresource.empty()) args.push_back("--subresource=" + subresource);
  auto r = cluster().kubectl(args);
  return r.exitCode == 0 && trim(r.out) == "yes";
}

struct Permission {
  std::string verb, resource, subresource;
};

// What the manager needs in a namespace whose policies it reconciles (API.md, README's RBAC).
const std::vector<Permission>& managerPermissions() {
  static const std::vector<Permission> perms = [] {
    std::vector<Permission> p;
    // Exactly what tests/e2e/rbac sees the operator use: cached reads (list, watch), server-side apply and
    // JSON patches, a create for a new ConfigMap, and Secrets read by name.
    for (auto v : {"list", "watch", "patch"}) p.push_back({v, "connectionpoolpolicies.poolguard.dev", ""});
    p.push_back({"patch", "connectionpoolpolicies.poolguard.dev", "status"});
    for (auto r : {"deployments.apps", "statefulsets.apps"})
      for (auto v : {"list", "watch", "patch"}) p.push_back({v, r, ""});
    for (auto v : {"list", "watch"}) p.push_back({v, "horizontalpodautoscalers.autoscaling", ""});
    for (auto v : {"list", "watch", "create", "patch", "delete"}) p.push_back({v, "configmaps", ""});
    p.push_back({"get", "secrets", ""});
    for (auto v : {"create", "patch"}) p.push_back({v, "events", ""});
    return p;
  }();
  return perms;
}

// What it must never be able to do.
const std::vector<Permission>& forbiddenPermissions() {
  static const std::vector<Permission> perms = {
      {"list", "secrets", ""},
      {"watch", "secrets", ""},
      {"create", "secrets", ""},
      {"update", "secrets", ""},
      {"delete", "secrets", ""},
      {"create", "connectionpoolpolicies.poolguard.dev", ""},
      {"delete", "connectionpoolpolicies.poolguard.dev", ""},
      {"update", "deployments.apps", ""},  // server-side apply is a patch
      {"delete", "deployments.apps", ""},
      {"create", "deployments.apps", ""},
      {"delete", "statefulsets.apps", ""},
      {"update", "horizontalpodautoscalers.autoscaling", ""},
      {"update", "connectionpoolpolicies.poolguard.dev", ""},
      {"update", "configmaps", ""},
      {"create", "pods", ""},
      {"get", "pods", "exec"},
      {"create", "serviceaccounts", "token"},
      {"create", "rolebindings.rbac.authorization.k8s.io", ""},
      {"escalate", "roles.rbac.authorization.k8s.io", ""},
  };
  return perms;
}

class Manifests : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tools = run({src("scripts/install-tools")});
    ASSERT_EQ(tools.exitCode, 0) << "scripts/install-tools: " << describe(tools);
    toolsBin_ = trim(tools.out);
    ASSERT_TRUE(fs::exists(toolsBin_ + "/helm")) << toolsBin_;
    ASSERT_TRUE(fs::exists(toolsBin_ + "/kustomize")) << toolsBin_;

    auto crds = cluster().kubectl({"apply", "-f", src("crds/")});
    ASSERT_EQ(crds.exitCode, 0) << "kubectl apply -f crds/: " << describe(crds);
    auto est = cluster().waitEstablished("crd/connectionpoolpolicies.poolguard.dev");
    ASSERT_EQ(est.exitCode, 0) << describe(est);

    auto deploy = cluster().kubectl({"apply", "-k", src("deploy/")});
    ASSERT_EQ(deploy.exitCode, 0) << "kubectl apply -k deploy/: " << describe(deploy);
  }

  static CommandResult helm(std::vector<std::string> args) {
    std::vector<std::string> argv{toolsBin_ + "/helm"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--kubeconfig=" + cluster().kubeconfig);
    // Helm's own state (repositories, cache) stays out of the user's home.
    std::map<std::string, std::string> env{{"HELM_CACHE_HOME", helmHome() + "/cache"},
                                           {"HELM_CONFIG_HOME", helmHome() + "/config"},
                                           {"HELM_DATA_HOME", helmHome() + "/data"}};
    return run(argv, "", env);
  }

  static std::string helmHome() {
    static const std::string dir = [] {
      std::string d = "/tmp/poolguard-manifests-helm-" + std::to_string(getpid());
      fs::create_directories(d);
      return d;
    }();
    return dir;
  }

  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(helmHome(), ec);
  }

  static void applyMonitoringCrds() {
    auto r = cluster().kubectl({"apply", "-f", src("tests/integration/manifests/testdata/monitoring-crds.yaml")});
    ASSERT_EQ(r.exitCode, 0) << describe(r);
    for (auto crd : {"servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"}) {
      auto w = cluster().waitEstablished(std::string("crd/") + crd);
      ASSERT_EQ(w.exitCode, 0) << describe(w);
    }
  }

  static std::string toolsBin_;
};

std::string Manifests::toolsBin_;

TEST_F(Manifests, CrdIsServedWithTheNamesOfTheApi) {
  auto crd = kubectlJson({"get", "crd", "connectionpoolpolicies.poolguard.dev"});
  EXPECT_EQ(crd["spec"]["group"], "poolguard.dev");
  EXPECT_EQ(crd["spec"]["scope"], "Namespaced");
  EXPECT_EQ(crd["spec"]["names"]["kind"], "ConnectionPoolPolicy");
  auto shortNames = strings(crd["spec"]["names"]["shortNames"]);
  EXPECT_TRUE(contains(shortNames, "cpol") && contains(shortNames, "poolpolicy")) << crd["spec"]["names"].dump();
  // `kubectl get cpol` works through discovery.
  auto r = cluster().kubectl({"get", "cpol", "-A"});
  EXPECT_EQ(r.exitCode, 0) << describe(r);
}

TEST_F(Manifests, DefaultInstallObjectsAreAllLabelled) {
  // README's spelling and the root alias install the same objects: applying the other one changes nothing.
  auto again = cluster().kubectl({"apply", "-k", src("deploy/default")});
  ASSERT_EQ(again.exitCode, 0) << describe(again);
  EXPECT_EQ(again.out.find("configured"), std::string::npos) << "deploy/default differs from deploy/:\n" << again.out;
  EXPECT_EQ(again.out.find("created"), std::string::npos) << "deploy/default differs from deploy/:\n" << again.out;

  auto objects = items(kubectlJson({"get", "-k", src("deploy/")}));
  std::set<std::string> kinds;
  for (const auto& obj : objects) {
    kinds.insert(obj["kind"].get<std::string>());
    EXPECT_EQ(labelOf(obj, kNameLabel), "poolguard")
        << obj["kind"].get<std::string>() << " " << obj["metadata"]["name"].get<std::string>();
  }
  for (auto kind : {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
                    "Service", "Deployment"})
    EXPECT_TRUE(kinds.count(kind)) << "deploy/ installs no " << kind;

  auto svc = kubectlJson({"-n", kOperatorNamespace, "get", "service", "poolguard-metrics"});
  ASSERT_EQ(svc["spec"]["ports"].size(), 1u);
  EXPECT_EQ(svc["spec"]["ports"][0]["name"], "metrics");
  EXPECT_EQ(svc["spec"]["ports"][0]["port"], 8080);
}

TEST_F(Manifests, ManagerPodIsRestrictedAndRunsTheOperator) {
  auto ns = kubectlJson({"get", "namespace", kOperatorNamespace});
  EXPECT_EQ(labelOf(ns, "pod-security.kubernetes.io/enforce"), "restricted");

  auto dep = kubectlJson({"-n", kOperatorNamespace, "get", "deployment", "poolguard"});
  const json& tmpl = dep["spec"]["template"];
  const json& pod = tmpl["spec"];
  EXPECT_EQ(pod["serviceAccountName"], "poolguard");
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(pod["securityContext"]["runAsUser"], 65532);
  EXPECT_EQ(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
  ASSERT_EQ(pod["containers"].size(), 1u);
  const json& c = pod["containers"][0];
  EXPECT_EQ(c["image"], "poolguard:0.1.0");
  EXPECT_EQ(strings(c["command"]), std::vector<std::string>{"/usr/local/bin/poolguard"});
  auto args = strings(c["args"]);
  ASSERT_FALSE(args.empty());
  EXPECT_EQ(args[0], "run");
  for (auto flag : {"--leader-elect", "--log-format=json"}) EXPECT_TRUE(contains(args, flag)) << flag;
  const json& sc = c["securityContext"];
  EXPECT_EQ(sc["allowPrivilegeEscalation"], false);
  EXPECT_EQ(sc["readOnlyRootFilesystem"], true);
  EXPECT_EQ(sc["runAsNonRoot"], true);
  EXPECT_EQ(sc["runAsUser"], 65532);
  EXPECT_EQ(strings(sc["capabilities"]["drop"]), std::vector<std::string>{"ALL"});
  EXPECT_EQ(sc["seccompProfile"]["type"], "RuntimeDefault");
  EXPECT_EQ(c["resources"]["requests"]["cpu"], "20m");
  EXPECT_EQ(c["resources"]["requests"]["memory"], "64Mi");
  EXPECT_EQ(c["resources"]["limits"]["memory"], "256Mi");
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"], "/healthz");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/readyz");
  // The probes name the port; it must be 8081 (--health-probe-bind-address).
  for (const auto& port : c["ports"]) {
    if (port["name"] == c["livenessProbe"]["httpGet"]["port"]) {
      EXPECT_EQ(port["containerPort"], 8081);
    }
    if (port["name"] == "metrics") {
      EXPECT_EQ(port["containerPort"], 8080);
    }
  }

  // Pod Security admission accepts a Pod made from the template in the restricted namespace...
  json podObj = {{"apiVersion", "v1"},
                 {"kind", "Pod"},
                 {"metadata", {{"name", "poolguard-admission-check"}, {"namespace", kOperatorNamespace}}},
                 {"spec", pod}};
  auto ok = cluster().kubectl({"create", "--dry-run=server", "-f", "-"}, podObj.dump());
  EXPECT_EQ(ok.exitCode, 0) << "restricted admission rejected the manager pod: " << describe(ok);
  EXPECT_EQ(ok.err.find("PodSecurity"), std::string::npos) << ok.err;
  // ...and the same check rejects a pod that breaks the profile (the admission really runs).
  json bad = podObj;
  bad["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = true;
  auto rejected = cluster().kubectl({"create", "--dry-run=server", "-f", "-"}, bad.dump());
  EXPECT_NE(rejected.exitCode, 0) << describe(rejected);
  EXPECT_NE(rejected.err.find("PodSecurity"), std::string::npos) << rejected.err;

  // The controller manager creates the real pod (it stays Pending: the test cluster has no nodes).
  bool created = eventually(
      [&] {
        auto r =
            cluster().kubectl({"-n", kOperatorNamespace, "get", "pods", "-l",
                               "app.kubernetes.io/name=poolguard,app.kubernetes.io/component=manager", "-o", "name"});
        return r.exitCode == 0 && r.out.find("pod/poolguard-") != std::string::npos;
      },
      std::chrono::seconds(60));
  EXPECT_TRUE(created) << "no manager pod was admitted";
}

TEST_F(Manifests, RbacHasNoWildcardsAndNoSecretListing) {
  std::vector<json> roles = {
      kubectlJson({"get", "clusterrole", "poolguard-manager"}),
      kubectlJson({"get", "clusterrole", "poolguard-connectionpoolpolicy-editor"}),
      kubectlJson({"get", "clusterrole", "poolguard-connectionpoolpolicy-viewer"}),
      kubectlJson({"-n", kOperatorNamespace, "get", "role", "poolguard-leader-election"}),
  };
  for (const auto& role : roles) {
    EXPECT_EQ(labelOf(role, kNameLabel), "poolguard") << role["metadata"]["name"];
    auto findings = rbacFindings(role);
    EXPECT_TRUE(findings.empty()) << findings.front();
  }
  // The audit itself flags what it should.
  json wild = {{"kind", "ClusterRole"},
               {"metadata", {{"name", "probe"}}},
               {"rules", json::array({{{"apiGroups", {""}}, {"resources", {"secrets"}}, {"verbs", {"get", "list"}}},
                                      {{"apiGroups", {"apps"}}, {"resources", {"*"}}, {"verbs", {"get"}}}})}};
  EXPECT_EQ(rbacFindings(wild).size(), 2u);

  EXPECT_EQ(labelOf(roles[1], "rbac.authorization.k8s.io/aggregate-to-edit"), "true");
  EXPECT_EQ(labelOf(roles[1], "rbac.authorization.k8s.io/aggregate-to-admin"), "true");
  EXPECT_EQ(labelOf(roles[2], "rbac.authorization.k8s.io/aggregate-to-view"), "true");
}

TEST_F(Manifests, ServiceAccountHoldsExactlyWhatTheManagerNeeds) {
  std::string ns = createNamespace("rbac");
  for (const auto& p : managerPermissions()) {
    EXPECT_TRUE(canI(kServiceAccount, p.verb, p.resource, ns, p.subresource))
        << "denied: " << p.verb << " " << p.resource << (p.subresource.empty() ? "" : "/" + p.subresource);
  }
  // Cluster-wide install: list/watch across all namespaces (informers).
  EXPECT_TRUE(canI(kServiceAccount, "watch", "connectionpoolpolicies.poolguard.dev", ""));
  EXPECT_TRUE(canI(kServiceAccount, "list", "deployments.apps", ""));
  for (const auto& p : forbiddenPermissions()) {
    EXPECT_FALSE(canI(kServiceAccount, p.verb, p.resource, ns, p.subresource))
        << "allowed: " << p.verb << " " << p.resource << (p.subresource.empty() ? "" : "/" + p.subresource);
  }
  EXPECT_FALSE(canI(kServiceAccount, "list", "secrets", ""));
  EXPECT_FALSE(canI(kServiceAccount, "get", "nodes", ""));

  // Leader election: the Lease in the operator's namespace only.
  for (auto verb : {"get", "create", "update"})
    EXPECT_TRUE(canI(kServiceAccount, verb, "leases.coordination.k8s.io", kOperatorNamespace)) << verb;
  EXPECT_FALSE(canI(kServiceAccount, "delete", "leases.coordination.k8s.io", kOperatorNamespace));
  EXPECT_FALSE(canI(kServiceAccount, "create", "leases.coordination.k8s.io", ns));

  // The aggregated roles reach the built-in ones: "view" reads policies, "edit" writes them.
  std::string viewer = "system:serviceaccount:" + ns + ":viewer";
  std::string editor = "system:serviceaccount:" + ns + ":editor";
  for (const auto& [who, role] : {std::pair{viewer, "view"}, std::pair{editor, "edit"}}) {
    auto r = cluster().kubectl({"-n", ns, "create", "rolebinding", std::string(role) + "-binding",
                                std::string("--clusterrole=") + role,
                                "--serviceaccount=" + ns + ":" + who.substr(who.rfind(':') + 1)});
    ASSERT_EQ(r.exitCode, 0) << describe(r);
  }
  bool aggregated = eventually(
      [&] {
        return canI(viewer, "list", "connectionpoolpolicies.poolguard.dev", ns) &&
               canI(editor, "create", "connectionpoolpolicies.poolguard.dev", ns);
      },
      std::chrono::seconds(30));
  EXPECT_TRUE(aggregated) << "the editor/viewer ClusterRoles were not aggregated into edit/view";
  EXPECT_FALSE(canI(viewer, "create", "connectionpoolpolicies.poolguard.dev", ns));
}

TEST_F(Manifests, SamplesCoverEveryProfileAndAreAccepted) {
  std::string ns = createNamespace("samples");
  auto applied = cluster().kubectl({"apply", "-k", src("deploy/samples"), "-n", ns});
  ASSERT_EQ(applied.exitCode, 0) << describe(applied);

  auto policies = items(kubectlJson({"-n", ns, "get", "connectionpoolpolicies"}));
  std::set<std::string> profiles;
  for (const auto& p : policies) {
    profiles.insert(p["spec"].value("profile", "Generic"));
    EXPECT_EQ(labelOf(p, kNameLabel), "poolguard") << p["metadata"]["name"];
  }
  EXPECT_EQ(policies.size(), 7u);
  EXPECT_EQ(profiles, (std::set<std::string>{"SpringHikari", "GoSQL", "Pgxpool", "SQLAlchemy", "NodePostgres",
                                             "PgBouncer", "Generic"}));

  // The schema really judges them: a sample made invalid is refused.
  auto sample = readFile(src("deploy/samples/poolguard_v1alpha1_connectionpoolpolicy_gosql.yaml"));
  auto pos = sample.find("maxSize: 20");
  ASSERT_NE(pos, std::string::npos);
  sample.replace(pos, 11, "maxSize: 0");
  auto refused = cluster().kubectl({"-n", ns, "apply", "--dry-run=server", "-f", "-"}, sample);
  EXPECT_NE(refused.exitCode, 0) << describe(refused);
}

TEST_F(Manifests, SamplesPassOfflineValidation) {
  if (!fs::exists(poolguardBinary())) GTEST_SKIP() << "no poolguard binary at " << poolguardBinary();
  std::vector<std::string> argv{poolguardBinary(), "validate"};
  for (const auto& entry : fs::directory_iterator(src("deploy/samples"))) {
    if (entry.path().filename().string().rfind("poolguard_v1alpha1_", 0) == 0) {
      argv.push_back("-f");
      argv.push_back(entry.path().string());
    }
  }
  ASSERT_EQ(argv.size(), 2u + 2u * 7u);
  auto r = run(argv);
  EXPECT_EQ(r.exitCode, 0) << describe(r);
}

TEST_F(Manifests, NamespacedOverlayUsesARoleInTheWatchedNamespace) {
  // deploy/namespaced watches the example namespace "apps".
  auto exists = cluster().kubectl({"get", "namespace", "apps"});
  if (exists.exitCode != 0) {
    ASSERT_EQ(cluster().kubectl({"create", "namespace", "apps"}).exitCode, 0);
  }
  auto objects = items(kubectlJson({"apply", "-k", src("deploy/namespaced"), "--dry-run=server"}));
  bool role = false, deployment = false;
  for (const auto& obj : objects) {
    std::string kind = obj["kind"], name = obj["metadata"]["name"];
    EXPECT_EQ(labelOf(obj, kNameLabel), "poolguard") << kind << " " << name;
    EXPECT_FALSE((kind == "ClusterRole" || kind == "ClusterRoleBinding") && name == "poolguard-manager")
        << "the namespaced install binds the manager cluster-wide";
    if (kind == "Role" && name == "poolguard-manager") {
      role = true;
      EXPECT_EQ(obj["metadata"]["namespace"], "apps");
      EXPECT_TRUE(rbacFindings(obj).empty());
    }
    if (kind == "Deployment") {
      deployment = true;
      EXPECT_TRUE(contains(strings(obj["spec"]["template"]["spec"]["containers"][0]["args"]), "--namespace=apps"));
    }
  }
  EXPECT_TRUE(role);
  EXPECT_TRUE(deployment);
}

TEST_F(Manifests, AlertRulesApplyAndFireAsDocumented) {
  applyMonitoringCrds();
  auto applied = cluster().kubectl({"apply", "-k", src("deploy/prometheus/monitor")});
  ASSERT_EQ(applied.exitCode, 0) << describe(applied);
  auto rule = kubectlJson({"-n", kOperatorNamespace, "get", "prometheusrule", "poolguard"});
  auto monitor = kubectlJson({"-n", kOperatorNamespace, "get", "servicemonitor", "poolguard"});
  EXPECT_EQ(monitor["spec"]["endpoints"][0]["port"], "metrics");
  EXPECT_EQ(monitor["spec"]["endpoints"][0]["honorLabels"], true);

  std::set<std::string> alerts;
  for (const auto& group : rule["spec"]["groups"]) {
    for (const auto& r : group["rules"]) {
      std::string name = r.value("alert", "");
      alerts.insert(name);
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
      EXPECT_EQ(r["annotations"].value("runbook_url", ""), "docs/runbook.md#" + lower);
      EXPECT_FALSE(r["annotations"].value("summary", "").empty()) << name;
      EXPECT_FALSE(r["annotations"].value("description", "").empty()) << name;
      EXPECT_FALSE(r["labels"].value("severity", "").empty()) << name;
    }
  }
  EXPECT_EQ(alerts, (std::set<std::string>{"PoolguardLeakSuspected", "PoolguardSaturated", "PoolguardBudgetExceeded",
                                           "PoolguardPoolExhausted", "PoolguardUsageSourceDown", "PoolguardDown"}));

  // promtool checks the rules as Prometheus loads them and runs the unit tests of testdata/alerts_test.yaml.
  TempDir dir;
  std::ofstream(dir.path() + "/rules.json") << json{{"groups", rule["spec"]["groups"]}}.dump(2);
  fs::copy_file(src("tests/integration/manifests/testdata/alerts_test.yaml"), dir.path() + "/alerts_test.yaml");
  auto check = run({"promtool", "check", "rules", dir.path() + "/rules.json"});
  EXPECT_EQ(check.exitCode, 0) << describe(check);
  auto unit = run({"promtool", "test", "rules", dir.path() + "/alerts_test.yaml"});
  EXPECT_EQ(unit.exitCode, 0) << describe(unit);
}

TEST_F(Manifests, HelmChartLintsAndRenders) {
  std::string chart = src("charts/poolguard");
  auto lint = helm({"lint", "--strict", chart});
  EXPECT_EQ(lint.exitCode, 0) << describe(lint);
  auto lintNs = helm({"lint", "--strict", chart, "--set", "watchNamespaces={a,b}", "--set",
                      "prometheusRule.enabled=true", "--set", "metrics.serviceMonitor.enabled=true"});
  EXPECT_EQ(lintNs.exitCode, 0) << describe(lintNs);

  auto wide = helm({"template", "pg", chart, "-n", kOperatorNamespace});
  ASSERT_EQ(wide.exitCode, 0) << describe(wide);
  EXPECT_NE(wide.out.find("kind: ClusterRoleBinding"), std::string::npos);
  EXPECT_EQ(wide.out.find("kind: PrometheusRule"), std::string::npos) << "optional objects are off by default";
  EXPECT_EQ(wide.out.find("--namespace="), std::string::npos);

  auto narrow = helm({"template", "pg", chart, "-n", kOperatorNamespace, "--set", "watchNamespaces={a,b}"});
  ASSERT_EQ(narrow.exitCode, 0) << describe(narrow);
  EXPECT_EQ(narrow.out.find("kind: ClusterRoleBinding"), std::string::npos);
  EXPECT_NE(narrow.out.find("- --namespace=a\n"), std::string::npos) << narrow.out;
  EXPECT_NE(narrow.out.find("- --namespace=b\n"), std::string::npos) << narrow.out;

  // values.schema.json refuses what the binary would refuse.
  for (auto bad : {"logFormat=xml", "workers=0", "watchNamespaces={Bad_Name}", "replicaCount=2"}) {
    auto r = helm({"template", "pg", chart, "--set", bad});
    EXPECT_NE(r.exitCode, 0) << bad << " was accepted";
  }
}

TEST_F(Manifests, HelmInstallsClusterWideAndNamespaced) {
  applyMonitoringCrds();
  std::string chart = src("charts/poolguard");

  // Cluster-wide, with the optional monitoring objects, beside the kustomize install (--skip-crds: the CRD is
  // already there).
  std::string ns = createNamespace("helm");
  ASSERT_EQ(cluster().kubectl({"label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted"}).exitCode, 0);
  std::string release = "pg-" + ns;
  auto install =
      helm({"install", release, chart, "-n", ns, "--skip-crds", "--set", "metrics.serviceMonitor.enabled=true", "--set",
            "prometheusRule.enabled=true", "--timeout", "2m"});
  ASSERT_EQ(install.exitCode, 0) << describe(install);
  std::string fullname = release + "-poolguard";
  std::string sa = "system:serviceaccount:" + ns + ":" + fullname;

  auto objects = items(kubectlJson({"get", "all,sa,role,rolebinding,servicemonitor,prometheusrule", "-n", ns, "-l",
                                    "app.kubernetes.io/instance=" + release}));
  std::set<std::string> kinds;
  for (const auto& obj : objects) kinds.insert(obj["kind"].get<std::string>());
  for (auto kind :
       {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "ServiceMonitor", "PrometheusRule"})
    EXPECT_TRUE(kinds.count(kind)) << "the release installed no " << kind;
  auto clusterRole = kubectlJson({"get", "clusterrole", fullname + "-manager"});
  EXPECT_TRUE(rbacFindings(clusterRole).empty());
  EXPECT_TRUE(canI(sa, "list", "connectionpoolpolicies.poolguard.dev", ""));
  EXPECT_TRUE(canI(sa, "get", "secrets", "default"));
  EXPECT_FALSE(canI(sa, "list", "secrets", "default"));
  EXPECT_TRUE(canI(sa, "update", "leases.coordination.k8s.io", ns));
  bool admitted = eventually(
      [&] {
        auto r =
            cluster().kubectl({"-n", ns, "get", "pods", "-l", "app.kubernetes.io/instance=" + release, "-o", "name"});
        return r.exitCode == 0 && !trim(r.out).empty();
      },
      std::chrono::seconds(60));
  EXPECT_TRUE(admitted) << "restricted admission refused the chart's pod";

  // Restricted to one namespace: a Role there, nothing cluster-wide.
  std::string ns2 = createNamespace("helm");
  std::string watched = createNamespace("watched");
  std::string release2 = "pg-" + ns2;
  std::string sa2 = "system:serviceaccount:" + ns2 + ":" + release2 + "-poolguard";
  auto install2 =
      helm({"install", release2, chart, "-n", ns2, "--skip-crds", "--set", "watchNamespaces={" + watched + "}"});
  ASSERT_EQ(install2.exitCode, 0) << describe(install2);
  EXPECT_TRUE(canI(sa2, "patch", "deployments.apps", watched));
  EXPECT_TRUE(canI(sa2, "patch", "connectionpoolpolicies.poolguard.dev", watched, "status"));
  EXPECT_FALSE(canI(sa2, "patch", "deployments.apps", "default"));
  EXPECT_FALSE(canI(sa2, "list", "connectionpoolpolicies.poolguard.dev", ""));
  auto dep = kubectlJson({"-n", ns2, "get", "deployment", release2 + "-poolguard"});
  EXPECT_TRUE(contains(strings(dep["spec"]["template"]["spec"]["containers"][0]["args"]), "--namespace=" + watched));

  // Uninstalling removes the cluster-scoped objects too.
  for (const auto& [rel, n] : {std::pair{release, ns}, std::pair{release2, ns2}}) {
    auto un = helm({"uninstall", rel, "-n", n, "--wait", "--timeout", "2m"});
    EXPECT_EQ(un.exitCode, 0) << describe(un);
  }
  EXPECT_NE(cluster().kubectl({"get", "clusterrole", fullname + "-manager"}).exitCode, 0);
}

TEST_F(Manifests, CheckManifestsPassesAndCatchesDrift) {
  auto ok = run({src("scripts/check-manifests")});
  EXPECT_EQ(ok.exitCode, 0) << describe(ok);

  // A copy of the tree with drift in it: each change must fail the check, and --fix repairs the CRD copies.
  TempDir dir;
  for (auto part : {"crds", "deploy", "charts"})
    fs::copy(src(part), dir.path() + "/" + part, fs::copy_options::recursive);
  fs::create_directories(dir.path() + "/scripts");
  for (auto script : {"scripts/check-manifests", "scripts/install-tools"})
    fs::copy_file(src(script), dir.path() + "/" + script);
  auto check = [&](std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{dir.path() + "/scripts/check-manifests"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv);
  };
  ASSERT_EQ(check().exitCode, 0) << describe(check());

  auto rewrite = [&](const std::string& rel, const std::string& from, const std::string& to) {
    std::string path = dir.path() + "/" + rel;
    std::string text = readFile(path);
    auto pos = text.find(from);
    ASSERT_NE(pos, std::string::npos) << from << " not in " << rel;
    text.replace(pos, from.size(), to);
    std::ofstream(path) << text;
  };

  // The chart lets the operator list Secrets.
  std::string helpers = "charts/poolguard/templates/_helpers.tpl";
  std::string secretRule = "resources: [\"secrets\"]\n  verbs: [\"get\"]";
  rewrite(helpers, secretRule, "resources: [\"secrets\"]\n  verbs: [\"get\", \"list\"]");
  auto listing = check();
  EXPECT_NE(listing.exitCode, 0) << describe(listing);
  EXPECT_NE(listing.err.find("Secrets"), std::string::npos) << listing.err;
  rewrite(helpers, "resources: [\"secrets\"]\n  verbs: [\"get\", \"list\"]", secretRule);

  // deploy/ grants something the chart does not.
  rewrite("deploy/rbac/role.yaml", "resources: [\"horizontalpodautoscalers\"]\n    verbs: [\"list\", \"watch\"]",
          "resources: [\"horizontalpodautoscalers\"]\n    verbs: [\"list\"]");
  auto rules = check();
  EXPECT_NE(rules.exitCode, 0) << describe(rules);
  EXPECT_NE(rules.err.find("manager ClusterRole rules differ"), std::string::npos) << rules.err;
  rewrite("deploy/rbac/role.yaml", "resources: [\"horizontalpodautoscalers\"]\n    verbs: [\"list\"]",
          "resources: [\"horizontalpodautoscalers\"]\n    verbs: [\"list\", \"watch\"]");

  // An alert edited in one place only.
  rewrite("deploy/prometheus/monitor/rules.yaml", "for: 10m", "for: 15m");
  auto alerts = check();
  EXPECT_NE(alerts.exitCode, 0) << describe(alerts);
  EXPECT_NE(alerts.err.find("PrometheusRule"), std::string::npos) << alerts.err;
  rewrite("deploy/prometheus/monitor/rules.yaml", "for: 15m", "for: 10m");

  // The CRD changes at its source: the copies are stale until --fix.
  std::ofstream(dir.path() + "/crds/poolguard.dev_connectionpoolpolicies.yaml", std::ios::app) << "# changed\n";
  auto stale = check();
  EXPECT_NE(stale.exitCode, 0) << describe(stale);
  EXPECT_NE(stale.err.find("charts/poolguard/crds/poolguard.dev_connectionpoolpolicies.yaml differs"),
            std::string::npos)
      << stale.err;
  EXPECT_NE(stale.err.find("deploy/crd/poolguard.dev_connectionpoolpolicies.yaml differs"), std::string::npos)
      << stale.err;
  auto fixed = check({"--fix"});
  EXPECT_EQ(fixed.exitCode, 0) << describe(fixed);
  EXPECT_EQ(readFile(dir.path() + "/charts/poolguard/crds/poolguard.dev_connectionpoolpolicies.yaml"),
            readFile(dir.path() + "/crds/poolguard.dev_connectionpoolpolicies.yaml"));
  auto after = check();
  EXPECT_EQ(after.exitCode, 0) << describe(after);
}

}  // namespace
}  // namespace poolguard::testing
