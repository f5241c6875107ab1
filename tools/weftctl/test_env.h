#pragma once
// For weftctl's tests: the process environment without any WEFT_* variable for
// the life of the object (the runner's own settings must not leak into the
// tests), then as it was.

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"

extern char** environ;

namespace weft::weftctl {

class CleanWeftEnvironment {
 public:
  CleanWeftEnvironment() {
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      const size_t eq = entry.find('=');
      if (absl::StartsWith(entry, "WEFT_") && eq != std::string::npos) {
        saved_.emplace_back(entry.substr(0, eq), entry.substr(eq + 1));
      }
    }
    for (const auto& [name, value] : saved_) unsetenv(name.c_str());
  }
  ~CleanWeftEnvironment() {
    for (const std::string& name : set_) unsetenv(name.c_str());
    for (const auto& [name, value] : saved_) setenv(name.c_str(), value.c_str(), 1);
  }
  CleanWeftEnvironment(const CleanWeftEnvironment&) = delete;
  CleanWeftEnvironment& operator=(const CleanWeftEnvironment&) = delete;

  void Set(const std::string& name, const std::string& value) {
    setenv(name.c_str(), value.c_str(), 1);
    set_.push_back(name);
  }

 private:
  std::vector<std::pair<std::string, std::string>> saved_;
  std::vector<std::string> set_;
};

}  // namespace weft::weftctl
