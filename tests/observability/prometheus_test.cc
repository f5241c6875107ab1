// A real Prometheus server scraping a live Weft cluster in network namespaces:
// the controller (driven by lease_workload: acquisitions, renewals, releases,
// refusals, an exhausted pool, leases left to expire with a 10 s LeaseTTL) and,
// when //agent:weft-agent is built, agents on two hosts with a container each.
// Then, through Prometheus' HTTP API:
//  - every metric of docs/metrics.md has data, with its type and labels, and
//    every weft series Prometheus holds is catalogued;
//  - every PromQL expression of every dashboard parses and returns data.
// Needs root (network namespaces): weft_cc_test(root = True).

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/cluster/harness.h"
#include "tests/integration/process.h"
#include "tests/observability/catalogue.h"
#include "tests/observability/dashboards.h"
#include "tests/observability/lease_workload.h"
#include "tests/observability/prometheus.h"

namespace weft::testing {
namespace {

using json = nlohmann::json;

constexpr char kControllerJob[] = "weft-controller";
constexpr char kAgentJob[] = "weft-agent";
constexpr int kHosts = 2;

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return !path.empty() && stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// The cluster, the workload and Prometheus, set up once for every test.
struct Observed {
  std::unique_ptr<Cluster> cluster;
  pid_t workload = -1;
  std::unique_ptr<PrometheusServer> prometheus;
  bool agents = false;
  std::vector<CatalogueEntry> catalogue;
  std::string setup_error;  // set when SetUp failed; every test then fails with it

  ~Observed() {
    prometheus.reset();
    KillChild(workload);
    cluster.reset();
  }
};
Observed* g = nullptr;

// Non-empty, and at least one value is a number (histogram_quantile over
// buckets with no new observations gives NaN: that is not data).
absl::Status HasData(const json& data) {
  const std::string type = data.value("resultType", "");
  const json& result = data["result"];
  auto finite = [](const json& sample) {
    const std::string v = sample.at(1).get<std::string>();
    return v != "NaN";
  };
  if (type == "scalar") {
    return finite(result) ? absl::OkStatus() : absl::NotFoundError("scalar result is NaN");
  }
  if (type != "vector") return absl::InternalError("unexpected result type " + type);
  if (result.empty()) return absl::NotFoundError("empty result");
  for (const json& series : result) {
    if (finite(series["value"])) return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("all ", result.size(), " series are NaN"));
}

absl::Status WaitForQuery(const std::string& promql, absl::Duration timeout) {
  return Cluster::WaitForOk(
      [&]() -> absl::Status {
        absl::StatusOr<json> r = g->prometheus->Query(promql);
        if (!r.ok()) return r.status();
        return HasData(*r);
      },
      timeout, absl::Milliseconds(500));
}

absl::Status SetUpObserved() {
  absl::StatusOr<std::vector<CatalogueEntry>> catalogue = ReadCatalogue(WorkspaceFile("docs/metrics.md"));
  if (!catalogue.ok()) return catalogue.status();
  g->catalogue = *catalogue;

  ClusterOptions o;
  o.name = "observability";
  o.network_config = kTestNetworkConfig;
  // lease_workload speaks plaintext; TLS itself is tests/cluster:tls_e2e_test's subject.
  o.tls = false;
  g->agents = IsExecutableFile(o.binaries.agent);
  o.hosts = g->agents ? kHosts : 0;
  // Agents serve /metrics on the underlay too, for Prometheus in the controller's namespace.
  o.agent_args = {"--metrics-listen", absl::StrCat("0.0.0.0:", Cluster::kAgentMetricsPort), "--resync-interval",
                  "2s"};
  std::fprintf(stderr, "observability: %s\n",
               g->agents ? "agent binary found: controller + agents"
                         : "no agent binary: controller only (agent series and panels are only parsed)");
  absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(o);
  if (!cluster.ok()) return cluster.status();
  g->cluster = std::move(*cluster);
  Cluster& c = *g->cluster;

  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp && *tmp ? tmp : "/tmp", "/observability");
  mkdir(dir.c_str(), 0755);
  absl::StatusOr<pid_t> workload = SpawnChild(
      {"ip", "netns", "exec", c.controller_ns(), Runfile("tests/observability/lease_workload"), "--controller",
       c.controller_addr(), "--duration", "5m", "--period", "200ms"},
      dir + "/lease_workload.log");
  if (!workload.ok()) return workload.status();
  g->workload = *workload;

  PrometheusOptions po;
  po.ns = c.controller_ns();
  po.dir = dir;
  po.jobs[kControllerJob] = {absl::StrCat(Cluster::kControllerIp, ":", Cluster::kControllerMetricsPort)};
  for (int i = 0; i < c.num_hosts(); ++i) {
    po.jobs[kAgentJob].push_back(absl::StrCat(c.host(i).underlay_ip, ":", Cluster::kAgentMetricsPort));
  }
  absl::StatusOr<std::unique_ptr<PrometheusServer>> prometheus = PrometheusServer::Start(po);
  if (!prometheus.ok()) return prometheus.status();
  g->prometheus = std::move(*prometheus);
  if (absl::Status s = g->prometheus->WaitForTargetsUp(absl::Seconds(60)); !s.ok()) return s;

  // Traffic over the overlay, both ways, so that the data path is exercised.
  const std::vector<const Container*> containers = c.containers();
  for (const Container* from : containers) {
    for (const Container* to : containers) {
      if (from == to) continue;
      if (absl::Status s = c.Ping(*from, to->ip, 3); !s.ok()) return s;
    }
  }
  // The events the slowest panels need: leases expired (10 s TTL, never
  // renewed), an exhausted pool, and enough scrapes for rate() windows.
  if (absl::Status s = WaitForQuery("weft_controller_lease_expirations_total > 0", absl::Seconds(90)); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("no lease expired: ", s.message()));
  }
  if (absl::Status s = WaitForQuery(R"(weft_controller_lease_operations_total{result="exhausted"})",
                                    absl::Seconds(30));
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("the pool was never exhausted: ", s.message()));
  }
  if (absl::Status s = WaitForQuery("count_over_time(weft_controller_leases[1m]) >= 15", absl::Seconds(60)); !s.ok()) {
    return s;
  }
  if (g->agents) {
    if (absl::Status s = WaitForQuery("sum(rate(weft_agent_reconciles_total[1m])) > 0", absl::Seconds(60)); !s.ok()) {
      return s;
    }
  }
  // The workload must still be running (it exits only on error or after 5 m).
  int status;
  if (waitpid(g->workload, &status, WNOHANG) == g->workload) {
    g->workload = -1;
    return absl::AbortedError(absl::StrCat("lease_workload exited early; see ", dir, "/lease_workload.log"));
  }
  return absl::OkStatus();
}

class ObservedEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    g = new Observed;
    absl::Status s = SetUpObserved();
    if (!s.ok()) g->setup_error = s.ToString();
  }
  void TearDown() override {
    delete g;
    g = nullptr;
  }
};

class PrometheusTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(g->setup_error, "") << "setting up the observed cluster failed"; }
};

// Checks the catalogue's entries of `component` against what Prometheus scraped from `job`.
void CheckCatalogue(const std::string& component, const std::string& job) {
  int checked = 0;
  for (const CatalogueEntry& e : g->catalogue) {
    if (!e.AppliesTo(component)) continue;
    ++checked;
    SCOPED_TRACE(absl::StrCat(e.name, " (docs/metrics.md:", e.line, ")"));
    std::vector<std::string> series = {e.name};
    if (e.type == "histogram") series = {e.name + "_bucket", e.name + "_sum", e.name + "_count"};
    for (const std::string& s : series) {
      absl::StatusOr<json> r = g->prometheus->Query(absl::StrCat("{__name__=\"", s, "\", job=\"", job, "\"}"));
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_FALSE((*r)["result"].empty()) << s << ": no data from job " << job;
      for (const json& one : (*r)["result"]) {
        std::set<std::string> labels;
        for (const auto& [k, v] : one["metric"].items()) {
          if (k != "__name__" && k != "job" && k != "instance" && k != "le") labels.insert(k);
        }
        EXPECT_EQ(labels, e.labels) << one["metric"].dump();
      }
    }
    absl::StatusOr<json> meta = g->prometheus->Api("metadata?metric=" + e.name);
    ASSERT_TRUE(meta.ok()) << meta.status();
    ASSERT_TRUE(meta->contains(e.name)) << "no metadata: " << meta->dump();
    EXPECT_EQ((*meta)[e.name][0].value("type", ""), e.type);
  }
  EXPECT_GT(checked, 10);
}

TEST_F(PrometheusTest, EveryControllerMetricOfTheCatalogueHasData) { CheckCatalogue("controller", kControllerJob); }

TEST_F(PrometheusTest, EveryAgentMetricOfTheCatalogueHasData) {
  if (!g->agents) GTEST_SKIP() << "//agent:weft-agent is not in this test's data";
  CheckCatalogue("agent", kAgentJob);
}

TEST_F(PrometheusTest, EverySeriesScrapedIsCatalogued) {
  absl::StatusOr<json> r = g->prometheus->Query(R"(count by (__name__, job) ({job=~"weft-.*"}))");
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::string> unknown;
  for (const json& one : (*r)["result"]) {
    const std::string name = one["metric"].value("__name__", "");
    const std::string job = one["metric"].value("job", "");
    // Prometheus' own series about each scrape.
    if (name == "up" || absl::StartsWith(name, "scrape_")) continue;
    const CatalogueEntry* e = FindEntry(g->catalogue, name);
    if (e == nullptr || !e->AppliesTo(job == kAgentJob ? "agent" : "controller")) {
      unknown.push_back(absl::StrCat(name, " from ", job));
    }
  }
  EXPECT_TRUE(unknown.empty()) << "scraped but not in docs/metrics.md:\n  " << absl::StrJoin(unknown, "\n  ");
}

TEST_F(PrometheusTest, AgentMetricsPagesAreCleanForPromtool) {
  if (!g->agents) GTEST_SKIP() << "//agent:weft-agent is not in this test's data";
  for (int i = 0; i < g->cluster->num_hosts(); ++i) {
    const Host& h = g->cluster->host(i);
    absl::StatusOr<std::string> page = HttpGetIn(h.ns, "127.0.0.1", Cluster::kAgentMetricsPort, "/metrics");
    ASSERT_TRUE(page.ok()) << page.status();
    std::string out;
    EXPECT_EQ(RunCommand({"/bin/sh", "-c", "exec promtool check metrics 2>&1"}, &out, *page), 0) << out;
    EXPECT_EQ(out, "") << h.name << ": promtool is not silent";
    absl::StatusOr<std::map<std::string, ExposedFamily>> exposed = ParseExposition(*page);
    ASSERT_TRUE(exposed.ok()) << exposed.status();
    const auto problems = CompareWithExposition(g->catalogue, "agent", *exposed);
    EXPECT_TRUE(problems.empty()) << h.name << ": docs/metrics.md and the agent's /metrics disagree:\n  "
                                  << absl::StrJoin(problems, "\n  ");
  }
}

TEST_F(PrometheusTest, EveryDashboardQueryParsesAndReturnsData) {
  const std::vector<std::string> files = DashboardFiles();
  ASSERT_GE(files.size(), 3u);
  int run = 0, parse_only = 0;
  for (const std::string& f : files) {
    absl::StatusOr<json> d = LoadDashboard(f);
    ASSERT_TRUE(d.ok()) << d.status();
    for (const DashboardQuery& q : ExtractQueries(*d, f.substr(f.rfind('/') + 1))) {
      const std::string expr = SubstituteVariables(q.expr, "1m");
      SCOPED_TRACE(absl::StrCat(q.where, ": ", expr));
      absl::StatusOr<json> r = g->prometheus->Query(expr);
      ASSERT_TRUE(r.ok()) << "Prometheus refused the query: " << r.status();
      bool needs_agents = false, needs_wireguard = false;
      for (const std::string& m : MetricNames(expr)) {
        needs_agents |= absl::StartsWith(m, "weft_agent_");
        needs_wireguard |= absl::StartsWith(m, "weft_agent_wireguard_");
      }
      // The observed cluster runs VXLAN: the WireGuard row's metrics come only
      // from wireguard agents (wireguard_e2e_test checks those agents export
      // them as docs/metrics.md says); here their queries must parse.
      if ((needs_agents && !g->agents) || needs_wireguard) {
        ++parse_only;
        continue;
      }
      ++run;
      EXPECT_TRUE(HasData(*r).ok()) << HasData(*r) << "; answer: " << r->dump().substr(0, 400);
    }
  }
  std::fprintf(stderr, "dashboards: %d queries returned data, %d only parsed (no agents, or WireGuard's)\n", run,
               parse_only);
  EXPECT_GT(run, 30);
}

::testing::Environment* const kObserved = ::testing::AddGlobalTestEnvironment(new ObservedEnvironment);

}  // namespace
}  // namespace weft::testing
