#include "agent/cloud/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace weft::cloud {
namespace {

constexpr char kAlgorithm[] = "AWS4-HMAC-SHA256";

struct UrlParts {
  std::string authority;  // host[:port]
  std::string path;       // "/..." (may be empty)
  std::string query;      // after '?', without it
};

absl::StatusOr<UrlParts> SplitUrl(absl::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("URL without a scheme: ", url));
  }
  absl::string_view rest = url.substr(scheme_end + 3);
  size_t path_start = rest.find_first_of("/?");
  UrlParts p;
  p.authority = std::string(rest.substr(0, path_start));
  if (p.authority.empty()) return absl::InvalidArgumentError(absl::StrCat("URL without a host: ", url));
  if (path_start != absl::string_view::npos) {
    absl::string_view tail = rest.substr(path_start);
    size_t q = tail.find('?');
    p.path = std::string(tail.substr(0, q));
    if (q != absl::string_view::npos) p.query = std::string(tail.substr(q + 1));
  }
  size_t frag = p.query.find('#');
  if (frag != std::string::npos) p.query.resize(frag);
  return p;
}

std::string CanonicalUri(absl::string_view path) {
  std::vector<std::string> segments;
  for (absl::string_view seg : absl::StrSplit(path, '/')) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
      continue;
    }
    segments.push_back(UriEncode(PercentDecode(seg), /*keep_slash=*/false));
  }
  std::string out = absl::StrCat("/", absl::StrJoin(segments, "/"));
  if (!segments.empty() && absl::EndsWith(path, "/")) out += "/";
  return out;
}

std::string CanonicalQuery(absl::string_view query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (absl::string_view kv : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    size_t eq = kv.find('=');
    absl::string_view k = kv.substr(0, eq);
    absl::string_view v = eq == absl::string_view::npos ? absl::string_view() : kv.substr(eq + 1);
    pairs.emplace_back(UriEncode(PercentDecode(k), false), UriEncode(PercentDecode(v), false));
  }
  std::sort(pairs.begin(), pairs.end());
  std::vector<std::string> parts;
  parts.reserve(pairs.size());
  for (const auto& [k, v] : pairs) parts.push_back(absl::StrCat(k, "=", v));
  return absl::StrJoin(parts, "&");
}

// Trims, and collapses runs of spaces inside, as the spec asks.
std::string CanonicalHeaderValue(absl::string_view v) {
  v = absl::StripAsciiWhitespace(v);
  std::string out;
  out.reserve(v.size());
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

bool ValidAmzDate(absl::string_view d) {
  if (d.size() != 16 || d[8] != 'T' || d[15] != 'Z') return false;
  for (int i = 0; i < 15; ++i) {
    if (i != 8 && !absl::ascii_isdigit(d[i])) return false;
  }
  return true;
}

void RemoveHeader(HttpRequest* req, absl::string_view name) {
  auto& h = req->headers;
  h.erase(std::remove_if(h.begin(), h.end(), [&](const auto& kv) { return absl::EqualsIgnoreCase(kv.first, name); }),
          h.end());
}

void SetHeader(HttpRequest* req, absl::string_view name, std::string value) {
  RemoveHeader(req, name);
  req->headers.emplace_back(std::string(name), std::move(value));
}

}  // namespace

std::string HexEncode(absl::string_view raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return HexEncode(absl::string_view(reinterpret_cast<char*>(md), len));
}

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string UriEncode(absl::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string PercentDecode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && absl::ascii_isxdigit(s[i + 1]) && absl::ascii_isxdigit(s[i + 2])) {
      auto nib = [](char c) { return absl::ascii_isdigit(c) ? c - '0' : (absl::ascii_tolower(c) - 'a' + 10); };
      out.push_back(static_cast<char>(nib(s[i + 1]) * 16 + nib(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& params) {
  std::vector<std::string> parts;
  parts.reserve(params.size());
  for (const auto& [k, v] : params) parts.push_back(absl::StrCat(UriEncode(k, false), "=", UriEncode(v, false)));
  return absl::StrJoin(parts, "&");
}

std::string AmzDate(absl::Time t) { return absl::FormatTime("%Y%m%dT%H%M%SZ", t, absl::UTCTimeZone()); }

absl::StatusOr<SigV4Parts> ComputeSigV4(const HttpRequest& req, const AwsCredentials& creds,
                                        absl::string_view region, absl::string_view service) {
  ASSIGN_OR_RETURN(UrlParts url, SplitUrl(req.url));
  // name -> values in order of appearance; std::map sorts the names.
  std::map<std::string, std::vector<std::string>> headers;
  for (const auto& [k, v] : req.headers) headers[absl::AsciiStrToLower(k)].push_back(CanonicalHeaderValue(v));
  if (headers.find("host") == headers.end()) headers["host"].push_back(url.authority);
  auto date = headers.find("x-amz-date");
  if (date == headers.end() || date->second.size() != 1 || !ValidAmzDate(date->second[0])) {
    return absl::InvalidArgumentError("SigV4: the request needs one X-Amz-Date header (yyyymmddThhmmssZ)");
  }
  const std::string amz_date = date->second[0];
  const std::string day = amz_date.substr(0, 8);

  std::string canonical_headers;
  std::vector<absl::string_view> names;
  for (const auto& [name, values] : headers) {
    absl::StrAppend(&canonical_headers, name, ":", absl::StrJoin(values, ","), "\n");
    names.push_back(name);
  }
  const std::string signed_headers = absl::StrJoin(names, ";");

  SigV4Parts p;
  p.canonical_request = absl::StrCat(req.method, "\n", CanonicalUri(url.path), "\n", CanonicalQuery(url.query), "\n",
                                     canonical_headers, "\n", signed_headers, "\n", Sha256Hex(req.body));
  const std::string scope = absl::StrCat(day, "/", region, "/", service, "/aws4_request");
  p.string_to_sign = absl::StrCat(kAlgorithm, "\n", amz_date, "\n", scope, "\n", Sha256Hex(p.canonical_request));
  std::string key = HmacSha256(absl::StrCat("AWS4", creds.secret_access_key), day);
  key = HmacSha256(key, region);
  key = HmacSha256(key, service);
  key = HmacSha256(key, "aws4_request");
  p.signature = HexEncode(HmacSha256(key, p.string_to_sign));
  p.authorization = absl::StrCat(kAlgorithm, " Credential=", creds.access_key_id, "/", scope,
                                 ", SignedHeaders=", signed_headers, ", Signature=", p.signature);
  return p;
}

absl::Status SignV4(HttpRequest* req, const AwsCredentials& creds, absl::string_view region,
                    absl::string_view service, absl::Time now) {
  SetHeader(req, "X-Amz-Date", AmzDate(now));
  if (!creds.session_token.empty()) SetHeader(req, "X-Amz-Security-Token", creds.session_token);
  RemoveHeader(req, "Authorization");
  ASSIGN_OR_RETURN(SigV4Parts parts, ComputeSigV4(*req, creds, region, service));
  req->headers.emplace_back("Authorization", std::move(parts.authorization));
  return absl::OkStatus();
}

}  // namespace weft::cloud
