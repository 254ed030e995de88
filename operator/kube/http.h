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

// cpprestsdk loads the system's whole CA bundle (SSL_CERT_FILE, else OpenSSL's built-in file: on Debian
// /etc/ssl/certs/ca-certificates.crt, about 140 certificates) into every new TLS connection, before the endpoint's
// own authorities replace it: CPU at every connect, and allocator memory that outlives it. This loads the system's
// authorities once (the bundle file, and the certificate directory for lookups by hashed name, as OpenSSL's
// defaults do) when the first connection without authorities of its own needs them, shares that store with every
// such connection, and points
// SSL_CERT_FILE at /dev/null for this process so that cpprestsdk's per-connection load finds nothing to parse. The
// same authorities are trusted; a bundle changed on disk is read at the next start. Call before the first
// connection and before other threads read the environment; `run` does.
// Returns what it did, for the log.
std::string shareSystemTrust();
// The certificates of the bundle file in the shared store, loading it if no connection has yet; -1 when
// shareSystemTrust() was not called.
int sharedSystemAuthorities();
// Connections load their own system store again (tests: after changing SSL_CERT_FILE).
void forgetSharedSystemTrust();

}  // namespace poolguard::kube
