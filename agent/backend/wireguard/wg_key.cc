#include "agent/backend/wireguard/wg_key.h"

#include <openssl/evp.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"

namespace weft::agent::wg {

bool IsZero(const Key& k) {
  uint8_t acc = 0;
  for (uint8_t b : k) acc |= b;
  return acc == 0;
}

std::string ToBase64(const Key& k) {
  return absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
}

std::string ToHex(const Key& k) {
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
}

absl::StatusOr<Key> ParseBase64Key(absl::string_view s, absl::string_view what) {
  std::string raw;
  if (s.size() != 44 || !absl::Base64Unescape(s, &raw) || raw.size() != 32) {
    // Never quoted: it may be a secret (a preshared key, a private key file).
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a WireGuard key (base64 of 32 bytes, 44 characters; got ",
                                                   s.size(), " characters)"));
  }
  Key k;
  std::memcpy(k.data(), raw.data(), k.size());
  if (ToBase64(k) != s) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not canonical base64"));
  }
  return k;
}

absl::StatusOr<Key> ParseHexKey(absl::string_view s, absl::string_view what) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Key k{};
  bool ok = s.size() == 64;
  for (size_t i = 0; ok && i < 32; ++i) {
    const int hi = hex(s[2 * i]), lo = hex(s[2 * i + 1]);
    ok = hi >= 0 && lo >= 0;
    if (ok) k[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a key (64 hex digits; got ", s.size(), " characters)"));
  }
  return k;
}

absl::StatusOr<Key> GeneratePrivateKey() {
  Key k;
  size_t got = 0;
  while (got < k.size()) {
    const ssize_t n = getrandom(k.data() + got, k.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::InternalError(absl::StrCat("getrandom: ", std::strerror(errno)));
    got += static_cast<size_t>(n);
  }
  k[0] &= 248;
  k[31] = static_cast<uint8_t>((k[31] & 127) | 64);
  return k;
}

absl::StatusOr<Key> PublicKeyOf(const Key& private_key) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(), private_key.size()),
      &EVP_PKEY_free);
  Key pub{};
  size_t len = pub.size();
  if (pkey == nullptr || EVP_PKEY_get_raw_public_key(pkey.get(), pub.data(), &len) != 1 || len != pub.size()) {
    return absl::InternalError("OpenSSL cannot derive the X25519 public key");
  }
  return pub;
}

absl::StatusOr<Key> LoadOrCreatePrivateKey(const std::string& path) {
  ASSIGN_OR_RETURN(std::optional<std::string> text, ReadFileIfExists(path));
  if (text) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("WireGuard private key file ", path, " has mode ", absl::StrFormat("%04o", st.st_mode & 0777),
                       "; it must not be accessible to group or others: chmod 600 it"));
    }
    absl::StatusOr<Key> k = ParseBase64Key(absl::StripAsciiWhitespace(*text), "key");
    if (!k.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("WireGuard private key file ", path, " does not hold a key (", k.status().message(),
                       "); remove it to give this node a new key (peers then learn it from the lease)"));
    }
    return *k;
  }
  ASSIGN_OR_RETURN(Key k, GeneratePrivateKey());
  RETURN_IF_ERROR(WriteFileAtomically(path, absl::StrCat(ToBase64(k), "\n"), 0600, 0700));
  return k;
}

}  // namespace weft::agent::wg
