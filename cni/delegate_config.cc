#include "cni/delegate_config.h"

namespace weft::cni {
namespace {

using json = nlohmann::json;

void SetDefault(json& obj, const char* key, json value) {
  if (!obj.contains(key)) obj[key] = std::move(value);
}

json RenderIpam(const NetConf& conf, const SubnetEnv& env) {
  json ipam = conf.ipam;
  if (conf.delegate.contains("ipam")) ipam.update(conf.delegate["ipam"]);
  SetDefault(ipam, "type", "host-local");
  ipam["ranges"] = LeaseRanges(env);
  json routes = ipam.contains("routes") && ipam["routes"].is_array() ? ipam["routes"] : json::array();
  // With an explicit gateway (the one host-local gives the container, the
  // subnet's first address, which the bridge holds): the kernel route is the same
  // as without, but the bridge plugin's CHECK (before containernetworking/plugins
  // 1.3.0, as Debian 12 ships it) fails on a result route that has no gateway
  // while the kernel's has one (containernetworking/plugins#886).
  if (env.subnet) {
    const IPv4Addr gw = IPv4Addr::FromUint32(env.subnet->network().value() + 1);
    for (const IPv4Net& n : env.networks) {
      routes.push_back(json{{"dst", n.ToString()}, {"gw", gw.ToString()}});
    }
  }
  if (env.ipv6_subnet) {
    const IPv6Addr gw = IPv6Addr::FromUint128(env.ipv6_subnet->network().value() + 1);
    for (const IPv6Net& n : env.ipv6_networks) {
      routes.push_back(json{{"dst", n.ToString()}, {"gw", gw.ToString()}});
    }
  }
  ipam["routes"] = std::move(routes);
  return ipam;
}

}  // namespace

json LeaseRanges(const SubnetEnv& env) {
  json ranges = json::array();
  if (env.subnet) ranges.push_back(json::array({json{{"subnet", env.subnet->ToString()}}}));
  if (env.ipv6_subnet) ranges.push_back(json::array({json{{"subnet", env.ipv6_subnet->ToString()}}}));
  return ranges;
}

json RenderDelegateConfig(const NetConf& conf, const SubnetEnv& env) {
  json d = conf.delegate;
  d["name"] = conf.name;
  d["cniVersion"] = conf.cni_version;
  SetDefault(d, "type", "bridge");
  SetDefault(d, "ipMasq", !env.ipmasq);
  SetDefault(d, "mtu", env.mtu);
  if (d["type"] == "bridge") {
    SetDefault(d, "isGateway", true);
    SetDefault(d, "bridge", "cni0");
  }
  d["ipam"] = RenderIpam(conf, env);
  return d;
}

}  // namespace weft::cni
