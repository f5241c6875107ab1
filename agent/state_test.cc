#include "agent/state.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft::agent {
namespace {

using ::testing::HasSubstr;

TEST(StateTest, RandomMacsAreLocalUnicastAndDiffer) {
  const MacAddr a = RandomLocalUnicastMac();
  const MacAddr b = RandomLocalUnicastMac();
  EXPECT_NE(a, b);
  for (const MacAddr& m : {a, b}) {
    EXPECT_FALSE(m.IsMulticast()) << m;
    EXPECT_EQ(m.bytes()[0] & 0x02, 0x02) << m << " is not locally administered";
  }
}

TEST(StateTest, CreatesTheMacOnceAndKeepsIt) {
  const TempDir tmp("state");
  const std::string dir = tmp.Join("var/lib/weft-agent");  // created on demand
  absl::StatusOr<MacAddr> first = LoadOrCreateVtepMac(dir);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<MacAddr> second = LoadOrCreateVtepMac(dir);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*first, *second);

  auto text = ReadFileIfExists(dir + "/vtep-mac");
  ASSERT_TRUE(text.ok() && text->has_value());
  EXPECT_EQ(**text, first->ToString() + "\n");
  struct stat st;
  ASSERT_EQ(stat((dir + "/vtep-mac").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST(StateTest, ReadsAHandWrittenMac) {
  const TempDir tmp("state");
  const std::string dir = tmp.path();
  ASSERT_TRUE(WriteFileAtomically(dir + "/vtep-mac", "  C6:D2:32:6F:8F:44 \n").ok());
  absl::StatusOr<MacAddr> mac = LoadOrCreateVtepMac(dir);
  ASSERT_TRUE(mac.ok()) << mac.status();
  EXPECT_EQ(mac->ToString(), "c6:d2:32:6f:8f:44");
}

TEST(StateTest, RefusesAFileThatIsNotAUnicastMac) {
  const TempDir tmp("state");
  const std::string dir = tmp.path();
  ASSERT_TRUE(WriteFileAtomically(dir + "/vtep-mac", "not a mac\n").ok());
  absl::StatusOr<MacAddr> mac = LoadOrCreateVtepMac(dir);
  EXPECT_TRUE(absl::IsFailedPrecondition(mac.status())) << mac.status();
  EXPECT_THAT(std::string(mac.status().message()), HasSubstr(dir + "/vtep-mac"));

  ASSERT_TRUE(WriteFileAtomically(dir + "/vtep-mac", "01:00:5e:00:00:01\n").ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(LoadOrCreateVtepMac(dir).status()));
  // The file is left as it was: the operator decides.
  EXPECT_EQ(**ReadFileIfExists(dir + "/vtep-mac"), "01:00:5e:00:00:01\n");
}

TEST(AtomicFileTest, ReplacesWholeAndLeavesNoTemporaryFiles) {
  const TempDir tmp("state");
  const std::string dir = tmp.path();
  const std::string path = dir + "/a/b/file";
  ASSERT_TRUE(WriteFileAtomically(path, "one\n").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "two\n", 0600).ok());
  EXPECT_EQ(**ReadFileIfExists(path), "two\n");
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(ReadFileIfExists(dir + "/missing")->has_value());
  // Only the file itself is in its directory.
  auto ls = std::system(absl::StrCat("test $(ls -A ", dir, "/a/b | wc -l) -eq 1").c_str());
  EXPECT_EQ(ls, 0);
}

TEST(AtomicFileTest, ReportsAnUnwritableDirectory) {
  const TempDir tmp("state");
  const std::string dir = tmp.path();
  ASSERT_TRUE(WriteFileAtomically(dir + "/f", "x").ok());
  // A path below a regular file cannot be created.
  absl::Status s = WriteFileAtomically(dir + "/f/sub/file", "x");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr(dir + "/f"));
}

}  // namespace
}  // namespace weft::agent
