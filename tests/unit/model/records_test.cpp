#include "model/records.h"

#include <gtest/gtest.h>

#include "policy/parse.h"

namespace poolguard::model {
namespace {

using policy::WorkloadKind;

// Decodes the first document of `yaml` with the decoder for its kind; returns "field: message" per error.
std::vector<std::string> errorsOf(const std::string& yaml) {
  auto docs = policy::parseDocuments(yaml, "test.yaml");
  EXPECT_TRUE(docs.ok()) << (docs.ok() ? "" : docs.error().message());
  if (!docs.ok() || docs->empty()) return {"unparsed"};
  const auto& d = docs->front();
  Diagnostics diagnostics(&d.spellings);
  if (workloadKindOf(d.object))
    decodeWorkload(d.object, diagnostics);
  else if (isHpa(d.object))
    decodeHpa(d.object, diagnostics);
  else
    decodeMeta(d.object, diagnostics);
  std::vector<std::string> out;
  for (const auto& e : diagnostics.errors()) out.push_back(policy::toString(e));
  return out;
}

const char* kDeployment = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 3
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 2}
  template:
    spec:
      containers:
      - name: app
        env: [{name: A, value: "1"}]
        envFrom: [{configMapRef: {name: cm}}]
      - name: sidecar
)";

TEST(DecodeWorkload, ReadsWhatDecisionsUse) {
  auto docs = policy::parseDocuments(kDeployment, "d.yaml");
  ASSERT_TRUE(docs.ok());
  Diagnostics d;
  Workload w = decodeWorkload(docs->front().object, d);
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(w.kind, WorkloadKind::kDeployment);
  EXPECT_EQ(w.meta.name, "web");
  EXPECT_EQ(w.meta.namespace_, "shop");
  EXPECT_EQ(w.meta.labels.at("app"), "web");
  EXPECT_EQ(w.replicas, 3);
  EXPECT_EQ(w.strategyType, "RollingUpdate");
  EXPECT_EQ(w.maxSurge, (IntOrPercent{2, false}));
  std::vector<std::string> names;
  for (const auto& c : w.containers) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"app", "sidecar"}));
}

TEST(DecodeWorkload, AbsentAndNullFieldsTakeTheDefaults) {
  Diagnostics d;
  Workload w = decodeWorkload(
      nlohmann::json::parse(R"({"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db","labels":null},
                                "spec":{"replicas":null}})"),
      d);
  EXPECT_TRUE(d.ok()) << policy::toString(d.errors().front());
  EXPECT_EQ(w.kind, WorkloadKind::kStatefulSet);
  EXPECT_FALSE(w.replicas.has_value());
  EXPECT_FALSE(w.maxSurge.has_value());
}

TEST(DecodeWorkload, YamlBooleanNameShowsTheQuotedFix) {
  std::string yaml = kDeployment;
  yaml.replace(yaml.find("name: web"), 9, "name: on");
  EXPECT_EQ(errorsOf(yaml), (std::vector<std::string>{"metadata.name: must be a string, not the boolean on; quote it: "
                                                      "\"on\""}));
}

TEST(DecodeWorkload, QuotedReplicasAndBooleanSurgeAreErrors) {
  std::string yaml = kDeployment;
  yaml.replace(yaml.find("replicas: 3"), 11, "replicas: \"3\"");
  yaml.replace(yaml.find("maxSurge: 2"), 11, "maxSurge: true");
  EXPECT_EQ(errorsOf(yaml),
            (std::vector<std::string>{
                "spec.replicas: must be an integer, not the string \"3\"; remove the quotes: 3",
                "spec.strategy.rollingUpdate.maxSurge: must be an integer or a percentage such as \"25%\", not the "
                "boolean true"}));
}

TEST(DecodeWorkload, RefusesWhatTheApiServerRefuses) {
  struct Case {
    std::string from, to, field;
  };
  const std::vector<Case> cases{
      {"replicas: 3", "replicas: -1", "spec.replicas: must be greater than or equal to 0"},
      {"replicas: 3", "replicas: 3000000000", "spec.replicas: must be at most 2147483647"},
      {"replicas: 3", "replicas: 1.5", "spec.replicas: must be an integer, not the number 1.5"},
      {"maxSurge: 2", "maxSurge: \"2\"", "spec.strategy.rollingUpdate.maxSurge: must be an integer or a percentage"},
      {"maxSurge: 2", "maxSurge: [1]", "spec.strategy.rollingUpdate.maxSurge: must be an integer or a percentage"},
      {"type: RollingUpdate", "type: 5", "spec.strategy.type: must be a string, not the number 5"},
      {"rollingUpdate: {maxSurge: 2}", "rollingUpdate: on", "spec.strategy.rollingUpdate: must be a mapping"},
      {"labels: {app: web}", "labels: {app: yes}",
       "metadata.labels.app: must be a string, not the boolean yes; "
       "quote it: \"yes\""},
      {"labels: {app: web}", "labels: [app]", "metadata.labels: must be a mapping, not a list"},
      {"namespace: shop", "namespace: 0x1F",
       "metadata.namespace: must be a string, not the number 0x1F; quote it: "
       "\"0x1F\""},
      {"name: app\n", "name: 8080\n", "spec.template.spec.containers[0].name: must be a string, not the number 8080"},
      {"value: \"1\"", "value: 1",
       "spec.template.spec.containers[0].env[0].value: must be a string, not the "
       "number 1; quote it: \"1\""},
      {"{name: cm}", "{name: null}", ""},  // null is absent
      // envFrom is repeated whole in poolguard's apply body, so all of it is read.
      {"{name: cm}", "{name: cm, optional: 1}",
       "spec.template.spec.containers[0].envFrom[0].configMapRef.optional: must be a boolean, not the number 1"},
      {"{name: cm}", "{name: false}",
       "spec.template.spec.containers[0].envFrom[0].configMapRef.name: must be a "
       "string"},
      {"containers:\n", "containers: {}\n      x:\n", "spec.template.spec.containers: must be a list, not a mapping"},
      {"spec:\n  replicas", "spec: 7\nx:\n  replicas", "spec: must be a mapping, not the number 7"},
      {"kind: Deployment", "kind: Deployment\nmetadata2: {}", ""},
  };
  for (const auto& c : cases) {
    std::string yaml = kDeployment;
    auto at = yaml.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    yaml.replace(at, c.from.size(), c.to);
    auto errors = errorsOf(yaml);
    if (c.field.empty()) {
      EXPECT_TRUE(errors.empty()) << c.to << ": " << (errors.empty() ? "" : errors.front());
      continue;
    }
    ASSERT_EQ(errors.size(), 1u) << c.to;
    EXPECT_TRUE(errors.front().starts_with(c.field)) << c.to << ": " << errors.front();
  }
}

TEST(DecodeHpa, ReadsTargetAndMaxReplicasAndChecksTheirTypes) {
  const std::string hpa = R"(apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 10
)";
  auto docs = policy::parseDocuments(hpa, "h.yaml");
  ASSERT_TRUE(docs.ok());
  Diagnostics d;
  Hpa h = decodeHpa(docs->front().object, d);
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(h.maxReplicas, 10);
  EXPECT_TRUE(h.targets(WorkloadKind::kDeployment, "shop", "web"));
  EXPECT_FALSE(h.targets(WorkloadKind::kStatefulSet, "shop", "web"));
  EXPECT_FALSE(h.targets(WorkloadKind::kDeployment, "other", "web"));

  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string y = hpa;
    y.replace(y.find(from), from.size(), to);
    return errorsOf(y);
  };
  EXPECT_EQ(replaced("maxReplicas: 10", "maxReplicas: \"10\""),
            (std::vector<std::string>{"spec.maxReplicas: must be an integer, not the string \"10\"; remove the "
                                      "quotes: 10"}));
  EXPECT_EQ(replaced("maxReplicas: 10", "maxReplicas: 0"),
            (std::vector<std::string>{"spec.maxReplicas: must be greater than or equal to 1, not 0"}));
  EXPECT_EQ(replaced("minReplicas: 2", "minReplicas: two"),
            (std::vector<std::string>{"spec.minReplicas: must be an integer, not the string \"two\""}));
  EXPECT_EQ(replaced("name: web}\n  minReplicas", "name: 1e3}\n  minReplicas"),
            (std::vector<std::string>{"spec.scaleTargetRef.name: must be a string, not the number 1e3; quote it: "
                                      "\"1e3\""}));
  EXPECT_EQ(replaced("scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}", "scaleTargetRef: [web]"),
            (std::vector<std::string>{"spec.scaleTargetRef: must be a mapping, not a list"}));
}

TEST(DecodeMeta, AnyKindNeedsStringIdentityAndStringMaps) {
  EXPECT_EQ(errorsOf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, annotations: {a: 1}}\n"),
            (std::vector<std::string>{"metadata.annotations.a: must be a string, not the number 1; quote it: \"1\""}));
  EXPECT_EQ(errorsOf("apiVersion: 1\nkind: [x]\nmetadata: {name: c}\n"),
            (std::vector<std::string>{"apiVersion: must be a string, not the number 1; quote it: \"1\"",
                                      "kind: must be a string, not a list"}));
  EXPECT_EQ(errorsOf("apiVersion: v1\nkind: Service\nmetadata: x\n"),
            (std::vector<std::string>{"metadata: must be a mapping, not the string \"x\""}));
  EXPECT_EQ(errorsOf("apiVersion: v1\nkind: Service\nmetadata: {name: s, generation: \"2\"}\n"),
            (std::vector<std::string>{"metadata.generation: must be an integer, not the string \"2\"; remove the "
                                      "quotes: 2"}));
  EXPECT_TRUE(
      errorsOf("apiVersion: v1\nkind: Service\nmetadata: {name: \"on\", labels: {a: \"yes\", b: null}}\n").empty());
}

TEST(DecodeMeta, ListItemsKeepTheirSpellings) {
  auto docs = policy::parseDocuments(
      "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: a}}\n"
      "- {apiVersion: v1, kind: Service, metadata: {name: off}}\n",
      "l.yaml");
  ASSERT_TRUE(docs.ok());
  ASSERT_EQ(docs->size(), 2u);
  Diagnostics d(&(*docs)[1].spellings);
  decodeMeta((*docs)[1].object, d);
  ASSERT_EQ(d.errors().size(), 1u);
  EXPECT_EQ(policy::toString(d.errors()[0]), "metadata.name: must be a string, not the boolean off; quote it: \"off\"");
}
// Decodes the first document of `yaml`, a workload the checks find nothing wrong with.
Workload decode(const std::string& yaml) {
  auto docs = policy::parseDocuments(yaml, "test.yaml");
  EXPECT_TRUE(docs.ok());
  Diagnostics d;
  Workload w = decodeWorkload(docs->front().object, d);
  EXPECT_TRUE(d.ok()) << (d.ok() ? "" : policy::toString(d.errors()[0]));
  return w;
}

TEST(DecodeWorkload, ReadsEachKindFromItsOwnFields) {
  Workload ds = decode(R"(apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: shop}
spec:
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxSurge: "10%"}}
  template: {spec: {containers: [{name: app, env: [{name: A, value: b}]}]}}
status: {desiredNumberScheduled: 7, currentNumberScheduled: 6}
)");
  EXPECT_EQ(ds.kind, WorkloadKind::kDaemonSet);
  EXPECT_EQ(ds.strategyType, "RollingUpdate");
  EXPECT_EQ(ds.maxSurge, (IntOrPercent{10, true}));
  EXPECT_EQ(ds.desiredNumberScheduled, 7);
  EXPECT_FALSE(ds.replicas.has_value());
  ASSERT_EQ(ds.containers.size(), 1u);

  Workload cj = decode(R"(apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: shop}
spec:
  schedule: "0 * * * *"
  concurrencyPolicy: Replace
  suspend: true
  jobTemplate:
    spec:
      parallelism: 4
      completions: 2
      template:
        metadata: {annotations: {poolguard.dev/settings-hash: abc}}
        spec: {restartPolicy: Never, containers: [{name: job}, {name: sidecar}]}
status: {active: [{name: report-1}, {name: report-2}]}
)");
  EXPECT_EQ(cj.kind, WorkloadKind::kCronJob);
  EXPECT_EQ(cj.concurrencyPolicy, "Replace");
  EXPECT_TRUE(cj.suspended);
  EXPECT_EQ(cj.parallelism, 4);
  EXPECT_EQ(cj.completions, 2);
  EXPECT_EQ(cj.activeRuns, 2);
  ASSERT_EQ(cj.containers.size(), 2u) << "from spec.jobTemplate.spec.template";
  EXPECT_EQ(cj.containers[1].name, "sidecar");
  EXPECT_EQ(cj.templateAnnotations.at("poolguard.dev/settings-hash"), "abc");

  Workload bg = decode(R"(apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 5
  strategy: {blueGreen: {activeService: web}}
  template: {spec: {containers: [{name: app}]}}
)");
  EXPECT_EQ(bg.kind, WorkloadKind::kRollout);
  EXPECT_EQ(bg.replicas, 5);
  EXPECT_EQ(bg.strategyType, "BlueGreen");
  Workload routed = decode(R"(apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  strategy: {canary: {maxSurge: 1, trafficRouting: {nginx: {stableIngress: web}}, steps: [{setWeight: 10}]}}
  template: {spec: {containers: [{name: app}]}}
)");
  EXPECT_EQ(routed.strategyType, "CanaryTrafficRouting");
  EXPECT_EQ(routed.maxSurge, (IntOrPercent{1, false}));
}

TEST(DecodeWorkload, AKindOfAnotherApiGroupIsNoWorkload) {
  json rollout = {{"apiVersion", "apps/v1"}, {"kind", "Rollout"}, {"metadata", {{"name", "x"}}}};
  EXPECT_FALSE(workloadKindOf(rollout).has_value());
  json cronJob = {{"apiVersion", "batch/v1beta1"}, {"kind", "CronJob"}, {"metadata", {{"name", "x"}}}};
  EXPECT_FALSE(workloadKindOf(cronJob).has_value()) << "batch/v1beta1 is no longer served";
  cronJob["apiVersion"] = "batch/v1";
  EXPECT_EQ(workloadKindOf(cronJob), WorkloadKind::kCronJob);
}

TEST(DecodeWorkload, ACronJobsFieldsOfTheWrongTypeAreErrors) {
  auto errors = errorsOf(R"(apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  suspend: "yes"
  jobTemplate: {spec: {parallelism: "2", template: {spec: {containers: [{name: job}]}}}}
)");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "spec.suspend: must be a boolean, not the string \"yes\"");
  EXPECT_NE(errors[1].find("spec.jobTemplate.spec.parallelism"), std::string::npos) << errors[1];
}

TEST(DecodeWorkload, AJobSaysWhetherItIsACronJobsRunAndWhetherItFinished) {
  Workload run = decode(R"(apiVersion: batch/v1
kind: Job
metadata:
  name: report-29000000
  ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: report, uid: u1, controller: true}]
spec:
  parallelism: 3
  completions: 6
  podFailurePolicy: {rules: []}
  template: {spec: {restartPolicy: Never, containers: [{name: job}]}}
status:
  conditions: [{type: Complete, status: "True"}]
)");
  EXPECT_EQ(run.kind, WorkloadKind::kJob);
  EXPECT_TRUE(run.cronJobRun);
  EXPECT_TRUE(run.finished);
  EXPECT_FALSE(run.governable());
  EXPECT_EQ(run.parallelism, 3);
  EXPECT_EQ(run.completions, 6);
  EXPECT_TRUE(run.replacesOnlyFailedPods) << "with a podFailurePolicy, podReplacementPolicy defaults to Failed";

  Workload job = decode(R"(apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  ownerReferences: [{apiVersion: example.io/v1, kind: CronJob, name: other, uid: u2}]
spec:
  template: {spec: {restartPolicy: Never, containers: [{name: job}]}}
status:
  conditions: [{type: Complete, status: "False"}, {type: SuccessCriteriaMet, status: "True"}]
)");
  EXPECT_FALSE(job.cronJobRun) << "not the controller";
  EXPECT_FALSE(job.finished);
  EXPECT_TRUE(job.governable());
  EXPECT_FALSE(job.replacesOnlyFailedPods);
}

}  // namespace
}  // namespace poolguard::model
