#include "common/version.h"

#include "absl/strings/str_cat.h"

// From the genrule //common:build_stamp (stamped or not).
extern const char kWeftBuildCommit[];
extern const char kWeftBuildTime[];

namespace weft::version {

absl::string_view Version() { return "0.1.0"; }

absl::string_view Commit() { return kWeftBuildCommit; }

absl::string_view BuildTime() { return kWeftBuildTime; }

std::string Line(absl::string_view program) {
  std::string line = absl::StrCat(program, " ", Version(), " (commit ", Commit());
  if (!BuildTime().empty()) absl::StrAppend(&line, ", built ", BuildTime());
  absl::StrAppend(&line, ")");
  return line;
}

}  // namespace weft::version
