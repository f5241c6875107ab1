#include "agent/backend/awsvpc/ec2_client.h"

#include <tinyxml2.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace weft::agent::awsvpc {
namespace {

using tinyxml2::XMLDocument;
using tinyxml2::XMLElement;

std::string Text(const XMLElement* parent, const char* name) {
  const XMLElement* e = parent == nullptr ? nullptr : parent->FirstChildElement(name);
  const char* t = e == nullptr ? nullptr : e->GetText();
  return t == nullptr ? "" : t;
}

bool IsThrottled(const cloud::HttpResponse& r) {
  return absl::StrContains(r.body, "<Code>RequestLimitExceeded</Code>") ||
         absl::StrContains(r.body, "<Code>Throttling</Code>");
}

absl::StatusCode CodeFor(absl::string_view ec2_code, int http_status) {
  if (ec2_code == "InvalidRoute.NotFound" || absl::EndsWith(ec2_code, ".NotFound")) {
    return absl::StatusCode::kNotFound;
  }
  if (ec2_code == "RouteAlreadyExists") return absl::StatusCode::kAlreadyExists;
  if (ec2_code == "RouteLimitExceeded" || absl::EndsWith(ec2_code, "LimitExceeded")) {
    return ec2_code == "RequestLimitExceeded" ? absl::StatusCode::kUnavailable
                                              : absl::StatusCode::kResourceExhausted;
  }
  if (ec2_code == "UnauthorizedOperation" || ec2_code == "OptInRequired") return absl::StatusCode::kPermissionDenied;
  if (ec2_code == "AuthFailure" || ec2_code == "SignatureDoesNotMatch" || ec2_code == "InvalidClientTokenId" ||
      ec2_code == "RequestExpired") {
    return absl::StatusCode::kUnauthenticated;
  }
  if (ec2_code == "Throttling") return absl::StatusCode::kUnavailable;
  if (absl::StartsWith(ec2_code, "Invalid") || ec2_code == "MissingParameter") {
    return absl::StatusCode::kInvalidArgument;
  }
  if (http_status >= 500) return absl::StatusCode::kUnavailable;
  return absl::StatusCode::kUnknown;
}

}  // namespace

std::string DefaultEc2Endpoint(absl::string_view region) {
  return absl::StrCat("https://ec2.", region, ".amazonaws.com", absl::StartsWith(region, "cn-") ? ".cn" : "");
}

absl::Status Ec2ErrorStatus(absl::string_view action, int http_status, absl::string_view body) {
  XMLDocument doc;
  std::string code, message, request_id;
  if (doc.Parse(body.data(), body.size()) == tinyxml2::XML_SUCCESS) {
    const XMLElement* resp = doc.FirstChildElement("Response");
    const XMLElement* errors = resp == nullptr ? nullptr : resp->FirstChildElement("Errors");
    const XMLElement* err = errors == nullptr ? nullptr : errors->FirstChildElement("Error");
    code = Text(err, "Code");
    message = Text(err, "Message");
    request_id = Text(resp, "RequestID");
  }
  if (code.empty()) {
    return absl::Status(CodeFor("", http_status),
                        absl::StrCat("EC2 ", action, ": HTTP ", http_status, ": ", body.substr(0, 200)));
  }
  std::string msg = absl::StrCat("EC2 ", action, ": ", code, ": ", message);
  if (!request_id.empty()) absl::StrAppend(&msg, " (request ", request_id, ")");
  return absl::Status(CodeFor(code, http_status), msg);
}

absl::StatusOr<std::vector<Ec2RouteTable>> ParseDescribeRouteTables(absl::string_view xml) {
  XMLDocument doc;
  if (doc.Parse(xml.data(), xml.size()) != tinyxml2::XML_SUCCESS) {
    return absl::UnavailableError("EC2 DescribeRouteTables: the answer is not XML");
  }
  const XMLElement* root = doc.FirstChildElement("DescribeRouteTablesResponse");
  if (root == nullptr) return absl::UnavailableError("EC2 DescribeRouteTables: unexpected answer");
  std::vector<Ec2RouteTable> out;
  const XMLElement* set = root->FirstChildElement("routeTableSet");
  for (const XMLElement* t = set ? set->FirstChildElement("item") : nullptr; t; t = t->NextSiblingElement("item")) {
    Ec2RouteTable table{Text(t, "routeTableId"), Text(t, "vpcId"), {}};
    const XMLElement* routes = t->FirstChildElement("routeSet");
    for (const XMLElement* r = routes ? routes->FirstChildElement("item") : nullptr; r;
         r = r->NextSiblingElement("item")) {
      Ec2Route route;
      route.destination = Text(r, "destinationCidrBlock");
      route.instance_id = Text(r, "instanceId");
      route.network_interface_id = Text(r, "networkInterfaceId");
      for (const char* other : {"gatewayId", "natGatewayId", "transitGatewayId", "vpcPeeringConnectionId",
                                "egressOnlyInternetGatewayId", "localGatewayId", "carrierGatewayId",
                                "coreNetworkArn"}) {
        if (std::string v = Text(r, other); !v.empty()) {
          route.other_target = v;
          break;
        }
      }
      route.state = Text(r, "state");
      route.origin = Text(r, "origin");
      table.routes.push_back(std::move(route));
    }
    out.push_back(std::move(table));
  }
  return out;
}

Ec2Client::Ec2Client(cloud::HttpClient* http, cloud::AwsCredentialsProvider* creds, std::string endpoint,
                     std::string region, Clock* clock, cloud::RetryPolicy retry)
    : http_(http),
      creds_(creds),
      endpoint_(std::move(endpoint)),
      region_(std::move(region)),
      clock_(clock),
      retry_(retry) {}

absl::StatusOr<std::string> Ec2Client::Call(absl::string_view action,
                                            std::vector<std::pair<std::string, std::string>> params) {
  int retries = 0;
  auto finish = [&](absl::StatusOr<std::string> result) {
    if (observer_) observer_(action, result.status(), retries);
    return result;
  };
  absl::StatusOr<cloud::AwsCredentials> creds = creds_->Get();
  if (!creds.ok()) {
    return finish(absl::Status(creds.status().code(),
                               absl::StrCat("EC2 ", action, ": credentials: ", creds.status().message())));
  }
  params.insert(params.begin(), {{"Action", std::string(action)}, {"Version", kEc2ApiVersion}});
  cloud::HttpRequest req{.method = "POST",
                         .url = absl::StrCat(endpoint_, "/"),
                         .headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}},
                         .body = cloud::FormEncode(params),
                         .timeout = absl::Seconds(20)};
  if (absl::Status s = cloud::SignV4(&req, *creds, region_, "ec2", clock_->Now()); !s.ok()) return finish(s);
  absl::StatusOr<cloud::HttpResponse> r =
      cloud::DoWithRetry(*http_, req, retry_, *clock_, IsThrottled, [&retries] { ++retries; });
  if (!r.ok()) return finish(absl::Status(r.status().code(), absl::StrCat("EC2 ", action, ": ", r.status().message())));
  if (r->status != 200) return finish(Ec2ErrorStatus(action, r->status, r->body));
  return finish(std::move(r->body));
}

absl::StatusOr<std::vector<Ec2RouteTable>> Ec2Client::DescribeRouteTables(const std::vector<std::string>& ids,
                                                                          const std::vector<Ec2Filter>& filters) {
  std::vector<std::pair<std::string, std::string>> params;
  for (size_t i = 0; i < ids.size(); ++i) params.emplace_back(absl::StrCat("RouteTableId.", i + 1), ids[i]);
  for (size_t i = 0; i < filters.size(); ++i) {
    params.emplace_back(absl::StrCat("Filter.", i + 1, ".Name"), filters[i].name);
    for (size_t j = 0; j < filters[i].values.size(); ++j) {
      params.emplace_back(absl::StrCat("Filter.", i + 1, ".Value.", j + 1), filters[i].values[j]);
    }
  }
  ASSIGN_OR_RETURN(std::string xml, Call("DescribeRouteTables", std::move(params)));
  return ParseDescribeRouteTables(xml);
}

absl::Status Ec2Client::CreateRoute(absl::string_view table, absl::string_view cidr, absl::string_view instance_id) {
  return Call("CreateRoute", {{"RouteTableId", std::string(table)},
                              {"DestinationCidrBlock", std::string(cidr)},
                              {"InstanceId", std::string(instance_id)}})
      .status();
}

absl::Status Ec2Client::ReplaceRoute(absl::string_view table, absl::string_view cidr, absl::string_view instance_id) {
  return Call("ReplaceRoute", {{"RouteTableId", std::string(table)},
                               {"DestinationCidrBlock", std::string(cidr)},
                               {"InstanceId", std::string(instance_id)}})
      .status();
}

absl::Status Ec2Client::DeleteRoute(absl::string_view table, absl::string_view cidr) {
  return Call("DeleteRoute", {{"RouteTableId", std::string(table)}, {"DestinationCidrBlock", std::string(cidr)}})
      .status();
}

absl::Status Ec2Client::DisableSourceDestCheck(absl::string_view instance_id) {
  return Call("ModifyInstanceAttribute",
              {{"InstanceId", std::string(instance_id)}, {"SourceDestCheck.Value", "false"}})
      .status();
}

}  // namespace weft::agent::awsvpc
