#include "reliability_support.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace poolguard::testing::reliability {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::map<std::string, std::string> clusterEnv() {
  std::map<std::string, std::string> out;
  std::istringstream in(readFile(cluster().dir + "/env"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("export ", 0) == 0) line = line.substr(7);
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

std::string yamlMap(const std::map<std::string, std::string>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) out += (out.size() > 1 ? ", " : "") + k + ": " + v;
  return out + "}";
}

bool processAlive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

// A process that is gone or a zombie (a relaunched component is reparented, so its zombie is reaped by init;
// a component we never forked is not ours to wait for).
bool processGone(pid_t pid) {
  if (!processAlive(pid)) return true;
  std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

}  // namespace

int envInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  return (end && *end == 0) ? static_cast<int>(n) : fallback;
}

int soakFactor() {
  if (envInt("POOLGUARD_SOAK", 0) == 0) return 1;
  return std::max(1, envInt("POOLGUARD_SOAK_FACTOR", 10));
}

std::string applyYaml(const std::string& ns, const std::string& yaml) {
  auto r = cluster().kubectl({"-n", ns, "apply", "-f", "-"}, yaml);
  return r.exitCode == 0 ? "" : (r.err.empty() ? "kubectl apply failed" : r.err);
}

std::string deploymentYaml(const std::string& name, const std::map<std::string, std::string>& labels, int replicas) {
  auto all = labels;
  all["app"] = name;
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name + "\n  labels: " + yamlMap(all) +
         "\nspec:\n  replicas: " + std::to_string(replicas) + "\n  selector: {matchLabels: {app: " + name + "}}\n" +
         "  template:\n    metadata:\n      labels: " + yamlMap(all) + "\n    spec:\n      containers:\n" +
         "      - name: app\n        image: example.invalid/app:1\n        env:\n        - {name: KEEP_ME, value: "
         "mine}\n" +
         "      - name: sidecar\n        image: example.invalid/sc:1\n";
}

PolicyOptions basicPolicy(const std::string& name, const std::map<std::string, std::string>& selector, int maxSize,
                          const std::string& database) {
  PolicyOptions o;
  o.name = name;
  o.selector = selector;
  o.maxSize = maxSize;
  o.database = database;
  return o;
}

std::string policyYaml(const PolicyOptions& o) {
  return "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\nmetadata:\n  name: " + o.name +
         "\nspec:\n  selector:\n    matchLabels: " + yamlMap(o.selector) +
         "\n  containers: [app]\n  profile: " + o.profile + "\n  pool:\n    maxSize: " + std::to_string(o.maxSize) +
         "\n  delivery:\n    method: " + o.delivery + "\n    applicationName: \"" + o.applicationName +
         "\"\n  database:\n    name: " + o.database + "\n    maxConnections: " + std::to_string(o.maxConnections) +
         "\n" + o.extraSpec;
}

std::string podAnnotation(const json& w, const std::string& key) {
  static const json::json_pointer kTemplate("/spec/template");
  if (!w.is_object() || !w.contains(kTemplate) || !w.at(kTemplate).is_object()) return "";
  const auto& meta = w.at(kTemplate).value("metadata", json::object());
  return meta.value("annotations", json::object()).value(key, "");
}

// ---- processes ---------------------------------------------------------------------------------------------

std::vector<std::string> processCmdline(pid_t pid) {
  std::string raw = readFile("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> out;
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    out.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

pid_t operatorPid(const OperatorProcess& op) {
  const std::string needle = "--metrics-bind-address=127.0.0.1:" + std::to_string(op.metricsPort());
  DIR* d = opendir("/proc");
  if (!d) return -1;
  pid_t found = -1;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (!end || *end != 0 || pid <= 0) continue;
    for (const auto& arg : processCmdline(static_cast<pid_t>(pid))) {
      if (arg == needle) found = static_cast<pid_t>(pid);
    }
    if (found > 0) break;
  }
  closedir(d);
  return found;
}

std::string operatorIdentity(const OperatorProcess& op) {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "_" + std::to_string(operatorPid(op));
}

pid_t componentPid(const std::string& name) {
  std::string s = readFile(cluster().dir + "/pids/" + name);
  return s.empty() ? -1 : static_cast<pid_t>(std::atol(s.c_str()));
}

bool stopComponent(const std::string& name, int sig, std::chrono::seconds timeout) {
  pid_t pid = componentPid(name);
  if (pid <= 0) return false;
  if (kill(-pid, sig) != 0) kill(pid, sig);
  bool gone = eventually([&] { return processGone(pid); }, timeout);
  if (!gone) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    gone = eventually([&] { return processGone(pid); }, std::chrono::seconds(10));
  }
  return gone;
}

pid_t launchComponent(const std::string& name, const std::vector<std::string>& argv) {
  const std::string log = cluster().dir + "/logs/" + name + ".log";
  int pidPipe[2];
  if (pipe2(pidPipe, O_CLOEXEC) != 0) return -1;
  pid_t child = fork();
  if (child == 0) {
    // Double fork: the component is reparented to init, as scripts/local-cluster's `setsid ... &` leaves it.
    pid_t grandchild = fork();
    if (grandchild == 0) {
      setsid();
      int in = open("/dev/null", O_RDONLY);
      int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(in, 0);
      dup2(out, 1);
      dup2(out, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
    ssize_t ignored = write(pidPipe[1], &grandchild, sizeof grandchild);
    (void)ignored;
    _exit(0);
  }
  close(pidPipe[1]);
  pid_t pid = -1;
  if (read(pidPipe[0], &pid, sizeof pid) != static_cast<ssize_t>(sizeof pid)) pid = -1;
  close(pidPipe[0]);
  waitpid(child, nullptr, 0);
  if (pid > 0) std::ofstream(cluster().dir + "/pids/" + name, std::ios::trunc) << pid << "\n";
  return pid;
}

bool waitApiServerReady(std::chrono::seconds timeout) {
  const std::string certs = cluster().dir + "/certs/";
  return eventually(
      [&] {
        return run({"curl", "-sf", "-m", "2", "-o", "/dev/null", "--cacert", certs + "ca.crt", "--cert",
                    certs + "admin.crt", "--key", certs + "admin.key", cluster().server + "/readyz"})
                   .exitCode == 0;
      },
      timeout);
}

bool waitPostgresReady(std::chrono::seconds timeout) {
  return eventually(
      [&] {
        return run({"psql", "-X", "-A", "-t", "-q", "-h", cluster().pgHost, "-p", std::to_string(cluster().pgPort),
                    "-U", cluster().pgUser, "-d", cluster().pgDatabase, "-c", "select 1"})
                   .exitCode == 0;
      },
      timeout);
}

ApiServerRestart stopApiServer() {
  ApiServerRestart r;
  pid_t pid = componentPid("kube-apiserver");
  if (pid <= 0) return r;
  r.argv = processCmdline(pid);
  if (r.argv.empty()) return r;
  r.stopped = stopComponent("kube-apiserver", SIGTERM, std::chrono::seconds(60));
  return r;
}

bool startApiServer(const ApiServerRestart& r, std::chrono::seconds readyTimeout) {
  if (r.argv.empty()) return false;
  if (launchComponent("kube-apiserver", r.argv) <= 0) return false;
  return waitApiServerReady(readyTimeout);
}

int64_t etcdRevision() {
  auto env = clusterEnv();
  // Any key: the response header carries the store's current revision.
  auto r =
      run({"curl", "-sf", "-X", "POST", env["ETCD_ENDPOINT"] + "/v3/kv/range", "-d", R"({"key":"AA==","limit":1})"});
  if (r.exitCode != 0) return -1;
  auto j = json::parse(r.out, nullptr, false);
  if (j.is_discarded()) return -1;
  const auto& rev = j["header"]["revision"];
  return rev.is_string() ? std::stoll(rev.get<std::string>()) : rev.get<int64_t>();
}

bool etcdCompact(int64_t revision) {
  auto env = clusterEnv();
  auto r = run({"curl", "-sf", "-X", "POST", env["ETCD_ENDPOINT"] + "/v3/kv/compaction", "-d",
                "{\"revision\":\"" + std::to_string(revision) + "\",\"physical\":true}"});
  return r.exitCode == 0;
}

bool etcdPut(const std::string& key, const std::string& value) {
  auto env = clusterEnv();
  auto b64 = [](const std::string& in) {
    static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < in.size(); i += 3) {
      uint32_t n = static_cast<uint8_t>(in[i]) << 16;
      if (i + 1 < in.size()) n |= static_cast<uint8_t>(in[i + 1]) << 8;
      if (i + 2 < in.size()) n |= static_cast<uint8_t>(in[i + 2]);
      out += table[(n >> 18) & 63];
      out += table[(n >> 12) & 63];
      out += i + 1 < in.size() ? table[(n >> 6) & 63] : '=';
      out += i + 2 < in.size() ? table[n & 63] : '=';
    }
    return out;
  };
  auto r = run({"curl", "-sf", "-X", "POST", env["ETCD_ENDPOINT"] + "/v3/kv/put", "-d",
                json{{"key", b64(key)}, {"value", b64(value)}}.dump()});
  return r.exitCode == 0;
}

void addAdminContext(const std::string& user) {
  const std::string c = cluster().dir + "/certs/";
  const std::string key = c + user + ".key", crt = c + user + ".crt", csr = c + user + ".csr";
  auto r = run({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
                "/O=system:masters/CN=" + user});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  std::ofstream(c + user + ".ext") << "extendedKeyUsage=clientAuth\n";
  r = run({"openssl", "x509", "-req", "-in", csr, "-CA", c + "ca.crt", "-CAkey", c + "ca.key", "-CAcreateserial",
           "-out", crt, "-days", "2", "-extfile", c + user + ".ext"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  r = cluster().kubectl({"config", "set-credentials", user, "--client-certificate=" + crt, "--client-key=" + key});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  r = cluster().kubectl({"config", "set-context", user, "--cluster=local", "--user=" + user, "--namespace=default"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
}

// ---- audit log ---------------------------------------------------------------------------------------------

double auditTime(const json& entry, const char* field) {
  std::string s = entry.value(field, "");
  std::tm tm{};
  if (s.size() < 19 || !strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  double t = static_cast<double>(timegm(&tm));
  if (s.size() > 20 && s[19] == '.') {
    size_t end = s.find('Z', 20);
    std::string frac = s.substr(20, end == std::string::npos ? std::string::npos : end - 20);
    t += std::stod("0." + frac);
  }
  return t;
}

std::string auditResource(const json& e) {
  const auto& ref = e.value("objectRef", json::object());
  std::string r = ref.value("resource", "");
  std::string sub = ref.value("subresource", "");
  return sub.empty() ? r : r + "/" + sub;
}

bool isWorkloadWrite(const json& e) {
  std::string verb = e.value("verb", "");
  if (verb != "create" && verb != "update" && verb != "patch" && verb != "delete") return false;
  std::string r = e.value("objectRef", json::object()).value("resource", "");
  return r == "deployments" || r == "statefulsets" || r == "configmaps";
}

std::vector<json> auditEntries(size_t sinceLine) {
  std::vector<json> out;
  for (auto& j : auditEvents(sinceLine)) {
    if (j.value("stage", "") == "ResponseComplete") out.push_back(std::move(j));
  }
  return out;
}

std::vector<json> operatorRequestsAnyStage(size_t sinceLine) {
  std::vector<json> out;
  std::set<std::string> seen;
  for (auto& j : auditEvents(sinceLine)) {
    if (j.value("userAgent", "").rfind("poolguard/", 0) != 0) continue;
    if (!seen.insert(j.value("auditID", "")).second) continue;
    out.push_back(std::move(j));
  }
  return out;
}

std::string requestResourceVersion(const json& entry) {
  std::string uri = entry.value("requestURI", "");
  for (const std::string key : {"?resourceVersion=", "&resourceVersion="}) {
    auto pos = uri.find(key);
    if (pos == std::string::npos) continue;
    pos += key.size();
    return uri.substr(pos, uri.find('&', pos) - pos);
  }
  return "";
}

double wallNow() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

int countOccurrences(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + needle.size()))
    ++n;
  return n;
}

}  // namespace poolguard::testing::reliability
