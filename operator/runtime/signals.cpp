#include "runtime/signals.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <spdlog/spdlog.h>

namespace poolguard::runtime {

ShutdownSignals::ShutdownSignals(std::stop_source source, std::chrono::milliseconds grace)
    : source_(std::move(source)), grace_(grace) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, &previousMask_);
  signalFd_ = signalfd(-1, &set, SFD_CLOEXEC);
  wakeFd_ = eventfd(0, EFD_CLOEXEC);
  if (signalFd_ < 0 || wakeFd_ < 0) {
    spdlog::error("shutdown signals: cannot watch SIGTERM/SIGINT (errno {})", errno);
    return;
  }
  thread_ = std::thread([this] { loop(); });
}

ShutdownSignals::~ShutdownSignals() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    [[maybe_unused]] auto n = write(wakeFd_, &one, sizeof one);
    thread_.join();
  }
  if (signalFd_ >= 0) close(signalFd_);
  if (wakeFd_ >= 0) close(wakeFd_);
  pthread_sigmask(SIG_SETMASK, &previousMask_, nullptr);
}

void ShutdownSignals::loop() {
  pollfd fds[2] = {{signalFd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
  std::chrono::steady_clock::time_point deadline{};
  while (true) {
    int timeout = -1;
    if (received_.load() != 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      timeout = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    int n = poll(fds, 2, timeout);
    if (n < 0 && errno == EINTR) continue;
    if (fds[1].revents) return;
    if (n == 0) {
      spdlog::error("shutdown did not finish within {} ms, exiting", grace_.count());
      std::_Exit(1);
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info{};
      if (read(signalFd_, &info, sizeof info) != sizeof info) continue;
      int sig = static_cast<int>(info.ssi_signo);
      if (received_.load() != 0) {
        spdlog::error("second signal {} during shutdown, exiting", sig);
        std::_Exit(1);
      }
      spdlog::info("signal {} received, shutting down (at most {} ms)", sig, grace_.count());
      received_ = sig;
      deadline = std::chrono::steady_clock::now() + grace_;
      source_.request_stop();
    }
  }
}

}  // namespace poolguard::runtime
