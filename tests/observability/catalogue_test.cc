// The catalogue parser, on small inputs and on the real docs/metrics.md.

#include "tests/observability/catalogue.h"

#include "gtest/gtest.h"

namespace weft::testing {
namespace {

constexpr char kDoc[] = R"(# Metrics
| `not_in_catalogue_total` | counter | — | x | ignored: outside "## Catalogue" |
## Catalogue
### Controller (`weft-controller`)
| metric | type | labels | unit | meaning |
| --- | --- | --- | --- | --- |
| `weft_controller_leases` | gauge | — | leases | Leases. |
| `weft_controller_rpcs_total` | counter | `method`, `code` | calls | Calls. |
### Agent (`weft-agent`)
| `weft_agent_reconcile_duration_seconds` | histogram | — | seconds | Passes. |
### Every binary (controller and agent)
| `process_open_fds` | gauge | — | descriptors | FDs. |
## Useful queries
| `also_ignored` | gauge | — | x | y |
)";

TEST(CatalogueTest, ReadsRowsOfTheCatalogueSectionOnly) {
  auto c = ParseCatalogue(kDoc);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 4u);
  EXPECT_EQ((*c)[0].name, "weft_controller_leases");
  EXPECT_EQ((*c)[0].component, "controller");
  EXPECT_TRUE((*c)[0].labels.empty());
  EXPECT_EQ((*c)[1].labels, (std::set<std::string>{"code", "method"}));
  EXPECT_EQ((*c)[2].component, "agent");
  EXPECT_EQ((*c)[2].type, "histogram");
  EXPECT_TRUE((*c)[3].AppliesTo("controller"));
  EXPECT_TRUE((*c)[3].AppliesTo("agent"));
  EXPECT_FALSE((*c)[2].AppliesTo("controller"));
}

TEST(CatalogueTest, RefusesMalformedRows) {
  EXPECT_FALSE(ParseCatalogue("## Catalogue\n### Controller\n| `x_total` | countr | — | | |\n").ok());
  EXPECT_FALSE(ParseCatalogue("## Catalogue\n### Controller\n| `x` | counter | — | | |\n").ok());
  EXPECT_FALSE(ParseCatalogue("## Catalogue\n### Controller\n| `x` | gauge | | | |\n| `x` | gauge | | | |\n").ok());
  EXPECT_FALSE(ParseCatalogue("## Catalogue\n").ok());
}

TEST(CatalogueTest, ComparesWithAnExposition) {
  auto c = ParseCatalogue(kDoc);
  ASSERT_TRUE(c.ok());
  auto good = ParseExposition(
      "# HELP weft_controller_leases L.\n# TYPE weft_controller_leases gauge\nweft_controller_leases 3\n"
      "# HELP weft_controller_rpcs_total C.\n# TYPE weft_controller_rpcs_total counter\n"
      "weft_controller_rpcs_total{method=\"A\",code=\"OK\"} 1\n"
      "# TYPE process_open_fds gauge\nprocess_open_fds 7\n");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_TRUE(CompareWithExposition(*c, "controller", *good).empty());

  auto bad = ParseExposition(
      "# TYPE weft_controller_leases counter\nweft_controller_leases 3\n"
      "# TYPE weft_controller_rpcs_total counter\nweft_controller_rpcs_total{method=\"A\"} 1\n"
      "# TYPE weft_extra histogram\nweft_extra_bucket{le=\"+Inf\"} 1\nweft_extra_sum 1\nweft_extra_count 1\n");
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ((*bad)["weft_extra"].samples, 3);
  EXPECT_TRUE((*bad)["weft_extra"].labels.empty());
  // Wrong type, missing label, undocumented family, process_open_fds missing.
  EXPECT_EQ(CompareWithExposition(*c, "controller", *bad).size(), 4u);
}

TEST(CatalogueTest, TheRealCatalogueParses) {
  auto c = ReadCatalogue(WorkspaceFile("docs/metrics.md"));
  ASSERT_TRUE(c.ok()) << c.status();
  int controller = 0, agent = 0;
  for (const auto& e : *c) {
    controller += e.AppliesTo("controller");
    agent += e.AppliesTo("agent");
  }
  EXPECT_GE(controller, 20);
  EXPECT_GE(agent, 15);
}

}  // namespace
}  // namespace weft::testing
