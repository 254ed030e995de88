// The Grafana dashboard shipped in charts/poolguard/dashboards/poolguard.json (and, byte-identical, in
// deploy/grafana/) against the real thing: the operator binary on the local control plane and PostgreSQL, scraped
// by Debian's Prometheus, with objects that make every finding of docs/runbook.md true at once. Each panel's PromQL,
// read from the file (a panel added later is tested too), must return at least one series, with the template
// variables set to the values their own queries return and Grafana's interval variables set to a fixed window.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "support/cluster.h"
#include "support/e2e_helpers.h"
#include "support/operator_process.h"

namespace poolguard::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// PostgreSQL roles: the monitoring Secret's (pg_signal_backend for terminateLeaked) and the applications' (not a
// superuser: terminateLeaked never ends a superuser's session).
struct Role {
  const char* name;
  const char* password;
  const char* memberOf;
};
constexpr Role kMonitor{"dashboard_monitor", "dashboard-monitor-pw-71d2", "pg_monitor, pg_signal_backend"};
constexpr Role kApp{"dashboard_app", "dashboard-app-pw-58ae", ""};

// What Grafana's $__rate_interval, $__interval and $__range become: a window that holds many 1 s scrapes.
constexpr const char* kWindow = "1m";

std::string readFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Debian's Prometheus scraping the operator's /metrics every second, under the job name the PoolguardDown alert
// and the dashboard's "up" panel match (".*poolguard.*").
class Prometheus {
 public:
  Prometheus(int port, int operatorMetricsPort) : port_(port) {
    char tmpl[] = "/tmp/poolguard-dashboard-prom-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    std::ofstream(dir_ + "/prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n- job_name: poolguard\n"
           "  static_configs:\n  - targets: ['127.0.0.1:"
        << operatorMetricsPort << "']\n";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int log = ::open((dir_ + "/prometheus.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      std::string cfg = "--config.file=" + dir_ + "/prometheus.yml";
      std::string data = "--storage.tsdb.path=" + dir_ + "/data";
      std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
      ::execl("/usr/bin/prometheus", "prometheus", cfg.c_str(), data.c_str(), listen.c_str(), "--log.level=warn",
              static_cast<char*>(nullptr));
      std::_Exit(127);
    }
  }
  ~Prometheus() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    run({"rm", "-rf", dir_});
  }
  Prometheus(const Prometheus&) = delete;
  Prometheus& operator=(const Prometheus&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  bool waitReady() const {
    return eventually([&] { return run({"curl", "-sf", url() + "-/ready"}).exitCode == 0; }, 60s);
  }
  std::string log() const { return readFile(dir_ + "/prometheus.log"); }
  // GET url()+path with the parameters form-encoded; the "data" of a successful answer, null otherwise.
  json api(const std::string& path, const std::vector<std::pair<std::string, std::string>>& params) const {
    std::vector<std::string> argv{"curl", "-sfG", url() + path};
    for (const auto& [k, v] : params) {
      argv.push_back("--data-urlencode");
      argv.push_back(k + "=" + v);
    }
    auto r = run(argv);
    if (r.exitCode != 0) return nullptr;
    json answer = json::parse(r.out, nullptr, false);
    if (!answer.is_object() || answer.value("status", "") != "success") return nullptr;
    return answer["data"];
  }

 private:
  int port_;
  std::string dir_;
  pid_t pid_ = -1;
};

// A psql session that opened a transaction and holds it, idle, until destroyed (a leaked pool connection), under
// the application_name poolguard renders for the workload ({namespace}/{name}).
class IdleInTransaction {
 public:
  explicit IdleInTransaction(const std::string& applicationName) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(fds[0], 0);
      ::close(fds[0]);
      ::close(fds[1]);
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::setenv("PGAPPNAME", applicationName.c_str(), 1);
      ::setenv("PGPASSWORD", kApp.password, 1);
      std::string port = std::to_string(cluster().pgPort);
      ::execlp("psql", "psql", "-X", "-q", "-h", "127.0.0.1", "-p", port.c_str(), "-U", kApp.name, "-d", "postgres",
               static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    ::close(fds[0]);
    in_ = fds[1];
    const std::string sql = "BEGIN;\nSELECT 1;\n";
    if (::write(in_, sql.data(), sql.size()) != static_cast<ssize_t>(sql.size()))
      throw std::runtime_error("writing to psql failed");
  }
  ~IdleInTransaction() {
    ::close(in_);  // psql reads the end of its input and exits; the transaction rolls back
    ::waitpid(pid_, nullptr, 0);
  }
  IdleInTransaction(const IdleInTransaction&) = delete;
  IdleInTransaction& operator=(const IdleInTransaction&) = delete;

 private:
  pid_t pid_ = -1;
  int in_ = -1;
};

std::string deploymentYaml(const std::string& name) {
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " + name + ", labels: {app: " + name +
         "}}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: " + name +
         "}}\n  template:\n    metadata: {labels: {app: " + name + "}}\n    spec:\n      containers: [{name: app, " +
         "image: example.invalid/app:1}]\n---\n";
}

// A policy for the Deployment `name`; `spec` is the rest of its spec, indented by two spaces.
std::string policyYaml(const std::string& name, const std::string& spec) {
  return "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata: {name: " + name +
         "}\nspec:\n  selector: {matchLabels: {app: " + name + "}}\n" + spec + "---\n";
}

std::string postgresUsage(int port, const std::string& secret, const std::string& more = "") {
  return "  usage:\n    interval: 5s\n" + more +
         "    postgres:\n      host: 127.0.0.1\n      port: " + std::to_string(port) +
         "\n      database: postgres\n      sslMode: disable\n      credentialsSecretRef: {name: " + secret + "}\n";
}

std::string prometheusUsage(const std::string& url, const std::string& connections, const std::string& pending) {
  std::string out = "  usage:\n    interval: 5s\n    prometheus:\n      url: \"" + url +
                    "\"\n      connectionsQuery: '" + connections + "'\n";
  if (!pending.empty()) out += "      pendingQuery: '" + pending + "'\n";
  return out;
}

// GitHub's anchors of a Markdown file's headings (lower case; letters, digits, '-' and '_' kept, spaces to '-').
std::set<std::string> headingAnchors(const std::string& markdown) {
  std::set<std::string> out;
  std::istringstream lines(markdown);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind('#', 0) != 0) continue;
    std::string text = line.substr(line.find_first_not_of('#'));
    std::string anchor;
    for (unsigned char c : text) {
      if (std::isalnum(c) || c == '-' || c == '_')
        anchor += static_cast<char>(std::tolower(c));
      else if (c == ' ')
        anchor += '-';
    }
    out.insert(anchor.substr(anchor.find_first_not_of('-')));
  }
  return out;
}

// Every panel with queries, rows' nested panels included.
void collectPanels(const json& panels, std::vector<json>& out) {
  for (const auto& p : panels) {
    if (p.contains("targets")) out.push_back(p);
    if (p.contains("panels")) collectPanels(p["panels"], out);
  }
}

// A value as Grafana writes it into a regex matcher: metacharacters escaped.
std::string regexEscape(const std::string& s) {
  static const std::string meta = R"(\^$.|?*+()[]{})";
  std::string out;
  for (char c : s) {
    if (meta.find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

class DashboardE2E : public ::testing::Test {
 protected:
  void TearDown() override {
    op_.printLogTailIfFailed();
    op_.stop();
  }
  SuiteOperator op_;
};

TEST_F(DashboardE2E, EveryPanelReturnsSeriesFromARealPrometheusScrapingPoolguard) {
  const json dashboard = json::parse(readFile(sourceDir() + "/charts/poolguard/dashboards/poolguard.json"));
  std::vector<json> panels;
  collectPanels(dashboard["panels"], panels);
  ASSERT_GE(panels.size(), 15u) << "a panel per question of docs/runbook.md";

  // Each panel says its question and links the runbook section that answers it.
  const std::set<std::string> anchors = headingAnchors(readFile(sourceDir() + "/docs/runbook.md"));
  const std::regex runbookLink(R"(docs/runbook\.md#([a-z0-9_-]+))");
  for (const auto& p : panels) {
    const std::string title = p.value("title", "");
    EXPECT_NE(title.find('?'), std::string::npos) << "the title asks the panel's question: " << title;
    std::smatch m;
    const std::string description = p.value("description", "");
    if (!std::regex_search(description, m, runbookLink)) {
      ADD_FAILURE() << title << ": the description links no runbook section";
    } else {
      EXPECT_TRUE(anchors.count(m[1])) << title << ": docs/runbook.md has no section #" << m[1];
    }
  }

  for (const Role& role : {kMonitor, kApp}) {
    auto r = cluster().psql(std::string("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '") +
                            role.name + "') THEN CREATE ROLE " + role.name + " LOGIN PASSWORD '" + role.password + "'" +
                            (*role.memberOf ? std::string(" IN ROLE ") + role.memberOf : "") + "; END IF; END $$");
    ASSERT_EQ(r.exitCode, 0) << r.err;
  }

  // The operator, allowed to query the test's Prometheus, and Prometheus scraping it.
  const int prometheusPort = freePort();
  const std::string prometheusUrl = "http://127.0.0.1:" + std::to_string(prometheusPort) + "/";
  ASSERT_NO_FATAL_FAILURE(op_.start({"--prometheus-allowed-url-prefixes=" + prometheusUrl}));
  Prometheus prometheus(prometheusPort, op_.get()->metricsPort());
  ASSERT_TRUE(prometheus.waitReady()) << prometheus.log();

  const std::string ns = createNamespace("dash");
  const std::string mainDb = "orders-" + ns;      // the real server, checked live
  const std::string reportsDb = "reports-" + ns;  // a ClusterConnectionBudget's, over its team's allocation
  const int deadPort = freePort();                // nothing listens: a usage source that is down
  const std::string pg = "127.0.0.1:" + std::to_string(cluster().pgPort);
  auto r = cluster().kubectl({"-n", ns, "create", "secret", "generic", "monitor",
                              std::string("--from-literal=username=") + kMonitor.name,
                              std::string("--from-literal=password=") + kMonitor.password});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  r = cluster().kubectl({"-n", ns, "annotate", "secret", "monitor",
                         "poolguard.dev/allowed-servers=" + pg + ",127.0.0.1:" + std::to_string(deadPort)});
  ASSERT_EQ(r.exitCode, 0) << r.err;

  // The leaks start before the policies, so the first check already finds them older than the 1 s threshold.
  IdleInTransaction leaked(ns + "/leak");
  IdleInTransaction ended(ns + "/reaper");

  const std::string db = "  database: {name: " + mainDb + ", maxConnections: 100}\n";
  std::string objects;
  // One Deployment of one replica per policy, named and labelled app=<policy>.
  for (const char* name : {"leak", "reaper", "calm", "queue", "greedy", "big", "blind", "lost"})
    objects += deploymentYaml(name);
  // LeakSuspected, and an Enforce policy that writes its workload.
  objects +=
      policyYaml("leak", "  pool: {maxSize: 5}\n" + db +
                             postgresUsage(cluster().pgPort, "monitor", "    thresholds: {idleInTransaction: 1s}\n"));
  // terminateLeaked ends its workload's leaked session.
  objects +=
      policyYaml("reaper", "  pool: {maxSize: 5}\n" + db +
                               postgresUsage(cluster().pgPort, "monitor",
                                             "    thresholds: {idleInTransaction: 1s}\n"
                                             "    actions: {terminateLeaked: {enabled: true, olderThan: 1s}}\n"));
  // Saturated: the held sessions are more than 1% of the server's usable connections.
  objects +=
      policyYaml("calm", "  pool: {maxSize: 5}\n" + db +
                             postgresUsage(cluster().pgPort, "monitor", "    thresholds: {saturationPercent: 1}\n"));
  // PoolExhausted: the pool's pending requests, as Prometheus answers them.
  objects +=
      policyYaml("queue", "  pool: {maxSize: 5}\n" + db + prometheusUsage(prometheusUrl, "vector(1)", "vector(3)"));
  // ExceedsPolicy: 50 connections where 2 pods (1 replica + 1 surge) x maxSize 1 are allowed.
  objects += policyYaml("greedy", "  pool: {maxSize: 1}\n" + db + prometheusUsage(prometheusUrl, "vector(50)", ""));
  // A usage source that is down (PostgresUnreachable), and one whose Secret is missing (a 404 from the API). Their
  // database is another: a failed PostgreSQL read removes its database's live series, whoever else reads them.
  const std::string downDb = "  database: {name: down-" + ns + ", maxConnections: 100}\n";
  objects += policyYaml("blind", "  pool: {maxSize: 5}\n" + downDb + postgresUsage(deadPort, "monitor"));
  objects += policyYaml("lost", "  pool: {maxSize: 5}\n" + downDb + postgresUsage(cluster().pgPort, "no-such-secret"));
  // BudgetExceeded against the team's allocation of a ClusterConnectionBudget; Audit: Applied=False Drifted.
  objects += policyYaml("big", "  mode: Audit\n  pool: {maxSize: 50}\n  database: {name: " + reportsDb + "}\n");
  ASSERT_NO_FATAL_FAILURE(applyYaml(ns, objects));
  r = cluster().kubectl(
      {"apply", "-f", "-"},
      "apiVersion: poolguard.dev/v1alpha1\nkind: ClusterConnectionBudget\nmetadata:\n  name: " + reportsDb +
          "\nspec:\n  maxConnections: 200\n  allocations:\n  - name: team\n"
          "    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: " +
          ns + "}}\n    maxConnections: 10\n");
  ASSERT_EQ(r.exitCode, 0) << r.err;

  // Every finding holds before the dashboard is read.
  for (auto [policy, type, status, reason] : {std::tuple{"leak", "UsageHealthy", "False", "LeakSuspected"},
                                              {"calm", "UsageHealthy", "False", "Saturated"},
                                              {"queue", "UsageHealthy", "False", "PoolExhausted"},
                                              {"greedy", "UsageHealthy", "False", "ExceedsPolicy"},
                                              {"blind", "UsageHealthy", "Unknown", "UsageUnavailable"},
                                              {"big", "WithinBudget", "False", "BudgetExceeded"}}) {
    EXPECT_TRUE(eventually([&] { return conditionIs(ns, policy, type, status, reason); }, 60s))
        << policy << ": " << getJson(ns, std::string("cpol/") + policy).dump(2);
  }
  EXPECT_TRUE(eventually(
      [&] { return op_.get()->metrics().find("poolguard_usage_sessions_terminated_total{") != std::string::npos; },
      30s))
      << getJson(ns, "cpol/reaper").dump(2);

  // The template variables take the values their own queries return, as a dashboard set to "All" of them shows;
  // those must include the test's namespace and databases.
  std::map<std::string, std::string> substitutions{
      {"$__rate_interval", kWindow}, {"$__interval", kWindow}, {"$__range", kWindow}};
  const std::map<std::string, std::set<std::string>> mustInclude{{"namespace", {ns}},
                                                                 {"database", {mainDb, reportsDb}}};
  const std::regex labelValues(R"(^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$)");
  for (const auto& v : dashboard["templating"]["list"]) {
    const std::string name = v.value("name", "");
    if (v.value("type", "") == "datasource") continue;  // chooses the Prometheus; no query refers to it by text
    ASSERT_EQ(v.value("type", ""), "query") << name << ": a variable this test does not know how to set";
    std::smatch m;
    const std::string query = v.value("query", "");
    ASSERT_TRUE(std::regex_match(query, m, labelValues)) << name << ": " << query;
    std::set<std::string> values;
    ASSERT_TRUE(eventually(
        [&] {
          json data = prometheus.api("api/v1/label/" + m[2].str() + "/values", {{"match[]", m[1].str()}});
          values.clear();
          for (const auto& value : data) values.insert(value.get<std::string>());
          for (const auto& want : mustInclude.count(name) ? mustInclude.at(name) : std::set<std::string>{})
            if (!values.count(want)) return false;
          return !values.empty();
        },
        60s))
        << name << ": " << query << " returns no series, or not the test's values";
    std::string alternation;
    for (const auto& value : values) alternation += (alternation.empty() ? "" : "|") + regexEscape(value);
    substitutions["${" + name + "}"] = "(" + alternation + ")";
    substitutions["$" + name] = "(" + alternation + ")";
  }

  // Every query of every panel returns series. The findings hold already; a rate needs two scrapes of a counter
  // inside the window, hence the wait. A query that returns a series whatever poolguard exports would prove nothing.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  int queries = 0;
  for (const auto& p : panels) {
    for (const auto& target : p["targets"]) {
      std::string expr = target.value("expr", "");
      ASSERT_FALSE(expr.empty()) << p.value("title", "");
      EXPECT_EQ(expr.find("vector("), std::string::npos) << expr;
      EXPECT_EQ(expr.find("absent"), std::string::npos) << expr;
      // Longest names first: $__rate_interval before $__range, ${namespace} before $namespace.
      std::vector<std::pair<std::string, std::string>> ordered(substitutions.begin(), substitutions.end());
      std::sort(ordered.begin(), ordered.end(),
                [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
      for (const auto& [from, to] : ordered) expr = replaceAll(expr, from, to);
      ASSERT_EQ(expr.find('$'), std::string::npos) << "a variable the dashboard does not define: " << expr;
      json result;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      eventually(
          [&] {
            result = prometheus.api("api/v1/query", {{"query", expr}});
            return result.is_object() && !result.value("result", json::array()).empty();
          },
          std::max(left, std::chrono::milliseconds(1000)));
      ++queries;
      EXPECT_TRUE(result.is_object() && !result.value("result", json::array()).empty())
          << "panel \"" << p.value("title", "") << "\", target " << target.value("refId", "") << ": no series for\n  "
          << expr << "\nanswer: " << result.dump();
    }
  }
  EXPECT_GE(queries, static_cast<int>(panels.size()));

  r = cluster().kubectl({"delete", "clusterconnectionbudget", reportsDb, "--wait=false"});
  EXPECT_EQ(r.exitCode, 0) << r.err;
  r = cluster().kubectl({"delete", "namespace", ns, "--wait=false"});
  EXPECT_EQ(r.exitCode, 0) << r.err;
}

}  // namespace
}  // namespace poolguard::testing
