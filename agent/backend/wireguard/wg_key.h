#pragma once
// Curve25519 keys for the WireGuard backend: generation, the public half, and
// the private key file the agent keeps across restarts.

#include <string>

#include "absl/status/statusor.h"
#include "agent/backend/wireguard/wg_types.h"

namespace weft::agent::wg {

// A fresh private key: 32 random bytes from the OS, clamped as Curve25519 wants.
absl::StatusOr<Key> GeneratePrivateKey();

// The public key of `private_key` (X25519 of the base point, through OpenSSL).
absl::StatusOr<Key> PublicKeyOf(const Key& private_key);

// The private key in `path` (base64, one line, as `wg genkey` writes it), or,
// when the file does not exist, a new one written there atomically with mode
// 0600 (parent directories made 0700 when missing). A file that holds anything
// else, or that others may read (group/other bits), is FAILED_PRECONDITION
// naming the file: replacing it silently would change this node's identity,
// and a readable key is a leaked one.
absl::StatusOr<Key> LoadOrCreatePrivateKey(const std::string& path);

}  // namespace weft::agent::wg
