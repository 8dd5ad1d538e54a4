// The one place an absl::Status becomes a grpc::Status (handlers call nothing else to convert).
// Both use the canonical code space (google.rpc.Code), so the code maps one to one; an OK status
// maps to grpc::Status::OK. The message is passed through, bounded to kMaxStatusMessageBytes
// (EchoValue): a message that echoes a caller's value can never grow with it.
#ifndef OPTOWER_SERVER_STATUS_UTIL_H_
#define OPTOWER_SERVER_STATUS_UTIL_H_

#include <cstddef>
#include <string>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace optower::server {

inline constexpr size_t kMaxEchoBytes = 64;
inline constexpr size_t kMaxStatusMessageBytes = 1024;

// `value` for an error message: unchanged up to `max_bytes`, else its first max_bytes bytes and
// "…(N bytes)". Use it for every caller-supplied string an error message repeats.
std::string EchoValue(absl::string_view value, size_t max_bytes = kMaxEchoBytes);

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_STATUS_UTIL_H_
