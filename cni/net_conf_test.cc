#include "cni/net_conf.h"

#include "cni/cni_error.h"
#include "gtest/gtest.h"

namespace weft::cni {
namespace {

void ExpectCode(absl::string_view text, int code, absl::string_view mentions = "") {
  absl::StatusOr<NetConf> conf = ParseNetConf(text);
  ASSERT_FALSE(conf.ok()) << text;
  EXPECT_EQ(CniCodeOf(conf.status()), code) << text << ": " << conf.status();
  EXPECT_NE(conf.status().message().find(mentions), absl::string_view::npos) << conf.status();
}

TEST(NetConfTest, DefaultsAreFlannels) {
  absl::StatusOr<NetConf> conf = ParseNetConf(R"({"cniVersion":"1.0.0","name":"weft","type":"weft-cni"})");
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_EQ(conf->cni_version, "1.0.0");
  EXPECT_EQ(conf->name, "weft");
  EXPECT_EQ(conf->subnet_file, "/run/flannel/subnet.env");
  EXPECT_EQ(conf->data_dir, "/var/lib/cni/flannel");
  EXPECT_EQ(conf->delegate, nlohmann::json::object());
  EXPECT_EQ(conf->ipam, nlohmann::json::object());
  EXPECT_TRUE(conf->prev_result.is_null());
}

TEST(NetConfTest, ReadsEveryKey) {
  absl::StatusOr<NetConf> conf = ParseNetConf(R"({
    "cniVersion":"0.3.1","name":"n","type":"weft-cni","subnetFile":"/tmp/s.env","dataDir":"/tmp/d",
    "delegate":{"hairpinMode":true,"ipam":{"dataDir":"/tmp/ipam"}},
    "ipam":{"routes":[{"dst":"0.0.0.0/0"}]},
    "prevResult":{"cniVersion":"0.3.1","ips":[]}})");
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_EQ(conf->subnet_file, "/tmp/s.env");
  EXPECT_EQ(conf->data_dir, "/tmp/d");
  EXPECT_EQ(conf->delegate["hairpinMode"], true);
  EXPECT_EQ(conf->ipam["routes"][0]["dst"], "0.0.0.0/0");
  EXPECT_EQ(conf->prev_result["cniVersion"], "0.3.1");
}

TEST(NetConfTest, UndecodableIsCode6) {
  ExpectCode("", 6, "empty");
  ExpectCode("{\"cniVersion\":", 6, "not valid JSON");
  ExpectCode("[1,2]", 6, "not a JSON object");
  ExpectCode(R"({"cniVersion":1.0,"name":"n"})", 6, "cniVersion");
}

TEST(NetConfTest, UnsupportedVersionIsCode1) {
  ExpectCode(R"({"cniVersion":"0.2.0","name":"n"})", 1, "0.2.0");
  ExpectCode(R"({"name":"n"})", 1, "0.1.0");
}

TEST(NetConfTest, InvalidFieldsAreCode7) {
  ExpectCode(R"({"cniVersion":"1.0.0"})", 7, "name");
  ExpectCode(R"({"cniVersion":"1.0.0","name":""})", 7, "name");
  ExpectCode(R"({"cniVersion":"1.0.0","name":"n","subnetFile":3})", 7, "subnetFile");
  ExpectCode(R"({"cniVersion":"1.0.0","name":"n","dataDir":""})", 7, "dataDir");
  ExpectCode(R"({"cniVersion":"1.0.0","name":"n","delegate":[]})", 7, "delegate");
  ExpectCode(R"({"cniVersion":"1.0.0","name":"n","delegate":{"type":"../../bin/sh"}})", 7,
             "delegate.type");
  ExpectCode(R"({"cniVersion":"1.0.0","name":"n","delegate":{"ipam":"host-local"}})", 7,
             "delegate.ipam");
  ExpectCode(R"({"cniVersion":"1.0.0","name":"n","ipam":{"routes":{}}})", 7, "ipam.routes");
  ExpectCode(R"({"cniVersion":"1.0.0","name":"n","prevResult":"x"})", 7, "prevResult");
}

TEST(NetConfTest, ResponseVersion) {
  EXPECT_EQ(ResponseVersion(R"({"cniVersion":"0.4.0"})"), "0.4.0");
  EXPECT_EQ(ResponseVersion(R"({"cniVersion":"0.2.0"})"), "1.0.0");
  EXPECT_EQ(ResponseVersion("not json"), "1.0.0");
  EXPECT_EQ(ResponseVersion(""), "1.0.0");
}

}  // namespace
}  // namespace weft::cni
