#pragma once
// The project's one HTTP request path: an endpoint (a base URL with its TLS material and kept-alive connections)
// sends a request and returns the whole answer, bounded in time (a deadline cancels the request and closes its
// connection) and, when asked, in size (the body is read in chunks and abandoned past the limit). The Kubernetes
// client (kube::RestClient) and the Prometheus source (usage::PrometheusClient) both send through it; cpprestsdk
// appears only in http.cpp and, for watch streams, in rest_client.cpp (over http_internal.h).
//
// Threading: send() blocks the calling thread until the answer, the deadline or a failure. Never call it from a
// cpprestsdk/pplx pool thread.
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace poolguard::kube {

// How the endpoint checks the server, and proves itself. Empty: the system's trust store, no client certificate.
struct HttpTls {
  std::string caPem;  // when set, only these authorities are trusted
  std::string clientCertPem;
  std::string clientKeyPem;
  bool insecureSkipVerify = false;
};

struct HttpRequest {
  std::string method = "GET";
  std::string pathAndQuery;  // appended to the endpoint's base URL (and its path)
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::string> body;
  std::string contentType;
  // At this time the request is cancelled (its connection closed) and send() fails with kTimeout.
  std::optional<Clock::steady_point> deadline;
  // The most of a body read; a larger answer fails with kInvalidArgument and reason kTooLarge. 0: no limit.
  size_t maxBodyBytes = 0;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string retryAfter;  // the Retry-After header, when present
};

namespace http_reasons {
inline constexpr const char* kTooLarge = "ResponseTooLarge";
}

class HttpEndpoint {
 public:
  // Checks the TLS material (the certificates parse, the key belongs to the certificate) and the URL.
  // `idleTimeout`: the longest wait for the next bytes of an answer (not a deadline; see HttpRequest::deadline).
  static Result<std::unique_ptr<HttpEndpoint>> make(const std::string& baseUrl, const HttpTls& tls,
                                                    std::chrono::milliseconds idleTimeout,
                                                    const Clock& clock = SystemClock::instance());
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // Failures: kTimeout (deadline), kUnavailable (transport; the message says what, never a header's value),
  // kInvalidArgument with reason kTooLarge (maxBodyBytes).
  Result<HttpResponse> send(const HttpRequest& request);

  const std::string& baseUrl() const;

  struct Impl;  // http_internal.h
  Impl& impl() { return *impl_; }

 private:
  explicit HttpEndpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// cpprestsdk's handshake errors say nothing about the cause; the usual ones are named for the reader.
std::string transportMessage(const std::string& what);

// cpprestsdk loads the system's whole CA bundle (SSL_CERT_FILE, on Debian /etc/ssl/certs/ca-certificates.crt, about
// 140 certificates) into every new TLS connection, before the endpoint's own authorities replace it: CPU at every
// connect, and allocator memory that outlives it. OpenSSL also finds the system's authorities in its certificate
// directory (SSL_CERT_DIR, else the built-in one), one at a time and only when a chain needs one, wherever that
// directory holds OpenSSL's hashed names (Debian's ca-certificates makes them). When it does, and the user has
// not set SSL_CERT_FILE, this points SSL_CERT_FILE at /dev/null for this process: the same authorities are
// trusted, read lazily. Call before the first connection; `run` does.
struct SystemTrust {
  bool bundleSkipped = false;  // SSL_CERT_FILE now names /dev/null
  std::string reason;          // for the log: what was found, or why the bundle stays
};
SystemTrust preferSystemTrustDirectory();

}  // namespace poolguard::kube
