// weft-agent's resident memory depends on what it loads at start-up (see
// agent/BUILD.bazel and docs/benchmarks.md, "Agent resident memory"): gRPC,
// protobuf and Abseil are linked in from static archives, libcurl is loaded
// only when a cloud backend needs it. OpenSSL (gRPC's TLS) stays shared: cpp-httplib
// loads it anyway, and one copy is cheaper than two. A new dependency that names a shared
// gRPC/protobuf/Abseil again, or a libcurl function curl_on_demand.cc does not
// define, would silently bring them back; this test reads the binary's
// DT_NEEDED entries and fails then.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace {

std::vector<std::string> Needed(const std::string& binary) {
  std::vector<std::string> out;
  FILE* p = popen(("readelf -d '" + binary + "'").c_str(), "r");
  if (p == nullptr) return out;
  char line[512];
  while (std::fgets(line, sizeof(line), p)) {
    std::string l = line;
    size_t open = l.find("(NEEDED)");
    size_t lb = l.find('[');
    size_t rb = l.find(']');
    if (open != std::string::npos && lb != std::string::npos && rb > lb) out.push_back(l.substr(lb + 1, rb - lb - 1));
  }
  pclose(p);
  return out;
}

TEST(WeftAgentLinkTest, StartsWithoutSharedGrpcProtobufAbseilOrLibcurl) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  ASSERT_NE(srcdir, nullptr);
  std::vector<std::string> needed = Needed(std::string(srcdir) + "/weft/agent/weft-agent");
  ASSERT_FALSE(needed.empty()) << "readelf found no NEEDED entries";
  bool libc = false;
  for (const std::string& lib : needed) {
    libc = libc || lib == "libc.so.6";
    for (const char* banned : {"libgrpc", "libgpr", "libprotobuf", "libabsl_", "libupb", "libcurl"}) {
      EXPECT_NE(lib.rfind(banned, 0), 0u) << lib << " is needed at start-up";
    }
  }
  EXPECT_TRUE(libc);
}

}  // namespace
