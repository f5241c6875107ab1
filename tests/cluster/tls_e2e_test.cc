// Mutual TLS end to end, on the cluster harness (real binaries, certificates
// from tools/certs.sh): agents and weftctl connect with their certificates, a
// plaintext client and a node asking for an operator's call are refused with
// messages that say so, and after the controller's certificate is rotated (new
// files, re-read by the running controller) the agents reconnect by themselves.

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/cluster/e2e_util.h"
#include "tests/cluster/harness.h"

namespace weft::testing {
namespace {

// The SHA-256 fingerprint of the certificate the controller serves now.
absl::StatusOr<std::string> ServedFingerprint(Cluster& c) {
  return c.Sh(c.controller_ns(), absl::StrCat("openssl s_client -connect ", c.controller_addr(),
                                              " </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"));
}

absl::StatusOr<double> AgentGauge(Cluster& c, int host, const std::string& name) {
  absl::StatusOr<std::string> m =
      c.Sh(c.host(host).ns, absl::StrCat("curl -sf http://", c.host(host).metrics_addr, "/metrics"));
  if (!m.ok()) return m.status();
  for (absl::string_view line : absl::StrSplit(*m, '\n')) {
    if (absl::ConsumePrefix(&line, name + " ")) {
      double v = 0;
      if (absl::SimpleAtod(line, &v)) return v;
    }
  }
  return absl::NotFoundError(name);
}

TEST(TlsE2eTest, RefusalsAreClearAndAgentsSurviveServerCertificateRotation) {
  ClusterOptions o;
  o.hosts = 2;
  std::unique_ptr<Cluster> c = StartClusterForTest(o);
  ASSERT_NE(c, nullptr);
  ASSERT_NE(c->certs(), nullptr);

  // The operator's weftctl works; a plaintext one is refused and told why.
  absl::StatusOr<ExecResult> list = c->Weftctl({"leases", "list"});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->exit_code, 0) << list->ToString();
  EXPECT_TRUE(absl::StrContains(list->out, "h1") && absl::StrContains(list->out, "h2")) << list->out;
  absl::StatusOr<ExecResult> plain = c->Exec(
      c->controller_ns(), {c->options().binaries.weftctl, "--controller", c->controller_addr(), "--timeout", "5s",
                           "leases", "list"});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->exit_code, 3) << plain->err;  // UNAVAILABLE: no controller it could talk to
  EXPECT_TRUE(absl::StrContains(plain->err, "mutual TLS")) << plain->err;

  // A node's certificate may read but not reserve.
  const TlsClientFiles node = c->certs()->Node("h1");
  const std::vector<std::string> as_node = {c->options().binaries.weftctl, "--controller", c->controller_addr(),
                                            "--ca-file", node.ca_file, "--cert-file", node.cert_file,
                                            "--key-file", node.key_file};
  std::vector<std::string> reserve = as_node;
  for (const char* a : {"reserve", "10.1.250.0/24", "--public-ip", "192.0.2.250"}) reserve.push_back(a);
  absl::StatusOr<ExecResult> denied = c->Exec(c->controller_ns(), reserve);
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->exit_code, 1);
  EXPECT_TRUE(absl::StrContains(denied->err, "refused this identity")) << denied->err;
  std::vector<std::string> get = as_node;
  get.push_back("config");
  get.push_back("get");
  absl::StatusOr<ExecResult> read = c->Exec(c->controller_ns(), get);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->exit_code, 0) << read->ToString();

  // Rotation: a new server certificate from the same CA replaces the files in place.
  absl::StatusOr<std::string> before = ServedFingerprint(*c);
  ASSERT_TRUE(before.ok()) << before.status();
  const std::string dir = c->certs()->dir();
  const std::string fresh = dir + "/rotated";
  absl::StatusOr<std::string> made = c->Sh(
      c->controller_ns(),
      absl::StrCat("mkdir -p ", fresh, " && cp ", dir, "/ca.crt ", dir, "/ca.key ", fresh, "/ && tools/certs.sh --dir ",
                   fresh, " server controller IP:", Cluster::kControllerIp, " >/dev/null && cp ", fresh,
                   "/controller.key ", dir, "/controller.key.new && cp ", fresh, "/controller.crt ", dir,
                   "/controller.crt.new && mv ", dir, "/controller.key.new ", dir, "/controller.key && mv ", dir,
                   "/controller.crt.new ", dir, "/controller.crt"));
  ASSERT_TRUE(made.ok()) << made.status();
  absl::Status rotated = Cluster::WaitForOk(
      [&]() -> absl::Status {
        absl::StatusOr<std::string> now = ServedFingerprint(*c);
        if (!now.ok()) return now.status();
        if (*now == *before) return absl::UnavailableError("still the old certificate");
        return absl::OkStatus();
      },
      absl::Seconds(30));
  ASSERT_TRUE(rotated.ok()) << rotated;

  // Agents' connections made before the rotation are cut by a controller
  // restart; they reconnect by themselves against the new certificate.
  ASSERT_TRUE(c->StopController().ok());
  ASSERT_TRUE(c->StartController().ok());
  for (int h = 0; h < c->num_hosts(); ++h) {
    absl::Status back = Cluster::WaitForOk(
        [&]() -> absl::Status {
          absl::StatusOr<double> connected = AgentGauge(*c, h, "weft_agent_controller_connected");
          if (!connected.ok()) return connected.status();
          if (*connected != 1) return absl::UnavailableError("not connected");
          return absl::OkStatus();
        },
        absl::Seconds(45));
    EXPECT_TRUE(back.ok()) << c->host(h).name << ": " << back;
  }
  // And a host that joins now is seen by the others through their new watch.
  absl::StatusOr<int> h3 = c->AddHost();
  ASSERT_TRUE(h3.ok()) << h3.status();
  Cluster::PingResult r;
  absl::Status ping = Cluster::WaitForOk(
      [&] { return c->Ping(c->host(0).containers[0], c->host(*h3).containers[0].ip, 2, absl::Seconds(2), &r); },
      absl::Seconds(30), absl::Seconds(1));
  EXPECT_TRUE(ping.ok()) << ping;
}

}  // namespace
}  // namespace weft::testing
