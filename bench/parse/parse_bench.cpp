// Reading a LIST page of 500 Deployments as the API server sends them (managedFields, status, annotations of
// other tools) into the cache's typed records: a whole DOM then decoded, against the fields chosen while parsing
// (controller/cache_shapes.h) then decoded. Prints time per page and per object.
//
//   cmake -S . -B build-bench -DPOOLGUARD_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release && \
//     cmake --build build-bench --target parse_bench && build-bench/bench/parse_bench
#include <benchmark/benchmark.h>

#include <string>

#include <nlohmann/json.hpp>

#include "controller/cache_shapes.h"

namespace {

using json = nlohmann::json;
using poolguard::controller::workloadDecoder;
using poolguard::controller::workloadFields;

json deployment(int i) {
  const std::string name = "web-" + std::to_string(i);
  json managed = json::array();
  for (const char* manager :
       {"kubectl-client-side-apply", "kube-controller-manager", "argocd-controller", "poolguard"}) {
    managed.push_back(
        {{"manager", manager},
         {"operation", "Update"},
         {"apiVersion", "apps/v1"},
         {"time", "2026-01-01T00:00:00Z"},
         {"fieldsType", "FieldsV1"},
         {"fieldsV1",
          {{"f:metadata",
            {{"f:annotations", {{".", json::object()}, {"f:deployment.kubernetes.io/revision", json::object()}}}}},
           {"f:spec",
            {{"f:template",
              {{"f:spec",
                {{"f:containers",
                  {{"k:{\"name\":\"app\"}",
                    {{"f:env", {{"k:{\"name\":\"POOL_MAX_SIZE\"}", {{".", json::object()}}}}},
                     {"f:image", json::object()},
                     {"f:resources", json::object()}}}}}}}}}}},
           {"f:status", {{"f:conditions", json::object()}, {"f:replicas", json::object()}}}}}});
  }
  json env = json::array();
  for (int e = 0; e < 12; ++e) env.push_back({{"name", "VAR_" + std::to_string(e)}, {"value", std::string(24, 'v')}});
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata",
       {{"name", name},
        {"namespace", "shop"},
        {"uid", "00000000-0000-0000-0000-" + std::to_string(100000000000 + i)},
        {"resourceVersion", std::to_string(1000 + i)},
        {"generation", 3},
        {"creationTimestamp", "2026-01-01T00:00:00Z"},
        {"labels", {{"app", name}, {"tier", "web"}, {"team", "checkout"}}},
        {"annotations",
         {{"deployment.kubernetes.io/revision", "3"},
          {"poolguard.dev/policy", "pool"},
          {"kubectl.kubernetes.io/last-applied-configuration", std::string(1500, 'x')}}},
        {"managedFields", managed}}},
      {"spec",
       {{"replicas", 3},
        {"revisionHistoryLimit", 10},
        {"selector", {{"matchLabels", {{"app", name}}}}},
        {"strategy", {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", "25%"}, {"maxUnavailable", "25%"}}}}},
        {"template",
         {{"metadata", {{"labels", {{"app", name}}}, {"annotations", {{"poolguard.dev/settings-hash", "abc"}}}}},
          {"spec",
           {{"containers",
             {{{"name", "app"},
               {"image", "registry.example/app:1.2.3"},
               {"ports", {{{"containerPort", 8080}, {"protocol", "TCP"}}}},
               {"env", env},
               {"resources", {{"limits", {{"cpu", "1"}, {"memory", "512Mi"}}}}},
               {"livenessProbe", {{"httpGet", {{"path", "/healthz"}, {"port", 8080}}}}}},
              {{"name", "sidecar"}, {"image", "registry.example/sidecar:1"}}}},
            {"volumes", {{{"name", "tmp"}, {"emptyDir", json::object()}}}}}}}}}},
      {"status",
       {{"replicas", 3},
        {"readyReplicas", 3},
        {"conditions",
         {{{"type", "Available"}, {"status", "True"}, {"reason", "MinimumReplicasAvailable"}},
          {{"type", "Progressing"}, {"status", "True"}, {"reason", "NewReplicaSetAvailable"}}}}}}};
}

const std::string& page() {
  static const std::string text = [] {
    json list = {{"apiVersion", "apps/v1"},
                 {"kind", "DeploymentList"},
                 {"metadata", {{"resourceVersion", "99999"}}},
                 {"items", json::array()}};
    for (int i = 0; i < 500; ++i) list["items"].push_back(deployment(i));
    return list.dump();
  }();
  return text;
}

void WholeDomThenDecode(benchmark::State& state) {
  const auto decode = workloadDecoder();
  for (auto _ : state) {
    json list = json::parse(page());
    size_t kept = 0;
    for (auto& item : list["items"]) kept += decode(std::move(item)) != nullptr;
    benchmark::DoNotOptimize(kept);
  }
  state.SetItemsProcessed(state.iterations() * 500);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(page().size()));
}

void FieldsWhileParsingThenDecode(benchmark::State& state) {
  const auto filter = poolguard::kube::FieldFilter::listOf(workloadFields());
  const auto decode = workloadDecoder();
  for (auto _ : state) {
    json list = filter.parse(page());
    size_t kept = 0;
    for (auto& item : list["items"]) kept += decode(std::move(item)) != nullptr;
    benchmark::DoNotOptimize(kept);
  }
  state.SetItemsProcessed(state.iterations() * 500);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(page().size()));
}

BENCHMARK(WholeDomThenDecode)->Unit(benchmark::kMillisecond);
BENCHMARK(FieldsWhileParsingThenDecode)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
