// poolguard: the operator (`run`), the offline commands for CI pipelines (`validate`, `render`, `plan`) and the
// on-call view (`status`).
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cmd/version.h"
#include "common/guard.h"
#include "controller/operator.h"
#include "offline/commands.h"
#include "offline/live.h"
#include "offline/status_view.h"
#include "runtime/leader_election.h"

namespace {

void addOfflineFiles(CLI::App* cmd, std::vector<std::string>& files, bool& recursive, std::string& output,
                     bool required = true) {
  auto* f = cmd->add_option("-f,--filename", files,
                            "YAML or JSON file(s) with one or more documents, or a directory of them (its .yaml, "
                            ".yml and .json files); - reads standard input");
  f->type_name("FILE|DIR");
  if (required) f->required();
  cmd->add_flag("-R,--recursive", recursive, "read the subdirectories of the directories given with -f too");
  cmd->add_option("-o,--output", output, "output format")
      ->check(CLI::IsMember({"text", "json", "yaml"}))
      ->capture_default_str();
}

int run(int argc, char** argv) {
  CLI::App app{"poolguard keeps database connection pools configured, within capacity, and healthy."};
  app.require_subcommand(1);
  app.set_version_flag("--version", POOLGUARD_VERSION);

  poolguard::controller::RunOptions run;
  auto* runCmd = app.add_subcommand("run", "Run the operator");
  runCmd->add_option("--kubeconfig", run.kubeconfig,
                     "kubeconfig file (default: $KUBECONFIG, then in-cluster, then ~/.kube/config)");
  runCmd->add_option("--context", run.context, "kubeconfig context (default: the current context)");
  runCmd->add_option("--namespace", run.namespaces, "watch only this namespace (repeatable; default: all namespaces)");
  runCmd->add_flag("--leader-elect", run.leaderElect, "elect a leader among replicas with a coordination.k8s.io Lease");
  runCmd->add_option("--leader-election-namespace", run.leaderElectionNamespace,
                     "namespace of the leader-election Lease (default: the pod's namespace, else default)");
  runCmd->add_option("--leader-election-id", run.leaderElectionId, "name of the Lease")->capture_default_str();
  runCmd->add_option("--lease-duration", run.leaseDurationSeconds, "seconds a lease is valid")->capture_default_str();
  runCmd
      ->add_option("--renew-deadline", run.renewDeadlineSeconds,
                   "seconds the leader keeps trying to renew; less than --lease-duration, more than 1.2 times "
                   "--retry-period")
      ->capture_default_str();
  runCmd->add_option("--retry-period", run.retryPeriodSeconds, "seconds between lease attempts")->capture_default_str();
  runCmd->add_option("--metrics-bind-address", run.metricsBindAddress, "address of /metrics; 0 disables")
      ->capture_default_str();
  runCmd
      ->add_option("--health-probe-bind-address", run.healthBindAddress, "address of /healthz and /readyz; 0 disables")
      ->capture_default_str();
  runCmd->add_option("--workers", run.workers, "concurrent reconciles")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  runCmd->add_option("--log-format", run.logFormat, "log format")
      ->check(CLI::IsMember({"json", "text"}))
      ->capture_default_str();
  runCmd->add_option("--log-level", run.logLevel, "log level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  runCmd->add_option("--qps", run.qps, "client-side request rate limit to the API server")->capture_default_str();
  runCmd->add_option("--burst", run.burst, "client-side request burst")->capture_default_str();
  runCmd->add_option("--shutdown-timeout", run.shutdownTimeoutSeconds, "seconds to finish in-flight work on SIGTERM")
      ->capture_default_str();
  runCmd
      ->add_option("--prometheus-allowed-url-prefixes", run.prometheusAllowedUrlPrefixes,
                   "Prometheus endpoints policies may query: URL prefixes, comma-separated or repeated, such as "
                   "http://prometheus.monitoring.svc:9090 (default: none)")
      ->delimiter(',');

  std::vector<std::string> files;
  std::string output = "text";
  bool recursive = false;
  auto* validateCmd = app.add_subcommand(
      "validate",
      "Check ConnectionPoolPolicies, ClusterConnectionPoolPolicies and ClusterConnectionBudgets offline; exit 1 "
      "when any is invalid, 2 when a document or file cannot be read");
  addOfflineFiles(validateCmd, files, recursive, output);
  auto* renderCmd =
      app.add_subcommand("render",
                         "Print the workloads and ConfigMaps exactly as Enforce would write them; exit 2 when a "
                         "document or file cannot be read");
  addOfflineFiles(renderCmd, files, recursive, output);
  auto* planCmd = app.add_subcommand(
      "plan",
      "Print the connection budget per database; exit 1 when over budget, 2 when a document or file cannot be read");
  addOfflineFiles(planCmd, files, recursive, output, false);
  bool live = false;
  std::string liveKubeconfig, liveContext, liveNamespace;
  planCmd->add_flag("--live", live,
                    "overlay the files on the cluster's live policies, budgets, namespaces, workloads and HPAs (by "
                    "kind, namespace and name): read-only; -f is optional then");
  planCmd->add_option("--kubeconfig", liveKubeconfig,
                      "with --live: kubeconfig file (default: $KUBECONFIG, then "
                      "in-cluster, then ~/.kube/config)");
  planCmd->add_option("--context", liveContext, "with --live: kubeconfig context (default: the current context)");
  planCmd->add_option("-n,--namespace", liveNamespace,
                      "with --live: the namespace of the files' objects that name none (default: the context's)");
  poolguard::offline::StatusCommand status;
  auto* statusCmd = app.add_subcommand(
      "status",
      "Print, per database, what poolguard reports: capacity, allocations, worst case, live connections, leaks and "
      "saturation, the top workloads, the clients no policy governs, and each policy's state (read-only: list on "
      "poolguard's kinds)");
  statusCmd->add_option("--kubeconfig", status.kubeconfig,
                        "kubeconfig file (default: $KUBECONFIG, then in-cluster, then ~/.kube/config)");
  statusCmd->add_option("--context", status.context, "kubeconfig context (default: the current context)");
  statusCmd->add_option("-n,--namespace", status.ns,
                        "only this namespace's ConnectionPoolPolicies (default: all namespaces); the cluster-scoped "
                        "kinds are always read");
  statusCmd->add_option("--database", status.view.database, "only this database (default: all)");
  statusCmd->add_option("--top", status.view.top, "workloads listed per database")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  statusCmd->add_option("-o,--output", status.output, "output format")
      ->check(CLI::IsMember({"text", "json", "yaml"}))
      ->capture_default_str();
  statusCmd->add_flag("-w,--watch", status.watch, "print again every --interval until interrupted");
  statusCmd->add_option("--interval", status.intervalSeconds, "seconds between refreshes with --watch")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_subcommand("version", "Print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (runCmd->parsed()) {
    // A usage error (exit 2) before anything starts, as CLI11 reports one.
    if (auto timing = poolguard::runtime::validateLeaderElectionFlags(run.leaseDurationSeconds,
                                                                      run.renewDeadlineSeconds, run.retryPeriodSeconds);
        !timing.ok()) {
      std::cerr << "error: " << timing.error().message() << "\n";
      return 2;
    }
    return poolguard::controller::runOperator(run);
  }
  namespace offline = poolguard::offline;
  if (statusCmd->parsed()) return offline::runStatus(status, std::cout, std::cerr);
  if (validateCmd->parsed() || renderCmd->parsed() || planCmd->parsed()) {
    if (planCmd->parsed() && !live && (!liveKubeconfig.empty() || !liveContext.empty() || !liveNamespace.empty())) {
      std::cerr << "error: --kubeconfig, --context and --namespace need --live\n";
      return offline::kExitUsage;
    }
    if (planCmd->parsed() && !live && files.empty()) {
      std::cerr << "error: plan needs -f FILE (or --live to plan what the cluster runs)\n";
      return offline::kExitUsage;
    }
    offline::Loaded loaded = files.empty() ? offline::Loaded{} : offline::loadDocuments(files, recursive);
    if (validateCmd->parsed()) return offline::runValidateLoaded(loaded, output, std::cout, std::cerr);
    if (renderCmd->parsed()) return offline::runRenderLoaded(loaded, output, std::cout, std::cerr);
    if (live) {
      auto fromCluster = offline::readLive(liveKubeconfig, liveContext);
      if (!fromCluster.ok()) {
        std::cerr << "error: " << fromCluster.error().message() << "\n";
        return offline::kExitUsage;
      }
      offline::placeInNamespace(loaded.documents,
                                liveNamespace.empty() ? fromCluster->defaultNamespace : liveNamespace);
      loaded.documents = offline::overlay(std::move(fromCluster->documents), std::move(loaded.documents));
    }
    if (live) return offline::runPlanLive(loaded, offline::kLiveSource, output, std::cout, std::cerr);
    return offline::runPlanLoaded(loaded, output, std::cout, std::cerr);
  }
  std::cout << "poolguard " << POOLGUARD_VERSION << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return poolguard::guardedMain([&] { return run(argc, argv); }, std::cerr);
}
