#include "tools/weftctl/output.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::weftctl {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  EXPECT_EQ(lines.back(), "") << "no final newline: " << text;
  lines.pop_back();
  return lines;
}

// Column where `word` starts on the line of `text` that contains `line_with`.
size_t ColumnOf(const std::string& text, const std::string& line_with, const std::string& word) {
  for (const std::string& line : Lines(text)) {
    if (line.find(line_with) != std::string::npos) return line.find(word);
  }
  return std::string::npos;
}

v1::Lease MakeLease(const std::string& subnet, const std::string& node) {
  v1::Lease l;
  l.set_subnet(subnet);
  l.set_public_ip("192.0.2.1");
  l.set_node_name(node);
  l.set_backend_type("vxlan");
  l.set_backend_data(R"({"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"})");
  l.mutable_expiration()->set_seconds(1798761600);  // 2027-01-01T00:00:00Z
  l.set_revision(42);
  return l;
}

// Three leases out of numeric order, one reserved, one IPv6-only.
v1::ListLeasesResponse Listing() {
  v1::ListLeasesResponse list;
  list.set_revision(99);
  *list.add_leases() = MakeLease("10.1.10.0/24", "a-node-with-a-rather-long-name.example.com");
  v1::Lease v6;
  v6.set_ipv6_subnet("fd00:12:0:7::/64");
  v6.set_public_ipv6("fd77::7");
  v6.set_node_name("v6only");
  *list.add_leases() = v6;
  v1::Lease reserved = MakeLease("10.1.9.0/24", "edge");
  reserved.set_reserved(true);
  reserved.clear_expiration();
  reserved.set_backend_data("not json {");
  *list.add_leases() = reserved;
  return list;
}

TEST(OutputTest, AlignedColumns) {
  EXPECT_EQ(AlignedColumns({{"A", "BB", "C"}, {"aaaa", "b", "c"}}), "A     BB  C\naaaa  b   c\n");
  EXPECT_EQ(AlignedColumns({}), "");
}

TEST(OutputTest, LeaseTableInSubnetOrderWithAlignedColumns) {
  const std::string out = FormatLeases(Listing(), OutputFormat::kTable);
  const std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 4u) << out;
  EXPECT_THAT(lines[0], StartsWith("SUBNET "));
  EXPECT_THAT(lines[1], StartsWith("10.1.9.0/24 "));  // 9 before 10: numeric, not text order
  EXPECT_THAT(lines[2], StartsWith("10.1.10.0/24 "));
  EXPECT_THAT(lines[3], StartsWith("fd00:12:0:7::/64 "));  // IPv6-only last, under its IPv6 subnet
  EXPECT_EQ(ColumnOf(out, "SUBNET", "NODE"), ColumnOf(out, "10.1.10.0/24", "a-node-with"));
  EXPECT_EQ(ColumnOf(out, "SUBNET", "NODE"), ColumnOf(out, "10.1.9.0/24", "edge"));
  EXPECT_EQ(ColumnOf(out, "SUBNET", "BACKEND"), ColumnOf(out, "10.1.9.0/24", "vxlan"));
  EXPECT_EQ(ColumnOf(out, "SUBNET", "EXPIRES"), ColumnOf(out, "10.1.10.0/24", "2027-01-01T00:00:00Z"));
  EXPECT_EQ(ColumnOf(out, "SUBNET", "EXPIRES"), ColumnOf(out, "10.1.9.0/24", "never (reserved)"));
  EXPECT_EQ(ColumnOf(out, "SUBNET", "PUBLIC-IP"), ColumnOf(out, "fd00:12:0:7::/64", "-"));
  EXPECT_THAT(out, Not(HasSubstr("VtepMAC")));  // backend data only in wide
  for (const std::string& line : lines) EXPECT_NE(line.back(), ' ') << "trailing blanks: " << line;
}

TEST(OutputTest, WideTableHasEveryColumn) {
  const std::string out = FormatLeases(Listing(), OutputFormat::kWide);
  EXPECT_THAT(Lines(out)[0], MatchesRegex("SUBNET +IPV6-SUBNET +PUBLIC-IP +PUBLIC-IPV6 +NODE +BACKEND +EXPIRES "
                                          "+REVISION +BACKEND-DATA"));
  EXPECT_EQ(ColumnOf(out, "SUBNET", "IPV6-SUBNET"), ColumnOf(out, "fd77::7", "fd00:12:0:7::/64"));
  EXPECT_EQ(ColumnOf(out, "SUBNET", "BACKEND-DATA"), ColumnOf(out, "10.1.10.0/24", R"({"VNI":1)"));
  EXPECT_EQ(ColumnOf(out, "SUBNET", "REVISION"), ColumnOf(out, "10.1.10.0/24", "42"));
  EXPECT_THAT(Lines(out)[3], MatchesRegex("- +fd00:12:0:7::/64 +- +fd77::7 +v6only +- +- +0 +-"));  // dashes for none
}

TEST(OutputTest, LeasesAsJsonParseBack) {
  const std::string out = FormatLeases(Listing(), OutputFormat::kJson);
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "one line: " << out;
  absl::StatusOr<json::Json> j = json::Parse(out, "weftctl output");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ((*j)["revision"], 99);
  const json::Json& leases = (*j)["leases"];
  ASSERT_EQ(leases.size(), 3u);
  EXPECT_EQ(leases[0]["subnet"], "10.1.9.0/24");
  EXPECT_EQ(leases[0]["reserved"], true);
  EXPECT_EQ(leases[0]["backend_data"], "not json {");  // unreadable: kept as the string it is
  EXPECT_FALSE(leases[0].contains("expiration"));
  EXPECT_EQ(leases[1]["subnet"], "10.1.10.0/24");
  EXPECT_EQ(leases[1]["backend_data"]["VNI"], 1);  // the object it holds
  EXPECT_EQ(leases[1]["expiration"], "2027-01-01T00:00:00Z");
  EXPECT_EQ(leases[1]["revision"], 42);
  EXPECT_FALSE(leases[1].contains("ipv6_subnet"));
  EXPECT_EQ(leases[2]["ipv6_subnet"], "fd00:12:0:7::/64");
  EXPECT_EQ(leases[2]["backend_data"], nullptr);
}

TEST(OutputTest, LeaseAsYaml) {
  const std::string out = FormatLease(Listing().leases(0), OutputFormat::kYaml);
  EXPECT_EQ(out,
            "---\n"
            "subnet: \"10.1.10.0/24\"\n"
            "public_ip: \"192.0.2.1\"\n"
            "node_name: \"a-node-with-a-rather-long-name.example.com\"\n"
            "backend_type: \"vxlan\"\n"
            "backend_data:\n"
            "  VNI: 1\n"
            "  VtepMAC: \"aa:bb:cc:dd:ee:ff\"\n"
            "reserved: false\n"
            "expiration: \"2027-01-01T00:00:00Z\"\n"
            "revision: 42\n");
}

TEST(OutputTest, YamlSequencesOddKeysAndEmptiness) {
  json::OrderedJson j;
  j["leases"] = json::OrderedJson::array();
  j["leases"].push_back({{"subnet", "10.1.9.0/24"}, {"tags", {1, 2}}});
  j["leases"].push_back("plain");
  j["odd key"] = nullptr;
  j["empty"] = json::OrderedJson::object();
  EXPECT_EQ(Yaml(j),
            "---\n"
            "leases:\n"
            "  - subnet: \"10.1.9.0/24\"\n"
            "    tags:\n"
            "      - 1\n"
            "      - 2\n"
            "  - \"plain\"\n"
            "\"odd key\": null\n"
            "empty: {}\n");
  EXPECT_EQ(Yaml(json::OrderedJson::array()), "---\n[]\n");
  EXPECT_EQ(FormatLeases(v1::ListLeasesResponse(), OutputFormat::kYaml), "---\nrevision: 0\nleases: []\n");
}

std::vector<EndpointStatus> TwoEndpoints() {
  EndpointStatus up;
  up.address = "10.0.0.1:7800";
  v1::GetStatusResponse& s = up.status;
  s.set_version("0.1.0");
  s.set_commit("0123456789abcdef0123");
  s.set_replica("r1");
  s.set_leader(true);
  s.set_store("rocksdb");
  s.set_store_location("/var/lib/weft");
  s.set_revision(1234);
  s.set_network_config(R"({"Network": "10.1.0.0/16", "Backend": {"Type": "vxlan"}})");
  s.set_backend_type("vxlan");
  s.mutable_pool()->set_subnets(255);
  s.mutable_pool()->set_leases(1);
  s.mutable_pool()->set_reserved(1);
  s.mutable_pool()->set_free(253);
  s.mutable_pool()->set_expiring_within_hour(1);
  s.set_watch_streams(3);
  EndpointStatus down;
  down.address = "10.0.0.2:7800";
  down.rpc = grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused");
  down.error = "controller 10.0.0.2:7800: UNAVAILABLE (...): connection refused";
  return {down, up};
}

TEST(OutputTest, StatusAsTable) {
  const std::string out = FormatStatus(TwoEndpoints(), OutputFormat::kTable);
  EXPECT_THAT(Lines(out)[0],
              MatchesRegex("ENDPOINT +REACHABLE +VERSION +LEADER +STORE +REVISION +STORE-HEALTH +WATCHES"));
  EXPECT_EQ(ColumnOf(out, "ENDPOINT", "VERSION"), ColumnOf(out, "10.0.0.1:7800", "0.1.0 (0123456789ab)"));
  EXPECT_EQ(ColumnOf(out, "ENDPOINT", "REACHABLE"), ColumnOf(out, "10.0.0.2:7800  ", "no: UNAVAILABLE"));
  EXPECT_EQ(ColumnOf(out, "ENDPOINT", "STORE-HEALTH"), ColumnOf(out, "10.0.0.1:7800", "ok"));
  EXPECT_THAT(out, HasSubstr("\n  controller 10.0.0.2:7800: UNAVAILABLE (...): connection refused\n"));
  // The network as the endpoint that answered sees it, its config on one line.
  EXPECT_THAT(out, HasSubstr(R"(
Network config:            {"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}
)"));
  EXPECT_THAT(out, HasSubstr("\nSubnets:                   255 in the network: 1 leased, 1 reserved, 253 free\n"));
  EXPECT_THAT(out, HasSubstr("\nExpiring within the hour:  1\n"));
  EXPECT_THAT(out, Not(HasSubstr("IPv6 subnets:")));

  std::vector<EndpointStatus> v6 = TwoEndpoints();
  v6[1].status.mutable_pool()->set_ipv6_subnets(65535);
  v6[1].status.mutable_pool()->set_ipv6_free(65531);
  EXPECT_THAT(FormatStatus(v6, OutputFormat::kWide), HasSubstr("\nIPv6 subnets:  65535 in the network, 65531 free\n"));

  // Nobody answered: the endpoints and why, nothing else.
  const std::string none = FormatStatus({TwoEndpoints()[0]}, OutputFormat::kTable);
  EXPECT_EQ(Lines(none).size(), 3u) << none;
}

TEST(OutputTest, StatusAsJsonAndYaml) {
  absl::StatusOr<json::Json> j = json::Parse(FormatStatus(TwoEndpoints(), OutputFormat::kJson), "status");
  ASSERT_TRUE(j.ok()) << j.status();
  ASSERT_EQ((*j)["endpoints"].size(), 2u);
  EXPECT_EQ((*j)["endpoints"][0]["reachable"], false);
  EXPECT_EQ((*j)["endpoints"][0]["error"], "controller 10.0.0.2:7800: UNAVAILABLE (...): connection refused");
  EXPECT_EQ((*j)["endpoints"][1]["leader"], true);
  EXPECT_EQ((*j)["endpoints"][1]["store_healthy"], true);
  EXPECT_EQ((*j)["network_config"]["Backend"]["Type"], "vxlan");
  EXPECT_EQ((*j)["free"], 253);

  const std::string yaml = FormatStatus(TwoEndpoints(), OutputFormat::kYaml);
  EXPECT_THAT(yaml, StartsWith("---\nendpoints:\n  - address: \"10.0.0.2:7800\"\n    reachable: false\n"));
  EXPECT_THAT(yaml, HasSubstr("\nnetwork_config:\n  Network: \"10.1.0.0/16\"\n  Backend:\n    Type: \"vxlan\"\n"));
}

}  // namespace
}  // namespace weft::weftctl
