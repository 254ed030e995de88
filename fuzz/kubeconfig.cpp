// loadKubeconfig on arbitrary file content. loadKubeconfig reads a path (there is no parse-from-text entry
// point), so each input is written to a private temporary folder that also holds a CA, a client certificate
// and key and a token file, so that relative file references in the input can resolve.
// Invariants: either a Config with an http(s) server, or a kInvalidArgument error that starts with the file's
// path; decodeBase64 never reads past its input and yields 3 bytes per 4 symbols (padding optional).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "common/base64.h"
#include "fuzz_check.h"
#include "kube/config.h"

namespace {

namespace fs = std::filesystem;
constexpr size_t kMaxInput = 64 * 1024;

struct Workdir {
  std::string dir;
  std::string config;
  Workdir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/poolguard-fuzz-kubeconfig-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir = tmpl;
    config = dir + "/config";
    std::error_code ec;
    for (const char* f : {"ca.crt", "client.crt", "client.key"}) {
      fs::copy_file(fs::path(POOLGUARD_KUBE_TESTDATA) / f, fs::path(dir) / f, ec);
    }
    std::ofstream(dir + "/token") << "fuzz-token\n";
  }
  ~Workdir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

bool refersToDevices(const std::string& s) {
  // A reference to /dev/zero or a FIFO would make the (unbounded) file read never end; that is a property of
  // reading a trusted kubeconfig's file references, not something this target should report as a hang.
  for (const char* p : {"/dev", "/proc", "/sys", "/run"}) {
    if (s.find(p) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace poolguard;
  static Workdir work;
  if (size > kMaxInput) return -1;
  const std::string text = fuzz::text(data, size);
  if (refersToDevices(text)) return -1;

  {
    std::ofstream out(work.config, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  auto config = kube::loadKubeconfig(work.config);
  if (config) {
    FUZZ_CHECK_MSG(fuzz::startsWith(config->server, "https://") || fuzz::startsWith(config->server, "http://"),
                   config->server);
    FUZZ_CHECK(!config->defaultNamespace.empty());
    FUZZ_CHECK(!kube::describe(*config).empty());
    FUZZ_CHECK(config->clientCertPem.empty() == config->clientKeyPem.empty());
  } else {
    const std::string& m = config.error().message();
    FUZZ_CHECK_MSG(fuzz::startsWith(m, work.config + ": "), m);
    FUZZ_CHECK_MSG(m.size() > work.config.size() + 2, m);
    FUZZ_CHECK(config.error().code() == ErrorCode::kInvalidArgument);
  }

  if (auto decoded = decodeBase64(text)) {
    size_t symbols = 0, pad = 0;
    for (char c : text) {
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
      (c == '=' ? pad : symbols) += 1;
    }
    FUZZ_CHECK(symbols % 4 != 1 && pad <= 2 && (pad == 0 || (symbols + pad) % 4 == 0));
    FUZZ_CHECK(decoded->size() == symbols * 3 / 4);
  }
  return 0;
}
