#include "tests/cloud/fake_ec2.h"

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace weft::testing {
namespace {

constexpr char kXmlns[] = "http://ec2.amazonaws.com/doc/2016-11-15/";

// Written apart from agent/cloud/sigv4.cc on purpose: the fake must not share
// a bug with the code it checks.
std::string ToHex(const unsigned char* p, size_t n) {
  std::string out;
  char buf[3];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", p[i]);
    out += buf;
  }
  return out;
}

std::string Digest(const std::string& data) {
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  return ToHex(md, n);
}

std::string Mac(const std::string& key, const std::string& data) {
  unsigned char md[32];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), md, &n);
  return std::string(reinterpret_cast<char*>(md), n);
}

// application/x-www-form-urlencoded, as a server reads it.
std::multimap<std::string, std::string> ParseForm(const std::string& body) {
  auto decode = [](absl::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      int v = 0;
      if (s[i] == '%' && i + 2 < s.size() && std::sscanf(std::string(s.substr(i + 1, 2)).c_str(), "%2x", &v) == 1) {
        out.push_back(static_cast<char>(v));
        i += 2;
      } else {
        out.push_back(s[i] == '+' ? ' ' : s[i]);
      }
    }
    return out;
  };
  std::multimap<std::string, std::string> out;
  for (absl::string_view kv : absl::StrSplit(body, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    out.emplace(decode(p.first), decode(p.second));
  }
  return out;
}

std::string Param(const std::multimap<std::string, std::string>& params, const std::string& key) {
  auto it = params.find(key);
  return it == params.end() ? "" : it->second;
}

// RouteTableId.1, RouteTableId.2 ... in order.
std::vector<std::string> Indexed(const std::multimap<std::string, std::string>& params, const std::string& prefix) {
  std::vector<std::string> out;
  for (int i = 1;; ++i) {
    auto it = params.find(absl::StrCat(prefix, ".", i));
    if (it == params.end()) return out;
    out.push_back(it->second);
  }
}

std::string ErrorXml(const std::string& code, const std::string& message, int seq) {
  return absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>", code,
                      "</Code><Message>", message, "</Message></Error></Errors><RequestID>fake-", seq,
                      "</RequestID></Response>");
}

std::string RouteXml(const FakeRoute& r) {
  std::string x = absl::StrCat("<item><destinationCidrBlock>", r.destination, "</destinationCidrBlock>");
  if (!r.gateway_id.empty()) absl::StrAppend(&x, "<gatewayId>", r.gateway_id, "</gatewayId>");
  if (!r.nat_gateway_id.empty()) absl::StrAppend(&x, "<natGatewayId>", r.nat_gateway_id, "</natGatewayId>");
  if (!r.instance_id.empty()) {
    absl::StrAppend(&x, "<instanceId>", r.instance_id, "</instanceId><instanceOwnerId>123456789012</instanceOwnerId>",
                    "<networkInterfaceId>eni-", r.instance_id.substr(2), "</networkInterfaceId>");
  }
  absl::StrAppend(&x, "<state>", r.state, "</state><origin>", r.origin, "</origin></item>");
  return x;
}

bool ValidCidr(const std::string& s) {
  std::vector<std::string> parts = absl::StrSplit(s, '/');
  int len = 0;
  return parts.size() == 2 && absl::SimpleAtoi(parts[1], &len) && len >= 0 && len <= 32 &&
         std::count(parts[0].begin(), parts[0].end(), '.') == 3;
}

}  // namespace

FakeAws::FakeAws() : server_(std::make_unique<httplib::Server>()) {
  // Answers go out at once, not after a delayed ACK (40 ms per call otherwise).
  server_->set_tcp_nodelay(true);
  server_->Post("/", [this](const httplib::Request& req, httplib::Response& res) { HandleEc2(req, res); });
  server_->Put("/latest/api/token", [this](const httplib::Request& req, httplib::Response& res) { HandleImds(req, res); });
  server_->Get(R"(/latest/.*)", [this](const httplib::Request& req, httplib::Response& res) { HandleImds(req, res); });
  port_ = server_->bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

FakeAws::~FakeAws() {
  server_->stop();
  thread_.join();
}

std::string FakeAws::endpoint() const { return absl::StrCat("http://127.0.0.1:", port_); }

void FakeAws::AcceptCredentials(const std::string& access_key_id, const std::string& secret, const std::string& token) {
  absl::MutexLock l(&mu_);
  credentials_[access_key_id] = {secret, token};
}

void FakeAws::SetInstance(const FakeInstance& instance) {
  absl::MutexLock l(&mu_);
  instance_ = instance;
}

void FakeAws::SetRole(const FakeRole& role) {
  absl::MutexLock l(&mu_);
  role_ = role;
  credentials_[role.access_key_id] = {role.secret_access_key, role.token};
}

void FakeAws::AddRouteTable(const FakeRouteTable& table) {
  absl::MutexLock l(&mu_);
  tables_.push_back(table);
}

void FakeAws::SetRouteLimit(int limit) {
  absl::MutexLock l(&mu_);
  route_limit_ = limit;
}

void FakeAws::ThrottleNext(int calls) {
  absl::MutexLock l(&mu_);
  throttle_next_ = calls;
}

void FakeAws::ExpireImdsTokens() {
  absl::MutexLock l(&mu_);
  imds_tokens_.clear();
}

std::vector<FakeRoute> FakeAws::Routes(const std::string& table) const {
  absl::MutexLock l(&mu_);
  for (const FakeRouteTable& t : tables_) {
    if (t.id == table) return t.routes;
  }
  return {};
}

std::optional<FakeRoute> FakeAws::Route(const std::string& table, const std::string& destination) const {
  for (const FakeRoute& r : Routes(table)) {
    if (r.destination == destination) return r;
  }
  return std::nullopt;
}

int FakeAws::Calls(const std::string& action) const {
  absl::MutexLock l(&mu_);
  auto it = calls_.find(action);
  return it == calls_.end() ? 0 : it->second;
}

int FakeAws::TotalCalls() const {
  absl::MutexLock l(&mu_);
  return total_calls_;
}
int FakeAws::SignatureFailures() const {
  absl::MutexLock l(&mu_);
  return signature_failures_;
}
int FakeAws::MalformedRequests() const {
  absl::MutexLock l(&mu_);
  return malformed_;
}
int FakeAws::Throttled() const {
  absl::MutexLock l(&mu_);
  return throttled_;
}
int FakeAws::ImdsUnauthorized() const {
  absl::MutexLock l(&mu_);
  return imds_unauthorized_;
}
int FakeAws::ImdsTokensIssued() const {
  absl::MutexLock l(&mu_);
  return tokens_issued_;
}
std::set<std::string> FakeAws::SourceDestCheckDisabled() const {
  absl::MutexLock l(&mu_);
  return src_dst_disabled_;
}
std::map<std::string, int> FakeAws::CallsByAccessKey() const {
  absl::MutexLock l(&mu_);
  return calls_by_key_;
}

FakeRouteTable* FakeAws::FindTable(const std::string& id) {
  for (FakeRouteTable& t : tables_) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

// Returns "" when the signature holds, else why not.
std::string FakeAws::VerifySignature(const httplib::Request& req) {
  const std::string auth = req.get_header_value("Authorization");
  constexpr absl::string_view kPrefix = "AWS4-HMAC-SHA256 ";
  if (!absl::StartsWith(auth, kPrefix)) return "no AWS4-HMAC-SHA256 Authorization";
  std::map<std::string, std::string> fields;
  for (absl::string_view part : absl::StrSplit(absl::string_view(auth).substr(kPrefix.size()), ',')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(absl::StripAsciiWhitespace(part), absl::MaxSplits('=', 1));
    fields[kv.first] = kv.second;
  }
  std::vector<std::string> scope = absl::StrSplit(fields["Credential"], '/');
  if (scope.size() != 5 || scope[4] != "aws4_request") return "bad Credential";
  auto cred = credentials_.find(scope[0]);
  if (cred == credentials_.end()) return "unknown access key " + scope[0];
  const std::string amz_date = req.get_header_value("X-Amz-Date");
  int y, mo, d, h, mi, sec;
  if (amz_date.size() != 16 ||
      std::sscanf(amz_date.c_str(), "%4d%2d%2dT%2d%2d%2dZ", &y, &mo, &d, &h, &mi, &sec) != 6) {
    return "bad X-Amz-Date";
  }
  const absl::Time when = absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, sec), absl::UTCTimeZone());
  if (absl::AbsDuration(absl::Now() - when) > absl::Minutes(5)) return "request time too skewed";
  if (scope[1] != amz_date.substr(0, 8)) return "scope date is not X-Amz-Date's";
  if (scope[2] != instance_.region || scope[3] != "ec2") return "wrong region or service in scope";
  std::vector<std::string> signed_names = absl::StrSplit(fields["SignedHeaders"], ';');
  std::set<std::string> names(signed_names.begin(), signed_names.end());
  if (!names.count("host") || !names.count("x-amz-date")) return "host and x-amz-date must be signed";
  if (!cred->second.token.empty()) {
    if (!names.count("x-amz-security-token") || req.get_header_value("X-Amz-Security-Token") != cred->second.token) {
      return "temporary credentials without their signed session token";
    }
  }
  std::string canonical = absl::StrCat(req.method, "\n/\n\n");
  for (const std::string& name : signed_names) {
    std::vector<std::string> values;
    auto range = req.headers.equal_range(name);
    for (auto it = range.first; it != range.second; ++it) values.push_back(std::string(absl::StripAsciiWhitespace(it->second)));
    if (values.empty()) return "signed header " + name + " is missing";
    absl::StrAppend(&canonical, name, ":", absl::StrJoin(values, ","), "\n");
  }
  absl::StrAppend(&canonical, "\n", fields["SignedHeaders"], "\n", Digest(req.body));
  const std::string to_sign = absl::StrCat("AWS4-HMAC-SHA256\n", amz_date, "\n", scope[1], "/", scope[2], "/",
                                           scope[3], "/aws4_request\n", Digest(canonical));
  std::string key = Mac("AWS4" + cred->second.secret, scope[1]);
  for (const std::string& part : {scope[2], scope[3], std::string("aws4_request")}) key = Mac(key, part);
  const std::string mac = Mac(key, to_sign);
  if (ToHex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size()) != fields["Signature"]) {
    return "signature does not match";
  }
  ++calls_by_key_[scope[0]];
  return "";
}

void FakeAws::HandleEc2(const httplib::Request& req, httplib::Response& res) {
  absl::MutexLock l(&mu_);
  ++total_calls_;
  const int seq = ++request_seq_;
  auto reply = [&](int status, const std::string& body) { res.status = status, res.set_content(body, "text/xml;charset=UTF-8"); };
  if (!absl::StartsWith(req.get_header_value("Content-Type"), "application/x-www-form-urlencoded")) {
    ++malformed_;
    return reply(400, ErrorXml("InvalidParameterValue", "expected a form body", seq));
  }
  if (std::string why = VerifySignature(req); !why.empty()) {
    ++signature_failures_;
    return reply(401, ErrorXml("AuthFailure", why, seq));
  }
  if (throttle_next_ > 0) {
    --throttle_next_;
    ++throttled_;
    return reply(503, ErrorXml("RequestLimitExceeded", "Request limit exceeded.", seq));
  }
  const std::multimap<std::string, std::string> params = ParseForm(req.body);
  if (Param(params, "Version") != "2016-11-15") {
    ++malformed_;
    return reply(400, ErrorXml("InvalidParameterValue", "unsupported Version", seq));
  }
  const std::string action = Param(params, "Action");
  Answer a = Ec2Action(action, params);
  if (a.status == 200) {
    ++calls_[action];
    a.body = absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<", action, "Response xmlns=\"", kXmlns,
                          "\"><requestId>fake-", seq, "</requestId>", a.body, "</", action, "Response>");
  } else if (absl::StrContains(a.body, "<Code>MissingParameter</Code>") ||
             absl::StrContains(a.body, "<Code>InvalidAction</Code>")) {
    ++malformed_;
  }
  reply(a.status, a.body);
}

FakeAws::Answer FakeAws::Ec2Action(const std::string& action, const std::multimap<std::string, std::string>& params) {
  const int seq = request_seq_;
  auto error = [&](const std::string& code, const std::string& message) {
    return Answer{400, ErrorXml(code, message, seq)};
  };
  auto require = [&](std::initializer_list<const char*> keys) -> std::string {
    for (const char* k : keys) {
      if (Param(params, k).empty()) return k;
    }
    return "";
  };
  if (action == "DescribeRouteTables") {
    const std::vector<std::string> ids = Indexed(params, "RouteTableId");
    std::map<std::string, std::vector<std::string>> filters;
    for (int i = 1;; ++i) {
      const std::string name = Param(params, absl::StrCat("Filter.", i, ".Name"));
      if (name.empty()) break;
      if (name != "association.subnet-id" && name != "association.main" && name != "vpc-id") {
        return error("InvalidParameterValue", "filter not supported by the fake: " + name);
      }
      filters[name] = Indexed(params, absl::StrCat("Filter.", i, ".Value"));
    }
    for (const std::string& id : ids) {
      if (FindTable(id) == nullptr) return error("InvalidRouteTableID.NotFound", "The routeTable ID '" + id + "' does not exist");
    }
    std::string body = "<routeTableSet>";
    for (const FakeRouteTable& t : tables_) {
      if (!ids.empty() && std::find(ids.begin(), ids.end(), t.id) == ids.end()) continue;
      auto matches = [&](const std::string& name, const std::vector<std::string>& have) {
        auto f = filters.find(name);
        if (f == filters.end()) return true;
        for (const std::string& v : f->second) {
          if (std::find(have.begin(), have.end(), v) != have.end()) return true;
        }
        return false;
      };
      if (!matches("association.subnet-id", t.subnet_ids) || !matches("vpc-id", {t.vpc_id}) ||
          !matches("association.main", {t.main ? "true" : "false"})) {
        continue;
      }
      absl::StrAppend(&body, "<item><routeTableId>", t.id, "</routeTableId><vpcId>", t.vpc_id, "</vpcId><routeSet>");
      for (const FakeRoute& r : t.routes) absl::StrAppend(&body, RouteXml(r));
      absl::StrAppend(&body, "</routeSet><associationSet>");
      if (t.main) absl::StrAppend(&body, "<item><main>true</main></item>");
      for (const std::string& s : t.subnet_ids) absl::StrAppend(&body, "<item><main>false</main><subnetId>", s, "</subnetId></item>");
      absl::StrAppend(&body, "</associationSet><tagSet/></item>");
    }
    return Answer{200, body + "</routeTableSet>"};
  }
  if (action == "CreateRoute" || action == "ReplaceRoute" || action == "DeleteRoute") {
    const bool with_target = action != "DeleteRoute";
    std::string missing = with_target ? require({"RouteTableId", "DestinationCidrBlock", "InstanceId"})
                                      : require({"RouteTableId", "DestinationCidrBlock"});
    if (!missing.empty()) return error("MissingParameter", "The request must contain the parameter " + missing);
    FakeRouteTable* t = FindTable(Param(params, "RouteTableId"));
    if (t == nullptr) return error("InvalidRouteTableID.NotFound", "no such route table");
    const std::string dst = Param(params, "DestinationCidrBlock");
    if (!ValidCidr(dst)) return error("InvalidParameterValue", "bad DestinationCidrBlock " + dst);
    const std::string instance = Param(params, "InstanceId");
    if (with_target && !absl::StartsWith(instance, "i-")) return error("InvalidInstanceID.Malformed", instance);
    auto it = std::find_if(t->routes.begin(), t->routes.end(), [&](const FakeRoute& r) { return r.destination == dst; });
    if (action == "CreateRoute") {
      if (it != t->routes.end()) {
        return error("RouteAlreadyExists", "The route identified by " + dst + " already exists.");
      }
      if (static_cast<int>(t->routes.size()) >= route_limit_) {
        return error("RouteLimitExceeded", absl::StrCat("The maximum number of routes (", route_limit_, ") has been reached"));
      }
      t->routes.push_back(FakeRoute{.destination = dst, .instance_id = instance});
    } else if (it == t->routes.end()) {
      return error("InvalidRoute.NotFound", "no route with destination-cidr-block " + dst + " in " + t->id);
    } else if (action == "ReplaceRoute") {
      *it = FakeRoute{.destination = dst, .instance_id = instance, .origin = it->origin};
    } else {
      t->routes.erase(it);
    }
    return Answer{200, "<return>true</return>"};
  }
  if (action == "ModifyInstanceAttribute") {
    std::string missing = require({"InstanceId", "SourceDestCheck.Value"});
    if (!missing.empty()) return error("MissingParameter", "The request must contain the parameter " + missing);
    if (Param(params, "SourceDestCheck.Value") == "false") {
      src_dst_disabled_.insert(Param(params, "InstanceId"));
    } else {
      src_dst_disabled_.erase(Param(params, "InstanceId"));
    }
    return Answer{200, "<return>true</return>"};
  }
  return error("InvalidAction", "The action " + action + " is not valid for this web service.");
}

void FakeAws::HandleImds(const httplib::Request& req, httplib::Response& res) {
  absl::MutexLock l(&mu_);
  if (req.method == "PUT") {
    int ttl = 0;
    if (!absl::SimpleAtoi(req.get_header_value("X-aws-ec2-metadata-token-ttl-seconds"), &ttl) || ttl < 1 ||
        ttl > 21600) {
      res.status = 400;
      return;
    }
    const std::string token = absl::StrCat("imds-token-", ++tokens_issued_);
    imds_tokens_.insert(token);
    res.set_content(token, "text/plain");
    return;
  }
  if (imds_tokens_.count(req.get_header_value("X-aws-ec2-metadata-token")) == 0) {
    ++imds_unauthorized_;
    res.status = 401;
    return;
  }
  const std::string path = req.path.substr(std::string("/latest/").size());
  const std::string mac_prefix = "meta-data/network/interfaces/macs/" + instance_.mac + "/";
  const std::string role_prefix = "meta-data/iam/security-credentials/";
  std::string body;
  if (path == "meta-data/instance-id") {
    body = instance_.instance_id;
  } else if (path == "meta-data/mac") {
    body = instance_.mac;
  } else if (path == mac_prefix + "subnet-id") {
    body = instance_.subnet_id;
  } else if (path == mac_prefix + "vpc-id") {
    body = instance_.vpc_id;
  } else if (path == "dynamic/instance-identity/document") {
    body = absl::StrCat(R"({"accountId":"123456789012","architecture":"x86_64","availabilityZone":")",
                        instance_.availability_zone, R"(","imageId":"ami-0000","instanceId":")", instance_.instance_id,
                        R"(","instanceType":"m5.large","privateIp":")", instance_.private_ip, R"(","region":")",
                        instance_.region, R"(","version":"2017-09-30"})");
  } else if (path == role_prefix && role_) {
    body = role_->name;
  } else if (role_ && path == role_prefix + role_->name) {
    body = absl::StrCat(R"({"Code":"Success","LastUpdated":")", absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()),
                        R"(","Type":"AWS-HMAC","AccessKeyId":")", role_->access_key_id, R"(","SecretAccessKey":")",
                        role_->secret_access_key, R"(","Token":")", role_->token, R"(","Expiration":")",
                        absl::FormatTime(absl::RFC3339_sec, role_->expiration, absl::UTCTimeZone()), R"("})");
  } else {
    res.status = 404;
    return;
  }
  res.set_content(body, "text/plain");
}

}  // namespace weft::testing
