// weft-cni: the CNI plugin. Everything is in plugin.h; this reads stdin, prints
// the answer and exits with the code the spec asks for.

#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <iterator>
#include <string>

#include "cni/cni_args.h"
#include "cni/plugin.h"
#include "common/version.h"

namespace {

const char kHelp[] =
    "weft-cni: the CNI plugin of Weft. A container runtime runs it, with CNI_COMMAND (ADD, DEL, CHECK or\n"
    "VERSION) and the other CNI_* variables in the environment and the network configuration on stdin;\n"
    "it hands the container an address out of the host's lease (subnet.env) through the bridge and host-local\n"
    "plugins. Install it in /usr/lib/cni (or /opt/cni/bin) and name it in a conflist: deploy/cni/.\n"
    "\n"
    "Usage: weft-cni            (as a CNI plugin: environment and stdin as above)\n"
    "       weft-cni --version  the version and the git commit built from\n"
    "       weft-cni --help     this text\n";

}  // namespace

int main(int argc, char** argv) {
  // Run by hand: the CNI spec passes nothing on the command line.
  if (argc == 2 && (std::string(argv[1]) == "--version" || std::string(argv[1]) == "-version")) {
    std::cout << weft::version::Line("weft-cni") << "\n";
    return 0;
  }
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::cout << kHelp;
    return 0;
  }
  // A delegate may exit without reading all of its stdin; that is its answer, not
  // a reason for us to die.
  signal(SIGPIPE, SIG_IGN);
  const std::string input(std::istreambuf_iterator<char>(std::cin), {});
  std::string out;
  const int code = weft::cni::PluginMain(weft::cni::ProcessEnv, input, &out);
  std::cout << out;
  if (!out.empty() && out.back() != '\n') std::cout << '\n';
  std::cout.flush();
  return code;
}
