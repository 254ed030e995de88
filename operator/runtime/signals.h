#pragma once
// Turns SIGTERM and SIGINT into a stop request, with a bounded shutdown.
//
// Contract:
// - Construct it in main() before starting any thread: it blocks both signals in the calling thread, so every
//   thread started afterwards inherits the mask and only the helper's own thread receives them (signalfd).
// - The first signal requests stop on the given stop_source. If the process has not finished within `grace`,
//   or a second signal arrives, it exits at once with status 1 (std::_Exit: no destructors, as a kubelet
//   SIGKILL would do anyway).
// - Destroying it stops the helper thread and restores the caller's previous signal mask.
#include <atomic>
#include <chrono>
#include <csignal>
#include <stop_token>
#include <thread>

namespace poolguard::runtime {

class ShutdownSignals {
 public:
  explicit ShutdownSignals(std::stop_source source, std::chrono::milliseconds grace = std::chrono::seconds(30));
  ~ShutdownSignals();
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;

  // The first signal received, 0 while none.
  int received() const { return received_.load(); }

 private:
  void loop();

  std::stop_source source_;
  std::chrono::milliseconds grace_;
  sigset_t previousMask_{};
  int signalFd_ = -1;
  int wakeFd_ = -1;
  std::atomic<int> received_{0};
  std::thread thread_;
};

}  // namespace poolguard::runtime
