#include "tests/cloud/fake_gce.h"

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "absl/time/clock.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/net.h"

namespace weft::testing {
namespace {

using Json = nlohmann::json;

constexpr char kSelfLinkBase[] = "https://www.googleapis.com/compute/v1/";

const char* StatusName(int code) {
  switch (code) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 409:
      return "ALREADY_EXISTS";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 503:
      return "UNAVAILABLE";
    default:
      return "UNKNOWN";
  }
}

// Google's JSON error format.
void Error(httplib::Response& res, int code, absl::string_view message, absl::string_view reason) {
  Json body = {{"error",
                {{"code", code},
                 {"message", std::string(message)},
                 {"errors", Json::array({{{"message", std::string(message)},
                                          {"domain", code == 403 || code == 429 ? "usageLimits" : "global"},
                                          {"reason", std::string(reason)}}})},
                 {"status", StatusName(code)}}}};
  res.status = code;
  res.set_content(body.dump(), "application/json; charset=UTF-8");
}

std::string Canonical(absl::string_view url) {
  const size_t at = url.find("projects/");
  return at == absl::string_view::npos ? std::string(url) : std::string(url.substr(at));
}

// One equality term of a filter: field = "value" (quotes optional).
struct Term {
  std::string field;
  std::string value;
};

// "(a = "x") AND (b = "y")", "a = x". Returns false on anything else.
bool ParseFilter(absl::string_view filter, std::vector<Term>* terms) {
  static const std::regex kTerm(R"re(^\s*\(?\s*([A-Za-z]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s()"]+))\s*\)?\s*$)re");
  filter = absl::StripAsciiWhitespace(filter);
  if (filter.empty()) return true;
  for (absl::string_view part : absl::StrSplit(filter, " AND ")) {
    std::cmatch m;
    const std::string s(part);
    if (!std::regex_match(s.c_str(), m, kTerm)) return false;
    std::string value = m[2].matched ? m[2].str() : m[3].str();
    std::string unescaped;
    for (size_t i = 0; i < value.size(); ++i) {
      if (value[i] == '\\' && i + 1 < value.size()) ++i;
      unescaped.push_back(value[i]);
    }
    terms->push_back({m[1].str(), unescaped});
  }
  return true;
}

bool ValidRouteName(const std::string& name) {
  static const std::regex kName("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$");
  return std::regex_match(name, kName);
}

}  // namespace

FakeGce::FakeGce(Options options) : options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {
  server_->new_task_queue = [] { return new httplib::ThreadPool(4); };
  server_->set_keep_alive_timeout(1);
  // httplib writes a response's headers and body separately; with Nagle on, the
  // body waits for the client's delayed ACK: 40 ms per kept-alive request.
  server_->set_tcp_nodelay(true);
  server_->Get(R"(/vm/[^/]+/computeMetadata/v1/.*)",
               [this](const httplib::Request& req, httplib::Response& res) { HandleMetadata(req, res); });
  auto api = [this](const httplib::Request& req, httplib::Response& res) { HandleApi(req, res); };
  server_->Get(R"(/compute/v1/.*)", api);
  server_->Post(R"(/compute/v1/.*)", api);
  server_->Delete(R"(/compute/v1/.*)", api);
}

FakeGce::~FakeGce() { Stop(); }

absl::Status FakeGce::Start() {
  port_ = server_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) return absl::UnavailableError("fake GCE: cannot bind 127.0.0.1");
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    loop_exited_.store(true);
  });
  // httplib's stop() does nothing before the accept loop runs; a Stop() right
  // after Start() must not hang in join().
  while (!server_->is_running() && !loop_exited_.load()) absl::SleepFor(absl::Milliseconds(1));
  return absl::OkStatus();
}

void FakeGce::Stop() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

std::string FakeGce::api_endpoint() const { return absl::StrCat("http://127.0.0.1:", port_, "/compute/v1"); }

std::string FakeGce::InstanceUrl(absl::string_view project, absl::string_view zone, absl::string_view name) {
  return absl::StrCat("projects/", project, "/zones/", zone, "/instances/", name);
}

std::string FakeGce::NetworkUrl() const {
  return absl::StrCat("projects/", options_.project, "/global/networks/", options_.network);
}

std::string FakeGce::AddInstance(absl::string_view zone, absl::string_view name) {
  absl::MutexLock l(&mu_);
  instances_[std::string(name)] = std::string(zone);
  return MetadataEndpoint(name);
}

std::string FakeGce::MetadataEndpoint(absl::string_view name) const {
  return absl::StrCat("http://127.0.0.1:", port_, "/vm/", name);
}

std::vector<FakeGceRoute> FakeGce::Routes() const {
  absl::MutexLock l(&mu_);
  std::vector<FakeGceRoute> out;
  for (const auto& [name, r] : routes_) out.push_back(r);
  return out;
}

void FakeGce::PutRoute(const FakeGceRoute& route) {
  absl::MutexLock l(&mu_);
  routes_[route.name] = route;
}

bool FakeGce::RemoveRoute(absl::string_view name) {
  absl::MutexLock l(&mu_);
  return routes_.erase(std::string(name)) > 0;
}

void FakeGce::SetRouteQuota(int quota) {
  absl::MutexLock l(&mu_);
  options_.route_quota = quota;
}

void FakeGce::InjectErrors(int count, int http_status, absl::string_view reason) {
  absl::MutexLock l(&mu_);
  inject_count_ = count;
  inject_status_ = http_status;
  inject_reason_ = std::string(reason);
}

void FakeGce::RevokeTokens() {
  absl::MutexLock l(&mu_);
  for (auto& [token, expiry] : tokens_) expiry = absl::InfinitePast();
}

int FakeGce::Count(absl::string_view kind) const {
  absl::MutexLock l(&mu_);
  auto it = counts_.find(kind);
  return it == counts_.end() ? 0 : it->second;
}

void FakeGce::Bump(absl::string_view kind) { ++counts_[std::string(kind)]; }

void FakeGce::HandleMetadata(const httplib::Request& req, httplib::Response& res) {
  absl::MutexLock l(&mu_);
  res.set_header("Metadata-Flavor", "Google");
  if (req.get_header_value("Metadata-Flavor") != "Google") {
    Bump("no_flavor");
    res.status = 403;
    res.set_content("Missing Metadata-Flavor:Google header.\n", "text/html");
    return;
  }
  absl::string_view path = req.path;
  absl::ConsumePrefix(&path, "/vm/");
  const std::string vm(path.substr(0, path.find('/')));
  path.remove_prefix(path.find("/computeMetadata/v1/") + std::strlen("/computeMetadata/v1/"));
  auto inst = instances_.find(vm);
  if (inst == instances_.end()) {
    res.status = 404;
    return;
  }
  // The metadata server names the project by number in zone and network paths.
  constexpr absl::string_view kProjectNumber = "123456789012";
  if (path == "instance/service-accounts/default/token") {
    Bump("token");
    const std::string token = absl::StrCat("ya29.fake-", vm, "-", next_id_++);
    tokens_[token] = options_.clock->Now() + options_.token_ttl;
    res.set_content(Json{{"access_token", token},
                         {"expires_in", absl::ToInt64Seconds(options_.token_ttl)},
                         {"token_type", "Bearer"}}
                        .dump(),
                    "application/json");
    return;
  }
  Bump("metadata");
  std::string value;
  if (path == "project/project-id") {
    value = options_.project;
  } else if (path == "instance/name") {
    value = vm;
  } else if (path == "instance/zone") {
    value = absl::StrCat("projects/", kProjectNumber, "/zones/", inst->second);
  } else if (path == "instance/network-interfaces/0/network") {
    value = absl::StrCat("projects/", kProjectNumber, "/networks/", options_.network);
  } else {
    res.status = 404;
    return;
  }
  res.set_content(value, "application/text");
}

void FakeGce::HandleApi(const httplib::Request& req, httplib::Response& res) {
  absl::MutexLock l(&mu_);
  const std::string auth_header = req.get_header_value("Authorization");
  absl::string_view auth = auth_header;
  auto token = absl::ConsumePrefix(&auth, "Bearer ") ? tokens_.find(std::string(auth)) : tokens_.end();
  if (token == tokens_.end() || options_.clock->Now() >= token->second) {
    Bump("unauthorized");
    Error(res, 401,
          "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
          "valid authentication credential.",
          "authError");
    return;
  }
  if (inject_count_ > 0) {
    --inject_count_;
    Bump("injected");
    Error(res, inject_status_, absl::StrCat("injected ", inject_reason_), inject_reason_);
    return;
  }
  absl::string_view path = req.path;
  absl::ConsumePrefix(&path, "/compute/v1/projects/");
  std::vector<std::string> parts = absl::StrSplit(path, '/');
  if (parts.empty() || parts[0] != options_.project) {
    Error(res, 404, absl::StrCat("The resource 'projects/", parts.empty() ? "" : parts[0], "' was not found"),
          "notFound");
    return;
  }
  if (parts.size() == 3 && parts[1] == "global" && parts[2] == "routes") {
    if (req.method == "GET") return ListRoutes(req, res);
    if (req.method == "POST") return InsertRoute(req, res);
  }
  if (parts.size() == 4 && parts[1] == "global" && parts[2] == "routes") {
    if (req.method == "DELETE") return DeleteRoute(parts[3], res);
    if (req.method == "GET") {
      Bump("get");
      auto it = routes_.find(parts[3]);
      if (it == routes_.end()) {
        return Error(res, 404,
                     absl::StrCat("The resource 'projects/", options_.project, "/global/routes/", parts[3],
                                  "' was not found"),
                     "notFound");
      }
      res.set_content(RouteJson(it->second), "application/json");
      return;
    }
  }
  if (parts.size() >= 4 && parts[1] == "global" && parts[2] == "operations") {
    const bool wait = parts.size() == 5 && parts[4] == "wait" && req.method == "POST";
    const bool get = parts.size() == 4 && req.method == "GET";
    if (wait || get) {
      Bump(wait ? "wait" : "get");
      return PollOperation(parts[3], wait, res);
    }
  }
  Bump("bad_request");
  Error(res, 400, absl::StrCat("fake GCE does not serve ", req.method, " ", req.path), "badRequest");
}

void FakeGce::ListRoutes(const httplib::Request& req, httplib::Response& res) {
  Bump("list");
  std::vector<Term> terms;
  if (!ParseFilter(req.get_param_value("filter"), &terms)) {
    Bump("bad_request");
    return Error(res, 400, absl::StrCat("Invalid list filter expression: ", req.get_param_value("filter")),
                 "invalid");
  }
  int page = options_.max_page_size;
  if (req.has_param("maxResults")) {
    int asked = 0;
    if (!absl::SimpleAtoi(req.get_param_value("maxResults"), &asked) || asked < 0 || asked > 500) {
      Bump("bad_request");
      return Error(res, 400, "Invalid value for field 'maxResults'", "invalid");
    }
    if (asked > 0) page = std::min(page, asked);
  }
  size_t start = 0;
  if (req.has_param("pageToken")) {
    const std::string token = req.get_param_value("pageToken");
    absl::string_view tok = token;
    if (!absl::ConsumePrefix(&tok, "page-") || !absl::SimpleAtoi(tok, &start)) {
      Bump("bad_request");
      return Error(res, 400, "Invalid value for field 'pageToken'", "invalid");
    }
  }
  std::vector<const FakeGceRoute*> matching;
  for (const auto& [name, r] : routes_) {
    bool ok = true;
    for (const Term& t : terms) {
      const std::string* v = t.field == "name"              ? &r.name
                             : t.field == "description"     ? &r.description
                             : t.field == "destRange"       ? &r.dest_range
                             : t.field == "network"         ? &r.network
                             : t.field == "nextHopInstance" ? &r.next_hop_instance
                                                            : nullptr;
      if (v == nullptr) {
        Bump("bad_request");
        return Error(res, 400, absl::StrCat("Invalid field in list filter: ", t.field), "invalid");
      }
      const bool url_field = t.field == "network" || t.field == "nextHopInstance";
      if ((url_field ? Canonical(t.value) : t.value) != *v) ok = false;
    }
    if (ok) matching.push_back(&r);
  }
  Json body = {{"kind", "compute#routeList"},
               {"id", absl::StrCat("projects/", options_.project, "/global/routes")},
               {"selfLink", absl::StrCat(kSelfLinkBase, "projects/", options_.project, "/global/routes")}};
  Json items = Json::array();
  for (size_t i = start; i < matching.size() && i < start + page; ++i) items.push_back(Json::parse(RouteJson(*matching[i])));
  if (!items.empty()) body["items"] = items;  // GCE leaves "items" out of an empty page
  if (start + page < matching.size()) body["nextPageToken"] = absl::StrCat("page-", start + page);
  res.set_content(body.dump(), "application/json");
}

void FakeGce::InsertRoute(const httplib::Request& req, httplib::Response& res) {
  Bump("insert");
  auto bad = [&](absl::string_view msg) {
    Bump("bad_request");
    Error(res, 400, msg, "invalid");
  };
  if (!absl::StartsWith(req.get_header_value("Content-Type"), "application/json")) {
    return bad("Invalid Content-Type: the body must be application/json");
  }
  Json j = Json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("Invalid JSON payload received.");
  static const char* const kKnown[] = {"name", "network", "destRange", "priority", "nextHopInstance", "description",
                                       "tags"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find_if(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return it.key() == k; }) ==
        std::end(kKnown)) {
      return bad(absl::StrCat("Invalid JSON payload received. Unknown name \"", it.key(), "\""));
    }
  }
  FakeGceRoute r;
  auto str = [&](const char* key) { return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : ""; };
  r.name = str("name");
  r.network = Canonical(str("network"));
  r.dest_range = str("destRange");
  r.next_hop_instance = Canonical(str("nextHopInstance"));
  r.description = str("description");
  if (!ValidRouteName(r.name)) return bad(absl::StrCat("Invalid value for field 'resource.name': '", r.name, "'"));
  if (r.network != NetworkUrl()) {
    return bad(absl::StrCat("Invalid value for field 'resource.network': '", str("network"), "'"));
  }
  if (!IPv4Net::Parse(r.dest_range).ok()) {
    return bad(absl::StrCat("Invalid value for field 'resource.destRange': '", r.dest_range, "'"));
  }
  if (!j.contains("priority") || !j["priority"].is_number_integer() || j["priority"].get<int64_t>() < 0 ||
      j["priority"].get<int64_t>() > 65535) {
    return bad("Invalid value for field 'resource.priority'");
  }
  r.priority = j["priority"].get<int64_t>();
  if (r.next_hop_instance.empty()) return bad("Exactly one next hop must be specified.");
  bool pending_insert = false;
  int pending_inserts = 0;
  for (const auto& [name, op] : ops_) {
    if (op.done || op.type != "insert") continue;
    ++pending_inserts;
    if (op.target == r.name) pending_insert = true;
  }
  if (routes_.count(r.name) > 0 || pending_insert) {
    return Error(res, 409,
                 absl::StrCat("The resource 'projects/", options_.project, "/global/routes/", r.name,
                              "' already exists"),
                 "alreadyExists");
  }
  if (static_cast<int>(routes_.size()) + pending_inserts >= options_.route_quota) {
    return Error(res, 403, absl::StrCat("Quota 'ROUTES' exceeded.  Limit: ", options_.route_quota, ".0 globally."),
                 "QUOTA_EXCEEDED");
  }
  Op op;
  op.type = "insert";
  op.target = r.name;
  op.route = r;
  // GCE accepts the insert and fails the operation when the next hop names no VM.
  std::vector<std::string> hop = absl::StrSplit(r.next_hop_instance, '/');
  const bool known = hop.size() == 6 && hop[0] == "projects" && hop[1] == options_.project && hop[2] == "zones" &&
                     hop[4] == "instances" && instances_.count(hop[5]) > 0 && instances_.at(hop[5]) == hop[3];
  if (!known) {
    op.error_code = "RESOURCE_NOT_FOUND";
    op.error_message = absl::StrCat("The resource '", r.next_hop_instance, "' was not found");
  }
  res.set_content(StartOperation(std::move(op)), "application/json");
}

void FakeGce::DeleteRoute(const std::string& name, httplib::Response& res) {
  Bump("delete");
  if (routes_.count(name) == 0) {
    return Error(res, 404,
                 absl::StrCat("The resource 'projects/", options_.project, "/global/routes/", name, "' was not found"),
                 "notFound");
  }
  Op op;
  op.type = "delete";
  op.target = name;
  res.set_content(StartOperation(std::move(op)), "application/json");
}

std::string FakeGce::StartOperation(Op op) {
  op.name = absl::StrCat("operation-", next_id_++, "-", op.type);
  op.polls_left = options_.polls_until_done;
  op.ready_at = absl::Now() + options_.operation_latency;
  if (op.polls_left == 0 && options_.operation_latency <= absl::ZeroDuration()) Finish(op);
  const std::string name = op.name;
  ops_[name] = std::move(op);
  return OperationJson(ops_[name]);
}

void FakeGce::Finish(Op& op) {
  op.done = true;
  if (!op.error_code.empty()) return;
  if (op.type == "insert") {
    routes_[op.target] = op.route;
  } else {
    routes_.erase(op.target);
  }
}

void FakeGce::PollOperation(const std::string& name, bool wait, httplib::Response& res) {
  auto it = ops_.find(name);
  if (it == ops_.end()) {
    return Error(res, 404,
                 absl::StrCat("The resource 'projects/", options_.project, "/global/operations/", name,
                              "' was not found"),
                 "notFound");
  }
  if (wait && !it->second.done) {
    // Like operations.wait: block until the operation may be done, without
    // holding up the other requests.
    const absl::Time ready_at = it->second.ready_at;
    mu_.Unlock();
    absl::SleepFor(ready_at - absl::Now());
    mu_.Lock();
  }
  Op& op = ops_.at(name);
  if (!op.done && --op.polls_left <= 0 && absl::Now() >= op.ready_at) Finish(op);
  res.set_content(OperationJson(op), "application/json");
}

std::string FakeGce::OperationJson(const Op& op) const {
  const std::string project = absl::StrCat("projects/", options_.project);
  Json j = {{"kind", "compute#operation"},
            {"id", absl::StrCat(1000 + op.name.size())},
            {"name", op.name},
            {"operationType", op.type},
            {"targetLink", absl::StrCat(kSelfLinkBase, project, "/global/routes/", op.target)},
            {"status", op.done ? "DONE" : "RUNNING"},
            {"progress", op.done ? 100 : 0},
            {"selfLink", absl::StrCat(kSelfLinkBase, project, "/global/operations/", op.name)}};
  if (op.done && !op.error_code.empty()) {
    j["error"] = {{"errors", Json::array({{{"code", op.error_code}, {"message", op.error_message}}})}};
    j["httpErrorStatusCode"] = 404;
  }
  return j.dump();
}

std::string FakeGce::RouteJson(const FakeGceRoute& r) const {
  Json j = {{"kind", "compute#route"},
            {"id", absl::StrCat(std::hash<std::string>{}(r.name) % 1000000000)},
            {"name", r.name},
            {"network", absl::StrCat(kSelfLinkBase, r.network)},
            {"destRange", r.dest_range},
            {"priority", r.priority},
            {"selfLink", absl::StrCat(kSelfLinkBase, "projects/", options_.project, "/global/routes/", r.name)}};
  if (!r.description.empty()) j["description"] = r.description;
  if (!r.next_hop_instance.empty()) j["nextHopInstance"] = absl::StrCat(kSelfLinkBase, r.next_hop_instance);
  return j.dump();
}

}  // namespace weft::testing
