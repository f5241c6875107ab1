#include "agent/backend/gce/gce_api.h"


#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "agent/cloud/sigv4.h"
#include "common/json.h"
#include "common/log.h"
#include "common/quote.h"
#include "common/status_macros.h"

namespace weft::agent::gce {
namespace {

using Json = ::weft::json::Json;

// Cloud API answers: a page of routes.list is a few hundred KB.
::weft::json::Limits ApiLimits() {
  ::weft::json::Limits l;
  l.max_bytes = 16 << 20;
  return l;
}

absl::string_view LastSegment(absl::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

std::string StringField(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

absl::StatusOr<Json> ParseJson(absl::string_view body, absl::string_view what) {
  absl::StatusOr<Json> j = ::weft::json::ParseObject(body, what, ApiLimits());
  if (!j.ok()) {
    return absl::InternalError(absl::StrCat(j.status().message(), ": ", QuoteInput(body, 200)));
  }
  return j;
}

// "quotaExceeded", "QUOTA_EXCEEDED" -> "quotaexceeded": the API spells reasons in
// camel case, operation errors in upper snake case.
std::string FoldReason(absl::string_view reason) {
  return absl::AsciiStrToLower(absl::StrReplaceAll(reason, {{"_", ""}}));
}

// The first errors[].reason of Google's error body, folded.
std::string ErrorReason(absl::string_view body) {
  absl::StatusOr<Json> parsed = ::weft::json::ParseObject(body, "error", ApiLimits());
  if (!parsed.ok()) return "";
  const Json& j = *parsed;
  auto err = j.find("error");
  if (err == j.end() || !err->is_object()) return "";
  auto errors = err->find("errors");
  if (errors == err->end() || !errors->is_array()) return "";
  for (const Json& e : *errors) {
    if (e.is_object() && !StringField(e, "reason").empty()) return FoldReason(StringField(e, "reason"));
  }
  return "";
}

// The metrics' result label for a finished call.
absl::string_view ResultLabel(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return "ok";
    case absl::StatusCode::kNotFound:
      return "not_found";
    case absl::StatusCode::kAlreadyExists:
      return "conflict";
    case absl::StatusCode::kResourceExhausted:
      return "quota";
    case absl::StatusCode::kUnavailable:
      return "throttled";
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return "denied";
    default:
      return "error";
  }
}

}  // namespace

std::string CanonicalResourceUrl(absl::string_view url) {
  absl::string_view u = url;
  if (absl::StartsWith(u, "projects/")) return std::string(u);
  const size_t at = u.find("/projects/");
  return at == absl::string_view::npos ? std::string(u) : std::string(u.substr(at + 1));
}

std::string InstanceInfo::InstanceUrl() const {
  return absl::StrCat("projects/", project, "/zones/", zone, "/instances/", name);
}

std::string InstanceInfo::NetworkUrl() const { return absl::StrCat("projects/", project, "/global/networks/", network); }

ApiMetrics::ApiMetrics(metrics::Registry& r)
    : requests(r.AddCounter("weft_agent_gce_api_requests_total",
                            "Requests to the GCE metadata server and Compute API, by operation and result.",
                            {"operation", "result"})),
      retries(r.AddCounter("weft_agent_gce_api_retries_total",
                           "GCE requests sent again after throttling (429, 503, 403 rateLimitExceeded) or a "
                           "transport error.")
                  .Get()) {}

absl::Status ApiError(int http_status, absl::string_view body, absl::string_view what) {
  std::string message;
  if (absl::StatusOr<Json> j = ::weft::json::ParseObject(body, "error", ApiLimits()); j.ok()) {
    if (auto err = j->find("error"); err != j->end() && err->is_object()) message = StringField(*err, "message");
  }
  if (message.empty()) message = std::string(absl::StripAsciiWhitespace(body.substr(0, 200)));
  const std::string reason = ErrorReason(body);
  const std::string text =
      absl::StrCat(what, ": HTTP ", http_status, reason.empty() ? "" : absl::StrCat(" (", reason, ")"), ": ", message);
  if (reason == "quotaexceeded") return absl::ResourceExhaustedError(text);
  switch (http_status) {
    case 400:
      return absl::InvalidArgumentError(text);
    case 401:
      return absl::UnauthenticatedError(text);
    case 403:
      if (reason == "ratelimitexceeded" || reason == "userratelimitexceeded") return absl::UnavailableError(text);
      return absl::PermissionDeniedError(text);
    case 404:
      return absl::NotFoundError(text);
    case 409:
      return absl::AlreadyExistsError(text);
    case 429:
      return absl::UnavailableError(text);
    default:
      return http_status >= 500 ? absl::UnavailableError(text) : absl::UnknownError(text);
  }
}

bool IsThrottled(const cloud::HttpResponse& response) {
  if (response.status == 429 || response.status == 503) return true;
  if (response.status != 403) return false;
  const std::string reason = ErrorReason(response.body);
  return reason == "ratelimitexceeded" || reason == "userratelimitexceeded";
}

GceApi::GceApi(cloud::HttpClient* http, ApiOptions options, ApiMetrics* metrics)
    : http_(http), options_(std::move(options)), metrics_(metrics) {}

void GceApi::Count(absl::string_view operation, absl::string_view result) {
  if (metrics_ != nullptr) metrics_->requests.WithLabels({std::string(operation), std::string(result)}).Inc();
}

absl::StatusOr<cloud::HttpResponse> GceApi::Send(const cloud::HttpRequest& req) {
  return cloud::DoWithRetry(*http_, req, options_.retry, *options_.clock, IsThrottled, [this] {
    if (metrics_ != nullptr) metrics_->retries.Inc();
  });
}

absl::StatusOr<std::string> GceApi::Metadata(absl::string_view path) {
  cloud::HttpRequest req;
  req.url = absl::StrCat(absl::StripSuffix(options_.metadata_endpoint, "/"), "/computeMetadata/v1/", path);
  // The metadata server refuses requests without it, which keeps a request forged
  // through some proxy on the host from reading the token.
  req.headers.emplace_back("Metadata-Flavor", "Google");
  req.timeout = absl::Seconds(5);
  const absl::string_view op = absl::StrContains(path, "/token") ? "token" : "metadata";
  auto resp = Send(req);
  if (!resp.ok()) {
    Count(op, "error");
    return absl::Status(resp.status().code(),
                        absl::StrCat("metadata server ", req.url, ": ", resp.status().message()));
  }
  if (resp->status != 200) {
    absl::Status s = ApiError(resp->status, resp->body, absl::StrCat("metadata server ", req.url));
    Count(op, ResultLabel(s));
    return s;
  }
  // Whatever answered without the header is not a metadata server (a captive
  // portal, a misconfigured proxy): do not trust its answer.
  if (resp->Header("Metadata-Flavor") != "Google") {
    Count(op, "error");
    return absl::FailedPreconditionError(
        absl::StrCat("metadata server ", req.url, ": the answer lacks \"Metadata-Flavor: Google\""));
  }
  Count(op, "ok");
  return std::move(resp->body);
}

absl::StatusOr<InstanceInfo> GceApi::Instance() {
  if (instance_ != nullptr) return *instance_;
  InstanceInfo info;
  ASSIGN_OR_RETURN(info.project, Metadata("project/project-id"));
  // zone: "projects/<number>/zones/<zone>"; network: "projects/<number>/networks/<name>".
  ASSIGN_OR_RETURN(std::string zone, Metadata("instance/zone"));
  ASSIGN_OR_RETURN(info.name, Metadata("instance/name"));
  ASSIGN_OR_RETURN(std::string network, Metadata("instance/network-interfaces/0/network"));
  info.project = std::string(absl::StripAsciiWhitespace(info.project));
  info.name = std::string(absl::StripAsciiWhitespace(info.name));
  info.zone = std::string(LastSegment(absl::StripAsciiWhitespace(zone)));
  info.network = std::string(LastSegment(absl::StripAsciiWhitespace(network)));
  if (info.project.empty() || info.zone.empty() || info.name.empty() || info.network.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("metadata server: incomplete instance description (project \"",
                                                      info.project, "\", zone \"", info.zone, "\", name \"",
                                                      info.name, "\", network \"", info.network, "\")"));
  }
  instance_ = std::make_unique<InstanceInfo>(info);
  return info;
}

absl::StatusOr<std::string> GceApi::Token() {
  const absl::Time now = options_.clock->Now();
  if (!token_.empty() && now < token_refresh_at_) return token_;
  ASSIGN_OR_RETURN(std::string body, Metadata("instance/service-accounts/default/token"));
  ASSIGN_OR_RETURN(Json j, ParseJson(body, "metadata server token"));
  std::string token = StringField(j, "access_token");
  auto exp = j.find("expires_in");
  if (token.empty() || exp == j.end() || !exp->is_number()) {
    return absl::InternalError("metadata server token: no access_token or expires_in in the answer");
  }
  const absl::Duration ttl = absl::Seconds(exp->get<double>());
  // The metadata server hands out its cached token, sometimes with little life
  // left: then use it for half of what remains rather than not at all.
  const absl::Duration use_for =
      ttl > 2 * options_.token_refresh_margin ? ttl - options_.token_refresh_margin : ttl / 2;
  token_ = std::move(token);
  token_refresh_at_ = now + use_for;
  return token_;
}

absl::StatusOr<std::string> GceApi::Call(absl::string_view operation, absl::string_view method,
                                         const std::string& url, std::string body) {
  cloud::HttpRequest req;
  req.method = std::string(method);
  req.url = url;
  if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
  req.body = std::move(body);
  const size_t auth_header = req.headers.size();
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(std::string token, Token());
    req.headers.resize(auth_header);
    req.headers.emplace_back("Authorization", absl::StrCat("Bearer ", token));
    auto resp = Send(req);
    if (!resp.ok()) {
      Count(operation, "error");
      return absl::Status(resp.status().code(), absl::StrCat(method, " ", url, ": ", resp.status().message()));
    }
    if (resp->status == 401 && attempt == 0) {
      // Revoked or expired early (clock skew): one more try with a fresh token.
      WEFT_LOG(INFO, "GCE API refused the token; fetching a new one").With("url", url);
      token_.clear();
      continue;
    }
    if (resp->status / 100 != 2) {
      absl::Status s = ApiError(resp->status, resp->body, absl::StrCat(method, " ", url));
      Count(operation, ResultLabel(s));
      return s;
    }
    Count(operation, "ok");
    return std::move(resp->body);
  }
}

std::string GceApi::ProjectUrl(absl::string_view project) const {
  return absl::StrCat(absl::StripSuffix(options_.api_endpoint, "/"), "/projects/", project);
}

absl::StatusOr<std::vector<Route>> GceApi::ListRoutes(absl::string_view filter) {
  ASSIGN_OR_RETURN(InstanceInfo self, Instance());
  std::vector<Route> out;
  std::string page_token;
  do {
    std::string url = absl::StrCat(ProjectUrl(self.project), "/global/routes?maxResults=", options_.list_page_size);
    if (!filter.empty()) absl::StrAppend(&url, "&filter=", cloud::UriEncode(filter, /*keep_slash=*/false));
    if (!page_token.empty()) absl::StrAppend(&url, "&pageToken=", cloud::UriEncode(page_token, /*keep_slash=*/false));
    ASSIGN_OR_RETURN(std::string body, Call("list", "GET", url, ""));
    ASSIGN_OR_RETURN(Json j, ParseJson(body, "routes.list"));
    if (auto items = j.find("items"); items != j.end() && items->is_array()) {
      for (const Json& item : *items) {
        if (!item.is_object()) continue;
        Route r;
        r.name = StringField(item, "name");
        r.network = CanonicalResourceUrl(StringField(item, "network"));
        r.dest_range = StringField(item, "destRange");
        r.next_hop_instance = CanonicalResourceUrl(StringField(item, "nextHopInstance"));
        r.description = StringField(item, "description");
        // int64 fields come as JSON strings in Google's APIs, priority as a number.
        if (auto p = item.find("priority"); p != item.end() && p->is_number_integer()) r.priority = p->get<int64_t>();
        out.push_back(std::move(r));
      }
    }
    page_token = StringField(j, "nextPageToken");
  } while (!page_token.empty());
  return out;
}

absl::StatusOr<Operation> GceApi::ParseOperation(absl::string_view body, absl::string_view target) {
  ASSIGN_OR_RETURN(Json j, ParseJson(body, "operation"));
  Operation op;
  op.name = StringField(j, "name");
  op.zone = std::string(LastSegment(StringField(j, "zone")));
  op.target = std::string(target);
  if (op.name.empty()) return absl::InternalError(absl::StrCat("operation on ", target, ": the answer has no name"));
  return op;
}

absl::StatusOr<Operation> GceApi::InsertRoute(const Route& route) {
  ASSIGN_OR_RETURN(InstanceInfo self, Instance());
  Json body = {{"name", route.name},
               {"network", route.network},
               {"destRange", route.dest_range},
               {"priority", route.priority},
               {"description", route.description}};
  if (!route.next_hop_instance.empty()) body["nextHopInstance"] = route.next_hop_instance;
  ASSIGN_OR_RETURN(std::string answer,
                   Call("insert", "POST", absl::StrCat(ProjectUrl(self.project), "/global/routes"), ::weft::json::Dump(body)));
  return ParseOperation(answer, route.name);
}

absl::StatusOr<Operation> GceApi::DeleteRoute(absl::string_view name) {
  ASSIGN_OR_RETURN(InstanceInfo self, Instance());
  ASSIGN_OR_RETURN(std::string answer,
                   Call("delete", "DELETE", absl::StrCat(ProjectUrl(self.project), "/global/routes/", name), ""));
  return ParseOperation(answer, name);
}

absl::Status GceApi::Wait(const Operation& op) {
  ASSIGN_OR_RETURN(InstanceInfo self, Instance());
  const std::string url =
      absl::StrCat(ProjectUrl(self.project), op.zone.empty() ? "/global" : absl::StrCat("/zones/", op.zone),
                   "/operations/", op.name, "/wait");
  for (int i = 0; i < options_.max_operation_waits; ++i) {
    // operations.wait returns when the operation is done or after about two
    // minutes, whichever is first; so a loop, but not a busy one.
    ASSIGN_OR_RETURN(std::string body, Call("wait", "POST", url, ""));
    ASSIGN_OR_RETURN(Json j, ParseJson(body, "operations.wait"));
    if (StringField(j, "status") != "DONE") continue;
    auto err = j.find("error");
    if (err == j.end() || !err->is_object()) return absl::OkStatus();
    std::string code;
    std::string message;
    if (auto errors = err->find("errors"); errors != err->end() && errors->is_array() && !errors->empty()) {
      for (const Json& e : *errors) {
        if (!e.is_object()) continue;
        if (code.empty()) code = StringField(e, "code");
        absl::StrAppend(&message, message.empty() ? "" : "; ", StringField(e, "message"));
      }
    }
    const std::string text = absl::StrCat(StringField(j, "operationType"), " of route ", op.target, " failed (",
                                          op.name, "): ", code.empty() ? "UNKNOWN" : code, ": ", message);
    const std::string folded = FoldReason(code);
    if (folded == "quotaexceeded") return absl::ResourceExhaustedError(text);
    if (folded == "resourcenotfound") return absl::NotFoundError(text);
    if (folded == "alreadyexists") return absl::AlreadyExistsError(text);
    return absl::AbortedError(text);
  }
  return absl::DeadlineExceededError(absl::StrCat("operation ", op.name, " on route ", op.target, " not done after ",
                                                  options_.max_operation_waits, " waits"));
}

}  // namespace weft::agent::gce
