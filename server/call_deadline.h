// CallDeadline: a gRPC call's deadline as an absl::Time, for the core calls that take one (the event
// log's waits, RetrievalEngine::Retrieve/Feedback). A call without a deadline maps to
// absl::InfiniteFuture(); the core then bounds the wait by its own limits (the event log's
// write_failure_window).
#ifndef OPTOWER_SERVER_CALL_DEADLINE_H_
#define OPTOWER_SERVER_CALL_DEADLINE_H_

#include <chrono>

#include <grpcpp/server_context.h>

#include "absl/time/time.h"

namespace optower::server {

inline absl::Time CallDeadline(const grpc::ServerContextBase& context) {
  const std::chrono::system_clock::time_point deadline = context.deadline();
  // gRPC reports "no deadline" as the largest time_point (gpr_inf_future).
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

}  // namespace optower::server

#endif  // OPTOWER_SERVER_CALL_DEADLINE_H_
