#include "agent/netlink/socket.h"

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/status_macros.h"

namespace weft::netlink {
namespace {

// Per sendmsg: the kernel refuses a message larger than the send buffer, and it
// queues one acknowledgement skb (about 1 KiB of receive-buffer accounting, even
// capped) per request before we read any, so both limits bound a chunk.
constexpr size_t kMaxChunkBytes = 256 * 1024;
constexpr size_t kMaxChunkRequests = 1024;
constexpr int kSendBufferBytes = 1 << 20;
constexpr int kReceiveBufferBytes = 8 << 20;
constexpr size_t kReceiveBufferBytesUser = 64 * 1024;  // > a dump skb (32 KiB)

std::string ErrnoText(int error) {
  char buf[128];
  // GNU strerror_r returns the message, maybe not in buf.
  return strerror_r(error, buf, sizeof(buf));
}

void SetBuffer(int fd, int force_opt, int opt, int bytes) {
  // The *FORCE variants ignore net.core.[rw]mem_max but need CAP_NET_ADMIN; the
  // plain ones are capped by the sysctl. Both are best effort.
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof(bytes)) != 0) {
    setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes));
  }
}

// libmnl's mnl_attr_for_each* macros are C (void* conversions); this is the same walk.
template <typename F>
void ForEachAttr(const void* payload, size_t len, F&& f) {
  const auto* attr = static_cast<const nlattr*>(payload);
  int remaining = static_cast<int>(len);
  while (mnl_attr_ok(attr, remaining)) {
    f(attr);
    remaining -= static_cast<int>(MNL_ALIGN(attr->nla_len));
    attr = mnl_attr_next(attr);
  }
}

}  // namespace

// ---- RequestBatch ----

nlmsghdr* RequestBatch::Begin(uint16_t type, uint16_t flags) {
  if (open_) Seal();
  const size_t need_words = (used_ + kMaxRequestSize) / sizeof(uint32_t) + 1;
  if (buf_.size() < need_words) buf_.resize(std::max(need_words, buf_.size() * 2));
  // No need to clear the space: libmnl zeroes the headers it puts and the
  // padding after each attribute.
  nlmsghdr* nlh = mnl_nlmsg_put_header(bytes() + used_);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  offsets_.push_back(used_);
  open_ = true;
  return nlh;
}

void RequestBatch::Seal() {
  if (!open_) return;
  const nlmsghdr* nlh = At(offsets_.size() - 1);
  WEFT_CHECK(nlh->nlmsg_len <= kMaxRequestSize, "netlink request larger than kMaxRequestSize");
  used_ += NLMSG_ALIGN(nlh->nlmsg_len);
  open_ = false;
}

void RequestBatch::Clear() {
  used_ = 0;
  offsets_.clear();
  open_ = false;
}

// ---- Attrs ----

Attrs Attrs::Of(const nlmsghdr* nlh, size_t header_len) {
  Attrs a;
  const char* payload = static_cast<const char*>(mnl_nlmsg_get_payload_offset(nlh, header_len));
  const char* end = reinterpret_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  if (payload >= end) return a;
  ForEachAttr(payload, end - payload, [&a](const nlattr* attr) {
    const uint16_t type = mnl_attr_get_type(attr);
    if (type <= kMaxType) a.table_[type] = attr;
  });
  return a;
}

Attrs Attrs::Nested(const nlattr* nest) {
  Attrs a;
  ForEachAttr(mnl_attr_get_payload(nest), mnl_attr_get_payload_len(nest), [&a](const nlattr* attr) {
    const uint16_t type = mnl_attr_get_type(attr);
    if (type <= kMaxType) a.table_[type] = attr;
  });
  return a;
}

bool Attrs::CopyExact(uint16_t type, void* out, size_t n) const {
  const nlattr* attr = Get(type);
  if (attr == nullptr || mnl_attr_get_payload_len(attr) != n) return false;
  std::memcpy(out, mnl_attr_get_payload(attr), n);
  return true;
}

std::optional<uint8_t> Attrs::U8(uint16_t type) const {
  uint8_t v;
  if (!CopyExact(type, &v, sizeof(v))) return std::nullopt;
  return v;
}
std::optional<uint16_t> Attrs::U16(uint16_t type) const {
  uint16_t v;
  if (!CopyExact(type, &v, sizeof(v))) return std::nullopt;
  return v;
}
std::optional<uint32_t> Attrs::U32(uint16_t type) const {
  uint32_t v;
  if (!CopyExact(type, &v, sizeof(v))) return std::nullopt;
  return v;
}
std::optional<std::string> Attrs::Str(uint16_t type) const {
  const nlattr* attr = Get(type);
  if (attr == nullptr) return std::nullopt;
  const char* p = static_cast<const char*>(mnl_attr_get_payload(attr));
  return std::string(p, strnlen(p, mnl_attr_get_payload_len(attr)));
}

// ---- errors ----

std::string RequestError::ToString() const {
  std::string s = ErrnoText(error);
  if (!kernel_message.empty()) absl::StrAppend(&s, " (kernel: ", kernel_message, ")");
  return s;
}

absl::Status ErrnoToStatus(int error, absl::string_view message) {
  switch (error) {
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case ENOENT:
    case ESRCH:
    case ENODEV:
      return absl::NotFoundError(message);
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(message);
    case EINVAL:
    case ERANGE:
      return absl::InvalidArgumentError(message);
    case ENOBUFS:
    case ENOMEM:
      return absl::ResourceExhaustedError(message);
    case EOPNOTSUPP:
      return absl::UnimplementedError(message);
    default:
      return absl::InternalError(message);
  }
}

// ---- NetlinkSocket ----

NetlinkSocket::NetlinkSocket(mnl_socket* nl)
    : nl_(nl),
      next_seq_(static_cast<uint32_t>(time(nullptr))),
      recv_buf_(kReceiveBufferBytesUser / sizeof(uint32_t)) {}

NetlinkSocket::~NetlinkSocket() { mnl_socket_close(nl_); }

absl::StatusOr<std::unique_ptr<NetlinkSocket>> NetlinkSocket::Open(int bus) {
  mnl_socket* nl = mnl_socket_open2(bus, SOCK_CLOEXEC);
  if (nl == nullptr) {
    return ErrnoToStatus(errno, absl::StrCat("netlink socket: ", ErrnoText(errno)));
  }
  std::unique_ptr<NetlinkSocket> sock(new NetlinkSocket(nl));
  const int fd = mnl_socket_get_fd(nl);
  int one = 1;
  // Extended acks carry the kernel's reason; capped acks do not echo the request
  // back, which keeps 30,000 acknowledgements small.
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  SetBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, kSendBufferBytes);
  SetBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, kReceiveBufferBytes);
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    return ErrnoToStatus(errno, absl::StrCat("netlink bind: ", ErrnoText(errno)));
  }
  return sock;
}

absl::StatusOr<size_t> NetlinkSocket::Receive() {
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(nl_, recv_buf_.data(), recv_buf_.size() * sizeof(uint32_t));
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    // ENOBUFS: the kernel dropped messages for us (receive buffer overrun).
    return ErrnoToStatus(errno, absl::StrCat("netlink receive: ", ErrnoText(errno)));
  }
}

absl::StatusOr<std::vector<std::optional<RequestError>>> NetlinkSocket::Send(RequestBatch& batch) {
  batch.Seal();
  std::vector<std::optional<RequestError>> results(batch.size());
  size_t begin = 0;
  while (begin < batch.size()) {
    size_t end = begin;
    const size_t start_offset = batch.offsets_[begin];
    while (end < batch.size() && end - begin < kMaxChunkRequests) {
      const size_t next_end_offset =
          end + 1 < batch.size() ? batch.offsets_[end + 1] : batch.used_;
      if (end > begin && next_end_offset - start_offset > kMaxChunkBytes) break;
      ++end;
    }
    if (absl::Status s = SendChunk(batch, begin, end, &results); !s.ok()) return s;
    begin = end;
  }
  return results;
}

absl::Status NetlinkSocket::SendChunk(RequestBatch& batch, size_t begin, size_t end,
                                      std::vector<std::optional<RequestError>>* results) {
  const uint32_t base_seq = next_seq_;
  next_seq_ += static_cast<uint32_t>(end - begin);
  for (size_t i = begin; i < end; ++i) {
    nlmsghdr* nlh = batch.MutableAt(i);
    nlh->nlmsg_flags |= NLM_F_ACK;
    nlh->nlmsg_seq = base_seq + static_cast<uint32_t>(i - begin);
    nlh->nlmsg_pid = 0;
  }
  const size_t start = batch.offsets_[begin];
  const size_t stop = end < batch.size() ? batch.offsets_[end] : batch.used_;
  const char* data = batch.bytes() + start;
  for (;;) {
    if (mnl_socket_sendto(nl_, data, stop - start) >= 0) break;
    if (errno == EINTR) continue;
    return ErrnoToStatus(errno, absl::StrCat("netlink send of ", end - begin,
                                             " requests: ", ErrnoText(errno)));
  }

  size_t acked = 0;
  const size_t want = end - begin;
  while (acked < want) {
    absl::StatusOr<size_t> n = Receive();
    if (!n.ok()) return n.status();
    int remaining = static_cast<int>(*n);
    const nlmsghdr* nlh = reinterpret_cast<const nlmsghdr*>(recv_buf_.data());
    for (; mnl_nlmsg_ok(nlh, remaining); nlh = mnl_nlmsg_next(nlh, &remaining)) {
      if (nlh->nlmsg_type != NLMSG_ERROR) continue;
      const uint32_t rel = nlh->nlmsg_seq - base_seq;
      if (rel >= want) continue;  // a stale answer from an earlier, failed exchange
      const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      ++acked;
      if (err->error == 0) continue;
      RequestError re;
      re.error = -err->error;
      if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
        size_t off = sizeof(nlmsgerr);
        if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) off += err->msg.nlmsg_len - sizeof(nlmsghdr);
        const size_t payload_len = mnl_nlmsg_get_payload_len(nlh);
        if (off < payload_len) {
          const char* tlvs = reinterpret_cast<const char*>(err) + NLMSG_ALIGN(off);
          const size_t tlv_len = payload_len - NLMSG_ALIGN(off);
          ForEachAttr(tlvs, tlv_len, [&re](const nlattr* attr) {
            if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG) {
              const char* m = static_cast<const char*>(mnl_attr_get_payload(attr));
              re.kernel_message.assign(m, strnlen(m, mnl_attr_get_payload_len(attr)));
            }
          });
        }
      }
      (*results)[begin + rel] = std::move(re);
    }
  }
  return absl::OkStatus();
}

absl::Status NetlinkSocket::Exchange(
    nlmsghdr* request, absl::string_view what,
    const std::function<absl::StatusOr<bool>(const nlmsghdr*)>& on_answer) {
  const uint32_t seq = next_seq_++;
  request->nlmsg_flags |= NLM_F_REQUEST;
  request->nlmsg_seq = seq;
  request->nlmsg_pid = 0;
  if (mnl_socket_sendto(nl_, request, request->nlmsg_len) < 0) {
    return ErrnoToStatus(errno, absl::StrCat(what, ": ", ErrnoText(errno)));
  }
  for (;;) {
    absl::StatusOr<size_t> n = Receive();
    if (!n.ok()) return n.status();
    int remaining = static_cast<int>(*n);
    const nlmsghdr* nlh = reinterpret_cast<const nlmsghdr*>(recv_buf_.data());
    for (; mnl_nlmsg_ok(nlh, remaining); nlh = mnl_nlmsg_next(nlh, &remaining)) {
      if (nlh->nlmsg_seq != seq || nlh->nlmsg_type == NLMSG_NOOP) continue;
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        const int error = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh))->error;
        if (error != 0) return ErrnoToStatus(-error, absl::StrCat(what, ": ", ErrnoText(-error)));
      }
      absl::StatusOr<bool> finished = on_answer(nlh);
      if (!finished.ok()) return finished.status();
      if (*finished) return absl::OkStatus();
    }
  }
}

absl::Status NetlinkSocket::Dump(nlmsghdr* request,
                                 const std::function<void(const nlmsghdr*)>& on_message) {
  request->nlmsg_flags |= NLM_F_DUMP;
  bool interrupted = false;
  RETURN_IF_ERROR(Exchange(request, "netlink dump", [&](const nlmsghdr* nlh) -> absl::StatusOr<bool> {
    if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
    if (nlh->nlmsg_type == NLMSG_ERROR) return false;  // an ack: more may follow
    if (nlh->nlmsg_type != NLMSG_DONE) {
      on_message(nlh);
      return false;
    }
    if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
      const int error = *static_cast<const int*>(mnl_nlmsg_get_payload(nlh));
      if (error < 0) return ErrnoToStatus(-error, absl::StrCat("netlink dump: ", ErrnoText(-error)));
    }
    return true;
  }));
  if (interrupted) return absl::AbortedError("netlink dump interrupted by a concurrent change");
  return absl::OkStatus();
}

absl::Status NetlinkSocket::DumpWithRetry(nlmsghdr* request, const std::function<void()>& reset,
                                          const std::function<void(const nlmsghdr*)>& on_message,
                                          int attempts) {
  absl::Status s;
  for (int i = 0; i < attempts; ++i) {
    reset();
    s = Dump(request, on_message);
    if (!absl::IsAborted(s)) return s;
  }
  return s;
}

absl::Status NetlinkSocket::Get(nlmsghdr* request,
                                const std::function<void(const nlmsghdr*)>& on_message) {
  return Exchange(request, "netlink request", [&](const nlmsghdr* nlh) -> absl::StatusOr<bool> {
    if (nlh->nlmsg_type != NLMSG_ERROR) on_message(nlh);  // else a bare ack
    return true;
  });
}

}  // namespace weft::netlink
