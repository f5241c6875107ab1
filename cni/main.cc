// weft-cni: the CNI plugin. Everything is in plugin.h; this reads stdin, prints
// the answer and exits with the code the spec asks for.

#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <iterator>
#include <string>

#include "cni/cni_args.h"
#include "cni/plugin.h"

int main() {
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
