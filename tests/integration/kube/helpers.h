#pragma once
// Shared by the kube integration tests: clients for the local cluster and small object builders.
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "kube/config.h"
#include "kube/rest_client.h"
#include "support/cluster.h"

namespace poolguard::kube::testing {

using poolguard::testing::cluster;

inline Config adminConfig() {
  auto config = loadKubeconfig(cluster().kubeconfig);
  if (!config.ok()) throw std::runtime_error(config.error().message());
  return *config;
}

inline std::unique_ptr<RestClient> clientFor(const Config& config, RestClientOptions options = {}) {
  auto client = makeRestClient(config, std::move(options));
  if (!client.ok()) throw std::runtime_error(client.error().message());
  return std::move(*client);
}

inline std::unique_ptr<RestClient> adminClient() { return clientFor(adminConfig()); }

inline json configMap(const std::string& name, const json& data, const json& labels = json::object()) {
  json cm = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", name}}}, {"data", data}};
  // Only when set: an applied empty map would be owned, and conflict with another manager's labels.
  if (!labels.empty()) cm["metadata"]["labels"] = labels;
  return cm;
}

inline std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// DIR/env of the running cluster (ETCD_ENDPOINT and friends).
inline std::map<std::string, std::string> clusterEnv() {
  std::map<std::string, std::string> out;
  std::ifstream in(cluster().dir + "/env");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("export ", 0) == 0) line = line.substr(7);
    if (auto eq = line.find('='); eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

inline std::string names(const json& list) {
  std::string out;
  for (const auto& item : list.value("items", json::array())) out += item["metadata"]["name"].get<std::string>() + " ";
  return out;
}

}  // namespace poolguard::kube::testing
