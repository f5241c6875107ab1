// The real weft-controller on loopback, driven over gRPC, then its /metrics page
// checked by Prometheus' own linter (`promtool check metrics`, must be clean) and
// against the catalogue in docs/metrics.md (names, types, labels, nothing
// missing, nothing undocumented).

#include <httplib.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "tests/integration/process.h"
#include "tests/observability/catalogue.h"
#include "tests/observability/lease_workload.h"

namespace weft::testing {
namespace {

std::string TmpDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t && *t ? t : "/tmp";
}

// promtool's verdict on an exposition: its exit code, and everything it printed.
int Promtool(const std::string& exposition, std::string* output) {
  return RunCommand({"/bin/sh", "-c", "exec promtool check metrics 2>&1"}, output, exposition);
}

class ControllerMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc_port_ = FreePort();
    metrics_port_ = FreePort();
    log_ = TmpDir() + "/controller.log";
    ASSERT_TRUE(controller_.Start({Runfile("controller/weft-controller"), "--data-dir", TmpDir() + "/data",
                                   "--listen", absl::StrCat("127.0.0.1:", grpc_port_), "--metrics-listen",
                                   absl::StrCat("127.0.0.1:", metrics_port_)},
                                  log_));
    httplib::Client http("127.0.0.1", metrics_port_);
    ASSERT_TRUE(Eventually(
        [&] {
          httplib::Result r = http.Get("/healthz");
          return r && r->status == 200;
        },
        absl::Seconds(30)))
        << "controller not healthy; see " << log_;
  }
  // Process's destructor kills the controller (SIGKILL) whatever happened.

  std::string Scrape() {
    httplib::Client http("127.0.0.1", metrics_port_);
    httplib::Result r = http.Get("/metrics");
    EXPECT_TRUE(r) << httplib::to_string(r.error());
    if (!r) return "";
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type").rfind("text/plain", 0), 0u) << r->get_header_value("Content-Type");
    return r->body;
  }

  Process controller_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
  std::string log_;
};

TEST(PromtoolTest, FlagsABadExposition) {
  // The check below is only worth something if promtool does complain.
  std::string out;
  EXPECT_NE(Promtool("# HELP weft_things Things.\n# TYPE weft_things counter\nweft_things 1\n", &out), 0);
  EXPECT_NE(out.find("_total"), std::string::npos) << out;
  EXPECT_EQ(Promtool("# HELP weft_things_total Things.\n# TYPE weft_things_total counter\nweft_things_total 1\n",
                     &out),
            0)
      << out;
}

TEST_F(ControllerMetricsTest, PromtoolIsCleanBeforeAnyConfig) {
  const std::string page = Scrape();
  ASSERT_FALSE(page.empty());
  std::string out;
  EXPECT_EQ(Promtool(page, &out), 0) << out << "\n--- /metrics ---\n" << page;
  EXPECT_EQ(out, "");
}

TEST_F(ControllerMetricsTest, PromtoolIsCleanAndCatalogueMatchesAfterTraffic) {
  WorkloadOptions o;
  o.controller = absl::StrCat("127.0.0.1:", grpc_port_);
  o.network_config = kTestNetworkConfig;
  o.duration = absl::Seconds(2);
  o.period = absl::Milliseconds(100);
  o.churn_every = 4;
  const absl::Status ran = RunWorkload(o);
  ASSERT_TRUE(ran.ok()) << ran << "; see " << log_;

  const std::string page = Scrape();
  ASSERT_FALSE(page.empty());
  std::ofstream(TmpDir() + "/metrics.txt") << page;
  std::string out;
  EXPECT_EQ(Promtool(page, &out), 0) << out << "\n--- /metrics ---\n" << page;
  EXPECT_EQ(out, "") << "promtool is not silent";

  absl::StatusOr<std::vector<CatalogueEntry>> catalogue = ReadCatalogue(WorkspaceFile("docs/metrics.md"));
  ASSERT_TRUE(catalogue.ok()) << catalogue.status();
  absl::StatusOr<std::map<std::string, ExposedFamily>> exposed = ParseExposition(page);
  ASSERT_TRUE(exposed.ok()) << exposed.status();
  const std::vector<std::string> problems = CompareWithExposition(*catalogue, "controller", *exposed);
  EXPECT_TRUE(problems.empty()) << "docs/metrics.md and the controller's /metrics disagree:\n  "
                                << absl::StrJoin(problems, "\n  ");
}

}  // namespace
}  // namespace weft::testing
