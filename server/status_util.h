// The one place an absl::Status becomes a grpc::Status (handlers call nothing else to convert).
// Both use the canonical code space (google.rpc.Code), so the code maps one to one and the message
// is passed through unchanged; an OK status maps to grpc::Status::OK.
#ifndef OPTOWER_SERVER_STATUS_UTIL_H_
#define OPTOWER_SERVER_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace optower::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_STATUS_UTIL_H_
