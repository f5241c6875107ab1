#include "common/http_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/check.h"
#include "common/net.h"
#include "common/status_macros.h"
#include "common/thread_pool.h"

namespace weft {
namespace {

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string Serialize(const HttpResponse& r, bool keep_alive, bool head_only) {
  std::string out = absl::StrCat("HTTP/1.1 ", r.status, " ", Reason(r.status), "\r\nContent-Type: ", r.content_type,
                                 "\r\nContent-Length: ", r.body.size(),
                                 "\r\nConnection: ", keep_alive ? "keep-alive" : "close", "\r\n\r\n");
  if (!head_only) out += r.body;
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX and, in query strings, '+' for a space. A malformed escape stays as is.
std::string UrlDecode(absl::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
        HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// A parsed request head: what the server acts on.
struct ParsedHead {
  bool ok = false;
  bool keep_alive = false;
  bool head_only = false;
  int error_status = 400;
  HttpRequest request;
};

// Parses "METHOD target HTTP/1.x\r\nheaders\r\n\r\n" (the head only, without
// the blank line's terminator requirement checked by the caller).
ParsedHead ParseHead(absl::string_view head) {
  ParsedHead p;
  std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
  if (lines.empty()) return p;
  std::vector<absl::string_view> parts = absl::StrSplit(lines[0], ' ');
  if (parts.size() != 3 || parts[1].empty() || !absl::StartsWith(parts[2], "HTTP/1.")) return p;
  const absl::string_view method = parts[0];
  if (method != "GET" && method != "HEAD") {
    p.error_status = 405;
    return p;
  }
  p.head_only = method == "HEAD";
  p.keep_alive = parts[2] == "HTTP/1.1";
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) continue;
    const absl::string_view name = absl::StripAsciiWhitespace(lines[i].substr(0, colon));
    const absl::string_view value = absl::StripAsciiWhitespace(lines[i].substr(colon + 1));
    if (absl::EqualsIgnoreCase(name, "connection")) {
      if (absl::EqualsIgnoreCase(value, "close")) p.keep_alive = false;
      if (absl::EqualsIgnoreCase(value, "keep-alive")) p.keep_alive = true;
    } else if (absl::EqualsIgnoreCase(name, "content-length") || absl::EqualsIgnoreCase(name, "transfer-encoding")) {
      // A GET with a body: not read, so the connection cannot be reused.
      if (value != "0") p.keep_alive = false;
    }
  }
  absl::string_view target = parts[1];
  const size_t q = target.find('?');
  p.request.path = UrlDecode(target.substr(0, q), /*plus_is_space=*/false);
  if (q != absl::string_view::npos) {
    for (absl::string_view kv : absl::StrSplit(target.substr(q + 1), '&', absl::SkipEmpty())) {
      const size_t eq = kv.find('=');
      p.request.params.emplace(UrlDecode(kv.substr(0, eq), true),
                               eq == absl::string_view::npos ? "" : UrlDecode(kv.substr(eq + 1), true));
    }
  }
  p.ok = true;
  return p;
}

}  // namespace

// The poll loop: owns the listening socket and every connection.
class HttpServer::Loop {
 public:
  Loop(HttpServer* server, int listen_fd)
      : server_(server), listen_fd_(listen_fd), wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
        workers_(server->options_.workers) {
    WEFT_CHECK(wake_fd_ >= 0, "eventfd failed");
  }
  ~Loop() {
    workers_.Stop();  // handlers reference the server: finish them first
    for (auto& c : conns_) close(c->fd);
    close(listen_fd_);
    close(wake_fd_);
  }

  void Run() {
    std::vector<pollfd> fds;
    std::vector<Conn*> polled;
    while (!stopping_.load()) {
      DrainCompletions();
      const absl::Time now = absl::Now();
      absl::Time next = now + absl::Seconds(1);
      fds.clear();
      polled.clear();
      fds.push_back({wake_fd_, POLLIN, 0});
      fds.push_back({listen_fd_, POLLIN, 0});
      for (auto it = conns_.begin(); it != conns_.end();) {
        Conn* c = it->get();
        if (c->state != Conn::kHandling && now >= c->deadline) {
          Close(it);  // too slow: read, write or idle timeout
          continue;
        }
        if (c->state != Conn::kHandling) {
          next = std::min(next, c->deadline);
          fds.push_back({c->fd, static_cast<short>(c->state == Conn::kWriting ? POLLOUT : POLLIN), 0});
          polled.push_back(c);
        }
        ++it;
      }
      const int timeout_ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(next - now) + 1));
      const int n = poll(fds.data(), fds.size(), timeout_ms);
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[0].revents != 0) {
        uint64_t v;
        while (read(wake_fd_, &v, sizeof(v)) > 0) {
        }
      }
      for (size_t i = 0; i < polled.size(); ++i) {
        if (fds[i + 2].revents == 0) continue;
        Conn* c = polled[i];
        if (c->state == Conn::kReading) OnReadable(c);
        else if (c->state == Conn::kWriting) OnWritable(c);
      }
      SweepClosed();
      if (fds[1].revents != 0) Accept();
    }
  }

  void RequestStop() {
    stopping_.store(true);
    Wake();
  }

 private:
  struct Conn {
    enum State { kReading, kHandling, kWriting, kClosed };
    int fd = -1;
    uint64_t id = 0;
    State state = kReading;
    absl::Time started;   // when the current request (or idle wait) began
    absl::Time deadline;  // of the current state
    bool keep_alive = false;
    bool eof = false;  // the peer sends no more
    std::string in;
    std::string out;
    size_t out_pos = 0;
  };
  struct Completion {
    uint64_t id;
    std::string bytes;
    bool keep_alive;
  };

  void Wake() {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }

  void Accept() {
    const HttpServer::Options& o = server_->options_;
    for (;;) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or out of descriptors: retried on the next poll
      if (static_cast<int>(conns_.size()) >= o.max_connections && !EvictOldestReader()) {
        close(fd);  // every slot is busy answering: the client retries
        continue;
      }
      int yes = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      c->id = ++next_id_;
      c->started = absl::Now();
      c->deadline = c->started + o.read_timeout;
      conns_.push_back(std::move(c));
    }
  }

  // At the connection cap, a newcomer takes the place of the connection that
  // has been sending its request (or idling) the longest.
  bool EvictOldestReader() {
    auto oldest = conns_.end();
    for (auto it = conns_.begin(); it != conns_.end(); ++it) {
      if ((*it)->state == Conn::kReading && (oldest == conns_.end() || (*it)->started < (*oldest)->started)) {
        oldest = it;
      }
    }
    if (oldest == conns_.end()) return false;
    Close(oldest);
    return true;
  }

  void Close(std::deque<std::unique_ptr<Conn>>::iterator& it) {
    close((*it)->fd);
    it = conns_.erase(it);
  }

  void SweepClosed() {
    for (auto it = conns_.begin(); it != conns_.end();) {
      if ((*it)->state == Conn::kClosed) {
        Close(it);
      } else {
        ++it;
      }
    }
  }

  void OnReadable(Conn* c) {
    char buf[4096];
    for (;;) {
      const ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
      if (n > 0) {
        c->in.append(buf, n);
        if (c->in.size() > server_->options_.max_request_bytes + 4) break;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        c->state = Conn::kClosed;  // reset
        return;
      }
      c->eof = true;  // half-closed: answer what was sent, then close
      break;
    }
    TryDispatch(c);
    if (c->state == Conn::kReading && c->eof) c->state = Conn::kClosed;
  }

  void TryDispatch(Conn* c) {
    const HttpServer::Options& o = server_->options_;
    const size_t end = c->in.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c->in.size() > o.max_request_bytes) {
        StartWrite(c, Serialize(HttpResponse{431, "text/plain; charset=utf-8", "request head too large\n"}, false,
                                false),
                   false);
      }
      return;
    }
    if (end + 4 > o.max_request_bytes) {
      StartWrite(c, Serialize(HttpResponse{431, "text/plain; charset=utf-8", "request head too large\n"}, false, false),
                 false);
      return;
    }
    ParsedHead head = ParseHead(absl::string_view(c->in).substr(0, end));
    c->in.erase(0, end + 4);
    // Half-closed by the peer: answer every request it sent, then close.
    if (c->eof && c->in.find("\r\n\r\n") == std::string::npos) head.keep_alive = false;
    if (!head.ok) {
      const int status = head.error_status;
      StartWrite(c, Serialize(HttpResponse{status, "text/plain; charset=utf-8", absl::StrCat(Reason(status), "\n")},
                              false, false),
                 false);
      return;
    }
    auto h = server_->handlers_.find(head.request.path);
    if (h == server_->handlers_.end()) {
      StartWrite(c, Serialize(HttpResponse{404, "text/plain; charset=utf-8", "not found\n"}, head.keep_alive,
                              head.head_only),
                 head.keep_alive);
      return;
    }
    if (head.request.path == "/healthz") {  // on the loop: never queued behind slow handlers
      StartWrite(c, Serialize(h->second(head.request), head.keep_alive, head.head_only), head.keep_alive);
      return;
    }
    c->state = Conn::kHandling;
    workers_.Schedule([this, id = c->id, handler = &h->second, head = std::move(head)] {
      HttpResponse res;
      res = (*handler)(head.request);
      std::string bytes = Serialize(res, head.keep_alive, head.head_only);
      {
        absl::MutexLock l(&mu_);
        completions_.push_back(Completion{id, std::move(bytes), head.keep_alive});
      }
      Wake();
    });
  }

  void DrainCompletions() {
    std::vector<Completion> done;
    {
      absl::MutexLock l(&mu_);
      done.swap(completions_);
    }
    for (Completion& d : done) {
      for (auto& c : conns_) {
        if (c->id == d.id && c->state == Conn::kHandling) {
          StartWrite(c.get(), std::move(d.bytes), d.keep_alive);
          break;
        }
      }
    }
    SweepClosed();
  }

  void StartWrite(Conn* c, std::string bytes, bool keep_alive) {
    c->state = Conn::kWriting;
    c->out = std::move(bytes);
    c->out_pos = 0;
    c->keep_alive = keep_alive;
    c->deadline = absl::Now() + server_->options_.write_timeout;
    OnWritable(c);
  }

  void OnWritable(Conn* c) {
    while (c->out_pos < c->out.size()) {
      const ssize_t n = send(c->fd, c->out.data() + c->out_pos, c->out.size() - c->out_pos, MSG_NOSIGNAL);
      if (n > 0) {
        c->out_pos += n;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0 && errno == EINTR) continue;
      c->state = Conn::kClosed;
      return;
    }
    if (!c->keep_alive) {
      c->state = Conn::kClosed;
      return;
    }
    // Kept alive: wait for the next request, which may already be buffered.
    c->out.clear();
    c->state = Conn::kReading;
    c->started = absl::Now();
    c->deadline = c->started + server_->options_.idle_timeout;
    if (!c->in.empty()) TryDispatch(c);
  }

  HttpServer* const server_;
  const int listen_fd_;
  const int wake_fd_;
  std::atomic<bool> stopping_{false};
  std::deque<std::unique_ptr<Conn>> conns_;  // loop thread only
  uint64_t next_id_ = 0;
  absl::Mutex mu_;
  std::vector<Completion> completions_ ABSL_GUARDED_BY(mu_);
  ThreadPool workers_;  // last: destroyed (joined) first
};

HttpServer::HttpServer(const metrics::Registry* registry, Options options)
    : registry_(registry), options_(options) {
  AddGet("/healthz", [](const HttpRequest&) { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; });
  AddGet("/readyz", [this](const HttpRequest&) { return Ready(); });
  if (registry_ != nullptr) {
    AddGet("/metrics", [this](const HttpRequest&) {
      return HttpResponse{200, std::string(kMetricsContentType), registry_->Serialize()};
    });
  }
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::AddGet(absl::string_view path, HttpHandler handler) {
  absl::MutexLock l(&mu_);
  WEFT_CHECK(!started_ && !stopped_, "HttpServer::AddGet after Start");
  handlers_[std::string(path)] = std::move(handler);
}

void HttpServer::SetReadinessCheck(std::function<absl::Status()> check) {
  auto shared = std::make_shared<const std::function<absl::Status()>>(std::move(check));
  absl::MutexLock l(&mu_);
  readiness_ = std::move(shared);
}

void HttpServer::SetReady() {
  SetReadinessCheck([] { return absl::OkStatus(); });
}

void HttpServer::SetNotReady(absl::string_view reason) {
  SetReadinessCheck([status = absl::UnavailableError(reason)] { return status; });
}

HttpResponse HttpServer::Ready() const {
  std::shared_ptr<const std::function<absl::Status()>> check;
  {
    absl::MutexLock l(&mu_);
    check = readiness_;
  }
  // The check runs without the lock: it may be slow or call back into us.
  const absl::Status st = check != nullptr ? (*check)() : absl::UnavailableError("starting");
  if (st.ok()) return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
  return HttpResponse{503, "text/plain; charset=utf-8", absl::StrCat("not ready: ", st.message(), "\n")};
}

absl::Status HttpServer::Start(absl::string_view host_port) {
  ASSIGN_OR_RETURN(const HostPort hp, ParseHostPort(host_port));
  absl::MutexLock l(&mu_);
  if (started_ || stopped_) return absl::FailedPreconditionError("HTTP server already started");
  const std::string host = hp.host.empty() ? "0.0.0.0" : hp.host;
  const auto fail = [&](absl::string_view why) {
    return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on ", hp.ToString(), ": ", why));
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const int gai = getaddrinfo(host.c_str(), std::to_string(hp.port).c_str(), &hints, &res);
  if (gai != 0) return fail(gai_strerror(gai));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> res_owner(res, freeaddrinfo);
  int fd = -1;
  std::string last_error = "no address";
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    // SO_REUSEADDR only: SO_REUSEPORT would let a second process bind the same
    // port and silently take half the scrapes.
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 128) == 0) break;
    last_error = std::strerror(errno);
    close(fd);
    fd = -1;
  }
  if (fd < 0) return fail(last_error);
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  started_ = true;
  loop_ = std::make_unique<Loop>(this, fd);
  thread_ = std::thread([loop = loop_.get()] { loop->Run(); });
  return absl::OkStatus();
}

int HttpServer::port() const {
  absl::MutexLock l(&mu_);
  return port_;
}

void HttpServer::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (stopped_) return;
    stopped_ = true;
    if (!started_) return;
  }
  loop_->RequestStop();
  thread_.join();
  loop_.reset();
}

}  // namespace weft
