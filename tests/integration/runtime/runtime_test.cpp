// The runtime against a real API server: an informer follows ConfigMaps, two processes hand a Lease over, and
// events are created and aggregated.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "kube/config.h"
#include "kube/rest_client.h"
#include "runtime/event_recorder.h"
#include "runtime/informer.h"
#include "runtime/leader_election.h"
#include "support/cluster.h"

namespace poolguard::runtime {
namespace {

using namespace std::chrono_literals;
using poolguard::testing::cluster;
using poolguard::testing::createNamespace;
using poolguard::testing::eventually;

std::unique_ptr<kube::RestClient> client() {
  auto config = kube::loadKubeconfig(cluster().kubeconfig);
  if (!config) throw std::runtime_error("kubeconfig: " + config.error().message());
  auto c = kube::makeRestClient(*config);
  if (!c) throw std::runtime_error("client: " + c.error().message());
  return std::move(*c);
}

class Seen {
 public:
  EventHandlers handlers() {
    EventHandlers h;
    h.onAdd = [this](const ObjectPtr& o) { push("add " + o->meta.name); };
    h.onUpdate = [this](const ObjectPtr&, const ObjectPtr& o) { push("update " + o->meta.name); };
    h.onDelete = [this](const ObjectPtr& o) { push("delete " + o->meta.name); };
    return h;
  }
  bool has(const std::string& s) {
    std::lock_guard l(mu_);
    return std::find(seen_.begin(), seen_.end(), s) != seen_.end();
  }

 private:
  void push(std::string s) {
    std::lock_guard l(mu_);
    seen_.push_back(std::move(s));
  }
  std::mutex mu_;
  std::vector<std::string> seen_;
};

TEST(RuntimeIntegration, InformerSyncsAndFollowsConfigMaps) {
  auto c = client();
  std::string ns = createNamespace("informer");
  ASSERT_EQ(cluster().kubectl({"-n", ns, "create", "configmap", "before", "--from-literal=a=1"}).exitCode, 0);

  InformerOptions o;
  o.resource = kube::resources::configMaps();
  o.namespaces = {ns};
  o.pageSize = 1;  // force pagination through the real continue tokens
  Informer inf(*c, o);
  Seen seen;
  inf.addHandlers(seen.handlers());
  std::stop_source stop;
  inf.start(stop.get_token());
  ASSERT_TRUE(inf.waitForSync(stop.get_token(), 30s));
  EXPECT_TRUE(seen.has("add before"));
  // kube-root-ca.crt is published into every namespace; with a page size of 1 it takes two pages.
  EXPECT_TRUE(eventually([&] { return inf.store().size() >= 2; }, 10s));

  ASSERT_EQ(cluster().kubectl({"-n", ns, "create", "configmap", "after", "--from-literal=b=2"}).exitCode, 0);
  EXPECT_TRUE(eventually([&] { return seen.has("add after"); }, 20s));
  auto applied = cluster().kubectl({"-n", ns, "apply", "-f", "-"},
                                   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: before}\ndata: {a: '9'}\n");
  ASSERT_EQ(applied.exitCode, 0) << applied.err;
  EXPECT_TRUE(eventually([&] { return seen.has("update before"); }, 20s));
  auto cached = inf.store().get(ns, "before");
  ASSERT_TRUE(cached);
  const json& value = recordAs<JsonObject>(cached)->value;
  EXPECT_EQ(value["data"]["a"], "9");
  EXPECT_FALSE(value["metadata"].contains("managedFields"));
  EXPECT_FALSE(value["metadata"].contains("annotations")) << "the last-applied annotation is stripped";
  EXPECT_TRUE(cached->meta.annotations.empty());

  ASSERT_EQ(cluster().kubectl({"-n", ns, "delete", "configmap", "after"}).exitCode, 0);
  EXPECT_TRUE(eventually([&] { return seen.has("delete after"); }, 20s));
  EXPECT_FALSE(inf.store().get(ns, "after"));
  inf.stop();
}

// A child process whose stdout is read line by line.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(out[1]);
    fd_ = out[0];
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  // Whether `line` appeared on stdout within `timeout`.
  bool waitForLine(const std::string& line, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      for (auto pos = buffer_.find('\n'); pos != std::string::npos; pos = buffer_.find('\n')) {
        std::string l = buffer_.substr(0, pos);
        buffer_.erase(0, pos + 1);
        if (l == line) return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[256];
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) return false;
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }
  void signal(int sig) { kill(pid_, sig); }
  int wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buffer_;
};

std::string holderOf(const std::string& ns, const std::string& lease) {
  auto r = cluster().kubectl({"-n", ns, "get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}"});
  return r.exitCode == 0 ? r.out : "<error: " + r.err + ">";
}

TEST(RuntimeIntegration, LeaseHandsOverBetweenProcessesOnReleaseAndAfterACrash) {
  std::string ns = createNamespace("lease");
  const std::string helper = RUNTIME_LEADER_HELPER;
  // A long lease: a handover faster than it proves the release, not expiry, let the successor in.
  const std::string leaseSeconds = "12";
  Child a({helper, cluster().kubeconfig, ns, "pg-lease", "alpha", leaseSeconds});
  ASSERT_TRUE(a.waitForLine("LEADING alpha", 30s));
  Child b({helper, cluster().kubeconfig, ns, "pg-lease", "beta", leaseSeconds});
  EXPECT_FALSE(b.waitForLine("LEADING beta", 3s)) << "two leaders at once";
  EXPECT_EQ(holderOf(ns, "pg-lease"), "alpha");

  auto released = std::chrono::steady_clock::now();
  a.signal(SIGTERM);
  EXPECT_EQ(a.wait(), 0);
  ASSERT_TRUE(b.waitForLine("LEADING beta", 30s));
  EXPECT_LT(std::chrono::steady_clock::now() - released, 8s) << "the successor waited for expiry: no release";
  EXPECT_EQ(holderOf(ns, "pg-lease"), "beta");

  // A crashed leader cannot release: the next candidate waits the lease out, then takes over.
  Child c({helper, cluster().kubeconfig, ns, "pg-lease", "gamma", leaseSeconds});
  EXPECT_FALSE(c.waitForLine("LEADING gamma", 2s));
  auto crashed = std::chrono::steady_clock::now();
  b.signal(SIGKILL);
  b.wait();
  ASSERT_TRUE(c.waitForLine("LEADING gamma", 60s));
  EXPECT_GE(std::chrono::steady_clock::now() - crashed, 10s);
  c.signal(SIGTERM);
  EXPECT_EQ(c.wait(), 0);
  EXPECT_EQ(holderOf(ns, "pg-lease"), "");
}

TEST(RuntimeIntegration, EventsAreCreatedAndAggregated) {
  auto c = client();
  std::string ns = createNamespace("events");
  ASSERT_EQ(cluster().kubectl({"-n", ns, "create", "configmap", "subject"}).exitCode, 0);
  auto subject = c->get(kube::resources::configMaps(), ns, "subject");
  ASSERT_TRUE(subject.ok()) << subject.error().message();

  EventRecorder rec(*c);
  for (int i = 0; i < 3; ++i) rec.record(*subject, EventType::kWarning, "BudgetExceeded", "12 > 10");
  rec.record(*subject, EventType::kNormal, "Adjusted", "pool size 8");
  ASSERT_TRUE(rec.flush(30s));
  EXPECT_EQ(rec.written(), 4u);
  EXPECT_EQ(rec.dropped(), 0u);

  auto events = c->list(kube::resources::events(), ns);
  ASSERT_TRUE(events.ok()) << events.error().message();
  std::map<std::string, kube::json> byReason;
  for (const auto& e : (*events)["items"]) byReason[e["reason"].get<std::string>()] = e;
  ASSERT_EQ((*events)["items"].size(), 2u);
  EXPECT_EQ(byReason["BudgetExceeded"]["count"], 3);
  EXPECT_EQ(byReason["BudgetExceeded"]["type"], "Warning");
  EXPECT_EQ(byReason["BudgetExceeded"]["involvedObject"]["name"], "subject");
  EXPECT_EQ(byReason["BudgetExceeded"]["involvedObject"]["uid"], (*subject)["metadata"]["uid"]);
  EXPECT_EQ(byReason["Adjusted"]["count"], 1);
}

}  // namespace
}  // namespace poolguard::runtime
