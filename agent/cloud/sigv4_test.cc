#include "agent/cloud/sigv4.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace weft::cloud {
namespace {

// The example credentials and moment of AWS's SigV4 test suite
// (aws-sig-v4-test-suite), region us-east-1, service "service".
const AwsCredentials kSuiteCreds{.access_key_id = "AKIDEXAMPLE",
                                 .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
constexpr char kDate[] = "20150830T123600Z";
constexpr char kScope[] = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
constexpr char kEmptyHash[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct Vector {
  const char* name;
  std::string method;
  std::string target;  // path and query, appended to https://example.amazonaws.com
  std::vector<std::pair<std::string, std::string>> headers;  // besides Host and X-Amz-Date
  std::string body;
  std::string signed_headers;
  std::string signature;  // AWS's published one
};

HttpRequest SuiteRequest(const Vector& v) {
  HttpRequest r;
  r.method = v.method;
  r.url = absl::StrCat("https://example.amazonaws.com", v.target);
  r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kDate}};
  for (const auto& h : v.headers) r.headers.push_back(h);
  r.body = v.body;
  return r;
}

class SuiteTest : public ::testing::TestWithParam<Vector> {};

TEST_P(SuiteTest, AuthorizationMatchesPublishedVector) {
  const Vector& v = GetParam();
  absl::StatusOr<SigV4Parts> p = ComputeSigV4(SuiteRequest(v), kSuiteCreds, "us-east-1", "service");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->authorization, absl::StrCat("AWS4-HMAC-SHA256 Credential=", kScope, ", SignedHeaders=",
                                           v.signed_headers, ", Signature=", v.signature))
      << p->canonical_request;
}

INSTANTIATE_TEST_SUITE_P(
    AwsSigV4TestSuite, SuiteTest,
    ::testing::Values(
        Vector{"get_vanilla", "GET", "/", {}, "", "host;x-amz-date",
               "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
        Vector{"post_vanilla", "POST", "/", {}, "", "host;x-amz-date",
               "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
        Vector{"get_vanilla_query_order_key_case", "GET", "/?Param2=value2&Param1=value1", {}, "",
               "host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
        Vector{"get_vanilla_query_order_value", "GET", "/?Param1=value2&Param1=value1", {}, "", "host;x-amz-date",
               "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
        Vector{"get_vanilla_utf8_query", "GET", "/?\xE1\x88\xB4=bar", {}, "", "host;x-amz-date",
               "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
        Vector{"get_unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", {},
               "", "host;x-amz-date", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
        Vector{"get_slashes", "GET", "//example//", {}, "", "host;x-amz-date",
               "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
        Vector{"get_header_value_trim",
               "GET",
               "/",
               {{"My-Header1", " value1"}, {"My-Header2", "\"a   b   c\""}},
               "",
               "host;my-header1;my-header2;x-amz-date",
               "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
        Vector{"get_header_key_duplicate",
               "GET",
               "/",
               {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
               "",
               "host;my-header1;x-amz-date",
               "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
        Vector{"get_header_value_order",
               "GET",
               "/",
               {{"My-Header1", "value4"}, {"My-Header1", "value1"}, {"My-Header1", "value3"}, {"My-Header1", "value2"}},
               "",
               "host;my-header1;x-amz-date",
               "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
        Vector{"post_x_www_form_urlencoded",
               "POST",
               "/",
               {{"Content-Type", "application/x-www-form-urlencoded"}},
               "Param1=value1",
               "content-type;host;x-amz-date",
               "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"}),
    [](const ::testing::TestParamInfo<Vector>& i) { return std::string(i.param.name); });

TEST(SigV4Test, GetVanillaIntermediateStrings) {
  auto p = ComputeSigV4(SuiteRequest({"", "GET", "/", {}, "", "", ""}), kSuiteCreds, "us-east-1", "service");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->canonical_request,
            absl::StrCat("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n",
                         kEmptyHash));
  EXPECT_EQ(p->string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
}

TEST(SigV4Test, PostFormStringToSign) {
  Vector v{"", "POST", "/", {{"Content-Type", "application/x-www-form-urlencoded"}}, "Param1=value1", "", ""};
  auto p = ComputeSigV4(SuiteRequest(v), kSuiteCreds, "us-east-1", "service");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(absl::EndsWith(p->canonical_request,
                             "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"));  // SHA-256 of the body
  EXPECT_TRUE(absl::EndsWith(p->string_to_sign, "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"));
}

// The worked example of AWS's SigV4 documentation: IAM ListUsers.
TEST(SigV4Test, DocumentedIamListUsersExample) {
  HttpRequest r;
  r.url = "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08";
  r.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}, {"X-Amz-Date", kDate}};
  auto p = ComputeSigV4(r, kSuiteCreds, "us-east-1", "iam");  // Host from the URL
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(Sha256Hex(p->canonical_request), "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
  EXPECT_EQ(p->authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date, "
            "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

TEST(SigV4Test, SignV4AddsDateTokenAndAuthorizationOnce) {
  HttpRequest r{.method = "POST", .url = "http://127.0.0.1:8080/", .body = "Action=X"};
  r.headers = {{"Authorization", "stale"}};
  AwsCredentials c = kSuiteCreds;
  c.session_token = "TOKEN";
  absl::Time t = absl::FromUnixSeconds(1440938160);  // 2015-08-30T12:36:00Z
  ASSERT_TRUE(SignV4(&r, c, "us-east-1", "ec2", t).ok());
  ASSERT_TRUE(SignV4(&r, c, "us-east-1", "ec2", t).ok());  // re-signing (a retry) replaces, never duplicates
  HttpResponse view;
  view.headers = r.headers;
  EXPECT_EQ(view.Header("x-amz-date"), kDate);
  EXPECT_EQ(view.Header("x-amz-security-token"), "TOKEN");
  EXPECT_EQ(r.headers.size(), 3u);
  const std::string auth = view.Header("authorization");
  EXPECT_TRUE(absl::StrContains(auth, "SignedHeaders=host;x-amz-date;x-amz-security-token,")) << auth;
  EXPECT_TRUE(absl::StrContains(auth, "/20150830/us-east-1/ec2/aws4_request")) << auth;
  // The port is part of the signed host, as curl sends it.
  auto p = ComputeSigV4(r, c, "us-east-1", "ec2");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(absl::StrContains(p->canonical_request, "host:127.0.0.1:8080\n"));
}

TEST(SigV4Test, RejectsRequestsItCannotSign) {
  HttpRequest no_date{.url = "https://example.amazonaws.com/"};
  EXPECT_TRUE(absl::IsInvalidArgument(ComputeSigV4(no_date, kSuiteCreds, "r", "s").status()));
  HttpRequest bad_url{.url = "example.amazonaws.com/", .headers = {{"X-Amz-Date", kDate}}};
  EXPECT_TRUE(absl::IsInvalidArgument(ComputeSigV4(bad_url, kSuiteCreds, "r", "s").status()));
  HttpRequest bad_date{.url = "https://e/", .headers = {{"X-Amz-Date", "2015-08-30"}}};
  EXPECT_TRUE(absl::IsInvalidArgument(ComputeSigV4(bad_date, kSuiteCreds, "r", "s").status()));
}

TEST(SigV4Test, EncodingHelpers) {
  EXPECT_EQ(UriEncode("a b/c~+=", false), "a%20b%2Fc~%2B%3D");
  EXPECT_EQ(UriEncode("a/b", true), "a/b");
  EXPECT_EQ(PercentDecode("a%20b%2fc%zz%4"), "a b/c%zz%4");
  EXPECT_EQ(FormEncode({{"Action", "CreateRoute"}, {"DestinationCidrBlock", "10.1.2.0/24"}}),
            "Action=CreateRoute&DestinationCidrBlock=10.1.2.0%2F24");
}

}  // namespace
}  // namespace weft::cloud
