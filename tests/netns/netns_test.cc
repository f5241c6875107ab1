#include "tests/netns/netns.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace weft::testing {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// The inode of the calling thread's network namespace.
ino_t CurrentNetNsInode() {
  struct stat st;
  if (stat("/proc/thread-self/ns/net", &st) != 0) return 0;
  return st.st_ino;
}

TEST(NetNsTest, CreatesIsolatedNamespaceAndRemovesIt) {
  std::string path;
  {
    absl::StatusOr<std::unique_ptr<NetNs>> ns = NetNs::Create("t");
    ASSERT_TRUE(ns.ok()) << ns.status();
    path = (*ns)->path();
    EXPECT_TRUE(Exists(path));
    EXPECT_EQ((*ns)->name().rfind(absl::StrCat("wft", getpid(), "-"), 0), 0u) << (*ns)->name();

    const ino_t host = CurrentNetNsInode();
    const ino_t inside = (*ns)->Run([] { return CurrentNetNsInode(); });
    EXPECT_NE(inside, 0u);
    EXPECT_NE(inside, host);
    EXPECT_EQ(CurrentNetNsInode(), host) << "the calling thread must stay where it was";

    // Only lo exists in a fresh namespace, and it is up.
    absl::StatusOr<std::string> links = (*ns)->Sh("ip -o link show | wc -l");
    ASSERT_TRUE(links.ok()) << links.status();
    EXPECT_EQ(*links, "1\n");
    absl::StatusOr<std::string> lo = (*ns)->Sh("ip -o link show lo");
    ASSERT_TRUE(lo.ok()) << lo.status();
    EXPECT_NE(lo->find("UP"), std::string::npos) << *lo;
  }
  EXPECT_FALSE(Exists(path)) << "namespace file left behind";
}

TEST(NetNsTest, NamesAreUnique) {
  auto a = NetNs::Create("x");
  auto b = NetNs::Create("x");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->name(), (*b)->name());
}

TEST(NetNsTest, VethJoinsTwoNamespaces) {
  auto a = NetNs::Create("a");
  auto b = NetNs::Create("b");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(ConnectVeth(**a, "va", "192.0.2.1/24", **b, "vb", "192.0.2.2/24").ok());
  absl::StatusOr<std::string> ping = (*a)->Sh("ping -c 1 -W 2 192.0.2.2");
  EXPECT_TRUE(ping.ok()) << ping.status();
}

TEST(NetNsTest, RemovesNamespacesOfDeadProcesses) {
  // A pid that surely is dead: a child we reaped.
  const pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  waitpid(child, nullptr, 0);
  const std::string stale = absl::StrCat("/run/netns/wft", child, "-0-stale");
  const int fd = open(stale.c_str(), O_RDONLY | O_CREAT, 0);
  ASSERT_GE(fd, 0);
  close(fd);
  const std::string mine = absl::StrCat("/run/netns/wft", getpid(), "-999-mine");
  const int fd2 = open(mine.c_str(), O_RDONLY | O_CREAT, 0);
  ASSERT_GE(fd2, 0);
  close(fd2);

  NetNs::RemoveStale();
  EXPECT_FALSE(Exists(stale));
  EXPECT_TRUE(Exists(mine)) << "a live process's namespace must stay";
  unlink(mine.c_str());
}

}  // namespace
}  // namespace weft::testing
