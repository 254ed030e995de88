// Authentication and TLS: a service account without rights, a bad token, token rotation from a file, and
// certificate checks (wrong CA, tls-server-name, insecure, the system's authorities read once and shared).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "helpers.h"
#include "kube/http.h"

namespace poolguard::kube::testing {
namespace {

namespace fs = std::filesystem;
using poolguard::testing::createNamespace;
using poolguard::testing::run;

std::string serviceAccountToken(const std::string& ns, const std::string& name) {
  auto sa = cluster().kubectl({"-n", ns, "create", "serviceaccount", name});
  if (sa.exitCode != 0) throw std::runtime_error("create serviceaccount: " + sa.err);
  auto token = cluster().kubectl({"-n", ns, "create", "token", name});
  if (token.exitCode != 0) throw std::runtime_error("create token: " + token.err);
  std::string t = token.out;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  return t;
}

// The admin configuration's server and CA with a bearer token instead of the client certificate.
Config tokenConfig(const std::string& token) {
  Config c = adminConfig();
  c.clientCertPem.clear();
  c.clientKeyPem.clear();
  c.token = token;
  return c;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kube-auth-test-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    path_ = tmpl;
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ + "/" + name) << content;
  }

 private:
  std::string path_;
};

TEST(Auth, ServiceAccountWithoutRightsIsForbidden) {
  std::string ns = createNamespace("kube-forbidden");
  auto client = clientFor(tokenConfig(serviceAccountToken(ns, "nobody")));
  auto list = client->list(resources::configMaps(), ns);
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code(), ErrorCode::kForbidden) << list.error().message();
  EXPECT_EQ(list.error().httpStatus(), 403);
  EXPECT_EQ(list.error().reason(), "Forbidden");
  EXPECT_NE(list.error().message().find("system:serviceaccount:" + ns + ":nobody"), std::string::npos)
      << list.error().message();
  EXPECT_FALSE(list.error().retryable());
}

TEST(Auth, UnknownTokenIsUnauthorized) {
  auto client = clientFor(tokenConfig("not-a-real-token"));
  auto list = client->list(resources::configMaps(), "default");
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code(), ErrorCode::kUnauthorized) << list.error().message();
  EXPECT_EQ(list.error().httpStatus(), 401);
}

TEST(Auth, InClusterTokenIsRereadAfterRotation) {
  std::string ns = createNamespace("kube-incluster");
  std::string realToken = serviceAccountToken(ns, "rotating");
  TempDir sa;
  sa.write("token", "stale-token\n");
  sa.write("ca.crt", adminConfig().caPem);
  sa.write("namespace", ns);
  std::string server = cluster().server;  // https://127.0.0.1:PORT
  auto colon = server.rfind(':');
  auto config = inClusterConfig("127.0.0.1", server.substr(colon + 1), sa.path());
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->server, server);
  EXPECT_EQ(config->defaultNamespace, ns);

  ManualClock clock;
  RestClientOptions options;
  options.clock = &clock;
  auto client = clientFor(*config, options);
  auto before = client->list(resources::configMaps(), ns);
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.error().code(), ErrorCode::kUnauthorized) << before.error().message();

  sa.write("token", realToken + "\n");
  auto notYet = client->list(resources::configMaps(), ns);
  ASSERT_FALSE(notYet.ok());
  EXPECT_EQ(notYet.error().code(), ErrorCode::kUnauthorized) << "the file is re-read only after the refresh period";

  clock.advance(std::chrono::seconds(61));
  auto after = client->list(resources::configMaps(), ns);
  ASSERT_FALSE(after.ok());
  // Authenticated now, as the service account, which has no rights.
  EXPECT_EQ(after.error().code(), ErrorCode::kForbidden) << after.error().message();
}

std::string makeOtherCa(const TempDir& dir) {
  auto r = run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.path() + "/other.key",
                "-out", dir.path() + "/other.crt", "-days", "1", "-subj", "/CN=some-other-ca"});
  if (r.exitCode != 0) throw std::runtime_error("openssl: " + r.err);
  return readFile(dir.path() + "/other.crt");
}

RestClientOptions fewAttempts() {
  RestClientOptions o;
  o.maxAttempts = 2;
  o.retryBaseDelay = std::chrono::milliseconds(10);
  return o;
}

TEST(Tls, WrongCaFailsTheHandshake) {
  TempDir dir;
  Config c = adminConfig();
  c.caPem = makeOtherCa(dir);
  auto client = clientFor(c, fewAttempts());
  auto got = client->get(resources::namespaces(), "", "default");
  ASSERT_FALSE(got.ok()) << "a server certificate from another CA was accepted";
  EXPECT_EQ(got.error().code(), ErrorCode::kUnavailable) << got.error().message();
  EXPECT_EQ(got.error().httpStatus(), 0) << "no HTTP answer without a handshake";
}

TEST(Tls, AdminClientCertificateIsAccepted) {
  auto got = adminClient()->get(resources::namespaces(), "", "default");
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ((*got)["metadata"]["name"], "default");
}

TEST(Tls, ServerNameOverridesTheCheckedHost) {
  Config c = adminConfig();  // the server is addressed by IP; the certificate also names "kubernetes.default.svc"
  c.tlsServerName = "kubernetes.default.svc";
  auto good = clientFor(c)->get(resources::namespaces(), "", "default");
  ASSERT_TRUE(good.ok()) << good.error().message();

  c.tlsServerName = "not-in-the-certificate.invalid";
  auto bad = clientFor(c, fewAttempts())->get(resources::namespaces(), "", "default");
  ASSERT_FALSE(bad.ok()) << "a certificate for other names was accepted";
  EXPECT_EQ(bad.error().code(), ErrorCode::kUnavailable) << bad.error().message();
}

TEST(Tls, InsecureSkipsVerificationOnlyWhenAsked) {
  TempDir dir;
  Config c = adminConfig();
  c.caPem.clear();  // no CA: the system roots, which do not know the test CA
  auto verified = clientFor(c, fewAttempts())->get(resources::namespaces(), "", "default");
  ASSERT_FALSE(verified.ok());
  c.insecureSkipTlsVerify = true;
  auto insecure = clientFor(c)->get(resources::namespaces(), "", "default");
  ASSERT_TRUE(insecure.ok()) << insecure.error().message();
}

// The system's authorities are read once and shared: with SSL_CERT_FILE then /dev/null and no certificate
// directory, a connection without a CA of its own verifies the server only through the shared store. Here the
// "system" bundle is the test cluster's CA.
TEST(Tls, TheSystemAuthoritiesReadOnceVerifyEveryConnection) {
  TempDir dir;
  Config c = adminConfig();
  dir.write("bundle.pem", c.caPem);
  std::optional<std::string> oldFile, oldDir;
  if (const char* f = std::getenv("SSL_CERT_FILE")) oldFile = f;
  if (const char* d = std::getenv("SSL_CERT_DIR")) oldDir = d;
  setenv("SSL_CERT_FILE", (dir.path() + "/bundle.pem").c_str(), 1);
  setenv("SSL_CERT_DIR", (dir.path() + "/none").c_str(), 1);
  auto trust = shareSystemTrust();
  c.caPem.clear();  // no CA of its own: the system's authorities
  auto shared = clientFor(c, fewAttempts())->get(resources::namespaces(), "", "default");
  forgetSharedSystemTrust();  // SSL_CERT_FILE still /dev/null: nothing left to trust the test CA
  auto alone = clientFor(c, fewAttempts())->get(resources::namespaces(), "", "default");
  oldFile ? setenv("SSL_CERT_FILE", oldFile->c_str(), 1) : unsetenv("SSL_CERT_FILE");
  oldDir ? setenv("SSL_CERT_DIR", oldDir->c_str(), 1) : unsetenv("SSL_CERT_DIR");

  EXPECT_NE(trust.find(dir.path() + "/bundle.pem"), std::string::npos) << trust;
  ASSERT_TRUE(shared.ok()) << "the shared store did not verify the server: " << shared.error().message();
  EXPECT_FALSE(alone.ok()) << "without the shared store the server was verified by something else";
}

}  // namespace
}  // namespace poolguard::kube::testing
