// The operator binary against the local control plane and PostgreSQL, driven by a policy author whose
// ServiceAccount may write ConnectionPoolPolicies in its namespace but may not read its Secrets: a Secret's
// password goes only to a server the Secret names (annotation poolguard.dev/allowed-servers), never to a
// PostgreSQL impostor the author chose, and a Prometheus URL only under the prefixes the cluster admin allows.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "support/cluster.h"
#include "support/e2e_helpers.h"
#include "support/operator_process.h"
#include "support/pg_impostor.h"

namespace poolguard::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kMonitorRole = "security_monitor";
constexpr const char* kMonitorPassword = "security-monitor-pw-4c1e";
constexpr const char* kOperatorNamespace = "poolguard-ops";

std::string policyYaml(const std::string& name, const std::string& ns, const std::string& usage) {
  return "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata:\n  name: " + name +
         "\nspec:\n  selector:\n    matchLabels: {app: web}\n  pool:\n    maxSize: 5\n  database:\n    name: db-" + ns +
         "\n    maxConnections: 100\n  usage:\n    interval: 5s\n" + usage;
}

std::string postgresUsage(int port, const std::string& secret) {
  return "    postgres:\n      host: 127.0.0.1\n      port: " + std::to_string(port) +
         "\n      database: postgres\n      sslMode: disable\n      credentialsSecretRef: {name: " + secret + "}\n";
}

std::string usageMessage(const std::string& ns, const std::string& policy) {
  return condition(getJson(ns, "cpol/" + policy), "UsageHealthy").value("message", "");
}

std::string usageReason(const std::string& ns, const std::string& policy) {
  return condition(getJson(ns, "cpol/" + policy), "UsageHealthy").value("reason", "");
}

bool hasEvent(const std::string& ns, const std::string& policy, const std::string& reason) {
  json events = getJson(ns, "events");
  if (!events.is_object()) return false;
  for (const auto& e : events["items"]) {
    if (e["involvedObject"].value("name", "") == policy && e.value("reason", "") == reason) return true;
  }
  return false;
}

class SecurityE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto role = cluster().psql(std::string("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '") +
                               kMonitorRole + "') THEN CREATE ROLE " + kMonitorRole + " LOGIN PASSWORD '" +
                               kMonitorPassword + "' IN ROLE pg_monitor; END IF; END $$");
    ASSERT_EQ(role.exitCode, 0) << role.err;
    impostor_ = new PostgresImpostor();
    ASSERT_TRUE(impostor_->start());
    // The namespace poolguard runs in: where a ClusterConnectionPoolPolicy's Secrets are read.
    auto ns = cluster().kubectl({"create", "namespace", kOperatorNamespace});
    ASSERT_TRUE(ns.exitCode == 0 || ns.err.find("AlreadyExists") != std::string::npos) << ns.err;
    // Nothing listens on port 1: an allowed URL there fails to connect, a refused one is never tried.
    ASSERT_NO_FATAL_FAILURE(op_.start({"--prometheus-allowed-url-prefixes=http://127.0.0.1:1/allowed/"},
                                      {{"POD_NAMESPACE", kOperatorNamespace}}));
  }
  static void TearDownTestSuite() {
    op_.stop();
    delete impostor_;
    impostor_ = nullptr;
  }
  void TearDown() override { op_.printLogTailIfFailed(); }

  // A namespace with the workload, the monitoring Secret (allowed for the real server only), a Secret from
  // before the grants (no annotation), and the author: may write policies, may not read Secrets.
  static std::string authorNamespace(const std::string& prefix) {
    std::string ns = createNamespace(prefix);
    applyYaml(ns,
              "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, labels: {app: web}}\nspec:\n  replicas: 1\n"
              "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n"
              "      containers: [{name: app, image: example.invalid/app:1}]\n");
    for (const std::string secret : {"db-monitor", "legacy-monitor"}) {
      auto r = cluster().kubectl({"-n", ns, "create", "secret", "generic", secret,
                                  std::string("--from-literal=username=") + kMonitorRole,
                                  std::string("--from-literal=password=") + kMonitorPassword});
      EXPECT_EQ(r.exitCode, 0) << r.err;
    }
    auto r = cluster().kubectl({"-n", ns, "annotate", "secret", "db-monitor",
                                "poolguard.dev/allowed-servers=127.0.0.1:" + std::to_string(cluster().pgPort)});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    applyYaml(ns,
              "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: author}\n---\n"
              "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: policy-author}\nrules:\n"
              "- apiGroups: [poolguard.dev]\n  resources: [connectionpoolpolicies]\n"
              "  verbs: [get, list, watch, create, update, patch, delete]\n---\n"
              "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: policy-author}\n"
              "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: policy-author}\n"
              "subjects: [{kind: ServiceAccount, name: author, namespace: " +
                  ns + "}]\n");
    return ns;
  }
  // The monitoring Secret in the operator's namespace, granted for the real server only.
  static void operatorSecret(const std::string& secret) {
    auto r = cluster().kubectl({"-n", kOperatorNamespace, "create", "secret", "generic", secret,
                                std::string("--from-literal=username=") + kMonitorRole,
                                std::string("--from-literal=password=") + kMonitorPassword});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    r = cluster().kubectl({"-n", kOperatorNamespace, "annotate", "secret", secret,
                           "poolguard.dev/allowed-servers=127.0.0.1:" + std::to_string(cluster().pgPort)});
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }
  static CommandResult asAuthor(const std::string& ns, std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), {"--as=system:serviceaccount:" + ns + ":author", "-n", ns});
    return cluster().kubectl(args, input);
  }

  static SuiteOperator op_;
  static PostgresImpostor* impostor_;
};
SuiteOperator SecurityE2E::op_;
PostgresImpostor* SecurityE2E::impostor_ = nullptr;

TEST_F(SecurityE2E, AnAuthorWhoCannotReadASecretCannotSendItsPasswordToAServerOfTheirChoosing) {
  const std::string ns = authorNamespace("steal");
  auto canRead = asAuthor(ns, {"auth", "can-i", "get", "secrets"});
  ASSERT_EQ(canRead.out, "no\n") << "the author must not be able to read Secrets for this test to mean anything";
  ASSERT_EQ(asAuthor(ns, {"get", "secret", "db-monitor"}).exitCode == 0, false);

  // The author points the monitoring Secret at the impostor, in plain text.
  auto applied =
      asAuthor(ns, {"apply", "-f", "-"}, policyYaml("steal", ns, postgresUsage(impostor_->port(), "db-monitor")));
  ASSERT_EQ(applied.exitCode, 0) << applied.err;
  const std::string target = "127.0.0.1:" + std::to_string(impostor_->port());
  ASSERT_TRUE(
      eventually([&] { return usageMessage(ns, "steal").find("does not name this server") != std::string::npos; }, 60s))
      << getJson(ns, "cpol/steal").dump(2);
  EXPECT_TRUE(conditionIs(ns, "steal", "UsageHealthy", "Unknown", "UsageUnavailable"));
  EXPECT_NE(usageMessage(ns, "steal")
                .find("secret " + ns + "/db-monitor does not allow its contents to be used for " + target),
            std::string::npos)
      << usageMessage(ns, "steal");
  EXPECT_NE(usageMessage(ns, "steal").find("poolguard.dev/allowed-servers"), std::string::npos);
  EXPECT_TRUE(eventually([&] { return hasEvent(ns, "steal", "CredentialsNotGranted"); }, 30s))
      << getJson(ns, "events").dump(2);

  // With the policy on the server the Secret names, checks work as before.
  applied = asAuthor(ns, {"apply", "-f", "-"}, policyYaml("steal", ns, postgresUsage(cluster().pgPort, "db-monitor")));
  ASSERT_EQ(applied.exitCode, 0) << applied.err;
  EXPECT_TRUE(eventually(
      [&] {
        json p = getJson(ns, "cpol/steal");
        return p["status"].value("usage", json::object()).value("source", "") == "postgres" &&
               usageReason(ns, "steal") != "UsageUnavailable" && conditionIs(ns, "steal", "UsageHealthy", "True");
      },
      60s))
      << getJson(ns, "cpol/steal").dump(2);

  // Moved elsewhere again: stopped again, with the same message.
  applied = asAuthor(ns, {"apply", "-f", "-"}, policyYaml("steal", ns, postgresUsage(impostor_->port(), "db-monitor")));
  ASSERT_EQ(applied.exitCode, 0) << applied.err;
  EXPECT_TRUE(
      eventually([&] { return usageMessage(ns, "steal").find("does not name this server") != std::string::npos; }, 60s))
      << getJson(ns, "cpol/steal").dump(2);
  std::this_thread::sleep_for(6s);  // one more check interval
  EXPECT_EQ(impostor_->connections(), 0) << "poolguard must not even connect to a server the Secret does not name";
  EXPECT_TRUE(impostor_->passwords().empty());
}

TEST_F(SecurityE2E, ASecretFromBeforeTheGrantsGetsAConditionAndAnEventSayingWhatToAdd) {
  const std::string ns = authorNamespace("legacy");
  auto applied =
      asAuthor(ns, {"apply", "-f", "-"}, policyYaml("legacy", ns, postgresUsage(cluster().pgPort, "legacy-monitor")));
  ASSERT_EQ(applied.exitCode, 0) << applied.err;
  const std::string fix =
      "kubectl -n " + ns +
      " annotate secret legacy-monitor poolguard.dev/allowed-servers=127.0.0.1:" + std::to_string(cluster().pgPort);
  ASSERT_TRUE(eventually([&] { return usageMessage(ns, "legacy").find(fix) != std::string::npos; }, 60s))
      << usageMessage(ns, "legacy");
  EXPECT_TRUE(eventually([&] { return hasEvent(ns, "legacy", "CredentialsNotGranted"); }, 30s));
  // The Secret's owner follows the message: checks start.
  auto r = cluster().kubectl({"-n", ns, "annotate", "secret", "legacy-monitor",
                              "poolguard.dev/allowed-servers=127.0.0.1:" + std::to_string(cluster().pgPort)});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_TRUE(eventually([&] { return conditionIs(ns, "legacy", "UsageHealthy", "True"); }, 60s))
      << getJson(ns, "cpol/legacy").dump(2);
}

TEST_F(SecurityE2E, APrometheusUrlOutsideTheAllowedPrefixesIsRefused) {
  const std::string ns = authorNamespace("prom");
  const std::string refusedUrl = "http://127.0.0.1:" + std::to_string(impostor_->port()) + "/";
  const int before = impostor_->connections();
  auto prometheus = [&](const std::string& url) {
    return "    prometheus:\n      url: \"" + url + "\"\n      connectionsQuery: 'sum(up)'\n";
  };
  auto applied = asAuthor(ns, {"apply", "-f", "-"}, policyYaml("prom", ns, prometheus(refusedUrl)));
  ASSERT_EQ(applied.exitCode, 0) << applied.err;
  ASSERT_TRUE(eventually([&] { return usageMessage(ns, "prom").find("not allowed") != std::string::npos; }, 60s))
      << getJson(ns, "cpol/prom").dump(2);
  EXPECT_TRUE(conditionIs(ns, "prom", "UsageHealthy", "Unknown", "UsageUnavailable"));
  EXPECT_NE(usageMessage(ns, "prom").find("--prometheus-allowed-url-prefixes"), std::string::npos);
  EXPECT_NE(usageMessage(ns, "prom").find("allowed: http://127.0.0.1:1/allowed/"), std::string::npos)
      << usageMessage(ns, "prom");
  EXPECT_TRUE(eventually([&] { return hasEvent(ns, "prom", "PrometheusURLNotAllowed"); }, 30s));
  EXPECT_EQ(impostor_->connections(), before) << "a refused URL is never requested";

  // Under the allowed prefix the query is tried (nothing listens there, so it fails to connect).
  applied = asAuthor(ns, {"apply", "-f", "-"}, policyYaml("prom", ns, prometheus("http://127.0.0.1:1/allowed/tenant")));
  ASSERT_EQ(applied.exitCode, 0) << applied.err;
  EXPECT_TRUE(eventually(
      [&] {
        std::string m = usageMessage(ns, "prom");
        return m.find("prometheus http://127.0.0.1:1/allowed/tenant") != std::string::npos &&
               m.find("not allowed") == std::string::npos;
      },
      60s))
      << usageMessage(ns, "prom");
}

TEST_F(SecurityE2E, AClusterPolicyReadsItsSecretsFromTheOperatorsNamespaceOnly) {
  // The app namespace holds the workload and a Secret by the same name, granted for the real server: a cluster
  // policy must not use it. The operator's namespace holds none yet.
  std::string ns = authorNamespace("ccpol-usage");
  const std::string name = "central-" + ns;
  auto apply = [&](const std::string& secret) {
    auto r = cluster().kubectl(
        {"apply", "-f", "-"},
        "apiVersion: poolguard.dev/v1alpha1\nkind: ClusterConnectionPoolPolicy\nmetadata:\n  name: " + name +
            "\nspec:\n  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: " + ns +
            "}}\n  selector:\n    matchLabels: {app: web}\n  pool:\n    maxSize: 5\n  database:\n    name: db-" + ns +
            "\n    maxConnections: 100\n  usage:\n    interval: 5s\n" + postgresUsage(cluster().pgPort, secret));
    ASSERT_EQ(r.exitCode, 0) << r.err;
  };
  auto usage = [&] { return condition(getJson("default", "ccpol/" + name), "UsageHealthy"); };
  ASSERT_NO_FATAL_FAILURE(apply("db-monitor"));
  ASSERT_TRUE(eventually([&] { return usage().value("reason", "") == "UsageUnavailable"; }, 60s))
      << getJson("default", "ccpol/" + name).dump(2);
  EXPECT_NE(usage().value("message", "").find(kOperatorNamespace), std::string::npos)
      << "the Secret is looked for in the operator's namespace: " << usage().dump();

  // The monitoring Secret in the operator's namespace, granted for the real server: checked, healthy.
  const std::string secret = "central-monitor-" + ns;
  ASSERT_NO_FATAL_FAILURE(operatorSecret(secret));
  ASSERT_NO_FATAL_FAILURE(apply(secret));
  EXPECT_TRUE(eventually([&] { return usage().value("reason", "") == "Healthy"; }, 60s))
      << getJson("default", "ccpol/" + name).dump(2);
  EXPECT_GT(
      getJson("default", "ccpol/" + name)["status"].value("usage", json::object()).value("serverMaxConnections", 0), 0);
  cluster().kubectl({"delete", "ccpol", name, "--ignore-not-found"});
}

TEST_F(SecurityE2E, ABudgetsCentralCheckShowsWhoHoldsTheServerWithNoSecretInTheAppNamespaces) {
  // An app namespace with a workload and a policy without a usage block, and no Secret at all.
  const std::string ns = createNamespace("ccb-usage");
  const std::string database = "db-" + ns;
  applyYaml(ns,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, labels: {app: web}}\nspec:\n  replicas: 2\n"
            "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n"
            "      containers: [{name: app, image: example.invalid/app:1}]\n");
  applyYaml(ns,
            "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata:\n  name: p\nspec:\n"
            "  selector:\n    matchLabels: {app: web}\n  pool:\n    maxSize: 5\n  database:\n    name: " +
                database + "\n");
  // The monitoring Secret lives in the operator's namespace, granted for the real server only.
  const std::string secret = "central-" + ns;
  ASSERT_NO_FATAL_FAILURE(operatorSecret(secret));
  // A client no policy governs holds a session while the server is checked.
  const std::string rogue = "rogue-report-" + ns;
  std::thread holder([&] {
    run({"psql", "-X", "-q", "-h", cluster().pgHost, "-p", std::to_string(cluster().pgPort), "-U", cluster().pgUser,
         "-d", "postgres", "-c", "SELECT pg_sleep(25)"},
        "", {{"PGAPPNAME", rogue}});
  });
  auto r = cluster().kubectl(
      {"apply", "-f", "-"},
      "apiVersion: poolguard.dev/v1alpha1\nkind: ClusterConnectionBudget\nmetadata:\n  name: " + database +
          "\nspec:\n  maxConnections: 100\n  usage:\n    interval: 5s\n"
          "    thresholds: {idleInTransaction: 2s}\n" +
          postgresUsage(cluster().pgPort, secret));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  auto status = [&] { return getJson("default", "ccb/" + database).value("status", json::object()); };
  auto rogueListed = [&] {
    for (const auto& u : status().value("usage", json::object()).value("ungoverned", json::array())) {
      if (u.value("applicationName", "") == rogue && u.value("connections", 0) >= 1) return true;
    }
    return false;
  };
  EXPECT_TRUE(eventually(rogueListed, 30s)) << status().dump(2);
  json st = status();
  EXPECT_EQ(condition(json{{"status", st}}, "UsageHealthy").value("reason", ""), "Healthy") << st.dump(2);
  EXPECT_GE(st["usage"].value("connections", 0), 1);
  EXPECT_GE(st["usage"].value("ungovernedConnections", 0), 1) << st.dump(2);
  EXPECT_LE(st["usage"].value("governed", 0), st["usage"].value("connections", 0));
  for (const auto& u : st["usage"].value("ungoverned", json::array()))
    EXPECT_NE(u.value("applicationName", ""), "poolguard") << "poolguard's own sessions are not a client's";
  EXPECT_GT(st["usage"].value("serverMaxConnections", 0), 0);
  ASSERT_FALSE(st.value("topWorkloads", json::array()).empty()) << st.dump(2);
  EXPECT_EQ(st["topWorkloads"][0].value("name", ""), "web");
  EXPECT_EQ(st["topWorkloads"][0].value("worstCase", 0), (2 + 1) * 5);
  // `poolguard status`, the runbook's first command, shows the same in one view: read with list on poolguard's
  // kinds only (no Secret, no database connection).
  auto statusView = [&] {
    auto out = run(
        {poolguardBinary(), "status", "--kubeconfig=" + cluster().kubeconfig, "--database=" + database, "-o", "json"});
    EXPECT_EQ(out.exitCode, 0) << out.err;
    json view = json::parse(out.out, nullptr, false);
    return view.is_object() && view.value("databases", json::array()).size() == 1 ? view["databases"][0]
                                                                                  : json::object();
  };
  json view = statusView();
  EXPECT_EQ(view.value("budget", ""), database) << view.dump(2);
  EXPECT_EQ(view.value("capacity", json::object()).value("maxConnections", 0), 100) << view.dump(2);
  EXPECT_EQ(view.value("worstCase", 0), (2 + 1) * 5) << view.dump(2);
  bool rogueInView = false;
  for (const auto& u : view.value("ungoverned", json::array()))
    rogueInView = rogueInView || u.value("applicationName", "") == rogue;
  EXPECT_TRUE(rogueInView) << view.dump(2);
  ASSERT_FALSE(view.value("topWorkloads", json::array()).empty()) << view.dump(2);
  EXPECT_EQ(view["topWorkloads"][0].value("name", ""), "web");
  EXPECT_EQ(view["topWorkloads"][0].value("namespace", ""), ns);
  EXPECT_EQ(view["topWorkloads"][0].value("worstCase", 0), (2 + 1) * 5) << "the policy's workload status carries it";
  // The policy has no usage block of its own: it reports the findings of the budget's check over its workloads.
  auto policyUsage = [&] { return condition(getJson(ns, "cpol/p"), "UsageHealthy"); };
  EXPECT_TRUE(eventually([&] { return policyUsage().value("reason", "") == "Healthy"; }, 30s))
      << getJson(ns, "cpol/p").dump(2);
  EXPECT_NE(policyUsage().value("message", "").find("ClusterConnectionBudget " + database), std::string::npos)
      << policyUsage().dump();
  // A leak in the governed workload: a session reporting its application_name, left idle in a transaction past
  // the budget's threshold, shows on the budget and on the policy.
  std::thread leak([&] {
    run({"psql", "-X", "-q", "-h", cluster().pgHost, "-p", std::to_string(cluster().pgPort), "-U", cluster().pgUser,
         "-d", "postgres"},
        "BEGIN;\nSELECT 1;\n\\! sleep 20\nCOMMIT;\n", {{"PGAPPNAME", ns + "/web"}});
  });
  EXPECT_TRUE(eventually(
      [&] {
        return condition(json{{"status", status()}}, "UsageHealthy").value("reason", "") == "LeakSuspected";
      },
      30s))
      << status().dump(2);
  EXPECT_TRUE(eventually([&] { return policyUsage().value("reason", "") == "LeakSuspected"; }, 30s))
      << getJson(ns, "cpol/p").dump(2);
  // The leak in the view: a finding of the budget and of the policy, each Stalled on it.
  view = statusView();
  std::set<std::string> found;
  for (const auto& f : view.value("findings", json::array()))
    found.insert(f.value("object", "") + " " + f.value("reason", ""));
  EXPECT_TRUE(found.count("ClusterConnectionBudget " + database + " LeakSuspected")) << view.dump(2);
  EXPECT_TRUE(found.count("ConnectionPoolPolicy " + ns + "/p LeakSuspected")) << view.dump(2);
  EXPECT_FALSE(view.value("ready", true));
  auto text = run({poolguardBinary(), "status", "--kubeconfig=" + cluster().kubeconfig, "--database=" + database});
  EXPECT_NE(text.out.find("DATABASE " + database + ": NOT READY (ClusterConnectionBudget " + database + ")"),
            std::string::npos)
      << text.out << text.err;
  EXPECT_NE(text.out.find("Stalled LeakSuspected"), std::string::npos) << text.out;
  leak.join();
  // kubectl shows the live connections next to the capacity.
  auto table = cluster().kubectl({"get", "ccb", database});
  EXPECT_NE(table.out.find("LIVE"), std::string::npos) << table.out;
  // The app namespace holds no Secret: the central check needs none there.
  json secrets = getJson(ns, "secrets");
  EXPECT_TRUE(secrets.is_object() && secrets.value("items", json::array()).empty()) << secrets.dump(2);
  holder.join();
  cluster().kubectl({"delete", "ccb", database, "--ignore-not-found"});
}

}  // namespace
}  // namespace poolguard::testing
