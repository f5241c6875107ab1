// The real etcdctl 3.4 against a real etcd 3.4 and against Weft's etcd API
// (weft-etcd-compat-dev over RocksDB): the conformance script's transcripts
// must be equal. Also etcdctl against Weft's flannel put checks.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "tests/etcd/etcd_cluster.h"
#include "tests/integration/process.h"

namespace weft::testing {
namespace {

std::string TmpDir() { return std::getenv("TEST_TMPDIR"); }

// weft-etcd-compat-dev on a free port with a fresh RocksDB store, or over
// the etcd at `etcd_endpoint` (EtcdStore) when given.
class CompatServer {
 public:
  explicit CompatServer(const std::string& name, const std::string& etcd_endpoint = "") {
    endpoint_ = absl::StrCat("127.0.0.1:", FreePort());
    log_ = absl::StrCat(TestOutputDir(), "/", name, ".log");
    std::vector<std::string> argv = {Runfile("controller/etcd_api/weft-etcd-compat-dev"), "--listen", endpoint_};
    if (etcd_endpoint.empty()) {
      argv.insert(argv.end(), {"--data-dir", absl::StrCat(TmpDir(), "/", name)});
    } else {
      argv.insert(argv.end(), {"--store", "etcd", "--etcd-endpoints", etcd_endpoint});
    }
    started_ = proc_.Start(argv, log_) && WaitForServing(endpoint_, 30);
  }
  bool started() const { return started_; }
  const std::string& endpoint() const { return endpoint_; }
  const std::string& log() const { return log_; }

 private:
  std::string endpoint_;
  std::string log_;
  Process proc_;  // killed by its destructor
  bool started_ = false;
};

std::string Transcript(const std::string& endpoint) {
  std::string out;
  RunCommand({"/bin/bash", Runfile("tests/etcd/conformance.sh"), endpoint, "/usr/bin/etcdctl"}, &out);
  return out;
}

void Save(const std::string& name, const std::string& text) {
  std::ofstream(absl::StrCat(TestOutputDir(), "/", name)) << text;
}

void ExpectSameTranscript(const std::string& want, const std::string& got, const std::string& name) {
  Save("transcript-etcd.txt", want);
  Save(absl::StrCat("transcript-", name, ".txt"), got);
  if (want == got) return;
  std::string diff;
  RunCommand({"/usr/bin/diff", "-u", absl::StrCat(TestOutputDir(), "/transcript-etcd.txt"),
              absl::StrCat(TestOutputDir(), "/transcript-", name, ".txt")},
             &diff);
  ADD_FAILURE() << "etcdctl transcripts differ (- etcd, + " << name << "):\n" << diff;
}

std::unique_ptr<EtcdCluster> StartEtcd(const std::string& name) {
  EtcdCluster::Options eo;
  eo.dir = absl::StrCat(TmpDir(), "/", name);
  eo.log_dir = absl::StrCat(TestOutputDir(), "/", name);
  std::filesystem::create_directories(eo.log_dir);
  std::string error;
  auto etcd = EtcdCluster::Start(eo, &error);
  EXPECT_NE(etcd, nullptr) << error;
  return etcd;
}

TEST(ConformanceTest, EtcdctlGetsTheSameAnswersFromWeftAsFromEtcd) {
  auto etcd = StartEtcd("etcd");
  ASSERT_NE(etcd, nullptr);
  CompatServer weft("weft");
  ASSERT_TRUE(weft.started()) << "see " << weft.log();

  const std::string want = Transcript(etcd->endpoint(0));
  // Guard against both sides failing alike (no etcdctl, script broken).
  ASSERT_TRUE(absl::StrContains(want, "compacted revision")) << want;
  ASSERT_TRUE(absl::StrContains(want, "keepalived with TTL(100)")) << want;
  ExpectSameTranscript(want, Transcript(weft.endpoint()), "weft");
}

// The replicated controllers' setup: Weft's etcd API over EtcdStore over a
// (fresh) real etcd answers like etcd itself.
TEST(ConformanceTest, WeftOverEtcdStoreAnswersAsEtcd) {
  auto reference = StartEtcd("etcd-reference");
  ASSERT_NE(reference, nullptr);
  auto backing = StartEtcd("etcd-backing");
  ASSERT_NE(backing, nullptr);
  CompatServer weft("weft-over-etcd", backing->endpoint(0));
  ASSERT_TRUE(weft.started()) << "see " << weft.log();
  ExpectSameTranscript(Transcript(reference->endpoint(0)), Transcript(weft.endpoint()), "weft-over-etcd");
}

// etcdctl's exit code and combined output.
int Etcdctl(const std::string& endpoint, std::vector<std::string> args, std::string* out,
            const std::string& stdin_text = "") {
  std::vector<std::string> argv = {"/bin/sh", "-c", "ETCDCTL_API=3 exec /usr/bin/etcdctl \"$@\" 2>&1", "etcdctl",
                                   "--endpoints", endpoint};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, out, stdin_text);
}

TEST(FlannelValidationTest, EtcdctlWritesUnderTheNetworkPrefixAreChecked) {
  CompatServer weft("weft-flannel");
  ASSERT_TRUE(weft.started()) << "see " << weft.log();
  const std::string ep = weft.endpoint();
  const std::string p = "/coreos.com/network";
  const std::string lease = R"({"PublicIP":"192.168.64.3","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}})";
  std::string out;

  // No config yet: leases are refused; a broken config too.
  EXPECT_EQ(Etcdctl(ep, {"put", p + "/subnets/10.1.19.0-24", lease}, &out), 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "no valid network config")) << out;
  EXPECT_EQ(Etcdctl(ep, {"put", p + "/config", R"({"Network":"10.1.0.0/16","SubnetLen":31})"}, &out), 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "SubnetLen")) << out;
  ASSERT_EQ(Etcdctl(ep, {"put", p + "/config", R"({"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}})"}, &out), 0)
      << out;

  ASSERT_EQ(Etcdctl(ep, {"put", p + "/subnets/10.1.19.0-24", lease}, &out), 0) << out;
  // Rewriting the same lease is fine.
  ASSERT_EQ(Etcdctl(ep, {"put", p + "/subnets/10.1.19.0-24", lease}, &out), 0) << out;

  struct Bad {
    std::string key, value, message;
  };
  const std::vector<Bad> bad = {
      {"10.2.0.0-24", lease, "outside the network 10.1.0.0/16"},
      {"10.1.19.128-25", lease, "is not a /24"},
      {"10.1.0.0-24", lease, "outside SubnetMin..SubnetMax"},
      {"10.1.19.5-24", lease, "not a subnet key"},
      {"bogus", lease, "not a subnet key"},
      {"10.1.20.0-24", "not json", "malformed lease"},
      {"10.1.20.0-24", R"({"PublicIP":"300.1.1.1","BackendType":"vxlan"})", "malformed lease"},
      {"10.1.20.0-24", R"({"PublicIP":null,"BackendType":"vxlan"})", "PublicIP"},
      {"10.1.19.0-24&fd00::-64", lease, "PublicIPv6 is required"},
      {"10.1.19.0-24&fd00::-64", R"({"PublicIP":"192.168.64.3","PublicIPv6":"fd01::3","BackendType":"vxlan"})",
       "IPv6 is disabled"},
  };
  for (const Bad& b : bad) {
    EXPECT_EQ(Etcdctl(ep, {"put", p + "/subnets/" + b.key, b.value}, &out), 1) << b.key << ": " << out;
    EXPECT_TRUE(absl::StrContains(out, b.message)) << b.key << ": " << out;
  }
  // Inside a txn, in either branch, the whole txn is refused. (etcdctl's txn
  // reader takes a value with spaces or quotes as a Go-quoted string.)
  const std::string quoted = absl::StrCat("\"", absl::StrReplaceAll(lease, {{"\"", "\\\""}}), "\"");
  const std::string create = "version(\"" + p + "/subnets/10.1.30.0-24\") = \"0\"\n\nput " + p +
                             "/subnets/10.1.30.0-24 " + quoted + "\n\n";
  EXPECT_EQ(Etcdctl(ep, {"txn"}, &out, create + "put " + p + "/subnets/10.9.0.0-24 " + quoted + "\n\n"), 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "outside the network")) << out;
  // flannel's own create: If(Version(key)==0) Then Put.
  EXPECT_EQ(Etcdctl(ep, {"txn"}, &out, create + "\n"), 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "SUCCESS")) << out;

  // Nothing refused was stored; keys outside the subnets are not checked.
  ASSERT_EQ(Etcdctl(ep, {"put", p + "/other", "anything"}, &out), 0) << out;
  ASSERT_EQ(Etcdctl(ep, {"get", "--prefix", p + "/subnets/", "--keys-only"}, &out), 0) << out;
  EXPECT_EQ(out, p + "/subnets/10.1.19.0-24\n\n" + p + "/subnets/10.1.30.0-24\n\n");
}

}  // namespace
}  // namespace weft::testing
