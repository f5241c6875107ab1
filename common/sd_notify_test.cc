#include "common/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/testing.h"
#include "gtest/gtest.h"

namespace weft::systemd {
namespace {

// A unix datagram socket standing in for systemd's notification socket.
class NotifySocket {
 public:
  // `name` starting with '@' is an abstract socket, as systemd also allows.
  explicit NotifySocket(const std::string& name) : name_(name) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    EXPECT_LT(name.size(), sizeof(addr.sun_path));
    std::memcpy(addr.sun_path, name.data(), name.size());
    if (name[0] == '@') addr.sun_path[0] = '\0';
    const socklen_t len = offsetof(sockaddr_un, sun_path) + name.size();
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), len), 0) << strerror(errno);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setenv("NOTIFY_SOCKET", name.c_str(), 1);
  }
  ~NotifySocket() {
    unsetenv("NOTIFY_SOCKET");
    close(fd_);
    if (name_[0] != '@') unlink(name_.c_str());
  }
  std::string Receive() {
    char buf[4096];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    return n < 0 ? absl::StrCat("<recv failed: ", strerror(errno), ">") : std::string(buf, n);
  }
  bool Pending() {
    char c;
    return recv(fd_, &c, 1, MSG_DONTWAIT | MSG_PEEK) >= 0;
  }

 private:
  std::string name_;
  int fd_ = -1;
};

TEST(SdNotifyTest, SendsStatesToTheNotifySocket) {
  NotifySocket sock(absl::StrCat("@weft-sd-notify-test-", getpid()));
  ASSERT_TRUE(NotifyReady().ok());
  EXPECT_EQ(sock.Receive(), "READY=1");
  ASSERT_TRUE(NotifyStatus("leases: 3\nstore ok").ok());
  EXPECT_EQ(sock.Receive(), "STATUS=leases: 3 store ok");
  ASSERT_TRUE(NotifyWatchdog().ok());
  EXPECT_EQ(sock.Receive(), "WATCHDOG=1");
  ASSERT_TRUE(NotifyStopping().ok());
  EXPECT_EQ(sock.Receive(), "STOPPING=1");
  EXPECT_FALSE(sock.Pending());
  // The variable is left in place for later calls.
  EXPECT_NE(getenv("NOTIFY_SOCKET"), nullptr);
}

TEST(SdNotifyTest, WorksWithAFilesystemSocket) {
  const TempDir dir("weft-sd-", TempDir::Root::kTmp);  // a unix socket path is short
  NotifySocket sock(dir.Join("notify"));
  ASSERT_TRUE(NotifyReady().ok());
  EXPECT_EQ(sock.Receive(), "READY=1");
}

TEST(SdNotifyTest, NoOpWithoutNotifySocket) {
  unsetenv("NOTIFY_SOCKET");
  EXPECT_TRUE(NotifyReady().ok());
  EXPECT_TRUE(NotifyStatus("x").ok());
  EXPECT_TRUE(NotifyStopping().ok());
  EXPECT_TRUE(NotifyWatchdog().ok());
}

TEST(SdNotifyTest, ReportsAnUnreachableSocket) {
  setenv("NOTIFY_SOCKET", "/nonexistent/weft/notify", 1);
  const absl::Status st = NotifyReady();
  unsetenv("NOTIFY_SOCKET");
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("sd_notify(\"READY=1\") failed"), absl::string_view::npos) << st;
}

TEST(SdNotifyTest, WatchdogInterval) {
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  EXPECT_EQ(WatchdogInterval(), std::nullopt);
  setenv("WATCHDOG_USEC", "2000000", 1);
  EXPECT_EQ(WatchdogInterval(), absl::Seconds(2));
  setenv("WATCHDOG_PID", absl::StrCat(getpid()).c_str(), 1);
  EXPECT_EQ(WatchdogInterval(), absl::Seconds(2));
  setenv("WATCHDOG_PID", absl::StrCat(getpid() + 1).c_str(), 1);  // meant for another process
  EXPECT_EQ(WatchdogInterval(), std::nullopt);
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
}

}  // namespace
}  // namespace weft::systemd
