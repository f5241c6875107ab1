#include "tests/integration/test_certs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "tests/integration/process.h"

namespace weft::testing {
namespace {

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::string Quote(const std::string& s) { return absl::StrCat("'", s, "'"); }  // paths and SANs hold no quote

}  // namespace

absl::Status TestCerts::Run(const std::string& args) const {
  const std::string cmd = absl::StrCat(Quote(script_), " --dir ", Quote(dir_), " ", args, " 2>&1 >/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return absl::InternalError(absl::StrCat("cannot run ", cmd));
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  if (pclose(p) != 0) return absl::InternalError(absl::StrCat(cmd, " failed: ", out));
  return absl::OkStatus();
}

absl::StatusOr<TestCerts> TestCerts::Make(const std::string& dir, const std::string& sans) {
  TestCerts c;
  c.dir_ = dir;
  c.script_ = Runfile("tools/certs.sh");
  if (!Exists(c.script_)) c.script_ = "tools/certs.sh";
  if (!Exists(c.script_)) return absl::NotFoundError("tools/certs.sh not found (runfile or working directory)");
  if (!Exists(c.ca_file())) {
    if (absl::Status s = c.Run("ca"); !s.ok()) return s;
  }
  if (!Exists(dir + "/controller.crt")) {
    if (absl::Status s = c.Run(absl::StrCat("server controller ", Quote(sans))); !s.ok()) return s;
  }
  if (!Exists(dir + "/admin.crt")) {
    if (absl::Status s = c.Run("admin"); !s.ok()) return s;
  }
  return c;
}

absl::Status TestCerts::AddNode(const std::string& name) const {
  if (Exists(absl::StrCat(dir_, "/node-", name, ".crt"))) return absl::OkStatus();
  return Run(absl::StrCat("node ", Quote(name)));
}

std::vector<std::string> TestCerts::ControllerFlags() const {
  return {"--tls-cert-file", dir_ + "/controller.crt", "--tls-key-file", dir_ + "/controller.key",
          "--tls-client-ca-file", ca_file()};
}

TlsClientFiles TestCerts::Admin() const { return {ca_file(), dir_ + "/admin.crt", dir_ + "/admin.key"}; }

TlsClientFiles TestCerts::Node(const std::string& name) const {
  return {ca_file(), absl::StrCat(dir_, "/node-", name, ".crt"), absl::StrCat(dir_, "/node-", name, ".key")};
}

std::vector<std::string> TestCerts::AgentFlags(const std::string& node_name) const {
  if (absl::Status s = AddNode(node_name); !s.ok()) {
    std::fprintf(stderr, "test_certs: %s\n", std::string(s.message()).c_str());
    return {};
  }
  TlsClientFiles f = Node(node_name);
  return {"--controller-ca-file", f.ca_file, "--controller-cert-file", f.cert_file, "--controller-key-file",
          f.key_file};
}

std::vector<std::string> TestCerts::WeftctlFlags() const {
  TlsClientFiles f = Admin();
  return {"--ca-file", f.ca_file, "--cert-file", f.cert_file, "--key-file", f.key_file};
}

}  // namespace weft::testing
