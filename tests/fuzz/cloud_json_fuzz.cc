// Cloud metadata and API answers: the EC2 IMDS identity document, and GCE's
// metadata server, token, routes list and operations, each answered with the
// fuzz input (status from its first byte) by a scripted HTTP client.
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/backend/gce/gce_api.h"
#include "agent/cloud/http_client.h"
#include "agent/cloud/imds.h"
#include "common/clock.h"
#include "common/testing.h"

namespace {

class ScriptedHttp : public weft::cloud::HttpClient {
 public:
  ScriptedHttp(int status, std::string body) : status_(status), body_(std::move(body)) {}
  absl::StatusOr<weft::cloud::HttpResponse> Do(const weft::cloud::HttpRequest&) override {
    // Bounded: a client that keeps asking (a page token that never ends) stops here.
    if (++calls_ > 50) return absl::UnavailableError("scripted client: too many calls");
    weft::cloud::HttpResponse r;
    r.status = status_;
    r.body = body_;
    return r;
  }

 private:
  const int status_;
  const std::string body_;
  int calls_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static constexpr int kStatuses[] = {200, 200, 200, 200, 401, 403, 404, 409, 429, 500};
  const int status = kStatuses[data[0] % (sizeof(kStatuses) / sizeof(kStatuses[0]))];
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  weft::SleepAdvancingClock clock;  // retry pauses must not block
  {
    ScriptedHttp http(status, body);
    weft::cloud::ImdsClient imds(&http, "http://169.254.169.254", &clock);
    (void)imds.Identity();
  }
  {
    ScriptedHttp http(status, body);
    weft::agent::gce::ApiOptions o;
    o.clock = &clock;
    o.retry.max_attempts = 2;
    o.max_operation_waits = 2;
    weft::agent::gce::GceApi api(&http, o, nullptr);
    (void)api.Instance();
    (void)api.ListRoutes("description = \"weft\"");
    weft::agent::gce::Route route;
    route.name = "weft-10-1-7-0-24";
    route.dest_range = "10.1.7.0/24";
    if (auto op = api.InsertRoute(route); op.ok()) (void)api.Wait(*op);
    if (auto op = api.DeleteRoute("weft-10-1-7-0-24"); op.ok()) (void)api.Wait(*op);
  }
  return 0;
}
