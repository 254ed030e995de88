// The apply step of a reconcile (see controller/plan.h): the writes a Plan asks for, with what only a write can
// tell (a failure, another manager undoing the settings), and the status write.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "controller/objects.h"
#include "controller/reconciler.h"
#include "render/workload.h"
#include "runtime/event_recorder.h"

namespace poolguard::controller {

using policy::WorkloadKind;

int Reconciler::applyPlan(const std::string& key, const model::PolicyObject& policyObj, Plan& plan,
                          ReconcileOutcome& outcome) {
  const std::string& name = policyObj.meta.name;
  int writeFailures = 0;
  for (const auto& a : plan.workloads) {
    if (!a.needsWrite()) continue;
    const std::string& ns = a.namespace_;
    WorkloadStatus& ws = plan.status.workloads[a.statusIndex];
    const model::Workload& cached = *a.cached;
    if (a.correction) {
      if (auto contested = onCorrection(a.kind, cached, policyObj)) {
        // Another manager keeps undoing our settings: stop answering every change (no write war), say so.
        ws.state = WorkloadState::kFailed;
        ws.needsChange = true;
        ws.message = contested->message;
        auto retry =
            std::max(std::chrono::milliseconds(1000),
                     std::chrono::duration_cast<std::chrono::milliseconds>(contested->until - clock_.steadyNow()));
        outcome.requeueAfter = outcome.requeueAfter ? std::min(*outcome.requeueAfter, retry) : retry;
        continue;
      }
    }
    // A Rollout's CRD is read again right before it is written: a rollback to a CRD whose containers list is
    // atomic would let this apply replace the containers whole.
    if (a.kind == WorkloadKind::kRollout && a.writeWorkload) {
      if (auto problem = rolloutsProblem(true)) {
        ++writeFailures;
        ws.state = WorkloadState::kFailed;
        ws.needsChange = true;
        ws.message = "not written: " + *problem;
        continue;
      }
    }
    Status written = okStatus();
    if (a.writeConfigMap) {
      const json& cm = *a.configMap;
      auto r = client_.apply(kube::resources::configMaps(), ns, cm["metadata"].value("name", ""), cm,
                             {kFieldManager, true, false, "", true});
      if (metrics_) metrics_->workloadWrite("ConfigMap", "apply", r.ok());
      if (!r.ok()) written = r.error();
    }
    if (written.ok() && a.writeWorkload) {
      auto r = client_.apply(resourceOf(a.kind), ns, a.name, a.apply, {kFieldManager, true, false, "", true});
      if (metrics_) metrics_->workloadWrite(policy::toString(a.kind), "apply", r.ok());
      if (!r.ok()) written = r.error();
      if (r.ok()) recordWrite(a.kind, cached, a.hash);
    }
    if (written.ok()) {
      spdlog::info("applied pool settings to {} {}/{} (policy {}): {}", policy::toString(a.kind), ns, a.name, name,
                   a.summary);
    } else {
      ++writeFailures;
      ws.state = WorkloadState::kFailed;
      // The API server refuses the object or poolguard's access to it: retrying the same write cannot help.
      const ErrorCode code = written.error().code();
      ws.needsChange =
          code == ErrorCode::kInvalid || code == ErrorCode::kForbidden || code == ErrorCode::kInvalidArgument;
      ws.message = "apply failed: " + written.error().message();
      spdlog::warn("applying pool settings to {} {}/{} failed: {}", policy::toString(a.kind), ns, a.name,
                   written.error().message());
    }
  }
  // A delivery switched to Env: the ConfigMap goes once the workload's apply went through (until then the pods
  // still read it).
  if (writeFailures == 0) {
    for (const auto& [ns, cmName] : plan.configMapDeletes) {
      auto del = client_.remove(kube::resources::configMaps(), ns, cmName);
      if (metrics_) metrics_->workloadWrite("ConfigMap", "delete", del.ok());
      if (!del.ok() && del.error().code() != ErrorCode::kNotFound) {
        spdlog::warn("{}: deleting ConfigMap {}/{} after a delivery change failed: {}", key, ns, cmName,
                     del.error().message());
        ++writeFailures;
      } else {
        spdlog::info("deleted ConfigMap {}/{}: its workload now gets its settings from env (policy {})", ns, cmName,
                     name);
      }
    }
  }
  for (const auto& r : plan.releases) {
    // A failed release is retried with the queue's back-off, but the status computed above is still written.
    auto st = cleanupWorkload(r.kind, r.namespace_, r.name, name);
    if (!st.ok()) {
      spdlog::warn("{}: releasing {} {}/{} failed: {}", key, policy::toString(r.kind), r.namespace_, r.name,
                   st.error().message());
      ++writeFailures;
    }
  }

  return writeFailures;
}

Status Reconciler::cleanupWorkload(WorkloadKind kind, const std::string& ns, const std::string& name,
                                   const std::string& policyName) {
  // An apply that names only the object releases every field the manager owned; fields no other manager owns
  // are removed, so other managers' values stay. Not to a Rollout whose CRD now makes the containers one atomic
  // field: what the release removes could then be the whole list.
  // A Job is never written (its pod template cannot change), so nothing of it is poolguard's to release; a Job
  // carries the policy's annotation only because its manifest does.
  if (kind == WorkloadKind::kJob) return okStatus();
  if (kind == WorkloadKind::kRollout) {
    if (auto problem = rolloutsProblem(true))
      return Error(ErrorCode::kInvalid, "Rollout " + ns + "/" + name + " not released: " + *problem);
  }
  json body = {{"apiVersion", resourceOf(kind).apiVersion()},
               {"kind", resourceOf(kind).kind},
               {"metadata", {{"name", name}, {"namespace", ns}}}};
  kube::WriteOptions opts{kFieldManager, true, false, "", true};
  auto r = client_.apply(resourceOf(kind), ns, name, body, opts);
  bool ok = r.ok() || r.error().code() == ErrorCode::kNotFound;
  if (metrics_) metrics_->workloadWrite(policy::toString(kind), "cleanup", ok);
  if (!ok) return r.error();
  spdlog::info("removed poolguard settings from {} {}/{} (policy {})", policy::toString(kind), ns, name, policyName);
  {
    std::lock_guard l(mu_);
    writes_.erase(WorkloadKey{kind, ns, name}.toString());
  }
  const std::string cmName = render::configMapName(kind, name);
  if (caches_.configMaps->get(ns, cmName)) {
    auto del = client_.remove(kube::resources::configMaps(), ns, cmName);
    if (!del.ok() && del.error().code() != ErrorCode::kNotFound) return del.error();
  }
  return okStatus();
}

Status Reconciler::writeStatus(const std::string& key, const model::PolicyObject& obj, const json& status) {
  const auto& meta = obj.meta;
  const kube::Resource resource = resourceOfPolicy(obj);
  json metadata = {{"name", meta.name}};
  if (!meta.namespace_.empty()) metadata["namespace"] = meta.namespace_;
  json body = {
      {"apiVersion", "poolguard.dev/v1alpha1"}, {"kind", resource.kind}, {"metadata", metadata}, {"status", status}};
  kube::WriteOptions opts{kFieldManager, true, false, "status", true};
  auto r = client_.apply(resource, meta.namespace_, meta.name, body, opts);
  if (!r.ok()) return r.error();
  std::lock_guard l(mu_);
  lastWrittenStatus_[key] = StatusRecord{meta.uid, status};
  return okStatus();
}

void Reconciler::recordWrite(WorkloadKind kind, const model::Workload& w, const std::string& hash) {
  std::lock_guard l(mu_);
  auto& rec = writes_[workloadKey(kind, w)];
  const std::string& uid = w.meta.uid;
  if (rec.uid != uid) rec = WriteRecord{uid, "", "", ContestTracker(), ""};  // another object by that name
  rec.uid = uid;
  rec.resourceVersionBefore = w.meta.resourceVersion;
  rec.hash = hash;
}

std::optional<Reconciler::Contested> Reconciler::onCorrection(WorkloadKind kind, const model::Workload& w,
                                                              const model::PolicyObject& policyObj) {
  const auto now = clock_.steadyNow();
  const std::string key = workloadKey(kind, w);
  std::unique_lock l(mu_);
  auto it = writes_.find(key);
  if (it == writes_.end() || it->second.uid != w.meta.uid) return std::nullopt;
  auto& rec = it->second;
  const auto backoff = rec.contest.onCorrection(now);
  if (!backoff) return std::nullopt;
  const int contests = rec.contest.contests();
  const auto until = rec.contest.until();
  l.unlock();
  // Name the other manager: the informer cache drops managedFields, so read the object once.
  std::string other = "another field manager";
  auto live = client_.get(resourceOf(kind), w.meta.namespace_, w.meta.name);
  if (live.ok()) {
    std::string latest;
    for (const auto& mf : (*live)["metadata"].value("managedFields", json::array())) {
      std::string manager = mf.value("manager", "");
      if (manager.empty() || manager == kFieldManager) continue;
      // Only managers that own container fields of the pod template can be the ones changing the settings
      // (the controller manager, say, owns status and a revision annotation and is not a suspect).
      static const json::json_pointer containers("/fieldsV1/f:spec/f:template/f:spec/f:containers");
      if (!mf.is_object() || !mf.contains(containers)) continue;
      std::string time = mf.value("time", "");
      if (time >= latest) {
        latest = time;
        other = "field manager \"" + manager + "\"";
      }
    }
  }
  const ContestOptions limits;
  std::string message =
      other + " keeps changing the pool settings poolguard owns on " + key + " (" +
      std::to_string(limits.maxCorrections + 1) + " corrections within " + policy::formatDuration(limits.window) +
      "); poolguard stops correcting it for " + policy::formatDuration(*backoff) +
      (contests > 1 ? " (contest " + std::to_string(contests) + " in a row; the pause doubles up to " +
                          policy::formatDuration(limits.maxBackoff) + ")"
                    : "") +
      ": stop the other manager from setting these fields, or exclude the workload from the policy";
  spdlog::warn("{}: {}", key, message);
  if (events_) {
    json ref = model::referenceTo(w, resourceOf(kind).apiVersion(), resourceOf(kind).kind);
    events_->record(ref, runtime::EventType::kWarning, "FieldManagerConflict", message);
    // The policy's owner sees it too: `kubectl describe cpol` lists the Events of the policy, not of its workloads.
    events_->record(policyReference(policyObj), runtime::EventType::kWarning, "FieldManagerConflict", message);
  }
  l.lock();
  // The record may have gone meanwhile (the workload deleted, and pruned by another reconcile).
  if (auto again = writes_.find(key); again != writes_.end() && again->second.uid == w.meta.uid) {
    again->second.contestMessage = message;
  }
  return Contested{message, until};
}

}  // namespace poolguard::controller
