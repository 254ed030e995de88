#pragma once
// Small helpers the end-to-end tests share: objects read and written with kubectl as the cluster admin, the
// conditions of a ConnectionPoolPolicy, the env of a workload's container, and log tails.
#include <string>

#include <nlohmann/json.hpp>

namespace poolguard::testing {

// Applies crds/ and waits until the ConnectionPoolPolicy CRD is Established (gtest ASSERTs inside: call it
// with ASSERT_NO_FATAL_FAILURE).
void installCrds();

// `kubectl -n ns get what -o json`; null when kubectl fails.
nlohmann::json getJson(const std::string& ns, const std::string& what);
// `kubectl -n ns apply -f -` (gtest ASSERTs inside).
void applyYaml(const std::string& ns, const std::string& yaml);

// The condition of this type in a policy's status; an empty object when absent (or the policy is unreadable),
// so value() on it is always safe.
nlohmann::json condition(const nlohmann::json& policy, const std::string& type);
// The policy's condition has this status (and reason, when given) and the status is for the current generation.
bool conditionIs(const std::string& ns, const std::string& policy, const std::string& type, const std::string& status,
                 const std::string& reason = "");

// Env value of `var` in container `container` of a Deployment/StatefulSet JSON; "" when absent.
std::string envValue(const nlohmann::json& workload, const std::string& container, const std::string& var);
// Value of `key` in ConfigMap `name`'s data; "" while the ConfigMap or the key does not exist.
std::string configMapValue(const std::string& ns, const std::string& name, const std::string& key);

// What kstatus (the library Flux waits with; tests/kstatus/cmd/kstatus) computes for `kubectl -n ns get what`:
// "<Status>: <message>", e.g. "Current: Resource is Ready"; "error: ..." when kubectl or kstatus fails.
std::string kstatusOf(const std::string& ns, const std::string& what);

// An HPA named after its target Deployment, scaling on CPU between 1 and maxReplicas.
std::string hpaYaml(const std::string& target, int maxReplicas);

// The last `lines` lines of s.
std::string tail(const std::string& s, int lines);

}  // namespace poolguard::testing
