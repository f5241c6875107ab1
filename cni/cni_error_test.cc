#include "cni/cni_error.h"

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"

namespace weft::cni {
namespace {

using json = nlohmann::json;

TEST(CniErrorTest, CarriesCodeAndDetails) {
  absl::Status s = CniError(kInvalidNetworkConfig, "bad name", "name must be a string");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CniCodeOf(s), 7);
  EXPECT_EQ(s.message(), "bad name");
  EXPECT_EQ(CniDetailsOf(s), "name must be a string");
}

TEST(CniErrorTest, MapsCodesToCloseAbslCodes) {
  EXPECT_EQ(CniError(kTryAgainLater, "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CniError(kIncompatibleVersion, "x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CniError(kUnknownContainer, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(CniError(kOther, "x").code(), absl::StatusCode::kUnknown);
}

TEST(CniErrorTest, KeepsPluginSpecificCodes) {
  EXPECT_EQ(CniCodeOf(CniError(107, "from a delegate")), 107);
}

TEST(CniErrorTest, OtherStatusesAreCode999) {
  EXPECT_EQ(CniCodeOf(absl::InternalError("disk full")), 999);
  EXPECT_EQ(CniDetailsOf(absl::InternalError("disk full")), "");
}

TEST(CniErrorTest, JsonHasTheSpecsFieldsInOrder) {
  const std::string out = CniErrorJson(CniError(kDecodeFailure, "not JSON", "stdin: {"), "0.4.0");
  EXPECT_EQ(out, R"({"cniVersion":"0.4.0","code":6,"msg":"not JSON","details":"stdin: {"})");
}

TEST(CniErrorTest, JsonOfPlainStatusAndEmptyDetails) {
  const json j = json::parse(CniErrorJson(absl::InternalError("boom"), "1.0.0"));
  EXPECT_EQ(j["code"], 999);
  EXPECT_EQ(j["msg"], "boom");
  EXPECT_EQ(j["details"], "");
}

TEST(CniErrorTest, InvalidUtf8IsReplacedNotFatal) {
  const std::string out = CniErrorJson(CniError(kDecodeFailure, "bad \xff byte"), "1.0.0");
  const json j = json::parse(out);
  EXPECT_EQ(j["code"], 6);
  EXPECT_NE(j["msg"].get<std::string>().find("bad"), std::string::npos);
}

}  // namespace
}  // namespace weft::cni
