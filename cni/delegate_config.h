#pragma once
// The config weft-cni hands to its delegate, rendered the way flannel's CNI plugin
// renders it. For subnet.env {10.1.0.0/16, 10.1.19.1/24, MTU 1450, IPMASQ true}
// and a network "weft" of cniVersion 1.0.0 with no delegate options:
//
//   {"cniVersion":"1.0.0","name":"weft","type":"bridge","bridge":"cni0",
//    "isGateway":true,"ipMasq":false,"mtu":1450,
//    "ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.19.0/24"}]],
//            "routes":[{"dst":"10.1.0.0/16","gw":"10.1.19.1"}]}}
//
// Merging, as flannel does:
//  - name and cniVersion always come from the network config;
//  - type (default "bridge"), ipMasq (default: not FLANNEL_IPMASQ, so that the
//    bridge masquerades exactly when the agent does not), mtu (default
//    FLANNEL_MTU), and for a bridge isGateway (default true) and bridge (default
//    "cni0"), plus any other key: the user's "delegate" object wins;
//  - ipam: the network config's "ipam" with the delegate's "ipam" laid over it
//    (its keys win), type default "host-local"; "ranges" is always the node's
//    subnets (IPv4, then IPv6, one range set each), since the lease decides them;
//    "routes" is the user's routes followed by one per cluster network, through
//    the subnet's first address (flannel leaves "gw" out, which yields the same
//    kernel route but a result the bridge plugin's CHECK rejects).

#include <nlohmann/json.hpp>

#include "cni/net_conf.h"
#include "cni/subnet_env.h"

namespace weft::cni {

nlohmann::json RenderDelegateConfig(const NetConf& conf, const SubnetEnv& env);

// The address ranges the node's lease gives containers, in the form host-local
// reads: [[{"subnet":"10.1.19.0/24"}],[{"subnet":"fd00:1:13::/64"}]].
nlohmann::json LeaseRanges(const SubnetEnv& env);

}  // namespace weft::cni
