#include "storage/etcd/etcd_flags.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/log.h"

ABSL_FLAG(std::string, etcd_endpoints, "",
          "etcd client endpoints for --store=etcd, comma-separated: host:port, http://host:port or "
          "https://host:port (https: TLS; schemes may not be mixed).");
ABSL_FLAG(std::string, etcd_cafile, "",
          "PEM CA certificates to verify etcd's server certificate; setting it turns TLS on.");
ABSL_FLAG(std::string, etcd_certfile, "", "PEM client certificate presented to etcd (with --etcd-keyfile).");
ABSL_FLAG(std::string, etcd_keyfile, "", "PEM private key of --etcd-certfile.");
ABSL_FLAG(std::string, etcd_username, "", "etcd user to log in as (etcd's own auth); empty: no login.");
ABSL_FLAG(std::string, etcd_password, "",
          "Password of --etcd-username (flannel's flag; visible in the process list: prefer "
          "--etcd-password-file or WEFT_ETCD_PASSWORD).");
ABSL_FLAG(std::string, etcd_password_file, "",
          "File holding the password of --etcd-username (one trailing newline is ignored).");

namespace weft::storage {
namespace {

// The file's contents, or INVALID_ARGUMENT naming the flag and the path.
absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, " \"", path, "\": cannot read: ", std::strerror(errno)));
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

absl::StatusOr<EtcdStore::Options> EtcdOptionsFromFlags() {
  EtcdStore::Options o;
  o.endpoints = absl::StrSplit(absl::GetFlag(FLAGS_etcd_endpoints), ',', absl::SkipWhitespace());
  if (o.endpoints.empty()) return absl::InvalidArgumentError("--store=etcd needs --etcd-endpoints");
  o.ca_file = absl::GetFlag(FLAGS_etcd_cafile);
  o.cert_file = absl::GetFlag(FLAGS_etcd_certfile);
  o.key_file = absl::GetFlag(FLAGS_etcd_keyfile);
  // Checked here so that the error names the flag; the store reads them again.
  for (const auto& [flag, path] : {std::pair<const char*, const std::string*>{"etcd-cafile", &o.ca_file},
                                   {"etcd-certfile", &o.cert_file},
                                   {"etcd-keyfile", &o.key_file}}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> contents = ReadFlagFile(flag, *path);
    if (!contents.ok()) return contents.status();
  }
  o.username = absl::GetFlag(FLAGS_etcd_username);
  o.password = absl::GetFlag(FLAGS_etcd_password);
  const std::string password_file = absl::GetFlag(FLAGS_etcd_password_file);
  if (!password_file.empty()) {
    if (!o.password.empty()) {
      return absl::InvalidArgumentError("give --etcd-password or --etcd-password-file, not both");
    }
    absl::StatusOr<std::string> p = ReadFlagFile("etcd-password-file", password_file);
    if (!p.ok()) return p.status();
    struct stat st;
    if (stat(password_file.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
      WEFT_LOG(WARNING, "--etcd-password-file is readable by other users; chmod 600 it")
          .With("path", password_file);
    }
    absl::string_view v = *p;
    if (!absl::ConsumeSuffix(&v, "\r\n")) absl::ConsumeSuffix(&v, "\n");
    o.password = std::string(v);
  }
  if (o.username.empty() && !o.password.empty()) {
    return absl::InvalidArgumentError("an etcd password is given without --etcd-username");
  }
  return o;
}

}  // namespace weft::storage
