// weftctl: the operator's command line for a Weft controller (weftctl --help).
// Everything but the wiring of stdin/stdout/stderr is in weftctl_lib.

#include <iostream>
#include <string>
#include <vector>

#include "common/flags.h"
#include "tools/weftctl/commands.h"
#include "tools/weftctl/invocation.h"

int main(int argc, char** argv) {
  weft::SetProgramHelp(weft::weftctl::Help());
  return weft::weftctl::Main(std::vector<std::string>(argv + 1, argv + argc), {std::cin, std::cout, std::cerr});
}
