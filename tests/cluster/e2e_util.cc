#include "tests/cluster/e2e_util.h"

#include <limits.h>
#include <stdlib.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace weft::testing {
namespace {

// Prints "<bytes> <sha256>" of everything one connection brought.
constexpr char kReceiver[] = R"(
import hashlib, socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5201))
s.listen(1)
s.settimeout(60)
c, _ = s.accept()
c.settimeout(60)
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    h.update(b)
    n += len(b)
c.close()
print(n, h.hexdigest(), flush=True)
)";

// argv: host, bytes. Connects (retrying while the receiver starts), sends random
// bytes, prints "<bytes> <sha256>" of what it sent.
constexpr char kSender[] = R"(
import hashlib, os, socket, sys, time
deadline = time.time() + 20
while True:
    try:
        s = socket.create_connection((sys.argv[1], 5201), timeout=60)
        break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.2)
h, left = hashlib.sha256(), int(sys.argv[2])
while left > 0:
    b = os.urandom(min(left, 1 << 20))
    h.update(b)
    s.sendall(b)
    left -= len(b)
s.shutdown(socket.SHUT_WR)
s.recv(1)  # the receiver closes once it has read everything
print(sys.argv[2], h.hexdigest(), flush=True)
)";

bool ParseSum(const std::string& out, uint64_t* bytes, std::string* sha) {
  std::vector<std::string> f = absl::StrSplit(absl::StripAsciiWhitespace(out), ' ', absl::SkipWhitespace());
  if (f.size() != 2 || !absl::SimpleAtoi(f[0], bytes)) return false;
  *sha = f[1];
  return true;
}

}  // namespace

std::unique_ptr<Cluster> StartClusterForTest(ClusterOptions options) {
  // Bazel's timeout sends SIGTERM first: give up waiting and clean up, then fail.
  Cluster::InstallSignalHandlers();
  options.name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  absl::StatusOr<std::unique_ptr<Cluster>> c = Cluster::Start(std::move(options));
  if (!c.ok()) {
    ADD_FAILURE() << "cluster did not start: " << c.status();
    return nullptr;
  }
  return std::move(*c);
}

std::string Transfer::ToString() const {
  return absl::StrCat("sent ", sent_bytes, " bytes sha256 ", sent_sha256, ", received ", received_bytes,
                      " bytes sha256 ", received_sha256);
}

absl::StatusOr<Transfer> TcpTransfer(Cluster& c, const Container& from, const Container& to, uint64_t bytes) {
  absl::StatusOr<ExecResult> received = absl::InternalError("receiver did not run");
  std::thread receiver([&] { received = c.Exec(to.ns, {"python3", "-c", kReceiver}, absl::Seconds(90)); });
  absl::StatusOr<ExecResult> sent =
      c.Exec(from.ns, {"python3", "-c", kSender, to.ip, absl::StrCat(bytes)}, absl::Seconds(80));
  receiver.join();
  if (!sent.ok()) return sent.status();
  if (sent->exit_code != 0) return absl::InternalError(absl::StrCat("sender: ", sent->ToString()));
  if (!received.ok()) return received.status();
  if (received->exit_code != 0) return absl::InternalError(absl::StrCat("receiver: ", received->ToString()));
  Transfer t;
  if (!ParseSum(sent->out, &t.sent_bytes, &t.sent_sha256)) {
    return absl::InternalError(absl::StrCat("sender printed: ", sent->out));
  }
  if (!ParseSum(received->out, &t.received_bytes, &t.received_sha256)) {
    return absl::InternalError(absl::StrCat("receiver printed: ", received->out));
  }
  return t;
}

absl::StatusOr<std::string> AgentMetrics(Cluster& c, int host) {
  return c.Sh(c.host(host).ns, absl::StrCat("curl -sf http://127.0.0.1:", Cluster::kAgentMetricsPort, "/metrics"));
}

double Sample(const std::string& page, absl::string_view series) {
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::ConsumePrefix(&line, series) || !absl::ConsumePrefix(&line, " ")) continue;
    double v = 0;
    if (absl::SimpleAtod(line, &v)) return v;
  }
  return -1;
}

absl::Status AllCrossHostPings(Cluster& c) {
  for (const Container* from : c.containers()) {
    for (const Container* to : c.containers()) {
      if (from->host == to->host) continue;
      if (!from->ip.empty() && !to->ip.empty()) {  // not in an IPv6-only network
        if (absl::Status s = c.Ping(*from, to->ip, 2); !s.ok()) return s;
      }
      if (from->ipv6.empty() || to->ipv6.empty()) continue;
      if (absl::Status s = c.Ping(*from, to->ipv6, 2); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<Cluster> StartConverged(ClusterOptions options, absl::Duration converge) {
  std::unique_ptr<Cluster> c = StartClusterForTest(std::move(options));
  if (c == nullptr) return nullptr;
  if (absl::Status s = Cluster::WaitForOk([&] { return AllCrossHostPings(*c); }, converge); !s.ok()) {
    ADD_FAILURE() << "containers do not reach each other: " << s;
    return nullptr;
  }
  return c;
}

std::string MetricsDoc() {
  auto read = [](const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  const char* root = std::getenv("TEST_SRCDIR");
  char resolved[PATH_MAX];
  if (root == nullptr || realpath(absl::StrCat(root, "/weft/README.md").c_str(), resolved) == nullptr) {
    return read("docs/metrics.md");
  }
  const std::string dir(resolved);
  return read(dir.substr(0, dir.rfind('/')) + "/docs/metrics.md");
}

DocumentedFamilies ExpectMetricsMatchDocs(const std::string& page, const std::string& prefix) {
  DocumentedFamilies out;
  const std::string doc = MetricsDoc();
  EXPECT_TRUE(absl::StrContains(doc, "# Weft metrics")) << "docs/metrics.md not found";
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::ConsumePrefix(&line, "# TYPE ") || !absl::StartsWith(line, prefix)) continue;
    std::vector<std::string> name_type = absl::StrSplit(line, ' ');
    if (name_type.size() != 2) {
      ADD_FAILURE() << "bad TYPE line: " << line;
      continue;
    }
    EXPECT_TRUE(absl::StrContains(doc, absl::StrCat("| `", name_type[0], "` | ", name_type[1], " |")))
        << name_type[0] << " (" << name_type[1] << ") has no row in docs/metrics.md";
    ++out.exported;
  }
  for (absl::string_view line : absl::StrSplit(doc, '\n')) {
    if (!absl::ConsumePrefix(&line, "| `") || !absl::StartsWith(line, prefix)) continue;
    ++out.documented;
    const std::string name(line.substr(0, line.find('`')));
    EXPECT_TRUE(absl::StrContains(page, absl::StrCat("# TYPE ", name, " "))) << name << " is documented, not exported";
  }
  return out;
}

}  // namespace weft::testing
