#include "kube/config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <yaml-cpp/yaml.h>

#include "common/base64.h"

namespace poolguard::kube {
namespace {

Error invalid(const std::string& message) { return Error(ErrorCode::kInvalidArgument, message); }

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return invalid("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  auto notSpace = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), notSpace));
  s.erase(std::find_if(s.rbegin(), s.rend(), notSpace).base(), s.end());
  return s;
}

std::string dirOf(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string resolve(const std::string& dir, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  return dir + "/" + path;
}

// One parsed kubeconfig file; field paths in errors are relative to it and prefixed with its path.
struct Kubeconfig {
  std::string path;
  YAML::Node root;
};

// The scalar at parent[key] as a string, "" when absent; an error naming `field` when it is not a scalar.
Result<std::string> scalar(const YAML::Node& parent, const char* key, const std::string& field) {
  YAML::Node n = parent[key];
  if (!n || n.IsNull()) return std::string();
  if (!n.IsScalar()) return invalid(field + ": expected a string");
  return n.Scalar();
}

Result<bool> boolean(const YAML::Node& parent, const char* key, const std::string& field) {
  YAML::Node n = parent[key];
  if (!n || n.IsNull()) return false;
  if (n.IsScalar()) {
    const std::string& v = n.Scalar();
    if (v == "true" || v == "True" || v == "TRUE") return true;
    if (v == "false" || v == "False" || v == "FALSE") return false;
  }
  return invalid(field + ": expected true or false");
}

struct Named {
  const Kubeconfig* file = nullptr;
  std::string field;  // "clusters[2].cluster"
  YAML::Node body;
};

// Finds the entry called `name` in the list `listKey` (clusters, users, contexts) of the first file defining it.
Result<std::optional<Named>> findNamed(const std::vector<Kubeconfig>& files, const char* listKey, const char* bodyKey,
                                       const std::string& name) {
  for (const auto& f : files) {
    YAML::Node list = f.root[listKey];
    if (!list || list.IsNull()) continue;
    if (!list.IsSequence()) return invalid(f.path + ": " + listKey + ": expected a list");
    for (size_t i = 0; i < list.size(); ++i) {
      std::string field = std::string(listKey) + "[" + std::to_string(i) + "]";
      if (!list[i].IsMap()) return invalid(f.path + ": " + field + ": expected a mapping");
      auto entryName = scalar(list[i], "name", field + ".name");
      if (!entryName.ok()) return invalid(f.path + ": " + entryName.error().message());
      if (*entryName != name) continue;
      YAML::Node body = list[i][bodyKey];
      if (!body || !body.IsMap()) return invalid(f.path + ": " + field + "." + bodyKey + ": expected a mapping");
      return std::optional<Named>(Named{&f, field + "." + bodyKey, body});
    }
  }
  return std::optional<Named>{};
}

void freeBio(BIO* b) { BIO_free(b); }

// Whether pem holds at least one certificate (kind "cert") or a private key (kind "key"), so a broken file is
// reported at load time under its field name instead of as a failed TLS handshake later.
bool pemParses(const std::string& pem, bool key) {
  std::unique_ptr<BIO, decltype(&freeBio)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), freeBio);
  if (!bio) return false;
  bool ok;
  if (key) {
    EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    ok = k != nullptr;
    EVP_PKEY_free(k);
  } else {
    X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    ok = c != nullptr;
    X509_free(c);
  }
  ERR_clear_error();
  return ok;
}

// Reads `<base>-data` (base64) or `<base>` (a path relative to the kubeconfig's folder) into out.
Status loadPemField(const Named& entry, const std::string& base, bool isKey, std::string& out) {
  const std::string prefix = entry.file->path + ": " + entry.field + ".";
  auto data = scalar(entry.body, (base + "-data").c_str(), entry.field + "." + base + "-data");
  if (!data.ok()) return invalid(entry.file->path + ": " + data.error().message());
  auto file = scalar(entry.body, base.c_str(), entry.field + "." + base);
  if (!file.ok()) return invalid(entry.file->path + ": " + file.error().message());
  std::string field;
  if (!data->empty() && !file->empty())
    return invalid(prefix + base + ": both " + base + " and " + base + "-data are set");
  if (!data->empty()) {
    field = base + "-data";
    auto decoded = decodeBase64(*data);
    if (!decoded) return invalid(prefix + field + ": not valid base64");
    out = std::move(*decoded);
  } else if (!file->empty()) {
    field = base;
    auto content = readFile(resolve(dirOf(entry.file->path), *file));
    if (!content.ok()) return invalid(prefix + field + ": " + content.error().message());
    out = std::move(*content);
  } else {
    return okStatus();
  }
  if (!pemParses(out, isKey)) {
    return invalid(prefix + field + (isKey ? ": no PEM private key" : ": no PEM certificate"));
  }
  return okStatus();
}

Result<Config> build(const std::vector<Kubeconfig>& files, const std::string& requestedContext) {
  std::string contextName = requestedContext;
  if (contextName.empty()) {
    for (const auto& f : files) {
      auto cc = scalar(f.root, "current-context", "current-context");
      if (!cc.ok()) return invalid(f.path + ": " + cc.error().message());
      if (!cc->empty()) {
        contextName = *cc;
        break;
      }
    }
    if (contextName.empty()) return invalid(files.front().path + ": current-context: not set and no context given");
  }
  auto ctx = findNamed(files, "contexts", "context", contextName);
  if (!ctx.ok()) return ctx.error();
  if (!*ctx) return invalid(files.front().path + ": contexts: no context named \"" + contextName + "\"");
  const Named& c = **ctx;
  const std::string cPrefix = c.file->path + ": " + c.field + ".";

  auto clusterName = scalar(c.body, "cluster", c.field + ".cluster");
  if (!clusterName.ok()) return invalid(c.file->path + ": " + clusterName.error().message());
  if (clusterName->empty()) return invalid(cPrefix + "cluster: missing");
  auto userName = scalar(c.body, "user", c.field + ".user");
  if (!userName.ok()) return invalid(c.file->path + ": " + userName.error().message());
  auto ns = scalar(c.body, "namespace", c.field + ".namespace");
  if (!ns.ok()) return invalid(c.file->path + ": " + ns.error().message());

  Config config;
  config.origin = "kubeconfig " + c.file->path + " (context " + contextName + ")";
  if (!ns->empty()) config.defaultNamespace = *ns;

  auto cl = findNamed(files, "clusters", "cluster", *clusterName);
  if (!cl.ok()) return cl.error();
  if (!*cl) return invalid(cPrefix + "cluster: no cluster named \"" + *clusterName + "\"");
  const Named& cluster = **cl;
  const std::string clPrefix = cluster.file->path + ": " + cluster.field + ".";
  auto server = scalar(cluster.body, "server", cluster.field + ".server");
  if (!server.ok()) return invalid(cluster.file->path + ": " + server.error().message());
  if (server->empty()) return invalid(clPrefix + "server: missing");
  if (server->rfind("https://", 0) != 0 && server->rfind("http://", 0) != 0) {
    return invalid(clPrefix + "server: \"" + *server + "\" is not an http(s) URL");
  }
  config.server = *server;
  while (config.server.size() > 8 && config.server.back() == '/') config.server.pop_back();
  auto tlsName = scalar(cluster.body, "tls-server-name", cluster.field + ".tls-server-name");
  if (!tlsName.ok()) return invalid(cluster.file->path + ": " + tlsName.error().message());
  config.tlsServerName = *tlsName;
  auto insecure = boolean(cluster.body, "insecure-skip-tls-verify", cluster.field + ".insecure-skip-tls-verify");
  if (!insecure.ok()) return invalid(cluster.file->path + ": " + insecure.error().message());
  config.insecureSkipTlsVerify = *insecure;
  if (auto s = loadPemField(cluster, "certificate-authority", false, config.caPem); !s.ok()) return s.error();
  if (config.insecureSkipTlsVerify && !config.caPem.empty()) {
    return invalid(clPrefix + "insecure-skip-tls-verify: cannot be combined with a certificate authority");
  }
  if (cluster.body["proxy-url"]) return invalid(clPrefix + "proxy-url: proxies are not supported");

  if (!userName->empty()) {
    auto us = findNamed(files, "users", "user", *userName);
    if (!us.ok()) return us.error();
    if (!*us) return invalid(cPrefix + "user: no user named \"" + *userName + "\"");
    const Named& user = **us;
    const std::string uPrefix = user.file->path + ": " + user.field + ".";
    for (const char* unsupported : {"exec", "auth-provider", "username", "password"}) {
      if (user.body[unsupported])
        return invalid(uPrefix + unsupported + ": not supported; use a token or a client certificate");
    }
    if (auto s = loadPemField(user, "client-certificate", false, config.clientCertPem); !s.ok()) return s.error();
    if (auto s = loadPemField(user, "client-key", true, config.clientKeyPem); !s.ok()) return s.error();
    if (config.clientCertPem.empty() != config.clientKeyPem.empty()) {
      return invalid(uPrefix + (config.clientCertPem.empty() ? "client-certificate" : "client-key") +
                     ": missing (a client certificate needs both certificate and key)");
    }
    auto token = scalar(user.body, "token", user.field + ".token");
    if (!token.ok()) return invalid(user.file->path + ": " + token.error().message());
    config.token = *token;
    auto tokenFile = scalar(user.body, "tokenFile", user.field + ".tokenFile");
    if (!tokenFile.ok()) return invalid(user.file->path + ": " + tokenFile.error().message());
    // As in client-go, an inline token wins over the file.
    if (config.token.empty() && !tokenFile->empty()) {
      config.tokenFile = resolve(dirOf(user.file->path), *tokenFile);
      auto content = readFile(config.tokenFile);
      if (!content.ok()) return invalid(uPrefix + "tokenFile: " + content.error().message());
      config.token = trim(*content);
    }
  }
  return config;
}

Result<Kubeconfig> parseFile(const std::string& path) {
  auto content = readFile(path);
  if (!content.ok()) return content.error();
  try {
    YAML::Node root = YAML::Load(*content);
    if (!root.IsMap()) return invalid(path + ": not a kubeconfig (expected a mapping at the top)");
    return Kubeconfig{path, root};
  } catch (const YAML::Exception& e) {
    return invalid(path + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

std::string envOr(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool fileExists(const std::string& path) { return std::ifstream(path).good(); }

}  // namespace

std::string describe(const Config& config) {
  std::string auth;
  auto add = [&](const char* what) { auth += (auth.empty() ? "" : "+") + std::string(what); };
  if (!config.clientCertPem.empty()) add("client-certificate");
  if (!config.tokenFile.empty())
    add("token-file");
  else if (!config.token.empty())
    add("token");
  if (auth.empty()) auth = "anonymous";
  std::string tls = config.insecureSkipTlsVerify ? "insecure" : (config.caPem.empty() ? "system-roots" : "custom-ca");
  return config.server + " (" + config.origin + ", namespace " + config.defaultNamespace + ", auth " + auth + ", tls " +
         tls + (config.tlsServerName.empty() ? "" : ", server name " + config.tlsServerName) + ")";
}

Result<Config> loadKubeconfig(const std::string& path, const std::string& context) {
  return loadKubeconfigFiles({path}, context);
}

Result<Config> loadKubeconfigFiles(const std::vector<std::string>& paths, const std::string& context) {
  std::vector<Kubeconfig> files;
  for (const auto& p : paths) {
    auto f = parseFile(p);
    if (!f.ok()) return f.error();
    files.push_back(std::move(*f));
  }
  if (files.empty()) return invalid("no kubeconfig file given");
  return build(files, context);
}

Result<Config> inClusterConfig() {
  std::string host = envOr("KUBERNETES_SERVICE_HOST");
  std::string port = envOr("KUBERNETES_SERVICE_PORT");
  if (host.empty() || port.empty()) {
    return invalid("not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
  }
  return inClusterConfig(host, port, kServiceAccountDir);
}

Result<Config> inClusterConfig(const std::string& host, const std::string& port, const std::string& serviceAccountDir) {
  Config config;
  config.origin = "in-cluster";
  bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  config.server = "https://" + (ipv6 ? "[" + host + "]" : host) + ":" + port;
  config.tokenFile = serviceAccountDir + "/token";
  auto token = readFile(config.tokenFile);
  if (!token.ok()) return invalid("in-cluster service account token: " + token.error().message());
  config.token = trim(*token);
  auto ca = readFile(serviceAccountDir + "/ca.crt");
  if (!ca.ok()) return invalid("in-cluster service account CA: " + ca.error().message());
  if (!pemParses(*ca, false))
    return invalid("in-cluster service account CA " + serviceAccountDir + "/ca.crt: no PEM certificate");
  config.caPem = std::move(*ca);
  if (auto ns = readFile(serviceAccountDir + "/namespace"); ns.ok() && !trim(*ns).empty()) {
    config.defaultNamespace = trim(*ns);
  }
  return config;
}

Result<Config> loadDefault(const std::string& kubeconfigFlag, const std::string& context) {
  if (!kubeconfigFlag.empty()) return loadKubeconfig(kubeconfigFlag, context);
  if (std::string list = envOr("KUBECONFIG"); !list.empty()) {
    std::vector<std::string> paths;
    std::stringstream ss(list);
    // Missing files in $KUBECONFIG are skipped, as kubectl does.
    for (std::string p; std::getline(ss, p, ':');) {
      if (!p.empty() && fileExists(p)) paths.push_back(p);
    }
    if (paths.empty()) return invalid("KUBECONFIG=" + list + ": none of its files exist");
    return loadKubeconfigFiles(paths, context);
  }
  if (!envOr("KUBERNETES_SERVICE_HOST").empty() && context.empty()) return inClusterConfig();
  std::string home = envOr("HOME");
  std::string fallback = home + "/.kube/config";
  if (!home.empty() && fileExists(fallback)) return loadKubeconfig(fallback, context);
  return invalid("no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, run in a cluster, or create " +
                 fallback);
}

TokenSource::TokenSource(std::string token, std::string file, const Clock& clock, std::chrono::seconds refresh)
    : token_(std::move(token)),
      file_(std::move(file)),
      clock_(clock),
      refresh_(refresh),
      lastRead_(clock.steadyNow()) {}

bool TokenSource::empty() {
  std::lock_guard lock(mu_);
  return token_.empty() && file_.empty();
}

std::string TokenSource::token() {
  std::lock_guard lock(mu_);
  if (!file_.empty() && (token_.empty() || clock_.steadyNow() - lastRead_ >= refresh_)) {
    lastRead_ = clock_.steadyNow();
    if (auto content = readFile(file_); content.ok() && !trim(*content).empty()) token_ = trim(*content);
  }
  return token_;
}

}  // namespace poolguard::kube
