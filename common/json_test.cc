#include "common/json.h"

#include <string>

#include "common/quote.h"
#include "gtest/gtest.h"

namespace weft::json {
namespace {

std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonParse, ParsesObjects) {
  auto j = Parse(R"({"a":1,"b":"x","c":[true,null]})", "doc");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(Dump(*j), R"({"a":1,"b":"x","c":[true,null]})");
}

TEST(JsonParse, DepthCapHoldsWhileParsing) {
  EXPECT_TRUE(Parse(Nested(64), "doc").ok());
  auto deep = Parse(Nested(65), "doc");
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(deep.status().message().find("nested deeper than the limit of 64 levels"), std::string::npos)
      << deep.status();
  // 150,000 levels (300 KB): refused without building (or recursing into) the tree.
  Limits big;
  big.max_bytes = 1 << 20;
  big.depth_flag = "--max-json-depth";
  auto huge = Parse(Nested(150000), "config", big);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("(--max-json-depth)"), std::string::npos) << huge.status();
  // Objects count too, and an unterminated deep prefix is still a depth error.
  std::string objs;
  for (int i = 0; i < 200000; ++i) objs += "{\"a\":";
  EXPECT_NE(Parse(objs, "doc").status().message().find("deeper"), std::string::npos);
}

TEST(JsonParse, SizeCapCheckedFirst) {
  Limits l;
  l.max_bytes = 10;
  l.bytes_flag = "--max-value-bytes";
  auto r = Parse(R"({"a":"0123456789"})", "backend_data", l);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "backend_data: 18 bytes is over the limit of 10 bytes (--max-value-bytes)");
  EXPECT_TRUE(Parse(R"({"a":"0"})", "backend_data", l).ok());
}

TEST(JsonParse, BadTextIsAShortError) {
  for (std::string bad : {std::string(""), std::string("{"), std::string("{\"a\":"), std::string("[1,2"),
                          std::string("nul"), std::string("{} x"), std::string("\"\xff\""),
                          std::string("{\"a\":1,}"), std::string("\x00\x01", 2)}) {
    auto r = Parse(bad, "doc");
    ASSERT_FALSE(r.ok()) << QuoteInput(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message().rfind("doc: ", 0), 0u) << r.status();
  }
  // A truncated 900 KB string: the message stays short (nlohmann's own message
  // would repeat the whole token).
  std::string truncated = "{\"a\":\"" + std::string(900000, 'x');
  auto r = Parse(truncated, "doc");
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 300u) << r.status().message().substr(0, 400);
  EXPECT_NE(r.status().message().find("at byte"), std::string::npos);
}

TEST(JsonParse, OrderedKeepsKeyOrder) {
  auto j = ParseOrdered(R"({"z":1,"a":2})", "doc");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(Dump(*j), R"({"z":1,"a":2})");
  EXPECT_FALSE(ParseOrdered(Nested(65), "doc").ok());
}

TEST(JsonGetters, WrongTypesAreErrorsNotExceptions) {
  auto j = Parse(R"({"s":"x","i":-5,"b":true,"n":null,"big":18446744073709551615,"f":1.5,"o":{}})", "doc");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(*GetString(*j, "s"), "x");
  EXPECT_EQ(*GetString(*j, "missing", "d"), "d");
  EXPECT_EQ(*GetString(*j, "n", "d"), "d");  // null counts as absent
  EXPECT_EQ(*GetInt(*j, "i"), -5);
  EXPECT_EQ(*GetBool(*j, "b"), true);
  EXPECT_EQ(GetString(*j, "i").status().message(), "i: must be a string (got number)");
  EXPECT_EQ(GetString(*j, "o").status().message(), "o: must be a string (got object)");
  EXPECT_FALSE(GetInt(*j, "s").ok());
  EXPECT_FALSE(GetInt(*j, "f").ok());
  EXPECT_FALSE(GetInt(*j, "big").ok());
  EXPECT_FALSE(GetBool(*j, "s").ok());
  // Not an object at all: every field is absent.
  auto arr = Parse("[1]", "doc");
  EXPECT_EQ(Find(*arr, "s"), nullptr);
  EXPECT_EQ(*GetString(*arr, "s", "d"), "d");
}

TEST(JsonDump, InvalidUtf8IsReplacedNotThrown) {
  Json j = std::string("a\xff");
  EXPECT_EQ(Dump(j), "\"a\xEF\xBF\xBD\"");
}

TEST(QuoteInput, KeepsAShortEscapedPrefix) {
  EXPECT_EQ(QuoteInput("abc"), "\"abc\"");
  EXPECT_EQ(QuoteInput("a\nb"), "\"a\\nb\"");
  const std::string q = QuoteInput(std::string(65536, 'n'));
  EXPECT_EQ(q, "\"" + std::string(64, 'n') + "...\" (65536 bytes)");
}

}  // namespace
}  // namespace weft::json
