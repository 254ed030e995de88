#include "controller/operator.h"

#include <malloc.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "controller/cache_shapes.h"
#include "controller/enqueue.h"
#include "controller/metrics.h"
#include "controller/reconciler.h"
#include "controller/usage_monitor.h"
#include "kube/config.h"
#include "kube/fence.h"
#include "kube/http.h"
#include "kube/rest_client.h"
#include "render/workload.h"
#include "runtime/bind_address.h"
#include "runtime/event_recorder.h"
#include "runtime/informer.h"
#include "runtime/leader_election.h"
#include "runtime/manager.h"
#include "runtime/metrics.h"
#include "runtime/signals.h"
#include "runtime/store.h"
#include "usage/checker.h"
#include "usage/grant.h"

#ifndef POOLGUARD_VERSION
#define POOLGUARD_VERSION "dev"
#endif

namespace poolguard::controller {
namespace {

using json = nlohmann::json;

// %* in a pattern: the message as the body of a JSON string. Messages quote API errors and user input
// (`secrets "x" not found`), and spdlog's %v would copy the quotes raw and break every such line.
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string quoted =
        json(std::string(msg.payload.data(), msg.payload.size())).dump(-1, ' ', false, json::error_handler_t::replace);
    dest.append(quoted.data() + 1, quoted.data() + quoted.size() - 1);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonEscapedMessage>(); }
};

void setupLogging(const RunOptions& o) {
  auto logger = spdlog::stderr_logger_mt("poolguard");
  if (o.logFormat == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc, "\n");
    formatter->add_flag<JsonEscapedMessage>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%*"})");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(spdlog::level::from_str(o.logLevel));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

std::string podNamespace() {
  if (const char* env = std::getenv("POD_NAMESPACE"); env && *env) return env;
  std::ifstream in(std::string(kube::kServiceAccountDir) + "/namespace");
  std::string ns;
  std::getline(in, ns);
  return ns.empty() ? "default" : ns;
}

}  // namespace

int runOperator(const RunOptions& o) {
  // Logging is set up before the first thread starts: spdlog's default logger is read without a lock, so it must
  // not change once other threads (the signal thread first) may log. Signals are blocked and routed before any
  // other thread starts (cpprestsdk starts its pool lazily), so SIGTERM never lands on a thread where it would
  // still kill the process.
  // glibc gives each thread that contends for the heap an arena of its own, up to 8 per core, and each keeps what
  // it freed: with ~30 threads that is several MiB held for nothing. Two arenas serve two cores; a
  // MALLOC_ARENA_MAX in the environment is the operator's own choice and wins. Before any thread starts.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  // Flags first: a malformed value is a usage error (exit 2) before anything starts.
  auto healthAddress = runtime::parseBindAddress("--health-probe-bind-address", o.healthBindAddress);
  auto metricsAddress = runtime::parseBindAddress("--metrics-bind-address", o.metricsBindAddress);
  for (const auto* parsed : {&healthAddress, &metricsAddress}) {
    if (!parsed->ok()) {
      std::cerr << "error: " << parsed->error().message() << "\n";
      return 2;  // a usage error, as CLI11 reports one
    }
  }
  for (const auto& prefix : o.prometheusAllowedUrlPrefixes) {
    if (auto valid = usage::validatePrometheusPrefix(prefix); !valid.ok()) {
      std::cerr << "error: --prometheus-allowed-url-prefixes: " << valid.error().message() << "\n";
      return 2;
    }
  }
  setupLogging(o);
  // Before the first connection, and before the first other thread (it sets SSL_CERT_FILE, which other threads'
  // getenv must not race): the system's authorities read once and shared, not parsed per connection.
  const auto trust = kube::shareSystemTrust();
  std::stop_source stop;
  runtime::ShutdownSignals signals(stop, std::chrono::seconds(o.shutdownTimeoutSeconds));
  auto config = kube::loadDefault(o.kubeconfig, o.context);
  if (!config.ok()) {
    spdlog::error("cannot load Kubernetes client configuration: {}", config.error().message());
    return 1;
  }
  spdlog::info("poolguard {} starting: {}", POOLGUARD_VERSION, kube::describe(*config));

  spdlog::info("TLS trust store: {}", trust);
  // cpprestsdk's pool only drives asynchronous I/O (nothing blocks on it), so a few threads serve every request
  // and watch; its default of 40 costs memory for nothing. Must run before the first request.
  kube::initializeTransportThreads(static_cast<size_t>(std::max(4, o.workers + 2)));
  kube::RestClientOptions clientOpts;
  clientOpts.qps = o.qps;
  clientOpts.burst = o.burst;
  clientOpts.userAgent = std::string("poolguard/") + POOLGUARD_VERSION;
  clientOpts.observer = std::make_shared<ApiRequestMetrics>(*runtime::metricsRegistry());
  auto client = kube::makeRestClient(*config, clientOpts);
  if (!client.ok()) {
    spdlog::error("cannot create the Kubernetes client: {}", client.error().message());
    return 1;
  }
  kube::Client* api = client->get();
  // With leader election, every write goes through a fence that the elector keeps open only while the lease is
  // surely held, and the Lease is renewed on a client of its own (its own connections and rate limit), so neither
  // a stuck connection nor the controllers' own traffic can delay a renewal.
  std::shared_ptr<kube::WriteFence> fence;
  std::unique_ptr<kube::FencedClient> fenced;
  std::unique_ptr<kube::RestClient> leaseClient;
  if (o.leaderElect) {
    auto leases = kube::makeRestClient(*config, clientOpts);
    if (!leases.ok()) {
      spdlog::error("cannot create the Kubernetes client: {}", leases.error().message());
      return 1;
    }
    leaseClient = std::move(*leases);
    fence = std::make_shared<kube::WriteFence>();
    fenced = std::make_unique<kube::FencedClient>(**client, fence);
    api = fenced.get();
  }

  runtime::ManagerOptions mopts;
  if (const auto& health = *healthAddress) {
    mopts.healthHost = health->host;
    mopts.healthPort = health->port;
  } else {
    mopts.healthPort = -1;
  }
  if (const auto& metrics = *metricsAddress) mopts.metricsBindAddress = metrics->toString();
  if (o.leaderElect) {
    runtime::LeaderElectionConfig le;
    le.leaseNamespace = o.leaderElectionNamespace.empty() ? podNamespace() : o.leaderElectionNamespace;
    le.leaseName = o.leaderElectionId;
    le.leaseDuration = std::chrono::seconds(o.leaseDurationSeconds);
    le.renewDeadline = std::chrono::seconds(o.renewDeadlineSeconds);
    le.retryPeriod = std::chrono::seconds(o.retryPeriodSeconds);
    le.fence = fence;
    mopts.leaderElection = le;
    mopts.leaderElectionClient = leaseClient.get();
  }
  // Each initial list page is read whole before its fields are picked out and its items decoded; give the freed
  // pages back so the steady state does not keep the start-up peak.
  mopts.onCachesSynced = [] { malloc_trim(0); };
  // The same after each burst of reconciles (the initial convergence, a policy change), at most every 5 s: glibc
  // keeps what a burst freed for the next one, and the next may not come for hours.
  auto trimAfterWork = [last = std::make_shared<std::atomic<int64_t>>(0)] {
    const int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    int64_t previous = last->load();
    if (now - previous < 5 || !last->compare_exchange_strong(previous, now)) return;
    malloc_trim(0);
  };
  runtime::Manager manager(**client, mopts);

  // Each cache keeps typed records of only what the plan reads (controller/cache_shapes.h): the fields are chosen
  // while parsing, and each object is decoded into its record as it arrives.
  auto informer = [&](kube::Resource r, kube::FieldFilter fields, runtime::Decoder decode,
                      std::string labelSelector = "") -> runtime::Informer& {
    runtime::InformerOptions io;
    io.resource = std::move(r);
    io.namespaces = o.namespaces;
    io.fields = std::make_shared<const kube::FieldFilter>(std::move(fields));
    io.decode = std::move(decode);
    io.labelSelector = std::move(labelSelector);
    // After an API server outage every watch reconnects within 5 s, so the operator catches up promptly.
    io.backoff.max = std::chrono::seconds(5);
    return manager.addInformer(std::move(io));
  };
  auto& policies = informer(kube::resources::connectionPoolPolicies(), wholeObjectFields(), policyDecoder());
  auto& deployments = informer(kube::resources::deployments(), workloadFields(), workloadDecoder());
  auto& statefulSets = informer(kube::resources::statefulSets(), workloadFields(), workloadDecoder());
  auto& daemonSets = informer(kube::resources::daemonSets(), workloadFields(), workloadDecoder());
  auto& cronJobs = informer(kube::resources::cronJobs(), workloadFields(), workloadDecoder());
  auto& jobs = informer(kube::resources::jobs(), workloadFields(), workloadDecoder());
  auto& hpas = informer(kube::resources::horizontalPodAutoscalers(), hpaFields(), hpaDecoder());
  hpas.addIndex(kScaleTargetIndex, scaleTargetRefIndex());
  auto& configMaps = informer(kube::resources::configMaps(), wholeObjectFields(), configMapDecoder(),
                              "app.kubernetes.io/managed-by=poolguard");

  // Why the API server does not serve `r` in namespace `where` ("" for all) to poolguard: its 404 or 403; nullopt
  // when it does (or cannot say: a definite answer decides, a failing API server is asked again for a few seconds,
  // and then the informer is started anyway, as it retries by itself).
  auto notServed = [&](const kube::Resource& r, const std::string& where) -> std::optional<std::string> {
    kube::ListOptions probe;
    probe.limit = 1;
    auto found = (*client)->list(r, where, probe);
    auto absent = [&] {
      return !found.ok() &&
             (found.error().code() == ErrorCode::kNotFound || found.error().code() == ErrorCode::kForbidden);
    };
    for (int attempt = 1; attempt < 5 && !found.ok() && !absent() && !stop.get_token().stop_requested(); ++attempt) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      found = (*client)->list(r, where, probe);
    }
    if (!absent()) return std::nullopt;
    return found.error().message();
  };
  // The cluster-scoped kinds (ClusterConnectionBudgets, ClusterConnectionPoolPolicies) are watched by a cluster-wide
  // install (no --namespace) whose API server has their CRDs and whose ClusterRole grants them. Without, poolguard
  // runs as before and says why once.
  auto clusterKindServed = [&](const kube::Resource& r) {
    auto why = notServed(r, "");
    if (why)
      spdlog::warn("{}s are not applied: {} (install crds/ and the ClusterRole of deploy/rbac to use them)", r.kind,
                   *why);
    return !why;
  };
  runtime::Informer* budgets = nullptr;
  runtime::Informer* clusterPolicies = nullptr;
  runtime::Informer* namespaces = nullptr;
  if (o.namespaces.empty()) {
    if (clusterKindServed(kube::resources::clusterConnectionBudgets()))
      budgets = &informer(kube::resources::clusterConnectionBudgets(), wholeObjectFields(), budgetDecoder());
    if (clusterKindServed(kube::resources::clusterConnectionPoolPolicies())) {
      clusterPolicies =
          &informer(kube::resources::clusterConnectionPoolPolicies(), wholeObjectFields(), policyDecoder());
    }
    // A budget's allocations and a cluster policy's namespaceSelector select namespaces by their labels.
    if (budgets || clusterPolicies)
      namespaces = &informer(kube::resources::namespaces(), namespaceFields(), namespaceDecoder());
  } else {
    spdlog::info(
        "ClusterConnectionBudgets and ClusterConnectionPoolPolicies are not watched: they are cluster scoped, and "
        "--namespace limits poolguard to namespaces");
  }
  // Argo Rollouts is optional: its Rollouts are watched where the API server serves them (asked in the first
  // watched namespace, or cluster-wide), and poolguard says once when it does not.
  runtime::Informer* rollouts = nullptr;
  if (auto why = notServed(kube::resources::rollouts(), o.namespaces.empty() ? "" : o.namespaces.front())) {
    spdlog::info(
        "Argo Rollouts' Rollouts are not watched: {} (policies with kinds: [Rollout] govern none; install Argo "
        "Rollouts' CRD and restart poolguard to govern them)",
        *why);
  } else {
    rollouts = &informer(kube::resources::rollouts(), workloadFields(), workloadDecoder());
  }
  // A Rollout is written only when its CRD merges containers and env by name under server-side apply (Argo
  // Rollouts v1.9 and later); with an older CRD an apply would replace the containers whole.
  std::optional<std::string> rolloutsNotWritable;
  if (rollouts) {
    rolloutsNotWritable = rolloutCrdProblem(**client);
    if (rolloutsNotWritable) spdlog::warn("Rollouts are counted and checked, not written: {}", *rolloutsNotWritable);
  }
  // A cluster policy finds what it wrote in any namespace.
  for (runtime::Informer* i : {&deployments, &statefulSets, &daemonSets, &jobs, &cronJobs, rollouts}) {
    if (i) i->addIndex(kClusterPolicyIndex, clusterPolicyIndex());
  }

  auto registry = runtime::metricsRegistry();
  ControllerMetrics metrics(*registry);
  runtime::EventRecorder events(*api);
  usage::CheckerOptions usageOptions;
  usageOptions.prometheusAllowedUrlPrefixes = o.prometheusAllowedUrlPrefixes;
  usage::Checker usageChecker(SystemClock::instance(), registry.get(), usageOptions);
  // Designated, so a field out of order does not compile (every store has the same type).
  auto store = [](const runtime::Informer* i) { return i ? const_cast<runtime::Store*>(&i->store()) : nullptr; };
  Caches caches{.policies = store(&policies),
                .deployments = store(&deployments),
                .statefulSets = store(&statefulSets),
                .hpas = store(&hpas),
                .configMaps = store(&configMaps),
                .budgets = store(budgets),
                .namespaces = store(namespaces),
                .clusterPolicies = store(clusterPolicies),
                .daemonSets = store(&daemonSets),
                .cronJobs = store(&cronJobs),
                .rollouts = store(rollouts),
                .jobs = store(&jobs)};
  // Checks run on the monitor's threads; a policy whose findings changed is reconciled (queue set below).
  runtime::Controller* controller = nullptr;
  runtime::Controller* budgetController = nullptr;
  Reconciler* reconcilerForUsage = nullptr;  // set below; checks start only once reconciles run
  UsageMonitor usageMonitor(
      usageChecker, *api, SystemClock::instance(),
      [&controller, &budgetController, &reconcilerForUsage](const std::string& key) {
        // A budget's central check is reported under its own key, and its findings are the policies' of the
        // database that have no usage block; every other key is a policy's.
        if (key.rfind(kBudgetUsagePrefix, 0) == 0) {
          const std::string database = key.substr(std::string(kBudgetUsagePrefix).size());
          if (budgetController) budgetController->queue().add(database);
          if (controller && reconcilerForUsage) {
            for (const auto& k : reconcilerForUsage->policiesWithoutUsageOf(database)) controller->queue().add(k);
          }
          return;
        }
        if (controller) controller->queue().add(key);
      },
      &events, fence);
  Reconciler reconciler(*api, caches, SystemClock::instance(), &events, &metrics, &usageMonitor);
  reconcilerForUsage = &reconciler;
  reconciler.setOperatorNamespace(podNamespace());
  if (rollouts) reconciler.watchRolloutCrd(rolloutsNotWritable);

  // Which policies a workload, HPA or budget event concerns (controller/enqueue.h).
  const EventKeys eventKeys(caches);

  runtime::ControllerOptions copts;
  copts.name = "connectionpoolpolicy";
  copts.workers = o.workers;
  copts.onDrained = trimAfterWork;
  controller = &manager.addController(copts, [&](const std::string& key) -> Result<runtime::ReconcileResult> {
    auto start = std::chrono::steady_clock::now();
    auto out = reconciler.reconcile(key);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // The budget of the policy's database shows the totals this reconcile may have moved, whether or not all of
    // its writes went through. (A policy that appears, goes or changes database enqueues its budgets from the
    // policy informer, below.)
    if (budgetController) {
      if (std::string db = reconciler.databaseOf(key); !db.empty()) budgetController->queue().add(db);
    }
    if (!out.ok()) {
      metrics.reconciled("error", seconds);
      spdlog::warn("reconcile {} failed: {}", key, out.error().message());
      return out.error();
    }
    for (const auto& k : out->alsoEnqueue) controller->queue().add(k);
    metrics.reconciled(out->requeueAfter ? "requeue" : "success", seconds);
    runtime::ReconcileResult rr;
    if (out->requeueAfter) rr.requeueAfter = *out->requeueAfter;
    return rr;
  });

  if (budgets) {
    runtime::ControllerOptions bopts;
    bopts.name = "clusterconnectionbudget";
    bopts.workers = 1;
    bopts.onDrained = trimAfterWork;
    budgetController = &manager.addController(bopts, [&](const std::string& key) -> Result<runtime::ReconcileResult> {
      auto out = reconciler.reconcileBudget(key);
      if (!out.ok()) {
        spdlog::warn("reconcile ClusterConnectionBudget {} failed: {}", key, out.error().message());
        return out.error();
      }
      return runtime::ReconcileResult{};
    });
    // A budget's own change: its status, and the policies of its database that read what changed (its capacity,
    // ceilings and usage check bind them all; a change of its allocations alone, those in the namespaces whose share
    // changed); a status write none (controller/enqueue.h).
    budgets->addHandlers(runtime::enqueueKeys(budgetController->queue(), {}, policyChanged));
    runtime::EventHandlers budgetToPolicies;
    auto enqueueBudgetChange = [&queue = controller->queue(), &eventKeys](const kube::Object* before,
                                                                          const kube::Object* after) {
      for (const auto& k : eventKeys.ofBudget(before, after)) queue.add(k);
    };
    budgetToPolicies.onAdd = [enqueueBudgetChange](const runtime::ObjectPtr& b) {
      enqueueBudgetChange(nullptr, b.get());
    };
    budgetToPolicies.onUpdate = [enqueueBudgetChange](const runtime::ObjectPtr& before,
                                                      const runtime::ObjectPtr& after) {
      enqueueBudgetChange(before.get(), after.get());
    };
    budgetToPolicies.onDelete = [enqueueBudgetChange](const runtime::ObjectPtr& b) {
      enqueueBudgetChange(b.get(), nullptr);
    };
    budgets->addHandlers(std::move(budgetToPolicies));
    // A policy that appears, goes or moves to another database changes what both budgets count.
    policies.addHandlers(runtime::enqueueKeys(
        budgetController->queue(),
        [](const kube::Object& obj) {
          const auto& p = runtime::recordAs<model::PolicyObject>(obj);
          return p.parsed ? std::vector<std::string>{p.parsed->spec.database.name} : std::vector<std::string>{};
        },
        policyChanged));
    // A namespace's labels decide the allocation its policies count against: a relabelled (or new) namespace
    // changes the shares of every database with allocations, and their budgets' namespace counts.
    namespaces->addHandlers(runtime::enqueueKeys(
        budgetController->queue(), [&reconciler](const kube::Object&) { return reconciler.budgetsWithAllocations(); },
        namespaceLabelsChanged));
  }
  if (namespaces) {
    // ... and which cluster policies may govern its workloads.
    namespaces->addHandlers(runtime::enqueueKeys(
        controller->queue(),
        [&reconciler](const kube::Object&) {
          auto keys = reconciler.policiesUnderAllocations();
          auto cluster = reconciler.allClusterPolicies();
          keys.insert(keys.end(), cluster.begin(), cluster.end());
          return keys;
        },
        namespaceLabelsChanged));
  }
  if (clusterPolicies) {
    // A cluster policy's own change; and, like a policy, the budget of its database (or both, when it moved).
    clusterPolicies->addHandlers(runtime::enqueueKeys(
        controller->queue(), [&reconciler](const kube::Object& obj) { return reconciler.affectedByClusterPolicy(obj); },
        policyChanged));
    if (budgetController) {
      clusterPolicies->addHandlers(runtime::enqueueKeys(
          budgetController->queue(),
          [](const kube::Object& obj) {
            const auto& p = runtime::recordAs<model::PolicyObject>(obj);
            return p.parsed ? std::vector<std::string>{p.parsed->spec.database.name} : std::vector<std::string>{};
          },
          policyChanged));
    }
  }

  auto& queue = controller->queue();
  // Policies in a namespace, and the cluster policies that may govern its workloads, decide together who governs a
  // workload: a change to one may change another's result.
  auto policiesOfNamespace = [&reconciler](const kube::Object& obj) {
    auto keys = reconciler.policiesInNamespace(obj.meta.namespace_);
    auto cluster = reconciler.clusterPoliciesFor(obj.meta.namespace_);
    keys.insert(keys.end(), cluster.begin(), cluster.end());
    return keys;
  };
  auto policyAndNeighbours = [policiesOfNamespace](const kube::Object& obj) {
    auto keys = policiesOfNamespace(obj);
    keys.push_back(runtime::objectKey(obj));
    return keys;
  };
  // Only changes of what the plan reads enqueue anything. The records hold only those fields, so the status
  // updates of workloads and HPAs (the controller manager's, every few seconds) change nothing in them but the
  // resourceVersion; a workload's generation is ignored too (it moves with spec fields the plan does not read,
  // such as an image); and a policy's own status writes change neither its generation nor its metadata.
  policies.addHandlers(runtime::enqueueKeys(queue, policyAndNeighbours, policyChanged));
  // A workload's change reaches the policies whose plan reads it (those that select it, the one that wrote it, and
  // the Clamp policies of its governor's database), an HPA's those of its target (old and new: each state is
  // mapped); not every policy of the namespace.
  for (runtime::Informer* i : {&deployments, &statefulSets, &daemonSets, &jobs, &cronJobs, rollouts}) {
    if (i) {
      i->addHandlers(runtime::enqueueKeys(
          queue, [&eventKeys](const kube::Object& w) { return eventKeys.ofWorkload(w); }, workloadChanged));
    }
  }
  hpas.addHandlers(runtime::enqueueKeys(
      queue, [&eventKeys](const kube::Object& h) { return eventKeys.ofHpa(h); }, hpaChanged));
  configMaps.addHandlers(runtime::enqueueKeys(queue, policiesOfNamespace, configMapChanged));

  auto status = manager.run(stop.get_token());
  usageMonitor.stop();
  events.flush(std::chrono::seconds(2));
  events.stop();
  if (!status.ok()) {
    spdlog::error("poolguard stopped: {}", status.error().message());
    return 1;
  }
  spdlog::info("poolguard stopped");
  return 0;
}

}  // namespace poolguard::controller
