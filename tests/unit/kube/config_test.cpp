#include "kube/config.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace poolguard::kube {
namespace {

namespace fs = std::filesystem;

std::string readTestdata(const std::string& name) {
  std::ifstream in(std::string(KUBE_TESTDATA_DIR) + "/" + name);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string base64(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    for (int s : {18, 12, 6, 0}) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8);
    out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kube-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    for (const char* f : {"ca.crt", "client.crt", "client.key", "other.key"}) {
      fs::copy_file(std::string(KUBE_TESTDATA_DIR) + "/" + f, dir_ + "/" + f);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& content) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    return path;
  }

  std::string dir_;
};

const char* kTwoContexts = R"(apiVersion: v1
kind: Config
current-context: files
clusters:
- name: files-cluster
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority: ca.crt
- name: insecure-cluster
  cluster:
    server: https://kube.internal:443
    insecure-skip-tls-verify: true
    tls-server-name: kubernetes.default
users:
- name: cert-user
  user:
    client-certificate: client.crt
    client-key: client.key
- name: token-user
  user:
    token: s3cr3t-token
contexts:
- name: files
  context: {cluster: files-cluster, user: cert-user, namespace: team-a}
- name: tokens
  context: {cluster: insecure-cluster, user: token-user}
)";

TEST_F(KubeconfigTest, CurrentContextWithFilesRelativeToTheKubeconfig) {
  auto c = loadKubeconfig(write("config", kTwoContexts));
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->caPem, readTestdata("ca.crt"));
  EXPECT_EQ(c->clientCertPem, readTestdata("client.crt"));
  EXPECT_EQ(c->clientKeyPem, readTestdata("client.key"));
  EXPECT_FALSE(c->insecureSkipTlsVerify);
  EXPECT_EQ(c->defaultNamespace, "team-a");
  EXPECT_TRUE(c->token.empty());
}

TEST_F(KubeconfigTest, NamedContextOverridesCurrent) {
  auto c = loadKubeconfig(write("config", kTwoContexts), "tokens");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://kube.internal:443");
  EXPECT_TRUE(c->insecureSkipTlsVerify);
  EXPECT_EQ(c->tlsServerName, "kubernetes.default");
  EXPECT_EQ(c->token, "s3cr3t-token");
  EXPECT_EQ(c->defaultNamespace, "default");
  EXPECT_TRUE(c->caPem.empty());
  EXPECT_TRUE(c->clientCertPem.empty());
}

TEST_F(KubeconfigTest, InlineDataFields) {
  std::string cfg =
      "current-context: c\nclusters:\n- name: k\n  cluster:\n    server: https://h:1\n"
      "    certificate-authority-data: " +
      base64(readTestdata("ca.crt")) +
      "\nusers:\n- name: u\n  user:\n    client-certificate-data: " + base64(readTestdata("client.crt")) +
      "\n    client-key-data: " + base64(readTestdata("client.key")) +
      "\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n";
  auto c = loadKubeconfig(write("config", cfg));
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->caPem, readTestdata("ca.crt"));
  EXPECT_EQ(c->clientCertPem, readTestdata("client.crt"));
  EXPECT_EQ(c->clientKeyPem, readTestdata("client.key"));
}

TEST_F(KubeconfigTest, TokenFileIsReadAndRemembered) {
  write("token", "file-token\n");
  auto c = loadKubeconfig(write("config",
                                "current-context: c\nclusters: [{name: k, cluster: {server: 'https://h:1'}}]\n"
                                "users: [{name: u, user: {tokenFile: token}}]\n"
                                "contexts: [{name: c, context: {cluster: k, user: u}}]\n"));
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->token, "file-token");
  EXPECT_EQ(c->tokenFile, dir_ + "/token");
}

TEST_F(KubeconfigTest, InlineTokenWinsOverTokenFile) {
  auto c = loadKubeconfig(write("config",
                                "current-context: c\nclusters: [{name: k, cluster: {server: 'https://h:1'}}]\n"
                                "users: [{name: u, user: {token: inline, tokenFile: missing}}]\n"
                                "contexts: [{name: c, context: {cluster: k, user: u}}]\n"));
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->token, "inline");
  EXPECT_TRUE(c->tokenFile.empty());
}

struct Malformed {
  const char* name;
  std::string kubeconfig;
  std::string expected;  // substring of the error message
};

std::string withUsers(const std::string& users) {
  return "current-context: c\nclusters: [{name: k, cluster: {server: 'https://h:1'}}]\nusers:\n" + users +
         "contexts: [{name: c, context: {cluster: k, user: u}}]\n";
}

std::string withCluster(const std::string& cluster) {
  return "current-context: c\nclusters:\n- name: k\n  cluster:\n" + cluster +
         "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n";
}

class KubeconfigMalformed : public KubeconfigTest, public ::testing::WithParamInterface<Malformed> {};

TEST_P(KubeconfigMalformed, NamesTheField) {
  auto c = loadKubeconfig(write("config", GetParam().kubeconfig));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(c.error().message().find(GetParam().expected), std::string::npos) << c.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Kubeconfig, KubeconfigMalformed,
    ::testing::Values(
        Malformed{"BadBase64",
                  withUsers("- name: u\n  user: {client-certificate-data: 'not*base64', client-key-data: 'AAAA'}\n"),
                  "users[0].user.client-certificate-data: not valid base64"},
        Malformed{"IndexOfTheRightUser",
                  withUsers("- name: other\n  user: {token: x}\n- name: u\n  user: {client-key-data: 'QUJD'}\n"),
                  "users[1].user.client-key-data: no PEM private key"},
        Malformed{"Base64ButNotPem", withCluster("    server: https://h:1\n    certificate-authority-data: QUJDRA==\n"),
                  "clusters[0].cluster.certificate-authority-data: no PEM certificate"},
        Malformed{"MissingServer", withCluster("    insecure-skip-tls-verify: true\n"),
                  "clusters[0].cluster.server: missing"},
        Malformed{"ServerNotUrl", withCluster("    server: h:1\n"), "clusters[0].cluster.server: \"h:1\" is not"},
        Malformed{"InsecureNotBool", withCluster("    server: https://h:1\n    insecure-skip-tls-verify: maybe\n"),
                  "clusters[0].cluster.insecure-skip-tls-verify: expected true or false"},
        Malformed{"InsecureWithCa",
                  withCluster("    server: https://h:1\n    insecure-skip-tls-verify: true\n"
                              "    certificate-authority: ca.crt\n"),
                  "insecure-skip-tls-verify: cannot be combined"},
        Malformed{"MissingCaFile", withCluster("    server: https://h:1\n    certificate-authority: nope.crt\n"),
                  "clusters[0].cluster.certificate-authority: cannot read"},
        Malformed{"CertWithoutKey", withUsers("- name: u\n  user: {client-certificate: client.crt}\n"),
                  "users[0].user.client-key: missing"},
        Malformed{"BothDataAndFile",
                  withUsers("- name: u\n  user: {client-certificate: client.crt, client-certificate-data: QUJD,"
                            " client-key: client.key}\n"),
                  "users[0].user.client-certificate: both"},
        Malformed{"ExecPlugin", withUsers("- name: u\n  user: {exec: {command: aws}}\n"),
                  "users[0].user.exec: not supported"},
        Malformed{"TokenNotString", withUsers("- name: u\n  user: {token: [a, b]}\n"),
                  "users[0].user.token: expected a string"},
        Malformed{"NoCurrentContext", "clusters: []\n", "current-context: not set"},
        Malformed{"UnknownContext", "current-context: nope\ncontexts: []\n", "no context named \"nope\""},
        Malformed{"UnknownCluster", "current-context: c\ncontexts: [{name: c, context: {cluster: gone, user: u}}]\n",
                  "contexts[0].context.cluster: no cluster named \"gone\""},
        Malformed{"UnknownUser",
                  "current-context: c\nclusters: [{name: k, cluster: {server: 'https://h:1'}}]\n"
                  "contexts: [{name: c, context: {cluster: k, user: ghost}}]\n",
                  "contexts[0].context.user: no user named \"ghost\""},
        Malformed{"ContextsNotAList", "current-context: c\ncontexts: {c: 1}\n", "contexts: expected a list"},
        Malformed{"YamlSyntax", "current-context: c\nclusters: [\n", "line "},
        Malformed{"NotAMapping", "- just\n- a list\n", "not a kubeconfig"}),
    [](const ::testing::TestParamInfo<Malformed>& p) { return std::string(p.param.name); });

TEST_F(KubeconfigTest, MissingFileIsAnError) {
  auto c = loadKubeconfig(dir_ + "/does-not-exist");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message().find("cannot read"), std::string::npos);
}

TEST_F(KubeconfigTest, SeveralFilesFirstDefinitionWins) {
  std::string first = write("a",
                            "clusters: [{name: k, cluster: {server: 'https://first:1'}}]\n"
                            "users: [{name: u, user: {token: first}}]\n");
  std::string second = write("b",
                             "current-context: c\nclusters: [{name: k, cluster: {server: 'https://second:1'}}]\n"
                             "users: [{name: u, user: {token: second}}]\n"
                             "contexts: [{name: c, context: {cluster: k, user: u, namespace: n2}}]\n");
  auto c = loadKubeconfigFiles({first, second});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://first:1");
  EXPECT_EQ(c->token, "first");
  EXPECT_EQ(c->defaultNamespace, "n2");
}

TEST_F(KubeconfigTest, DescribeNeverShowsCredentials) {
  auto c = loadKubeconfig(write("config", kTwoContexts), "tokens");
  ASSERT_TRUE(c.ok());
  std::string d = describe(*c);
  EXPECT_EQ(d.find("s3cr3t"), std::string::npos) << d;
  EXPECT_NE(d.find("https://kube.internal:443"), std::string::npos) << d;
  EXPECT_NE(d.find("token"), std::string::npos) << d;
  auto files = loadKubeconfig(dir_ + "/config");
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(describe(*files).find("PRIVATE KEY"), std::string::npos);
}

class EnvGuard {
 public:
  explicit EnvGuard(const char* name) : name_(name) {
    if (const char* v = getenv(name)) old_ = v;
  }
  ~EnvGuard() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }
  void set(const std::string& v) { setenv(name_, v.c_str(), 1); }
  void unset() { unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST_F(KubeconfigTest, LoadDefaultPrefersFlagThenKubeconfigEnv) {
  std::string flagged = write("flagged",
                              "current-context: c\nclusters: [{name: k, cluster: {server: 'https://flag:1'}}]\n"
                              "contexts: [{name: c, context: {cluster: k}}]\n");
  std::string fromEnv = write("env",
                              "current-context: c\nclusters: [{name: k, cluster: {server: 'https://env:1'}}]\n"
                              "contexts: [{name: c, context: {cluster: k}}]\n");
  EnvGuard kubeconfig("KUBECONFIG");
  kubeconfig.set(dir_ + "/missing:" + fromEnv);
  auto a = loadDefault(flagged);
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(a->server, "https://flag:1");
  auto b = loadDefault("");
  ASSERT_TRUE(b.ok()) << b.error().message();
  EXPECT_EQ(b->server, "https://env:1");
  kubeconfig.set(dir_ + "/missing");
  auto none = loadDefault("");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("none of its files exist"), std::string::npos);
}

TEST_F(KubeconfigTest, LoadDefaultFallsBackToInCluster) {
  EnvGuard kubeconfig("KUBECONFIG"), host("KUBERNETES_SERVICE_HOST"), port("KUBERNETES_SERVICE_PORT");
  kubeconfig.unset();
  host.set("10.0.0.1");
  port.set("443");
  // Not in a pod here: the service account files are missing, and the error says which.
  auto c = loadDefault("");
  if (fs::exists(std::string(kServiceAccountDir) + "/token")) GTEST_SKIP() << "running inside a pod";
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message().find("in-cluster service account token"), std::string::npos) << c.error().message();
}

TEST_F(KubeconfigTest, InCluster) {
  write("token", "sa-token\n");
  write("namespace", "operators");
  fs::remove(dir_ + "/ca.crt");
  auto c = inClusterConfig("10.96.0.1", "443", dir_);
  ASSERT_FALSE(c.ok()) << "no ca.crt yet";
  EXPECT_NE(c.error().message().find("ca.crt"), std::string::npos);
  write("ca.crt", readTestdata("ca.crt"));
  c = inClusterConfig("10.96.0.1", "443", dir_);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->token, "sa-token");
  EXPECT_EQ(c->tokenFile, dir_ + "/token");
  EXPECT_EQ(c->defaultNamespace, "operators");
  EXPECT_EQ(c->caPem, readTestdata("ca.crt"));
}

TEST_F(KubeconfigTest, InClusterBracketsIpv6) {
  write("token", "t");
  auto c = inClusterConfig("fd00:10:96::1", "6443", dir_);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->server, "https://[fd00:10:96::1]:6443");
  EXPECT_EQ(c->defaultNamespace, "default");
}

TEST_F(KubeconfigTest, InClusterWithoutTokenFails) {
  auto c = inClusterConfig("10.96.0.1", "443", dir_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message().find("token"), std::string::npos);
}

TEST_F(KubeconfigTest, TokenSourceRereadsAfterTheRefreshPeriod) {
  std::string path = write("token", "first\n");
  ManualClock clock;
  TokenSource tokens("first", path, clock, std::chrono::seconds(60));
  write("token", "second\n");
  EXPECT_EQ(tokens.token(), "first");
  clock.advance(std::chrono::seconds(59));
  EXPECT_EQ(tokens.token(), "first");
  clock.advance(std::chrono::seconds(1));
  EXPECT_EQ(tokens.token(), "second");
  fs::remove(path);
  clock.advance(std::chrono::seconds(60));
  EXPECT_EQ(tokens.token(), "second") << "a failed re-read keeps the last token";
}

TEST_F(KubeconfigTest, TokenSourceWithoutFileIsStatic) {
  ManualClock clock;
  TokenSource tokens("static", "", clock);
  clock.advance(std::chrono::hours(1));
  EXPECT_EQ(tokens.token(), "static");
}

}  // namespace
}  // namespace poolguard::kube
