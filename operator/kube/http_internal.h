#pragma once
// What kube::HttpEndpoint is made of, for http.cpp and the watch streams of rest_client.cpp only: the one other
// place that talks to cpprestsdk (a watch is a stream, not one answer).
#include <memory>
#include <string>

// spdlog (fmt) first: cpprestsdk defines a macro U that breaks fmt's templates when it comes earlier.
#include <spdlog/spdlog.h>

#include <cpprest/http_client.h>

#include "kube/http.h"

namespace poolguard::kube {

struct TlsMaterial;

struct HttpEndpoint::Impl {
  std::string baseUrl;
  HttpTls settings;
  std::shared_ptr<const TlsMaterial> tls;  // null: the system's trust store, no client certificate
  const Clock* clock = nullptr;
  std::unique_ptr<web::http::client::http_client> client;  // requests of send(), with the idle timeout

  // A configuration with this endpoint's TLS and the given idle timeout (watch streams use a longer one).
  web::http::client::http_client_config config(std::chrono::milliseconds idleTimeout) const;
};

}  // namespace poolguard::kube
