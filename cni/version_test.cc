#include "cni/version.h"

#include <nlohmann/json.hpp>

#include "cni/cni_error.h"
#include "gtest/gtest.h"

namespace weft::cni {
namespace {

TEST(VersionTest, AcceptsTheVersionsWithInterfacesInResults) {
  for (const char* v : {"0.3.0", "0.3.1", "0.4.0", "1.0.0"}) {
    EXPECT_TRUE(CheckVersionSupported(v).ok()) << v;
  }
}

TEST(VersionTest, RefusesOthersWithCode1) {
  for (const char* v : {"0.1.0", "0.2.0", "1.1.0", "2.0.0", "1.0", "banana", " 1.0.0"}) {
    absl::Status s = CheckVersionSupported(v);
    ASSERT_FALSE(s.ok()) << v;
    EXPECT_EQ(CniCodeOf(s), kIncompatibleVersion) << v;
    EXPECT_NE(s.message().find(v), absl::string_view::npos) << s.message();
    EXPECT_NE(s.message().find("0.3.0, 0.3.1, 0.4.0, 1.0.0"), absl::string_view::npos) << s.message();
  }
}

TEST(VersionTest, MissingVersionMeans010) {
  absl::Status s = CheckVersionSupported("");
  EXPECT_EQ(CniCodeOf(s), kIncompatibleVersion);
  EXPECT_NE(s.message().find("0.1.0"), absl::string_view::npos) << s.message();
}

TEST(VersionTest, CheckFrom040On) {
  EXPECT_FALSE(VersionAllowsCheck("0.3.0"));
  EXPECT_FALSE(VersionAllowsCheck("0.3.1"));
  EXPECT_TRUE(VersionAllowsCheck("0.4.0"));
  EXPECT_TRUE(VersionAllowsCheck("1.0.0"));
}

TEST(VersionTest, VersionInfo) {
  const nlohmann::json j = nlohmann::json::parse(VersionInfoJson());
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_EQ(j["supportedVersions"], nlohmann::json({"0.3.0", "0.3.1", "0.4.0", "1.0.0"}));
}

}  // namespace
}  // namespace weft::cni
