#include "server/status_util.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace optower::server {

std::string EchoValue(absl::string_view value, size_t max_bytes) {
  if (value.size() <= max_bytes) return std::string(value);
  return absl::StrCat(value.substr(0, max_bytes), "\u2026(", value.size(), " bytes)");
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl::StatusCode and grpc::StatusCode share the canonical numbering 1..16; anything outside it
  // (a future absl code) is reported as UNKNOWN rather than as a made-up number.
  const int code = static_cast<int>(status.code());
  const grpc::StatusCode grpc_code = (code >= grpc::StatusCode::CANCELLED &&
                                      code <= grpc::StatusCode::UNAUTHENTICATED)
                                         ? static_cast<grpc::StatusCode>(code)
                                         : grpc::StatusCode::UNKNOWN;
  return grpc::Status(grpc_code, EchoValue(status.message(), kMaxStatusMessageBytes));
}

}  // namespace optower::server
