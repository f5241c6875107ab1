#pragma once
// A small rtnetlink client over libmnl: batched requests with one acknowledgement
// per message, dumps, and single get requests.
//
// A NetlinkSocket belongs to the network namespace of the thread that opened it,
// for its whole life (the kernel binds a socket to its namespace at creation), so
// a socket opened inside a namespace keeps working there from any thread.
// Not thread-safe: one caller at a time.

#include <linux/netlink.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct mnl_socket;

namespace weft::netlink {

// Requests laid back to back in one buffer, so a batch goes to the kernel in a few
// sendmsg calls without copying. Build each request with Begin() and then the
// mnl_nlmsg_put_extra_header / mnl_attr_put* functions on the returned header; the
// header stays valid until the next Begin(). A request may use at most
// kMaxRequestSize bytes (more is a programming error and aborts).
class RequestBatch {
 public:
  static constexpr size_t kMaxRequestSize = 1024;

  nlmsghdr* Begin(uint16_t type, uint16_t flags);
  size_t size() const { return offsets_.size(); }
  bool empty() const { return offsets_.empty(); }
  void Clear();

 private:
  friend class NetlinkSocket;
  void Seal();  // closes the request being built
  const char* bytes() const { return reinterpret_cast<const char*>(buf_.data()); }
  char* bytes() { return reinterpret_cast<char*>(buf_.data()); }
  const nlmsghdr* At(size_t i) const {
    return reinterpret_cast<const nlmsghdr*>(bytes() + offsets_[i]);
  }
  nlmsghdr* MutableAt(size_t i) { return reinterpret_cast<nlmsghdr*>(bytes() + offsets_[i]); }

  std::vector<uint32_t> buf_;  // uint32_t: netlink wants 4-byte alignment
  size_t used_ = 0;            // bytes
  std::vector<size_t> offsets_;
  bool open_ = false;
};

// Attributes of one message or nest, indexed by type (a later duplicate wins).
// Getters return nullopt when the attribute is absent or has the wrong size.
class Attrs {
 public:
  static constexpr uint16_t kMaxType = 127;
  // Attributes after the family header of `header_len` bytes.
  static Attrs Of(const nlmsghdr* nlh, size_t header_len);
  static Attrs Nested(const nlattr* nest);

  const nlattr* Get(uint16_t type) const { return type <= kMaxType ? table_[type] : nullptr; }
  bool Has(uint16_t type) const { return Get(type) != nullptr; }
  std::optional<uint8_t> U8(uint16_t type) const;
  std::optional<uint16_t> U16(uint16_t type) const;
  std::optional<uint32_t> U32(uint16_t type) const;
  std::optional<std::string> Str(uint16_t type) const;
  // Copies exactly N payload bytes.
  template <size_t N>
  std::optional<std::array<uint8_t, N>> Bytes(uint16_t type) const {
    std::array<uint8_t, N> out;
    if (!CopyExact(type, out.data(), N)) return std::nullopt;
    return out;
  }

 private:
  bool CopyExact(uint16_t type, void* out, size_t n) const;
  std::array<const nlattr*, kMaxType + 1> table_{};
};

// The error the kernel answered to one request: errno plus, when the kernel gave
// one, its extended-ack message ("Nexthop has invalid gateway").
struct RequestError {
  int error = 0;  // positive errno
  std::string kernel_message;
  std::string ToString() const;  // "File exists (kernel: ...)"
};

// An errno as an absl status code with `message`: EEXIST -> ALREADY_EXISTS,
// ENOENT/ESRCH/ENODEV -> NOT_FOUND, EPERM/EACCES -> PERMISSION_DENIED, EINVAL/ERANGE
// -> INVALID_ARGUMENT, ENOBUFS/ENOMEM -> RESOURCE_EXHAUSTED, EOPNOTSUPP ->
// UNIMPLEMENTED, others -> INTERNAL.
absl::Status ErrnoToStatus(int error, absl::string_view message);

class NetlinkSocket {
 public:
  // Opens a NETLINK_ROUTE socket (or `bus`: NETLINK_GENERIC for generic netlink
  // families such as WireGuard's) in the calling thread's network namespace,
  // with extended acks and capped acks, and buffers large enough for big batches.
  static absl::StatusOr<std::unique_ptr<NetlinkSocket>> Open(int bus = NETLINK_ROUTE);
  ~NetlinkSocket();
  NetlinkSocket(const NetlinkSocket&) = delete;
  NetlinkSocket& operator=(const NetlinkSocket&) = delete;

  // Sends every request of `batch` (NLM_F_ACK is set on each; several requests
  // per sendmsg) and waits for every acknowledgement. Returns one entry per
  // request, in order: nullopt when it succeeded, else the kernel's error. The
  // kernel goes on with the next request after a failed one. A non-OK status means
  // the socket itself failed (acknowledgements may be lost, the outcome of the
  // unacknowledged requests is unknown).
  absl::StatusOr<std::vector<std::optional<RequestError>>> Send(RequestBatch& batch);

  // Runs a dump request (NLM_F_DUMP | NLM_F_REQUEST are set) and calls `on_message`
  // for every answer. ABORTED when the kernel reports the dump was interrupted by a
  // concurrent change (NLM_F_DUMP_INTR): the caller should discard and retry (see
  // DumpWithRetry).
  absl::Status Dump(nlmsghdr* request, const std::function<void(const nlmsghdr*)>& on_message);
  // Dump, restarted up to `attempts` times while interrupted; `reset` is called
  // before each attempt so the caller can drop partial results.
  absl::Status DumpWithRetry(nlmsghdr* request, const std::function<void()>& reset,
                             const std::function<void(const nlmsghdr*)>& on_message,
                             int attempts = 5);

  // Sends one request that the kernel answers with one message (RTM_GETLINK by
  // name or index...) and calls `on_message` with it. Kernel errors come back as a
  // status from ErrnoToStatus (e.g. NOT_FOUND for ENODEV).
  absl::Status Get(nlmsghdr* request, const std::function<void(const nlmsghdr*)>& on_message);

 private:
  explicit NetlinkSocket(mnl_socket* nl);
  absl::Status SendChunk(RequestBatch& batch, size_t begin, size_t end,
                         std::vector<std::optional<RequestError>>* results);
  absl::StatusOr<size_t> Receive();  // into recv_buf_
  // Sends one request and passes each answer carrying its sequence number to
  // `on_answer` until it returns true (finished) or an error. An NLMSG_ERROR answer
  // with an error ends the exchange with that error (prefixed with `what`).
  absl::Status Exchange(nlmsghdr* request, absl::string_view what,
                        const std::function<absl::StatusOr<bool>(const nlmsghdr*)>& on_answer);

  mnl_socket* nl_;
  uint32_t next_seq_;
  std::vector<uint32_t> recv_buf_;
};

}  // namespace weft::netlink
