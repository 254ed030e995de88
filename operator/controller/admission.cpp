// A ClusterConnectionBudget's admission objects (budget/admission.h, docs/admission.md): kept while its
// admission.mode is Warn or Deny, removed when it is None, invalid or the budget is gone.
#include <spdlog/spdlog.h>

#include "budget/admission.h"
#include "controller/reconciler.h"

namespace poolguard::controller {

Result<json> Reconciler::keepAdmission(const std::string& name, const model::BudgetObject* b,
                                       const budget::DatabaseBudget* db) {
  const bool wanted = b && b->parsed && b->parsed->admissionMode != policy::AdmissionMode::kNone;
  const std::string objectName = budget::admissionObjectName(name);
  AdmissionRecord record;
  {
    std::lock_guard l(mu_);
    if (auto it = admissionWritten_.find(name); it != admissionWritten_.end()) record = it->second;
  }
  const std::string uid = b ? b->meta.uid : "";

  if (!wanted) {
    // Nothing of ours may exist: after a start (no memory), or once something was written.
    if (!record.removed || record.uid != uid) {
      // The binding first: the policy and its parameters are inert without it.
      const kube::Resource order[] = {kube::resources::validatingAdmissionPolicyBindings(),
                                      kube::resources::validatingAdmissionPolicies(),
                                      kube::resources::connectionAllotments()};
      for (const auto& resource : order) {
        auto del = client_.remove(resource, "", objectName);
        if (!del.ok() && del.error().code() != ErrorCode::kNotFound) {
          return Error(del.error().code(),
                       "admission.mode " +
                           std::string(b && b->parsed ? policy::toString(b->parsed->admissionMode) : "None") +
                           ": could not delete " + resource.kind + " " + objectName + ": " + del.error().message());
        }
      }
    }
    // The removal is remembered with the budget's uid while the budget exists. Without a budget ("" for its uid),
    // while a policy names the database: every change of such a policy reconciles the database's name, and must
    // not cost three deletes each time. Once neither is left, nothing reconciles the name until a policy or a
    // budget names it again, and the entry goes (the next reconcile of the name deletes once, as after a start).
    const bool keep = b != nullptr || !policiesOfDatabase(name).empty();
    std::lock_guard l(mu_);
    if (keep)
      admissionWritten_[name] = AdmissionRecord{uid, "", "", "", true};
    else
      admissionWritten_.erase(name);
    return json(nullptr);
  }

  const auto objects = budget::admissionObjects(*b->parsed, uid, db);
  json status = {{"mode", policy::toString(b->parsed->admissionMode)},
                 {"validatingAdmissionPolicy", objects.name},
                 {"parameters", objects.name},
                 {"allotments", objects.allotted}};
  if (!db || !db->available) {
    status["message"] =
        "the database's capacity is unknown: only the ceilings are enforced until max_connections is known";
  }
  // The parameters first, so that a binding never points at parameters older than its policy's expressions.
  const std::string dumps[] = {objects.params.dump(), objects.policy.dump(), objects.binding.dump()};
  std::string* written[] = {&record.params, &record.policy, &record.binding};
  const kube::Resource targets[] = {kube::resources::connectionAllotments(),
                                    kube::resources::validatingAdmissionPolicies(),
                                    kube::resources::validatingAdmissionPolicyBindings()};
  const json* bodies[] = {&objects.params, &objects.policy, &objects.binding};
  if (record.uid != uid || record.removed) record = AdmissionRecord{uid, "", "", "", false};
  // The objects' own changes are not watched: what this process wrote last is what it compares with (a binding
  // deleted by hand comes back with the next change of the figures, or at the next start).
  for (size_t i = 0; i < 3; ++i) {
    if (*written[i] == dumps[i]) continue;
    kube::WriteOptions opts{kFieldManager, true, false, "", true};
    auto r = client_.apply(targets[i], "", objects.name, *bodies[i], opts);
    if (!r.ok()) {
      // What went through is remembered, so the retry writes only the rest.
      std::lock_guard l(mu_);
      admissionWritten_[name] = record;
      return Error(r.error().code(), "admission.mode " + std::string(policy::toString(b->parsed->admissionMode)) +
                                         ": could not write " + targets[i].kind + " " + objects.name + ": " +
                                         r.error().message());
    }
    *written[i] = dumps[i];
    spdlog::log(i == 0 ? spdlog::level::debug : spdlog::level::info,
                "ClusterConnectionBudget {}: {} {} written ({} allotments, admission.mode {})", name, targets[i].kind,
                objects.name, objects.allotted, policy::toString(b->parsed->admissionMode));
  }
  std::lock_guard l(mu_);
  admissionWritten_[name] = record;
  return status;
}

}  // namespace poolguard::controller
