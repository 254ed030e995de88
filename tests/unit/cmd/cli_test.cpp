// The poolguard binary as a CI pipeline or a pod runs it: no input ends in an abort, and malformed flags are
// usage errors (exit 2) with one line that names the flag.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

struct Outcome {
  int exitCode = -1;  // -1 when killed by a signal (an abort is SIGABRT)
  int signal = 0;
  std::string output;  // standard output and standard error
};

Outcome run(const std::string& args) {
  const char* binary = std::getenv("POOLGUARD_BINARY");
  EXPECT_NE(binary, nullptr) << "CTest sets POOLGUARD_BINARY";
  Outcome r;
  if (binary == nullptr) return r;
  FILE* p = ::popen((std::string(binary) + " " + args + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = ::pclose(p);
  if (WIFEXITED(status)) r.exitCode = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

std::string writeTemp(const std::string& name, const std::string& text) {
  auto path = std::filesystem::temp_directory_path() / ("poolguard-cli-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(path) << text;
  return path.string();
}

TEST(Cli, WrongTypesInManifestsEndWithExitCode2NotAnAbort) {
  auto f = writeTemp("on.yaml",
                     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: on, namespace: shop}\n"
                     "spec: {replicas: \"3\", strategy: {rollingUpdate: {maxSurge: true}}}\n---\n"
                     "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\n"
                     "metadata: {name: 123, namespace: 456}\nspec: {}\n");
  for (const char* command : {"validate", "render", "plan"}) {
    for (const char* output : {"text", "json", "yaml"}) {
      Outcome r = run(std::string(command) + " -o " + output + " -f " + f);
      EXPECT_EQ(r.signal, 0) << command << ": killed by signal " << r.signal << "\n" << r.output;
      EXPECT_EQ(r.exitCode, 2) << command << "\n" << r.output;
      EXPECT_NE(r.output.find("metadata.name: must be a string, not the boolean on; quote it: \"on\""),
                std::string::npos)
          << command << "\n"
          << r.output;
    }
  }
  std::filesystem::remove(f);
}

TEST(Cli, ADirectoryIsReadAndMinusRReadsItsSubdirectories) {
  auto dir = std::filesystem::temp_directory_path() / ("poolguard-cli-dir-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "team");
  std::ofstream(dir / "policy.yaml") << "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\n"
                                        "metadata: {name: p, namespace: shop}\nspec:\n  selector: {matchLabels: "
                                        "{app: api}}\n  pool: {maxSize: 5}\n  database: {name: orders}\n";
  std::ofstream(dir / "team" / "bad.yaml") << "apiVersion: poolguard.dev/v1alpha1\nkind: ConnectionPoolPolicy\n"
                                              "metadata: {name: q, namespace: shop}\nspec: {pool: {maxSize: 0}}\n";
  Outcome flat = run("validate -f " + dir.string());
  EXPECT_EQ(flat.exitCode, 0) << flat.output;
  EXPECT_NE(flat.output.find("1 policy checked, 0 invalid"), std::string::npos) << flat.output;
  Outcome deep = run("validate -R -f " + dir.string());
  EXPECT_EQ(deep.exitCode, 1) << deep.output;
  EXPECT_NE(deep.output.find("bad.yaml: document 1: ConnectionPoolPolicy shop/q: spec"), std::string::npos)
      << deep.output;
  EXPECT_NE(deep.output.find("2 policies checked, 1 invalid"), std::string::npos) << deep.output;
  std::filesystem::remove_all(dir);
}

TEST(Cli, MalformedBindAddressesAreUsageErrorsNamingTheFlag) {
  for (const char* flag : {"--metrics-bind-address", "--health-probe-bind-address"}) {
    // No cluster is needed: the flags are checked before anything starts.
    Outcome r = run(std::string("run --kubeconfig /nonexistent ") + flag + " abc:http");
    EXPECT_EQ(r.signal, 0) << r.output;
    EXPECT_EQ(r.exitCode, 2) << r.output;
    EXPECT_EQ(r.output, std::string("error: ") + flag +
                            " \"abc:http\": the port \"http\" is not a number; use HOST:PORT, :PORT for every "
                            "interface, or 0 to disable\n");
  }
}

TEST(Cli, LeaderElectionTimingThatClientGoRejectsIsAUsageErrorNamingTheFlags) {
  struct Case {
    std::string flags;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"--lease-duration 15 --renew-deadline 15",
            "error: --renew-deadline 15 must be less than --lease-duration 15, or the leader could still write after "
            "its lease expired; lower --renew-deadline or raise --lease-duration (the defaults are 10 and 15)\n"},
           {"--renew-deadline 2 --retry-period 2",
            "error: --renew-deadline 2 must be more than 1.2 times --retry-period 2, so a failed renewal is tried "
            "again before the deadline; raise --renew-deadline or lower --retry-period (the defaults are 10 and 2)\n"},
           {"--retry-period 0", "error: --retry-period 0: use a whole number of seconds of 1 or more\n"},
           {"--lease-duration -1", "error: --lease-duration -1: use a whole number of seconds of 1 or more\n"},
       }) {
    // No cluster is needed: the flags are checked before anything starts, with or without --leader-elect.
    for (const char* elect : {"", "--leader-elect "}) {
      Outcome r = run("run --kubeconfig /nonexistent " + std::string(elect) + c.flags);
      EXPECT_EQ(r.signal, 0) << r.output;
      EXPECT_EQ(r.exitCode, 2) << c.flags << "\n" << r.output;
      EXPECT_EQ(r.output, c.error) << c.flags;
    }
  }
}

}  // namespace
