#include "kube/rest_client.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "kube/http_internal.h"  // spdlog, then cpprestsdk (its macro U breaks fmt when it comes first)

#include <pplx/threadpool.h>

#include "kube/fence.h"
#include "kube/line_splitter.h"
#include "kube/rate_limiter.h"
#include "kube/status.h"
#include "kube/url.h"

namespace poolguard::kube {
namespace {

namespace http = web::http;
using web::http::client::http_client;

// ---- helpers ----

Error withContext(const Error& e, const std::string& context) {
  Error out(e.code(), context + ": " + e.message());
  out.withHttpStatus(e.httpStatus()).withReason(e.reason()).withCauses(e.causes());
  if (e.retryAfter()) out.withRetryAfter(*e.retryAfter());
  return out;
}

const char* contentType(PatchType type) {
  switch (type) {
    case PatchType::kMerge:
      return "application/merge-patch+json";
    case PatchType::kJson:
      return "application/json-patch+json";
    case PatchType::kStrategicMerge:
      return "application/strategic-merge-patch+json";
    case PatchType::kApply:
      return "application/apply-patch+yaml";  // JSON is YAML
  }
  return "application/merge-patch+json";
}

std::string metadataString(const json& obj, const char* key) {
  auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) return "";
  auto v = meta->find(key);
  return (v != meta->end() && v->is_string()) ? v->get<std::string>() : "";
}

struct Call {
  http::method method;
  const char* verb;  // for metrics and messages: GET, LIST, CREATE, ...
  std::string resource;
  std::string pathAndQuery;
  std::optional<std::string> body = std::nullopt;
  std::string contentType = "";
  bool idempotent = false;
  bool discardBody = false;  // a 2xx answer's body is not parsed (WriteOptions::discardResponse)
  std::shared_ptr<const FieldFilter> fields = nullptr;  // parse only these fields of a 2xx answer
};

// ---- watch ----

class RestWatchStream final : public WatchStream {
 public:
  RestWatchStream(std::shared_ptr<http_client> client, http::http_response response,
                  pplx::cancellation_token_source cts, std::string context, std::shared_ptr<const FieldFilter> fields)
      : fields_(std::move(fields)),
        client_(std::move(client)),
        response_(std::move(response)),
        body_(response_.body().streambuf()),
        cts_(std::move(cts)),
        context_(std::move(context)),
        shared_(std::make_shared<Shared>()),
        chunk_(size_t{64} * 1024) {}

  ~RestWatchStream() override { cancel(); }

  Result<std::optional<WatchEvent>> next() override {
    while (true) {
      if (isCancelled()) return Error(ErrorCode::kCancelled, context_ + ": cancelled");
      auto line = splitter_.next();
      if (!line.ok()) return withContext(line.error(), context_);
      if (*line) {
        if (line->value().empty()) continue;
        return decode(**line);
      }
      if (ended_) {
        std::string rest = splitter_.takeRemainder();
        if (rest.empty()) return std::optional<WatchEvent>{};
        return decode(rest);
      }
      if (auto read = readMore(); !read.ok()) return read.error();
    }
  }

  void cancel() override {
    {
      std::lock_guard lock(shared_->mu);
      if (shared_->cancelled) return;
      shared_->cancelled = true;
    }
    shared_->cv.notify_all();
    // Closes the socket, also mid-body; closing our read side stops the body buffer from growing meanwhile.
    cts_.cancel();
    try {
      body_.close(std::ios_base::in);
    } catch (...) {  // NOLINT(bugprone-empty-catch): closing an already failed stream is fine
    }
  }

 private:
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool cancelled = false;
    bool done = false;
    int ch = 0;
    bool eof = false;
    std::exception_ptr error;
  };

  bool isCancelled() {
    std::lock_guard lock(shared_->mu);
    return shared_->cancelled;
  }

  // Waits (cancellably) for one byte, then takes everything already buffered in bulk: the body buffer's getn
  // would wait for a full buffer, and read_line goes byte by byte under a lock.
  Status readMore() {
    {
      std::lock_guard lock(shared_->mu);
      shared_->done = false;
      shared_->error = nullptr;
    }
    auto shared = shared_;
    auto body = body_;  // keeps the buffer alive until the pending read completes, even after we are gone
    body_.bumpc().then([shared, body](const pplx::task<int>& t) {
      int ch = 0;
      std::exception_ptr error;
      try {
        ch = t.get();
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard lock(shared->mu);
        shared->ch = ch;
        shared->eof = !error && ch == std::char_traits<char>::eof();
        shared->error = error;
        shared->done = true;
      }
      shared->cv.notify_all();
    });
    std::unique_lock lock(shared_->mu);
    shared_->cv.wait(lock, [&] { return shared_->done || shared_->cancelled; });
    if (shared_->cancelled) return Error(ErrorCode::kCancelled, context_ + ": cancelled");
    if (shared_->error) {
      ended_ = true;
      try {
        std::rethrow_exception(shared_->error);
      } catch (const std::exception& e) {
        return Error(ErrorCode::kUnavailable, context_ + ": stream failed: " + e.what());
      }
    }
    if (shared_->eof) {
      ended_ = true;
      return okStatus();
    }
    char first = static_cast<char>(static_cast<unsigned char>(shared_->ch));
    lock.unlock();
    splitter_.feed(std::string_view(&first, 1));
    size_t available = body_.in_avail();
    while (available > 0) {
      size_t want = std::min(available, chunk_.size());
      // At most what is already buffered, so this read completes at once and get() does not block.
      size_t got = body_.getn(chunk_.data(), want).get();
      if (got == 0) break;
      splitter_.feed(std::string_view(reinterpret_cast<const char*>(chunk_.data()), got));
      available = body_.in_avail();
    }
    return okStatus();
  }

  Result<std::optional<WatchEvent>> decode(const std::string& line) {
    json event = fields_ ? fields_->parse(line) : json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (event.is_discarded() || !event.is_object()) {
      return Error(ErrorCode::kInternal, context_ + ": undecodable event: " + line.substr(0, 200));
    }
    std::string type = event.value("type", "");
    json object = event.contains("object") ? std::move(event["object"]) : json::object();
    WatchEventType t;
    if (type == "ADDED")
      t = WatchEventType::kAdded;
    else if (type == "MODIFIED")
      t = WatchEventType::kModified;
    else if (type == "DELETED")
      t = WatchEventType::kDeleted;
    else if (type == "BOOKMARK")
      t = WatchEventType::kBookmark;
    else if (type == "ERROR")
      return withContext(errorFromStatus(object, 0), context_);
    else
      return Error(ErrorCode::kInternal, context_ + ": unknown event type \"" + type + "\"");
    return std::optional<WatchEvent>(WatchEvent{t, std::move(object)});
  }

  std::shared_ptr<const FieldFilter> fields_;
  std::shared_ptr<http_client> client_;
  http::http_response response_;
  concurrency::streams::streambuf<uint8_t> body_;
  pplx::cancellation_token_source cts_;
  std::string context_;
  std::shared_ptr<Shared> shared_;
  std::vector<uint8_t> chunk_;
  LineSplitter splitter_;
  bool ended_ = false;
};

}  // namespace

// ---- the client ----

struct RestClient::Impl {
  Config config;
  RestClientOptions options;
  std::unique_ptr<HttpEndpoint> endpoint;  // every request but watches goes through it (kube/http.h)
  RateLimiter limiter;
  TokenSource tokens;
  std::mutex rngMu;
  std::mt19937_64 rng{std::random_device{}()};

  Impl(Config c, RestClientOptions o, std::unique_ptr<HttpEndpoint> e)
      : config(std::move(c)),
        options(std::move(o)),
        endpoint(std::move(e)),
        limiter(options.qps, options.burst, *options.clock),
        tokens(config.token, config.tokenFile, *options.clock, options.tokenRefresh) {
    if (!options.sleep) options.sleep = [](std::chrono::nanoseconds d) { std::this_thread::sleep_for(d); };
  }

  std::vector<std::pair<std::string, std::string>> headersFor() {
    std::vector<std::pair<std::string, std::string>> h{{"Accept", "application/json"},
                                                       {"User-Agent", options.userAgent}};
    if (std::string token = tokens.token(); !token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    // cpprestsdk checks the server certificate against the Host header when one is set.
    if (!config.tlsServerName.empty()) h.emplace_back("Host", config.tlsServerName);
    return h;
  }

  // The watch request (a stream, sent on a client of its own).
  http::http_request makeRequest(const Call& call) {
    http::http_request req(call.method);
    req.set_request_uri(utility::conversions::to_string_t(call.pathAndQuery));
    for (const auto& [name, value] : headersFor()) {
      req.headers().add(utility::conversions::to_string_t(name), utility::conversions::to_string_t(value));
    }
    return req;
  }

  void observe(const Call& call, int code, Clock::steady_point start) {
    double seconds = std::chrono::duration<double>(options.clock->steadyNow() - start).count();
    SPDLOG_DEBUG("kube: {} {} -> {} in {:.3f}s", call.verb, call.pathAndQuery, code, seconds);
    if (options.observer) options.observer->observe(call.verb, call.resource, code, seconds);
  }

  // Sends one request and waits for the whole answer, at most until `deadline`: then the request is cancelled,
  // which closes its connection, and the answer is kTimeout.
  Result<HttpResponse> sendOnce(const Call& call, std::optional<Clock::steady_point> deadline) {
    auto start = options.clock->steadyNow();
    HttpRequest req;
    req.method = utility::conversions::to_utf8string(call.method);
    req.pathAndQuery = call.pathAndQuery;
    req.headers = headersFor();
    req.body = call.body;
    req.contentType = call.contentType;
    req.deadline = deadline;
    auto r = endpoint->send(req);
    observe(call, r.ok() ? r->status : 0, start);
    if (!r.ok()) return withContext(r.error(), std::string(call.verb) + " " + call.pathAndQuery);
    return r;
  }

  std::chrono::nanoseconds backoff(int attempt) {
    auto base = options.retryBaseDelay * (int64_t{1} << std::min(attempt - 1, 16));
    auto capped = std::min<std::chrono::milliseconds>(base, options.retryMaxDelay);
    std::lock_guard lock(rngMu);
    // "Equal jitter": at least half the delay, so retries never bunch up at zero.
    std::uniform_int_distribution<int64_t> dist(capped.count() / 2, std::max<int64_t>(capped.count(), 1));
    return std::chrono::milliseconds(dist(rng));
  }

  void rateLimit() {
    if (auto wait = limiter.reserve(); wait.count() > 0) options.sleep(wait);
  }

  Result<json> execute(const Call& call) {
    const std::string context = std::string(call.verb) + " " + call.pathAndQuery;
    const auto deadline = RequestDeadline::current();
    // True when waiting `wait` more would reach the deadline: the request is then not (re)sent.
    auto outOfTime = [&](std::chrono::nanoseconds wait) {
      return deadline && options.clock->steadyNow() + wait >= *deadline;
    };
    auto timedOut = [&](const std::string& why) { return Error(ErrorCode::kTimeout, context + ": not sent: " + why); };
    for (int attempt = 1;; ++attempt) {
      if (auto wait = limiter.reserve(); wait.count() > 0) {
        if (outOfTime(wait)) {
          limiter.release();
          return timedOut("the client rate limit allows it only after the request deadline");
        }
        options.sleep(wait);
      }
      if (outOfTime({})) return timedOut("the request deadline has passed");
      auto raw = sendOnce(call, deadline);
      bool mayRetry = call.idempotent && attempt < options.maxAttempts;
      if (!raw.ok()) {
        if (!mayRetry || raw.error().code() == ErrorCode::kTimeout) return raw.error();
        auto delay = backoff(attempt);
        if (outOfTime(delay)) return raw.error();
        spdlog::warn("kube: {} (attempt {}), retrying in {}ms", raw.error().message(), attempt,
                     std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
        options.sleep(delay);
        continue;
      }
      if (raw->status >= 200 && raw->status < 300) {
        if (raw->body.empty() || call.discardBody) return json::object();
        json parsed =
            call.fields ? call.fields->parse(raw->body) : json::parse(raw->body, nullptr, /*allow_exceptions=*/false);
        if (parsed.is_discarded()) {
          return Error(ErrorCode::kInternal, context + ": response is not JSON: " + raw->body.substr(0, 200));
        }
        return parsed;
      }
      Error error = withContext(errorFromResponse(raw->status, raw->body, raw->retryAfter), context);
      bool throttled = error.code() == ErrorCode::kTooManyRequests || raw->status == 503;
      if (mayRetry && throttled && error.retryAfter()) {
        auto wait = std::max<std::chrono::nanoseconds>(
            std::min<std::chrono::nanoseconds>(*error.retryAfter(), options.retryMaxDelay), backoff(attempt));
        if (outOfTime(wait)) return error;
        options.sleep(wait);
        continue;
      }
      return error;
    }
  }

  // A namespaced object addressed without a namespace lives in the configuration's default namespace.
  std::string namespaceFor(const Resource& r, const std::string& ns, const json* obj = nullptr) const {
    if (!r.namespaced || !ns.empty()) return ns;
    if (obj) {
      if (std::string fromObject = metadataString(*obj, "namespace"); !fromObject.empty()) return fromObject;
    }
    return config.defaultNamespace;
  }
};

RestClient::RestClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RestClient::~RestClient() = default;

const Config& RestClient::config() const { return impl_->config; }

Result<json> RestClient::get(const Resource& r, const std::string& ns, const std::string& name,
                             const std::string& subresource) {
  Call call{http::methods::GET, "GET", r.key(), resourcePath(r, impl_->namespaceFor(r, ns), name, subresource)};
  call.idempotent = true;
  return impl_->execute(call);
}

Result<json> RestClient::list(const Resource& r, const std::string& ns, const ListOptions& opts) {
  Call call{http::methods::GET, "LIST", r.key(), resourcePath(r, ns) + listQuery(opts).str()};
  call.idempotent = true;
  call.fields = opts.fields;
  return impl_->execute(call);
}

Result<json> RestClient::create(const Resource& r, const std::string& ns, const json& obj, const WriteOptions& opts) {
  std::string path = resourcePath(r, impl_->namespaceFor(r, ns, &obj));
  if (!opts.subresource.empty()) {
    std::string name = metadataString(obj, "name");
    if (name.empty())
      return Error(ErrorCode::kInvalidArgument,
                   "create " + r.key() + "/" + opts.subresource + ": metadata.name is required");
    path = resourcePath(r, impl_->namespaceFor(r, ns, &obj), name, opts.subresource);
  }
  Call call{http::methods::POST, "CREATE", r.key(), path + writeQuery(opts).str(), obj.dump(), "application/json"};
  return impl_->execute(call);
}

Result<json> RestClient::update(const Resource& r, const std::string& ns, const json& obj, const WriteOptions& opts) {
  std::string name = metadataString(obj, "name");
  if (name.empty()) return Error(ErrorCode::kInvalidArgument, "update " + r.key() + ": metadata.name is required");
  Call call{http::methods::PUT,
            "UPDATE",
            r.key(),
            resourcePath(r, impl_->namespaceFor(r, ns, &obj), name, opts.subresource) + writeQuery(opts).str(),
            obj.dump(),
            "application/json"};
  // With a resourceVersion a repeated PUT cannot overwrite a newer object: it fails with Conflict instead.
  call.idempotent = !metadataString(obj, "resourceVersion").empty();
  return impl_->execute(call);
}

Result<json> RestClient::patch(const Resource& r, const std::string& ns, const std::string& name, PatchType type,
                               const json& patch, const WriteOptions& opts) {
  if (type == PatchType::kApply) return apply(r, ns, name, patch, opts);
  WriteOptions nonApply = opts;
  nonApply.force = false;  // force is only valid for apply
  Call call{http::methods::PATCH,
            "PATCH",
            r.key(),
            resourcePath(r, impl_->namespaceFor(r, ns), name, opts.subresource) + writeQuery(nonApply).str(),
            patch.dump(),
            contentType(type)};
  return impl_->execute(call);
}

Result<json> RestClient::apply(const Resource& r, const std::string& ns, const std::string& name, const json& obj,
                               const WriteOptions& opts) {
  if (opts.fieldManager.empty()) {
    return Error(ErrorCode::kInvalidArgument, "apply " + r.key() + "/" + name + ": fieldManager is required");
  }
  Call call{http::methods::PATCH,
            "APPLY",
            r.key(),
            resourcePath(r, impl_->namespaceFor(r, ns, &obj), name, opts.subresource) + writeQuery(opts).str(),
            obj.dump(),
            contentType(PatchType::kApply)};
  call.idempotent = true;
  call.discardBody = opts.discardResponse;
  return impl_->execute(call);
}

Status RestClient::remove(const Resource& r, const std::string& ns, const std::string& name,
                          const json& deleteOptions) {
  Call call{http::methods::DEL, "DELETE", r.key(), resourcePath(r, impl_->namespaceFor(r, ns), name)};
  if (!deleteOptions.empty()) {
    call.body = deleteOptions.dump();
    call.contentType = "application/json";
  }
  call.idempotent = true;
  auto result = impl_->execute(call);
  if (!result.ok()) return result.error();
  return okStatus();
}

Result<std::unique_ptr<WatchStream>> RestClient::watch(const Resource& r, const std::string& ns,
                                                       const WatchOptions& opts) {
  Call call{http::methods::GET, "WATCH", r.key(), resourcePath(r, ns) + watchQuery(opts).str()};
  const std::string context = "WATCH " + call.pathAndQuery;
  // The server ends the watch after timeoutSeconds; the idle timeout must not fire first in a quiet stream.
  auto serverTimeout = opts.timeout.count() > 0 ? opts.timeout : std::chrono::seconds(3600);
  impl_->rateLimit();
  auto start = impl_->options.clock->steadyNow();
  try {
    auto client =
        std::make_shared<http_client>(utility::conversions::to_string_t(impl_->config.server),
                                      impl_->endpoint->impl().config(serverTimeout + impl_->options.watchIdleMargin));
    pplx::cancellation_token_source cts;
    http::http_response resp = client->request(impl_->makeRequest(call), cts.get_token()).get();
    impl_->observe(call, resp.status_code(), start);
    if (resp.status_code() != http::status_codes::OK) {
      std::string body = resp.extract_utf8string(true).get();
      std::string retryAfter;
      if (auto ra = resp.headers().find(U("Retry-After")); ra != resp.headers().end()) {
        retryAfter = utility::conversions::to_utf8string(ra->second);
      }
      return withContext(errorFromResponse(resp.status_code(), body, retryAfter), context);
    }
    return std::unique_ptr<WatchStream>(
        std::make_unique<RestWatchStream>(std::move(client), std::move(resp), std::move(cts), context, opts.fields));
  } catch (const std::exception& e) {
    impl_->observe(call, 0, start);
    return Error(ErrorCode::kUnavailable, context + ": " + transportMessage(e.what()));
  }
}

Result<std::unique_ptr<RestClient>> makeRestClient(const Config& config, RestClientOptions options) {
  if (config.server.empty()) return Error(ErrorCode::kInvalidArgument, "configuration has no server");
  if (!options.clock) options.clock = &SystemClock::instance();
  HttpTls tls{config.caPem, config.clientCertPem, config.clientKeyPem, config.insecureSkipTlsVerify};
  auto endpoint = HttpEndpoint::make(config.server, tls, options.requestTimeout, *options.clock);
  if (!endpoint.ok()) return endpoint.error();
  auto impl = std::make_unique<RestClient::Impl>(config, std::move(options), std::move(*endpoint));
  return std::unique_ptr<RestClient>(new RestClient(std::move(impl)));
}

void initializeTransportThreads(size_t threads) { crossplat::threadpool::initialize_with_threads(threads); }

}  // namespace poolguard::kube
