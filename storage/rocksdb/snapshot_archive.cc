#include "storage/rocksdb/snapshot_archive.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"

namespace weft::storage::snapshot_archive {

namespace {

constexpr absl::string_view kMagic = "WEFTSNAP";
constexpr uint32_t kVersion = 1;
constexpr size_t kChunk = 1 << 20;
constexpr size_t kShaSize = 32;
constexpr size_t kAlign = 512;

void PutBig(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool GetBig(absl::string_view* in, int bytes, uint64_t* v) {
  if (in->size() < static_cast<size_t>(bytes)) return false;
  *v = 0;
  for (int i = 0; i < bytes; ++i) *v = (*v << 8) | static_cast<unsigned char>((*in)[i]);
  in->remove_prefix(bytes);
  return true;
}

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status WriteFileSynced(const std::string& path, absl::string_view data) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("create", path);
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status s = ErrnoError("write", path);
      close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    absl::Status s = ErrnoError("fsync", path);
    close(fd);
    return s;
  }
  close(fd);
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", path);
  fsync(fd);
  close(fd);
  return absl::OkStatus();
}

bool ValidName(absl::string_view name) {
  return !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
         name.find('/') == absl::string_view::npos && name.find('\0') == absl::string_view::npos;
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::Update(absl::string_view data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}
std::string Sha256::Final() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out, &n);
  return std::string(reinterpret_cast<char*>(out), n);
}

absl::Status WriteArchive(const std::string& dir, const std::function<absl::Status(absl::string_view)>& sink) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.is_regular_file()) names.push_back(e.path().filename().string());
  }
  if (ec) return absl::UnavailableError(absl::StrCat("list ", dir, ": ", ec.message()));
  std::sort(names.begin(), names.end());
  uint64_t total = 0;
  auto emit = [&](absl::string_view piece) {
    total += piece.size();
    return sink(piece);
  };
  std::string head(kMagic);
  PutBig(&head, kVersion, 4);
  RETURN_IF_ERROR(emit(head));
  std::string buf;
  for (const std::string& name : names) {
    const std::string path = absl::StrCat(dir, "/", name);
    std::ifstream in(path, std::ios::binary);
    if (!in) return ErrnoError("open", path);
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("size of ", path, ": ", ec.message()));
    std::string entry;
    PutBig(&entry, name.size(), 4);
    entry += name;
    PutBig(&entry, size, 8);
    RETURN_IF_ERROR(emit(entry));
    uint64_t left = size;
    while (left > 0) {
      buf.resize(std::min<uint64_t>(left, kChunk));
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      if (in.gcount() != static_cast<std::streamsize>(buf.size())) {
        return absl::UnavailableError(absl::StrCat("short read of ", path));
      }
      RETURN_IF_ERROR(emit(buf));
      left -= buf.size();
    }
  }
  std::string tail;
  PutBig(&tail, 0, 4);
  PutBig(&tail, names.size(), 8);
  tail.append((kAlign - (total + tail.size()) % kAlign) % kAlign, '\0');
  return emit(tail);
}

absl::StatusOr<RestoreInfo> RestoreArchive(const std::string& file, const std::string& data_dir, bool force) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open snapshot ", file, ": ", std::strerror(errno)));
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("snapshot ", file, " is not a Weft store snapshot: ", why));
  };
  absl::string_view rest(data);
  uint64_t version = 0;
  if (rest.substr(0, kMagic.size()) != kMagic) {
    return bad("wrong magic (an etcd snapshot? those are restored with etcdctl snapshot restore into an etcd)");
  }
  rest.remove_prefix(kMagic.size());
  if (!GetBig(&rest, 4, &version) || version != kVersion) return bad("unknown version");
  struct Entry {
    std::string name;
    absl::string_view bytes;
  };
  std::vector<Entry> entries;
  while (true) {
    uint64_t name_len = 0;
    if (!GetBig(&rest, 4, &name_len)) return bad("truncated");
    if (name_len == 0) break;
    if (name_len > rest.size()) return bad("truncated file name");
    const std::string name(rest.substr(0, name_len));
    rest.remove_prefix(name_len);
    if (!ValidName(name)) return bad(absl::StrCat("bad file name '", name.substr(0, 64), "'"));
    uint64_t size = 0;
    if (!GetBig(&rest, 8, &size) || size > rest.size()) return bad(absl::StrCat("truncated file ", name));
    entries.push_back({name, rest.substr(0, size)});
    rest.remove_prefix(size);
  }
  uint64_t count = 0;
  if (!GetBig(&rest, 8, &count) || count != entries.size()) return bad("file count mismatch");
  RestoreInfo info;
  if (data.size() % kAlign == kShaSize) {
    Sha256 sha;
    sha.Update(absl::string_view(data).substr(0, data.size() - kShaSize));
    if (sha.Final() != rest.substr(rest.size() - std::min(rest.size(), kShaSize))) {
      return bad("SHA-256 mismatch: the file is damaged");
    }
    info.checksum_verified = true;
    rest.remove_suffix(std::min(rest.size(), kShaSize));
  } else if (data.size() % kAlign != 0) {
    return bad("truncated (size is not a multiple of 512, with or without a checksum)");
  }
  if (rest.size() >= kAlign || rest.find_first_not_of('\0') != absl::string_view::npos) {
    return bad("unexpected bytes after the end");
  }
  bool has_current = false;
  for (const Entry& e : entries) has_current = has_current || e.name == "CURRENT";
  if (!has_current) return bad("no CURRENT file");

  std::error_code ec;
  if (std::filesystem::exists(data_dir, ec) && !std::filesystem::is_empty(data_dir, ec)) {
    if (!force) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data dir ", data_dir, " is not empty: refusing to restore over it (move it away, or force the restore)"));
    }
    info.moved_aside = absl::StrCat(data_dir, ".before-restore-", absl::ToUnixSeconds(absl::Now()));
    std::filesystem::rename(data_dir, info.moved_aside, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("move ", data_dir, " aside: ", ec.message()));
  }
  const std::string staging = absl::StrCat(data_dir, ".restore-tmp");
  std::filesystem::remove_all(staging, ec);
  std::filesystem::create_directories(staging, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("create ", staging, ": ", ec.message()));
  for (const Entry& e : entries) {
    RETURN_IF_ERROR(WriteFileSynced(absl::StrCat(staging, "/", e.name), e.bytes));
    ++info.files;
    info.bytes += static_cast<int64_t>(e.bytes.size());
  }
  RETURN_IF_ERROR(SyncDir(staging));
  std::filesystem::remove(data_dir, ec);  // empty (or missing)
  std::filesystem::rename(staging, data_dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("move ", staging, " to ", data_dir, ": ", ec.message()));
  const std::string parent = std::filesystem::path(data_dir).parent_path().string();
  if (!parent.empty()) RETURN_IF_ERROR(SyncDir(parent));
  return info;
}

}  // namespace weft::storage::snapshot_archive
