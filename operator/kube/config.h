#pragma once
// Where the API server is and how to authenticate to it: from a kubeconfig file or from inside a pod.
//
// A Config holds credentials (token, client key). It is never logged whole: describe() is the printable form.
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace poolguard::kube {

struct Config {
  std::string server;         // "https://host:port", optionally with a path prefix
  std::string tlsServerName;  // overrides the host name the server certificate is checked against
  bool insecureSkipTlsVerify = false;
  std::string caPem;          // trusted CAs (PEM); empty: the system's trust store
  std::string clientCertPem;  // client certificate chain (PEM)
  std::string clientKeyPem;   // its private key (PEM)
  std::string token;          // bearer token, as read at load time
  std::string tokenFile;      // when set, the token is re-read from here periodically (it rotates)
  std::string defaultNamespace = "default";
  std::string origin;  // "kubeconfig PATH (context NAME)" or "in-cluster", for messages
};

// server, origin, namespace and which kinds of credentials are present; never their values.
std::string describe(const Config& config);

// Loads one kubeconfig file; context "" means its current-context.
Result<Config> loadKubeconfig(const std::string& path, const std::string& context = "");
// Several files as in $KUBECONFIG: for each name (context, cluster, user) and for current-context, the first
// file that defines it wins, as kubectl merges them.
Result<Config> loadKubeconfigFiles(const std::vector<std::string>& paths, const std::string& context = "");

inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";
// From KUBERNETES_SERVICE_HOST/PORT and the mounted service account (token, ca.crt, namespace).
Result<Config> inClusterConfig();
Result<Config> inClusterConfig(const std::string& host, const std::string& port, const std::string& serviceAccountDir);

// The flag if set, else $KUBECONFIG, else in-cluster when KUBERNETES_SERVICE_HOST is set, else ~/.kube/config.
Result<Config> loadDefault(const std::string& kubeconfigFlag, const std::string& context = "");

// The bearer token to send now. Projected service account tokens rotate (kubelet refreshes the file well before
// expiry), so the file is re-read when the last read is older than the refresh period; a failed re-read keeps
// the previous token rather than dropping authentication.
class TokenSource {
 public:
  TokenSource(std::string token, std::string file, const Clock& clock,
              std::chrono::seconds refresh = std::chrono::minutes(1));
  std::string token();
  bool empty();

 private:
  std::mutex mu_;
  std::string token_;
  std::string file_;
  const Clock& clock_;
  std::chrono::seconds refresh_;
  Clock::steady_point lastRead_;
};

}  // namespace poolguard::kube
