#include "kube/http.h"

#include <cctype>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "kube/http_internal.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <boost/asio/ssl.hpp>

namespace poolguard::kube {

// ---- TLS material, parsed once and installed into every connection's SSL_CTX ----

namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

std::string opensslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

std::vector<X509Ptr> readCertificates(const std::string& pem) {
  std::vector<X509Ptr> out;
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  while (bio) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (!cert) break;
    out.emplace_back(cert);
  }
  ERR_clear_error();  // the loop ends on a "no start line" error by design
  return out;
}

}  // namespace

struct TlsMaterial {
  std::vector<X509Ptr> authorities;  // empty: keep the system's trust store
  std::vector<X509Ptr> clientChain;  // leaf first
  std::unique_ptr<EVP_PKEY, PkeyFree> clientKey;

  // Runs on a cpprestsdk thread for each new connection; it must not throw. Failures leave the context without
  // the material, and the handshake then fails with a message saying so.
  void install(boost::asio::ssl::context& ctx) const {
    SSL_CTX* native = ctx.native_handle();
    if (!authorities.empty()) {
      // A fresh store drops the system roots that cpprestsdk loaded: only the configured CA is trusted.
      X509_STORE* store = X509_STORE_new();
      for (const auto& ca : authorities) X509_STORE_add_cert(store, ca.get());
      SSL_CTX_set_cert_store(native, store);
    }
    if (!clientChain.empty() && clientKey) {
      SSL_CTX_use_certificate(native, clientChain.front().get());
      for (size_t i = 1; i < clientChain.size(); ++i) SSL_CTX_add1_chain_cert(native, clientChain[i].get());
      SSL_CTX_use_PrivateKey(native, clientKey.get());
    }
    ERR_clear_error();
  }
};

namespace {

Result<std::shared_ptr<TlsMaterial>> loadTls(const HttpTls& config) {
  auto tls = std::make_shared<TlsMaterial>();
  if (!config.caPem.empty()) {
    tls->authorities = readCertificates(config.caPem);
    if (tls->authorities.empty())
      return Error(ErrorCode::kInvalidArgument, "certificate authority: no PEM certificate");
  }
  if (!config.clientCertPem.empty() || !config.clientKeyPem.empty()) {
    tls->clientChain = readCertificates(config.clientCertPem);
    if (tls->clientChain.empty()) return Error(ErrorCode::kInvalidArgument, "client certificate: no PEM certificate");
    const std::string& keyPem = config.clientKeyPem;
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(keyPem.data(), static_cast<int>(keyPem.size())));
    tls->clientKey.reset(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!tls->clientKey) return Error(ErrorCode::kInvalidArgument, "client key: no PEM private key: " + opensslError());
    if (X509_check_private_key(tls->clientChain.front().get(), tls->clientKey.get()) != 1) {
      ERR_clear_error();
      return Error(ErrorCode::kInvalidArgument, "client key does not belong to the client certificate");
    }
  }
  return tls;
}

// The body of an answer, read in chunks until its end or past `limit`.
struct TooLarge {};

// Resolves to the number of bytes read. The buffer's string may hold more (a container_buffer grows it ahead of
// the bytes written), so the caller cuts it to that number.
pplx::task<size_t> readChunks(concurrency::streams::istream stream,
                              std::shared_ptr<concurrency::streams::container_buffer<std::string>> buffer, size_t limit,
                              size_t total) {
  return stream.read(*buffer, 64 * 1024).then([stream, buffer, limit, total](size_t n) -> pplx::task<size_t> {
    if (n == 0) return pplx::task_from_result(total);
    if (total + n > limit) throw TooLarge{};
    return readChunks(stream, buffer, limit, total + n);
  });
}

}  // namespace

std::string transportMessage(const std::string& what) {
  if (what.find("handshake") == std::string::npos) return what;
  return what +
         " (is the server certificate signed by the configured certificate authority, and valid for the "
         "server's host name or tls-server-name?)";
}

namespace {

struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};

// The shared system store: its sources recorded by shareSystemTrust() before the first connection, loaded by the
// first connection that needs it (most never do: the API server's CA comes with its configuration), then handed to
// every such connection's context (a reference each).
struct SharedTrust {
  std::mutex mu;
  bool enabled = false;
  std::string file, dir;
  std::shared_ptr<X509_STORE> store;
  int authorities = 0;
};
SharedTrust& sharedTrust() {
  static SharedTrust t;
  return t;
}

int countCertificates(X509_STORE* store) {
  int n = 0;
  STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(store);
  for (int i = 0; i < sk_X509_OBJECT_num(objects); ++i) {
    if (X509_OBJECT_get_type(sk_X509_OBJECT_value(objects, i)) == X509_LU_X509) ++n;
  }
  return n;
}

// Null when not enabled (each connection then loads the system's store itself, as cpprestsdk does).
std::shared_ptr<X509_STORE> sharedSystemStore() {
  SharedTrust& t = sharedTrust();
  std::lock_guard lock(t.mu);
  if (!t.enabled) return nullptr;
  if (!t.store) {
    // What SSL_CTX_set_default_verify_paths does: the bundle file read now, the directory searched on demand. A
    // missing file or directory is no error: the store trusts what exists.
    std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
    if (!store) return nullptr;
    X509_STORE_load_file(store.get(), t.file.c_str());
    X509_STORE_load_path(store.get(), t.dir.c_str());
    ERR_clear_error();
    t.authorities = countCertificates(store.get());
    t.store = std::shared_ptr<X509_STORE>(store.release(), StoreFree{});
  }
  return t.store;
}

}  // namespace

std::string shareSystemTrust() {
  const char* fileVar = X509_get_default_cert_file_env();  // "SSL_CERT_FILE"
  const char* dirVar = X509_get_default_cert_dir_env();    // "SSL_CERT_DIR"
  const char* fileEnv = std::getenv(fileVar);
  const char* dirEnv = std::getenv(dirVar);
  SharedTrust& shared = sharedTrust();
  {
    std::lock_guard lock(shared.mu);
    shared.enabled = true;
    shared.file = fileEnv != nullptr ? fileEnv : X509_get_default_cert_file();
    shared.dir = dirEnv != nullptr ? dirEnv : X509_get_default_cert_dir();
    shared.store.reset();
    shared.authorities = 0;
  }
  setenv(fileVar, "/dev/null", 1);
  return "the system's authorities (" + shared.file + ", and " + shared.dir +
         " by hashed name) are read once, when a connection without a CA of its own first needs them, and shared";
}

int sharedSystemAuthorities() {
  auto store = sharedSystemStore();
  std::lock_guard lock(sharedTrust().mu);
  return store ? sharedTrust().authorities : -1;
}

void forgetSharedSystemTrust() {
  SharedTrust& t = sharedTrust();
  std::lock_guard lock(t.mu);
  t.enabled = false;
  t.store.reset();
  t.authorities = 0;
}

web::http::client::http_client_config HttpEndpoint::Impl::config(std::chrono::milliseconds idleTimeout) const {
  web::http::client::http_client_config cc;
  cc.set_timeout(idleTimeout);
  cc.set_validate_certificates(!settings.insecureSkipVerify);
  // Runs for each new TLS connection (never for plain HTTP); it must not throw.
  cc.set_ssl_context_callback([material = tls, verify = !settings.insecureSkipVerify](boost::asio::ssl::context& ctx) {
    // Without authorities of its own the connection trusts the system's, read once (shareSystemTrust).
    if (verify && (!material || material->authorities.empty())) {
      if (auto system = sharedSystemStore()) SSL_CTX_set1_cert_store(ctx.native_handle(), system.get());
    }
    if (material) material->install(ctx);
  });
  return cc;
}

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::make(const std::string& baseUrl, const HttpTls& tls,
                                                         std::chrono::milliseconds idleTimeout, const Clock& clock) {
  auto impl = std::make_unique<Impl>();
  impl->baseUrl = baseUrl;
  impl->settings = tls;
  impl->clock = &clock;
  if (!tls.caPem.empty() || !tls.clientCertPem.empty() || !tls.clientKeyPem.empty()) {
    auto material = loadTls(tls);
    if (!material) return material.error();
    impl->tls = std::move(*material);
  }
  try {
    impl->client = std::make_unique<web::http::client::http_client>(utility::conversions::to_string_t(baseUrl),
                                                                    impl->config(idleTimeout));
  } catch (const std::exception& e) {
    return Error(ErrorCode::kInvalidArgument, baseUrl + ": not a usable URL: " + e.what());
  }
  return std::unique_ptr<HttpEndpoint>(new HttpEndpoint(std::move(impl)));
}

HttpEndpoint::HttpEndpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpEndpoint::~HttpEndpoint() = default;

const std::string& HttpEndpoint::baseUrl() const { return impl_->baseUrl; }

Result<HttpResponse> HttpEndpoint::send(const HttpRequest& request) {
  struct Pending {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    bool tooLarge = false;
    std::optional<HttpResponse> response;
    std::string error;
  };
  auto pending = std::make_shared<Pending>();
  pplx::cancellation_token_source cts;
  const size_t limit = request.maxBodyBytes;
  try {
    web::http::http_request req(utility::conversions::to_string_t(request.method));
    req.set_request_uri(utility::conversions::to_string_t(request.pathAndQuery));
    for (const auto& [name, value] : request.headers) {
      req.headers().add(utility::conversions::to_string_t(name), utility::conversions::to_string_t(value));
    }
    if (request.body) req.set_body(*request.body, request.contentType);
    impl_->client->request(req, cts.get_token())
        .then([limit](web::http::http_response resp) -> pplx::task<HttpResponse> {
          auto out = std::make_shared<HttpResponse>();
          out->status = resp.status_code();
          auto ra = resp.headers().find(U("Retry-After"));
          if (ra != resp.headers().end()) out->retryAfter = utility::conversions::to_utf8string(ra->second);
          if (limit == 0) {
            return resp.extract_utf8string(true).then([out](std::string body) {
              out->body = std::move(body);
              return std::move(*out);
            });
          }
          if (resp.headers().content_length() > limit) throw TooLarge{};
          auto buffer = std::make_shared<concurrency::streams::container_buffer<std::string>>();
          return readChunks(resp.body(), buffer, limit, 0).then([out, buffer, resp](size_t total) {
            out->body = std::move(buffer->collection());
            out->body.resize(total);
            return std::move(*out);
          });
        })
        .then([pending](const pplx::task<HttpResponse>& t) {
          std::optional<HttpResponse> response;
          std::string error;
          bool tooLarge = false;
          try {
            response = t.get();
          } catch (const TooLarge&) {
            tooLarge = true;
          } catch (const std::exception& e) {
            error = e.what();
          } catch (...) {
            error = "unknown transport error";
          }
          {
            std::lock_guard lock(pending->mu);
            pending->response = std::move(response);
            pending->error = std::move(error);
            pending->tooLarge = tooLarge;
            pending->done = true;
          }
          pending->cv.notify_all();
        });
  } catch (const std::exception& e) {
    return Error(ErrorCode::kUnavailable, transportMessage(e.what()));
  }
  std::unique_lock lock(pending->mu);
  if (request.deadline) {
    auto left = std::max<std::chrono::nanoseconds>(*request.deadline - impl_->clock->steadyNow(), {});
    if (!pending->cv.wait_for(lock, left, [&] { return pending->done; })) {
      lock.unlock();
      cts.cancel();
      return Error(ErrorCode::kTimeout, "no answer by the request deadline; cancelled");
    }
  } else {
    pending->cv.wait(lock, [&] { return pending->done; });
  }
  if (pending->tooLarge) {
    lock.unlock();
    cts.cancel();  // the rest of the body is not read: close the connection rather than reuse it
    return Error(ErrorCode::kInvalidArgument,
                 "the answer is larger than " + std::to_string(limit) + " bytes, the most read")
        .withReason(http_reasons::kTooLarge);
  }
  if (!pending->response) return Error(ErrorCode::kUnavailable, transportMessage(pending->error));
  return std::move(*pending->response);
}

}  // namespace poolguard::kube
