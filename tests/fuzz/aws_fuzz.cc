// AWS inputs: the shared credentials file (INI) and EC2's XML answers
// (DescribeRouteTables, error documents).
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "agent/backend/awsvpc/ec2_client.h"
#include "agent/cloud/aws_credentials.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view s(reinterpret_cast<const char*>(data), size);
  (void)weft::cloud::ParseSharedCredentials(s, "default");
  (void)weft::cloud::ParseSharedCredentials(s, "weft");
  (void)weft::agent::awsvpc::ParseDescribeRouteTables(s);
  (void)weft::agent::awsvpc::Ec2ErrorStatus("CreateRoute", 400, s);
  return 0;
}
