#include "controller/plan.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "controller/objects.h"
#include "controller/reconciler.h"
#include "policy/selection.h"
#include "render/workload.h"

namespace poolguard::controller {
namespace {

using policy::WorkloadKind;

std::string summarizeDifferences(const std::vector<std::string>& differences) {
  std::string out;
  for (size_t i = 0; i < differences.size() && i < 8; ++i) out += (i ? "; " : "") + differences[i];
  if (differences.size() > 8) out += "; and " + std::to_string(differences.size() - 8) + " more";
  return out;
}

const std::vector<WorkloadView>& workloadsOf(const Snapshot& s, const std::string& ns) {
  static const std::vector<WorkloadView> none;
  auto it = s.workloads.find(ns);
  return it == s.workloads.end() ? none : it->second;
}

budget::WorkloadFacts factsOf(const WorkloadView& w) {
  return budget::workloadFacts(*w.object, w.hpa ? &*w.hpa : nullptr);
}

}  // namespace

PolicyView viewOf(std::shared_ptr<const model::PolicyObject> object) {
  PolicyView v;
  v.parsed = object->parsed;
  v.deleting = !object->meta.deletionTimestamp.empty();
  v.object = std::move(object);
  return v;
}

std::map<std::string, std::string> namespaceLabelsOf(const Snapshot& s, const std::string& ns) {
  std::map<std::string, std::string> labels;
  if (auto it = s.namespaceLabels.find(ns); it != s.namespaceLabels.end()) labels = it->second;
  labels.emplace(model::kNamespaceNameLabel, ns);
  return labels;
}

std::string workloadKey(WorkloadKind kind, const kube::Object& w) {
  return policy::WorkloadKey{kind, w.meta.namespace_, w.meta.name}.toString();
}

const policy::Policy* governingPolicy(WorkloadKind kind, const kube::Object& workload,
                                      const std::vector<PolicyView>& candidates,
                                      const std::map<std::string, std::string>* namespaceLabels) {
  std::vector<const policy::Policy*> selecting;
  const auto& labels = workload.meta.labels;
  const std::string& ns = workload.meta.namespace_;
  for (const auto& c : candidates) {
    if (c.deleting || !c.parsed) continue;
    if (policy::selects(*c.parsed, kind, ns, labels, namespaceLabels)) selecting.push_back(&*c.parsed);
  }
  int w = policy::winner(selecting);
  return w < 0 ? nullptr : selecting[static_cast<size_t>(w)];
}

std::vector<std::string> namespacesOf(const Snapshot& s, const policy::Policy& p) {
  if (!p.clusterScoped()) return {p.namespace_};
  std::vector<std::string> out;
  for (const auto& [ns, views] : s.workloads) {
    auto labels = namespaceLabelsOf(s, ns);
    if (p.spec.namespaceSelector && poolguard::matches(*p.spec.namespaceSelector, labels)) out.push_back(ns);
  }
  return out;
}

bool governs(const Snapshot& s, const policy::Policy& p, const WorkloadView& w) {
  const std::string& ns = w.object->meta.namespace_;
  const auto labels = namespaceLabelsOf(s, ns);
  if (!policy::selects(p, w.kind, ns, w.object->meta.labels, &labels)) return false;
  const policy::Policy* winner = governingPolicy(w.kind, *w.object, s.policies, &labels);
  return winner != nullptr && policy::sameObject(*winner, p);
}

std::vector<usage::GovernedWorkload> governedWorkloads(const Snapshot& s) {
  const policy::Policy& pol = *s.self.parsed;
  const int32_t lastRenderedMaxSize =
      s.storedStatus.value("budget", json::object()).value("effectiveMaxSize", pol.spec.pool.maxSize);
  std::vector<usage::GovernedWorkload> out;
  for (const auto& ns : namespacesOf(s, pol)) {
    for (WorkloadKind kind : pol.spec.kinds) {
      for (const auto& w : workloadsOf(s, ns)) {
        if (w.kind != kind || !governs(s, pol, w)) continue;
        // A rollout's extra pods, and the old ones still terminating when the policy counts them, may hold
        // connections: the usage check allows them as the budget does.
        auto facts =
            budget::underPolicy(factsOf(w), pol.spec.budget.terminatingPods == policy::TerminatingPods::kCount);
        out.push_back(usage::GovernedWorkload{
            ns, w.object->meta.name,
            render::expandApplicationName(pol.spec.delivery.applicationName, ns, w.object->meta.name), facts.podsNow,
            facts.podsMax, facts.surge + facts.terminating, std::nullopt, lastRenderedMaxSize,
            pol.spec.pool.processesPerPod, pol.spec.pool.overheadPerPod});
      }
    }
  }
  return out;
}

Plan plan(const Snapshot& s) {
  const policy::Policy& pol = *s.self.parsed;
  const std::string& name = pol.name;
  Plan out;
  StatusInput& in = out.status;
  in.generation = s.self.object->meta.generation;
  in.usage = s.usage;

  // Budget: the facts of every governed workload of every valid policy naming this database. Every policy of a
  // database sees the same budget, whichever reconciles: the smallest declared max_connections and the largest
  // reserve win (as in `poolguard plan`); the server's value when none declares one.
  std::vector<budget::PolicyInput> budgetInputs;
  std::optional<int32_t> maxConnections;
  int32_t reserved = pol.spec.database.reservedConnections;
  // A ClusterConnectionBudget's ceiling bounds every pool of the database before the budget is summed.
  const policy::ClusterBudget* cluster = s.clusterBudget ? &*s.clusterBudget : nullptr;
  const std::optional<int32_t> ceiling = cluster ? cluster->ceilings.maxSize : std::nullopt;
  for (const auto& e : s.policies) {
    if (!e.parsed || e.deleting || e.parsed->spec.database.name != pol.spec.database.name) continue;
    const auto& p = *e.parsed;
    // A cluster policy counts once per namespace it governs workloads in: each namespace may be in another
    // allocation, so Clamp may size its pools apart.
    bool counted = false;
    for (const auto& ns : namespacesOf(s, p)) {
      budget::PolicyInput bi = budget::policyInput(p);
      bi.namespace_ = ns;
      bi.cluster = p.clusterScoped();
      if (ceiling) bi.maxSize = std::min(bi.maxSize, *ceiling);
      if (cluster && !cluster->allocations.empty())
        bi.allocation = policy::allocationOf(*cluster, namespaceLabelsOf(s, ns));
      for (WorkloadKind kind : p.spec.kinds) {
        for (const auto& w : workloadsOf(s, ns)) {
          if (w.kind == kind && governs(s, p, w)) bi.workloads.push_back(factsOf(w));
        }
      }
      if (p.clusterScoped() && bi.workloads.empty()) continue;
      counted = true;
      budgetInputs.push_back(std::move(bi));
    }
    if (!counted && p.clusterScoped()) {  // governs nothing yet: listed, at no cost
      budget::PolicyInput bi = budget::policyInput(p);
      bi.cluster = true;
      if (ceiling) bi.maxSize = std::min(bi.maxSize, *ceiling);
      budgetInputs.push_back(std::move(bi));
    }
    const auto& d = p.spec.database;
    if (d.maxConnections && (!maxConnections || *d.maxConnections < *maxConnections)) maxConnections = d.maxConnections;
    // max_connections may still come from a check of the server: this policy's own, unless its last check
    // failed in a way only a change cures (a missing Secret, refused credentials); another policy's.
    const bool broken =
        s.usage && s.usage->postgresNeedsChange && runtime::objectKey(*e.object) == runtime::objectKey(*s.self.object);
    in.maxConnectionsComing = in.maxConnectionsComing || (p.spec.usage.postgres.has_value() && !broken);
    reserved = std::max(reserved, d.reservedConnections);
  }
  // The budget's capacity wins over every policy's declaration; the server's value when nobody declares one.
  if (cluster && cluster->maxConnections) maxConnections = cluster->maxConnections;
  if (cluster && cluster->reservedConnections) reserved = *cluster->reservedConnections;
  if (!maxConnections) maxConnections = s.discoveredMaxConnections;
  if (cluster && cluster->usage && cluster->usage->postgres) in.maxConnectionsComing = true;
  std::vector<budget::AllocationInput> allocations;
  if (cluster) {
    for (const auto& a : cluster->allocations) allocations.push_back({a.name, a.maxConnections});
  }
  out.database = budget::computeDatabase(pol.spec.database.name, maxConnections, reserved, budgetInputs, allocations);
  const budget::DatabaseBudget& db = out.database;
  // This policy's share of the budget: one entry, or one per namespace for a cluster policy.
  std::vector<const budget::PolicyBudget*> mineAll;
  for (const auto& pb : db.policies) {
    if (pb.cluster == pol.clusterScoped() && pb.name == name &&
        (pol.clusterScoped() || pb.namespace_ == pol.namespace_))
      mineAll.push_back(&pb);
  }
  const budget::PolicyBudget* mine = mineAll.size() == 1 ? mineAll.front() : nullptr;
  const int32_t uncapped = std::min(pol.spec.pool.maxSize, ceiling.value_or(pol.spec.pool.maxSize));
  auto effectiveIn = [&](const std::string& ns) {
    for (const auto* pb : mineAll) {
      if (pb->namespace_ == ns) return pb->effectiveMaxSize;
    }
    return uncapped;
  };
  // What the status reports: the smallest pool this policy renders anywhere.
  int32_t effectiveMaxSize = mineAll.empty() ? uncapped : mineAll.front()->effectiveMaxSize;
  for (const auto* pb : mineAll) effectiveMaxSize = std::min(effectiveMaxSize, pb->effectiveMaxSize);

  in.policyName = name;
  in.mode = pol.spec.mode;
  if (const auto& timeout = pol.spec.pool.idleInTransactionTimeout) {
    in.idleInTransactionLibraryCaveat = render::idleInTransactionCaveat(pol.spec.profile);
    in.idleInTransactionOptions = render::idleInTransactionOptions(*timeout);
  }
  in.onExceeded = pol.spec.budget.onExceeded;
  in.budget.database = db.database;
  in.budget.maxConnections = db.maxConnections;
  in.budget.reservedConnections = db.reservedConnections;
  in.budget.available = db.available;
  in.budget.steadyState = db.steadyState;
  in.budget.worstCase = db.worstCase;
  in.budget.unclampedWorstCase = db.unclampedWorstCase;
  in.budget.effectiveMaxSize = effectiveMaxSize;
  for (const auto* pb : mineAll) {
    in.budget.policySteadyState += pb->steadyState;
    in.budget.policyWorstCase += pb->worstCase;
    in.budget.policyUnclampedWorstCase += pb->unclampedWorstCase;
    in.budget.policyOverheadWorstCase += pb->overheadWorstCase;
    in.budget.policyTerminatingWorstCase += pb->terminatingWorstCase;
    in.budget.clamped = in.budget.clamped || pb->clamped;
  }
  // A namespaced policy counts against one share (a cluster policy's namespaces may be in several).
  if (mine && !pol.clusterScoped()) {
    if (const budget::AllocationBudget* share = db.shareOf(*mine)) in.budget.allocation = *share;
  }
  if (pol.clusterScoped()) {
    std::set<const budget::AllocationBudget*> seen;
    for (const auto* pb : mineAll) {
      const budget::AllocationBudget* share = db.shareOf(*pb);
      if (share && seen.insert(share).second) in.budget.shares.push_back(*share);
    }
  }
  if (cluster) {
    const std::string source = "ClusterConnectionBudget " + cluster->database;
    in.budget.budgetSource = source;
    if (ceiling && pol.spec.pool.maxSize > *ceiling) in.budget.ceiling = *ceiling;
    const auto& declared = pol.spec.database;
    if (cluster->maxConnections && declared.maxConnections && *declared.maxConnections != *cluster->maxConnections) {
      in.budget.notes.push_back("this policy's database.maxConnections " + std::to_string(*declared.maxConnections) +
                                " is not used: " + source + " sets " + std::to_string(*cluster->maxConnections));
    }
    if (cluster->ceilings.requireLeakDetection && pol.spec.pool.leakDetectionThreshold.count() == 0) {
      in.budget.notes.push_back(source + " requires leak detection: pool.leakDetectionThreshold 0 is rendered as " +
                                policy::formatDuration(policy::kRequiredLeakDetection));
    }
  }

  // Workload by workload: who governs it, what it should carry, and whether that needs a write.
  std::set<std::tuple<WorkloadKind, std::string, std::string>> governed;  // kind, namespace, name
  std::set<std::string> wantedConfigMaps;
  render::RenderOptions ropts;
  ropts.requireLeakDetection = cluster && cluster->ceilings.requireLeakDetection;
  const std::vector<std::string> selfNamespaces = namespacesOf(s, pol);
  for (const auto& ns : selfNamespaces) {
    const auto nsLabels = namespaceLabelsOf(s, ns);
    ropts.effectiveMaxSize = effectiveIn(ns);
    for (WorkloadKind kind : pol.spec.kinds) {
      for (const auto& view : workloadsOf(s, ns)) {
        const model::Workload& w = *view.object;
        if (view.kind != kind || !policy::selects(pol, kind, ns, w.meta.labels, &nsLabels)) continue;
        WorkloadStatus ws;
        ws.kind = kind;
        ws.namespace_ = pol.clusterScoped() ? ns : "";
        ws.name = w.meta.name;
        auto facts = factsOf(view);
        ws.replicas = facts.podsNow;
        ws.maxReplicas = facts.podsMax;
        ws.maxSize = *ropts.effectiveMaxSize;
        const policy::Policy* winner = governingPolicy(kind, w, s.policies, &nsLabels);
        if (winner == nullptr || !policy::sameObject(*winner, pol)) {
          // A cluster policy leaves the workloads of a namespace's own policies alone: not its to govern, and no
          // conflict. Among policies of one scope the loser says who won.
          if (pol.clusterScoped() && winner != nullptr && !winner->clusterScoped()) continue;
          ws.state = WorkloadState::kConflicted;
          std::string by = winner == nullptr         ? "another policy"
                           : winner->clusterScoped() ? policy::describe(*winner)
                                                     : "policy " + winner->name;
          ws.message = "governed by " + by + " (higher priority, or older at equal priority)";
          in.workloads.push_back(std::move(ws));
          continue;
        }
        governed.insert({kind, ns, ws.name});
        if (kind == WorkloadKind::kRollout && !w.workloadRefName.empty()) {
          // Its pods run another workload's template: counted here, given the settings there.
          ws.state = WorkloadState::kApplied;
          ws.message = "runs the pod template of " + (w.workloadRefKind.empty() ? "Deployment" : w.workloadRefKind) +
                       " " + w.workloadRefName +
                       " (spec.workloadRef): the settings go there; let the policy select it too";
          in.workloads.push_back(std::move(ws));
          continue;
        }
        auto desired = render::renderWorkload(pol, w, ropts);
        if (!desired.ok()) {
          ws.state = WorkloadState::kFailed;
          ws.needsChange = true;
          ws.message = desired.error().message();
          in.workloads.push_back(std::move(ws));
          continue;
        }
        ws.settingsHash = desired->settings.hash;
        for (const auto& own : desired->ownServerOptions) {
          in.ownServerOptions.push_back(std::string(policy::toString(kind)) + " " +
                                        (pol.clusterScoped() ? ns + "/" : "") + ws.name + " container " +
                                        own.container + " (" + own.variable + ")");
        }
        const model::ConfigMap* liveConfigMap = nullptr;
        if (desired->configMap) {
          const std::string cmKey = runtime::objectKey(ns, (*desired->configMap)["metadata"].value("name", ""));
          wantedConfigMaps.insert(cmKey);
          if (auto it = s.configMaps.find(cmKey); it != s.configMaps.end()) liveConfigMap = it->second.get();
        }
        // The workload and its ConfigMap are compared apart, so only the one that differs is written.
        auto workloadDiff = render::compareWorkload(w, *desired);
        auto configMapDiff = render::compareConfigMap(liveConfigMap, *desired);
        const bool workloadInSync = workloadDiff.inSync();
        const bool configMapInSync = configMapDiff.inSync();
        std::vector<std::string> differences = std::move(workloadDiff.differences);
        for (auto& d : configMapDiff.differences) differences.push_back(std::move(d));
        const std::string& rv = w.meta.resourceVersion;
        const WriteMemory* memory = nullptr;
        if (auto it = s.writes.find(workloadKey(kind, w)); it != s.writes.end()) memory = &it->second;
        PlannedWorkload pw;
        pw.statusIndex = in.workloads.size();
        pw.kind = kind;
        pw.namespace_ = ns;
        pw.name = ws.name;
        pw.cached = view.object;
        pw.apply = desired->apply;
        pw.configMap = desired->configMap;
        pw.missingContainers = desired->missingContainers;
        pw.hash = desired->settings.hash;
        pw.summary = summarizeDifferences(differences);
        if (workloadInSync && configMapInSync) {
          ws.state = WorkloadState::kApplied;
        } else if (pol.spec.mode == policy::Mode::kAudit) {
          ws.state = WorkloadState::kDrifted;
          ws.message = pw.summary;
        } else if (kind == WorkloadKind::kJob) {
          ws.state = WorkloadState::kFailed;
          ws.needsChange = true;
          ws.message =
              "not written: a Job's pod template cannot change once the Job exists; put the settings in its manifest "
              "(poolguard render prints them), or let the policy govern the CronJob that creates it. Differs: " +
              pw.summary;
        } else if (kind == WorkloadKind::kRollout && s.rolloutsNotWritable) {
          ws.state = WorkloadState::kFailed;
          ws.needsChange = true;
          ws.message = "not written: " + *s.rolloutsNotWritable +
                       "; upgrade Argo Rollouts' CRDs to v1.9 or later, or put the settings in the manifest "
                       "(poolguard render prints them). Differs: " +
                       pw.summary;
        } else if (!workloadInSync && memory && memory->backingOffUntil && s.steadyNow < *memory->backingOffUntil) {
          // Another manager keeps undoing the settings: leave it alone until the back-off ends, and say so.
          ws.state = WorkloadState::kFailed;
          ws.needsChange = true;
          ws.message = memory->contestMessage;
          auto retry =
              std::max(std::chrono::milliseconds(1000),
                       std::chrono::duration_cast<std::chrono::milliseconds>(*memory->backingOffUntil - s.steadyNow));
          out.requeueAfter = out.requeueAfter ? std::min(*out.requeueAfter, retry) : retry;
        } else if (memory && memory->hash == pw.hash && memory->resourceVersionBefore == rv && configMapInSync) {
          ws.state = WorkloadState::kApplied;  // our last apply has not reached the cache yet
        } else {
          ws.state = WorkloadState::kApplied;
          pw.writeConfigMap = !configMapInSync;
          pw.writeWorkload = !workloadInSync;
          pw.correction = !workloadInSync && memory && memory->hash == pw.hash && memory->resourceVersionBefore != rv;
        }
        out.workloads.push_back(std::move(pw));
        in.workloads.push_back(std::move(ws));
      }
    }
  }

  if (pol.spec.mode == policy::Mode::kEnforce) {
    const char* owner = render::ownerKey(pol);
    // A governed workload given its settings by Env keeps no ConfigMap of this policy (a delivery switch).
    for (const auto& [kind, workloadNs, workloadName] : governed) {
      const std::string cmKey = runtime::objectKey(workloadNs, render::configMapName(kind, workloadName));
      if (wantedConfigMaps.count(cmKey)) continue;
      auto it = s.configMaps.find(cmKey);
      if (it == s.configMaps.end() || labelOf(*it->second, owner) != name) continue;
      out.configMapDeletes.push_back({workloadNs, it->second->meta.name});
    }
    // Workloads this policy wrote that it no longer governs (they left the selector, or a cluster policy's
    // namespace left its namespaceSelector): give back its fields, unless another policy now governs them and
    // will write its own.
    for (const auto& [workloadNs, views] : s.workloads) {
      if (!pol.clusterScoped() && workloadNs != pol.namespace_) continue;
      const auto nsLabels = namespaceLabelsOf(s, workloadNs);
      for (const auto& view : views) {
        const model::Workload& w = *view.object;
        if (annotationOf(w, owner) != name || governed.count({view.kind, workloadNs, w.meta.name})) continue;
        if (const policy::Policy* next = governingPolicy(view.kind, w, s.policies, &nsLabels);
            next != nullptr && writesSettings(*next))
          continue;
        out.releases.push_back({view.kind, workloadNs, w.meta.name});
      }
    }
  }

  // Each workload's worst case as the budget counts it, beside its live connections in the status.
  std::map<std::tuple<WorkloadKind, std::string, std::string>, int64_t> worstCases;
  for (const auto* pb : mineAll) {
    for (const auto& wb : pb->workloads) worstCases[{wb.facts.kind, wb.facts.namespace_, wb.facts.name}] = wb.worstCase;
  }
  for (auto& ws : in.workloads) {
    const std::string& ns = ws.namespace_.empty() ? pol.namespace_ : ws.namespace_;
    if (auto it = worstCases.find({ws.kind, ns, ws.name}); it != worstCases.end()) ws.worstCase = it->second;
  }

  // Policies sharing the database report its totals: tell them when the totals moved (the steady state moves alone
  // when replicas change within an HPA's range). With allocations, the totals of this policy's share too (a
  // namespace moving between shares may leave the database's total as it was).
  const json storedBudget = s.storedStatus.value("budget", json::object());
  const int64_t storedWorst = storedBudget.value("worstCase", int64_t{-1});
  const int64_t storedSteady = storedBudget.value("steadyState", int64_t{-1});
  const int64_t storedShareWorst = storedBudget.value("allocation", json::object()).value("worstCase", int64_t{-1});
  const std::string storedShare = storedBudget.value("allocation", json::object()).value("name", "");
  const auto& share = in.budget.allocation;
  const bool shareMoved = share && (storedShareWorst != share->worstCase || storedShare != share->name);
  if (storedWorst != db.worstCase || storedSteady != db.steadyState || shareMoved) {
    for (const auto& e : s.policies) {
      if (!e.parsed || e.parsed->spec.database.name != pol.spec.database.name) continue;
      std::string k = runtime::objectKey(*e.object);
      if (k != runtime::objectKey(*s.self.object)) out.alsoEnqueue.push_back(k);
    }
  }
  return out;
}

}  // namespace poolguard::controller
