#include "controller/authz.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace weft::controller {
namespace {

using etcd_api::EtcdOp;

const Identity kOperator{Role::kOperator, "", "O=weft:admins,CN=ops"};
const Identity kNode{Role::kNode, "n1", "O=system:nodes,CN=system:node:n1"};
const Identity kReader{Role::kReader, "", "CN=dashboard"};

Authorizer Make(metrics::Registry* registry = nullptr) {
  Authorizer::Options o;
  o.tls = true;
  o.prefix = "/coreos.com/network";
  o.election_key = "/weft.io/controller/leader";
  o.registry = registry;
  return Authorizer(o);
}

// Every row of the weft.v1 table: who is allowed (the node without naming
// another node).
struct LeaseRow {
  Method method;
  bool reader, node, op;
};
const LeaseRow kLeaseTable[] = {
    {Method::kAcquireLease, false, true, true},     {Method::kRenewLease, false, true, true},
    {Method::kReleaseLease, false, true, true},     {Method::kGetLease, true, true, true},
    {Method::kListLeases, true, true, true},        {Method::kWatchLeases, true, true, true},
    {Method::kGetNetworkConfig, true, true, true},  {Method::kSetNetworkConfig, false, false, true},
    {Method::kReserve, false, false, true},         {Method::kUnreserve, false, false, true},
    {Method::kGetStatus, true, true, true},
};

TEST(AuthzTest, LeaseTableRowByRow) {
  metrics::Registry registry;
  const Authorizer a = Make(&registry);
  for (const LeaseRow& row : kLeaseTable) {
    SCOPED_TRACE(RuleFor(row.method).name);
    std::string name;
    EXPECT_EQ(a.Check(kReader, row.method, &name).ok(), row.reader);
    name.clear();
    EXPECT_EQ(a.Check(kNode, row.method, &name).ok(), row.node);
    name = "someone-else";
    EXPECT_EQ(a.Check(kOperator, row.method, &name).ok(), row.op);
    EXPECT_EQ(name, "someone-else");  // an operator acts as whoever it names
    if (!row.reader) {
      EXPECT_TRUE(absl::IsPermissionDenied(a.Check(kReader, row.method)));
    }
  }
  // Denied: reader twice (both checks above) and node once for operator-only rows.
  const std::string text = registry.Serialize();
  EXPECT_NE(text.find("weft_controller_denied_requests_total{method=\"SetNetworkConfig\"} 3"), std::string::npos)
      << text;
  EXPECT_NE(text.find("weft_controller_denied_requests_total{method=\"AcquireLease\"} 2"), std::string::npos);
}

TEST(AuthzTest, NodeActsOnlyAsItself) {
  const Authorizer a = Make();
  for (Method m : {Method::kAcquireLease, Method::kRenewLease, Method::kReleaseLease}) {
    SCOPED_TRACE(RuleFor(m).name);
    std::string name;
    ASSERT_TRUE(a.Check(kNode, m, &name).ok());
    EXPECT_EQ(name, "n1");  // empty: taken from the certificate
    name = "n1";
    EXPECT_TRUE(a.Check(kNode, m, &name).ok());
    name = "n2";
    absl::Status s = a.Check(kNode, m, &name);
    EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
    EXPECT_NE(s.message().find("only as itself"), std::string::npos) << s;
    EXPECT_EQ(name, "n2");
  }
}

struct EtcdRow {
  EtcdOp op;
  bool reader, node;  // operators may do everything
};
const EtcdRow kEtcdTable[] = {
    {EtcdOp::kRange, true, true},
    {EtcdOp::kPut, false, false},
    {EtcdOp::kDeleteRange, false, false},
    {EtcdOp::kCompact, false, false},
    {EtcdOp::kWatch, true, true},
    {EtcdOp::kLeaseGrant, false, false},
    {EtcdOp::kLeaseRevoke, false, false},
    {EtcdOp::kLeaseKeepAlive, false, false},
    {EtcdOp::kLeaseTimeToLive, true, true},
    {EtcdOp::kLeaseTimeToLiveKeys, false, false},
    {EtcdOp::kLeaseLeases, true, true},
    {EtcdOp::kMemberList, true, true},
    {EtcdOp::kStatus, true, true},
    {EtcdOp::kMaintenance, false, false},
};

TEST(AuthzTest, EtcdTableRowByRow) {
  const Authorizer a = Make();
  const std::string key = "/coreos.com/network/config";
  for (const EtcdRow& row : kEtcdTable) {
    SCOPED_TRACE(RuleFor(row.op).name);
    EXPECT_EQ(a.CheckEtcd(kReader, row.op, key, "").ok(), row.reader);
    EXPECT_EQ(a.CheckEtcd(kNode, row.op, key, "").ok(), row.node);
    EXPECT_TRUE(a.CheckEtcd(kOperator, row.op, key, "").ok());
  }
}

TEST(AuthzTest, EtcdKeysOutsideThePrefixAreForOperators) {
  const Authorizer a = Make();
  const std::string all(1, '\0');
  struct Case {
    std::string key, range_end;
    bool inside;
  } cases[] = {
      {"/coreos.com/network/config", "", true},
      {"/coreos.com/network/subnets/", "/coreos.com/network/subnets0", true},
      {"/coreos.com/network/", "/coreos.com/network0", true},  // the whole prefix
      {"/coreos.com/network/", "/coreos.com/network1", false},
      {"/coreos.com/network", "/coreos.com/networl", false},  // takes in /coreos.com/networkX
      {"/coreos.com/networkX/config", "", false},
      {"/coreos.com/network/a", all, false},  // every key from there on
      {all, all, false},
      {"/weft.io/controller/leader", "", false},
      {"/other", "", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.key, " .. ", c.range_end));
    for (EtcdOp op : {EtcdOp::kRange, EtcdOp::kWatch}) {
      EXPECT_EQ(a.CheckEtcd(kReader, op, c.key, c.range_end).ok(), c.inside);
      EXPECT_EQ(a.CheckEtcd(kNode, op, c.key, c.range_end).ok(), c.inside);
      EXPECT_TRUE(a.CheckEtcd(kOperator, op, c.key, c.range_end).ok());
    }
  }
}

TEST(AuthzTest, ElectionKeyInsideThePrefixIsStillForOperators) {
  Authorizer::Options o;
  o.tls = true;
  o.prefix = "/p";
  o.election_key = "/p/leader";
  const Authorizer a(o);
  EXPECT_TRUE(a.CheckEtcd(kReader, EtcdOp::kRange, "/p/config", "").ok());
  EXPECT_FALSE(a.CheckEtcd(kReader, EtcdOp::kRange, "/p/leader", "").ok());
  EXPECT_FALSE(a.CheckEtcd(kReader, EtcdOp::kRange, "/p/", "/p0").ok());
  EXPECT_TRUE(a.CheckEtcd(kOperator, EtcdOp::kRange, "/p/", "/p0").ok());
}

TEST(AuthzTest, IdentityFromSubject) {
  struct Case {
    std::vector<std::string> orgs, cns;
    Role role;
    std::string node;
  } cases[] = {
      {{"system:nodes"}, {"system:node:n1"}, Role::kNode, "n1"},
      {{"system:nodes"}, {"system:node:a.b-c"}, Role::kNode, "a.b-c"},
      {{"weft:admins"}, {"anyone"}, Role::kOperator, ""},
      {{"system:nodes", "weft:admins"}, {"system:node:n1"}, Role::kOperator, ""},
      {{"system:nodes"}, {"n1"}, Role::kReader, ""},                                // not a node CN
      {{"system:nodes"}, {"system:node:"}, Role::kReader, ""},                      // no name
      {{"system:nodes"}, {"system:node:Bad_Name"}, Role::kReader, ""},              // not a node name
      {{"system:nodes"}, {"system:node:n1", "system:node:n2"}, Role::kReader, ""},  // ambiguous
      {{"other"}, {"system:node:n1"}, Role::kReader, ""},                           // not in the nodes group
      {{}, {"dashboard"}, Role::kReader, ""},
      {{"weft:admins2"}, {"x"}, Role::kReader, ""},
  };
  for (const Case& c : cases) {
    Identity id = IdentityFromSubject(c.orgs, c.cns, "s");
    EXPECT_EQ(id.role, c.role) << (c.cns.empty() ? "" : c.cns[0]);
    EXPECT_EQ(id.node_name, c.node);
  }
}

// The same from real certificates made by tools/certs.sh (the form the
// controller sees from the handshake).
std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(AuthzTest, IdentityFromCertsShCertificates) {
  const std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/certs");
  const std::string certs = absl::StrCat("tools/certs.sh --dir ", dir, " ");
  for (const std::string& cmd : {std::string("ca"), std::string("node n1"), std::string("admin"),
                                 std::string("client dash"), std::string("client fake system:nodes")}) {
    ASSERT_EQ(system((certs + cmd + " >/dev/null").c_str()), 0) << cmd;
  }
  auto node = IdentityFromPem(ReadFile(dir + "/node-n1.crt"));
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->role, Role::kNode);
  EXPECT_EQ(node->node_name, "n1");
  EXPECT_EQ(node->subject, "O=system:nodes,CN=system:node:n1");
  auto admin = IdentityFromPem(ReadFile(dir + "/admin.crt"));
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->role, Role::kOperator);
  auto dash = IdentityFromPem(ReadFile(dir + "/dash.crt"));
  ASSERT_TRUE(dash.ok());
  EXPECT_EQ(dash->role, Role::kReader);
  auto fake = IdentityFromPem(ReadFile(dir + "/fake.crt"));  // in the group, but CN is not system:node:...
  ASSERT_TRUE(fake.ok());
  EXPECT_EQ(fake->role, Role::kReader);
  EXPECT_TRUE(absl::IsUnauthenticated(IdentityFromPem("-----BEGIN CERTIFICATE-----\nxx\n").status()));
}

}  // namespace
}  // namespace weft::controller
