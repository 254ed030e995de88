// Rendered output for every profile x delivery method against tests/testdata/golden/render/. After an intended
// change, regenerate with scripts/update-golden (POOLGUARD_UPDATE_GOLDEN=1) and review the diff.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fixtures.h"
#include "render/workload.h"

namespace poolguard::render {
namespace {

using policy::DeliveryMethod;
using policy::Profile;

std::filesystem::path goldenDir() {
  return std::filesystem::path(POOLGUARD_TEST_SOURCE_DIR) / "tests" / "testdata" / "golden" / "render";
}

bool updating() {
  const char* v = std::getenv("POOLGUARD_UPDATE_GOLDEN");
  return v != nullptr && std::string(v) == "1";
}

struct Case {
  Profile profile;
  DeliveryMethod method;
};

class Golden : public ::testing::TestWithParam<Case> {};

TEST_P(Golden, MatchesFile) {
  auto p = testing::basePolicy(GetParam().profile, GetParam().method);
  // Non-default values everywhere, so every unit conversion shows in the file.
  p.spec.pool.acquireTimeout = policy::Millis(2'500);
  p.spec.pool.leakDetectionThreshold = policy::Millis(20'000);
  // Unset, it renders nothing (settings_test.cpp pins the hashes of that case).
  p.spec.pool.idleInTransactionTimeout = policy::Millis(45'000);
  auto d = renderWorkload(p, testing::deployment());
  ASSERT_TRUE(d.ok()) << d.error().message();
  json doc{{"workload", d->apply}};
  if (d->configMap) doc["configMap"] = *d->configMap;
  std::string rendered = doc.dump(2) + "\n";

  auto file = goldenDir() /
              (std::string(policy::toString(GetParam().profile)) + "-" + policy::toString(GetParam().method) + ".json");
  if (updating()) {
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << rendered;
    GTEST_SKIP() << "updated " << file;
  }
  std::ifstream in(file);
  ASSERT_TRUE(in.good()) << file << " is missing; run scripts/update-golden";
  std::stringstream want;
  want << in.rdbuf();
  EXPECT_EQ(rendered, want.str()) << "rendered output differs from " << file
                                  << "; if the change is intended run scripts/update-golden and review the diff";
}

std::vector<Case> allCases() {
  std::vector<Case> cases;
  for (Profile profile : {Profile::kSpringHikari, Profile::kGoSQL, Profile::kPgxpool, Profile::kSQLAlchemy,
                          Profile::kNodePostgres, Profile::kPgBouncer, Profile::kGeneric}) {
    for (DeliveryMethod method : {DeliveryMethod::kEnv, DeliveryMethod::kConfigMap}) cases.push_back({profile, method});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllProfiles, Golden, ::testing::ValuesIn(allCases()),
                         [](const ::testing::TestParamInfo<Case>& param) {
                           return std::string(policy::toString(param.param.profile)) +
                                  policy::toString(param.param.method);
                         });

}  // namespace
}  // namespace poolguard::render
