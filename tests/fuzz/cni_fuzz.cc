// The CNI plugin's inputs: the network config on stdin (also a saved delegate
// config, which is the same JSON), CNI_ARGS and the other CNI_* variables, and
// the delegate config rendered from them.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "cni/cni_args.h"
#include "cni/delegate_config.h"
#include "cni/net_conf.h"
#include "cni/subnet_env.h"

namespace cni = weft::cni;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string s(reinterpret_cast<const char*>(data), size);
  (void)cni::ResponseVersion(s);
  if (auto conf = cni::ParseNetConf(s); conf.ok()) {
    auto env = cni::ParseSubnetEnv(
        "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
        "subnet.env");
    if (env.ok()) (void)cni::RenderDelegateConfig(*conf, *env).dump();
  }
  const cni::EnvLookup env = [&s](const char* name) -> std::optional<std::string> {
    const std::string n(name);
    if (n == "CNI_ARGS") return s;
    if (n == "CNI_COMMAND") return "ADD";
    if (n == "CNI_CONTAINERID") return s.substr(0, 64);
    if (n == "CNI_NETNS") return "/var/run/netns/x";
    if (n == "CNI_IFNAME") return s.substr(0, 16);
    if (n == "CNI_PATH") return s;
    return std::nullopt;
  };
  (void)cni::ParseCommand(env);
  (void)cni::ParseCniArgs(env);
  return 0;
}
