#include "agent/backend/factory.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/backend/alloc/alloc_backend.h"
#include "agent/backend/awsvpc/awsvpc_backend.h"
#include "agent/backend/gce/gce_backend.h"
#include "agent/backend/hostgw/hostgw_backend.h"
#include "agent/backend/udp/udp_backend.h"
#include "agent/backend/vxlan/vxlan_backend.h"
#include "agent/backend/wireguard/wireguard_backend.h"
#include "agent/cloud/http_client.h"
#include "common/status_macros.h"

namespace weft::agent {

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(absl::string_view type, absl::string_view config_json,
                                                       const BackendEnv& env) {
  if (type == kVxlanBackendType) {
    ASSIGN_OR_RETURN(VxlanConfig cfg, ParseVxlanConfig(config_json));
    return std::make_unique<VxlanBackend>(env.kernel, env.vtep_mac, cfg);
  }
  if (type == kHostgwBackendType) {
    RETURN_IF_ERROR(ValidateHostgwConfig(config_json));
    return std::make_unique<HostgwBackend>(env.kernel, env.metrics);
  }
  if (type == gce::kGceBackendType) {
    ASSIGN_OR_RETURN(gce::GceConfig cfg, gce::ParseGceConfig(config_json));
    gce::GceBackendOptions options;
    options.api.api_endpoint = env.flags.gce_api_endpoint;
    options.api.metadata_endpoint = env.flags.gce_metadata_endpoint;
    options.removal_grace = env.flags.cloud_route_removal_grace;
    return std::make_unique<gce::GceBackend>(cloud::NewCurlHttpClient(), cfg, options, env.metrics);
  }
  if (type == kAwsVpcBackendType) {
    RETURN_IF_ERROR(ParseAwsVpcConfig(config_json).status());
    AwsVpcOptions options;
    options.ec2_endpoint = env.flags.aws_ec2_endpoint;
    options.imds_endpoint = env.flags.aws_imds_endpoint;
    options.removal_grace = env.flags.cloud_route_removal_grace;
    return std::make_unique<AwsVpcBackend>(cloud::NewCurlHttpClient(), std::move(options), env.metrics);
  }
  if (type == kUdpBackendType) {
    ASSIGN_OR_RETURN(UdpConfig cfg, ParseUdpConfig(config_json));
    UdpOptions options;
    options.workers = env.flags.udp_workers;
    options.offloads = env.flags.udp_offloads;
    return std::make_unique<UdpBackend>(env.kernel, env.metrics, std::move(options), cfg);
  }
  if (type == kWireguardBackendType) {
    ASSIGN_OR_RETURN(WireguardConfig cfg, ParseWireguardConfig(config_json));
    WireguardOptions options;
    options.key_file = env.flags.wireguard_key_file.empty() ? absl::StrCat(env.state_dir, "/wireguard-key")
                                                            : env.flags.wireguard_key_file;
    options.driver.device = kWireguardDevice;
    options.driver.implementation = env.flags.wireguard_implementation;
    options.driver.wireguard_go = env.flags.wireguard_go;
    options.peer_metrics = env.flags.wireguard_peer_metrics;
    ASSIGN_OR_RETURN(std::unique_ptr<wg::Driver> driver, wg::NewDriver(options.driver));
    // flannel-wg-v6 (separate mode) runs on the implementation picked for flannel-wg.
    wg::DriverOptions v6 = options.driver;
    v6.device = kWireguardV6Device;
    v6.implementation = driver->kind();
    ASSIGN_OR_RETURN(std::unique_ptr<wg::Driver> v6_driver, wg::NewDriver(v6));
    return std::make_unique<WireguardBackend>(env.kernel, std::move(driver), std::move(v6_driver), std::move(cfg),
                                              std::move(options), env.metrics);
  }
  if (type == kAllocBackendType) {
    RETURN_IF_ERROR(ValidateAllocConfig(config_json));
    return std::make_unique<AllocBackend>();
  }
  static const char* const kSupported[] = {kVxlanBackendType, kHostgwBackendType,  gce::kGceBackendType,
                                           kAwsVpcBackendType, kUdpBackendType,    kWireguardBackendType,
                                           kAllocBackendType};
  return absl::UnimplementedError(absl::StrCat("backend \"", type, "\" is not supported by this agent (supported: ",
                                               absl::StrJoin(kSupported, ", "), ")"));
}

}  // namespace weft::agent
