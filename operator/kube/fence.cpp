#include "kube/fence.h"

namespace poolguard::kube {
namespace {
thread_local std::optional<Clock::steady_point> t_deadline;
}  // namespace

RequestDeadline::RequestDeadline(Clock::steady_point at) : previous_(t_deadline) {
  if (!t_deadline || at < *t_deadline) t_deadline = at;
}

RequestDeadline::~RequestDeadline() { t_deadline = previous_; }

std::optional<Clock::steady_point> RequestDeadline::current() { return t_deadline; }

void WriteFence::openUntil(Clock::steady_point until) {
  std::lock_guard lock(mu_);
  until_ = until;
}

void WriteFence::close() {
  std::lock_guard lock(mu_);
  until_.reset();
}

std::optional<Clock::steady_point> WriteFence::openWindow() const {
  std::lock_guard lock(mu_);
  if (!until_ || clock_.steadyNow() >= *until_) return std::nullopt;
  return until_;
}

template <typename F>
auto FencedClient::fenced(const char* verb, const Resource& r, const std::string& name, F&& write)
    -> decltype(write()) {
  auto until = fence_->openWindow();
  if (!until) {
    return Error(ErrorCode::kUnavailable, std::string(verb) + " " + r.key() + "/" + name +
                                              ": not sent: this replica is not the leader, or its lease may have "
                                              "been lost (renewals failed for the renew deadline)");
  }
  RequestDeadline deadline(*until);
  return write();
}

Result<json> FencedClient::create(const Resource& r, const std::string& ns, const json& obj, const WriteOptions& opts) {
  std::string name = obj.contains("metadata") ? obj["metadata"].value("name", "") : "";
  return fenced("create", r, name, [&] { return inner_.create(r, ns, obj, opts); });
}

Result<json> FencedClient::update(const Resource& r, const std::string& ns, const json& obj, const WriteOptions& opts) {
  std::string name = obj.contains("metadata") ? obj["metadata"].value("name", "") : "";
  return fenced("update", r, name, [&] { return inner_.update(r, ns, obj, opts); });
}

Result<json> FencedClient::patch(const Resource& r, const std::string& ns, const std::string& name, PatchType type,
                                 const json& patch, const WriteOptions& opts) {
  return fenced("patch", r, name, [&] { return inner_.patch(r, ns, name, type, patch, opts); });
}

Result<json> FencedClient::apply(const Resource& r, const std::string& ns, const std::string& name, const json& obj,
                                 const WriteOptions& opts) {
  return fenced("apply", r, name, [&] { return inner_.apply(r, ns, name, obj, opts); });
}

Status FencedClient::remove(const Resource& r, const std::string& ns, const std::string& name,
                            const json& deleteOptions) {
  return fenced("delete", r, name, [&] { return inner_.remove(r, ns, name, deleteOptions); });
}

}  // namespace poolguard::kube
