// Its own binary: the signal mask must be set before any other thread exists, or a process-directed SIGTERM
// could land on a thread with the default action and kill the test.
#include "runtime/signals.h"

#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <thread>

namespace poolguard::runtime {
namespace {

TEST(ShutdownSignals, SigtermRequestsStop) {
  std::stop_source source;
  ShutdownSignals signals(source, std::chrono::seconds(30));
  EXPECT_EQ(signals.received(), 0);
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  for (int i = 0; i < 500 && !source.stop_requested(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_TRUE(source.stop_requested());
  EXPECT_EQ(signals.received(), SIGTERM);
}

TEST(ShutdownSignals, ExitsWhenShutdownOutlastsTheGracePeriod) {
  EXPECT_EXIT(
      {
        std::stop_source source;
        ShutdownSignals signals(source, std::chrono::milliseconds(50));
        kill(getpid(), SIGINT);
        std::this_thread::sleep_for(std::chrono::seconds(10));  // a shutdown that hangs
        std::exit(0);
      },
      ::testing::ExitedWithCode(1), "");
}

}  // namespace
}  // namespace poolguard::runtime
