// The on-demand libcurl (curl_on_demand.cc) against the real libcurl: nothing
// mapped before the first call, then every argument kind of the variadic
// functions reaches libcurl intact (a file:// transfer, so nothing leaves the
// machine). This test is linked with --as-needed like weft-agent.

#include <curl/curl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace {

bool LibcurlMapped() {
  std::ifstream maps("/proc/self/maps");
  std::stringstream all;
  all << maps.rdbuf();
  return all.str().find("libcurl.so") != std::string::npos;
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

TEST(CurlOnDemandTest, LoadsOnFirstCallAndPassesEveryArgumentKind) {
  ASSERT_FALSE(LibcurlMapped()) << "libcurl.so was loaded at start-up";
  ASSERT_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
  EXPECT_TRUE(LibcurlMapped());

  std::string dir = std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp";
  std::string path = dir + "/curl_on_demand_test.txt";
  std::ofstream(path) << "0123456789abcdef";
  std::string url = "file://" + path;

  CURL* h = curl_easy_init();
  ASSERT_NE(h, nullptr);
  std::string body;
  curl_slist* headers = curl_slist_append(nullptr, "X-Unused: 1");
  ASSERT_NE(headers, nullptr);
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_URL, url.c_str()), CURLE_OK);             // object pointer
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L), CURLE_OK);                 // long
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, Collect), CURLE_OK);       // function pointer
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_WRITEDATA, &body), CURLE_OK);
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, curl_off_t{10}), CURLE_OK);  // curl_off_t
  EXPECT_EQ(curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers), CURLE_OK);
  ASSERT_EQ(curl_easy_perform(h), CURLE_OK);
  EXPECT_EQ(body, "abcdef");  // the offset arrived as 10

  curl_off_t downloaded = -1;
  char* effective = nullptr;
  EXPECT_EQ(curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &downloaded), CURLE_OK);
  EXPECT_EQ(downloaded, 6);
  EXPECT_EQ(curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective), CURLE_OK);
  ASSERT_NE(effective, nullptr);
  EXPECT_EQ(std::string(effective), url);

  // After a reset the offset is gone: the whole file comes back.
  curl_easy_reset(h);
  body.clear();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  ASSERT_EQ(curl_easy_perform(h), CURLE_OK);
  EXPECT_EQ(body, "0123456789abcdef");

  curl_easy_setopt(h, CURLOPT_URL, ("file://" + dir + "/no-such-file").c_str());
  CURLcode missing = curl_easy_perform(h);
  EXPECT_EQ(missing, CURLE_FILE_COULDNT_READ_FILE);
  EXPECT_STRNE(curl_easy_strerror(missing), curl_easy_strerror(CURLE_OK));
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  unlink(path.c_str());
}

}  // namespace
