// RetrievalService (optower.v1) on gRPC's callback API, with raw (grpc::ByteBuffer) handlers so
// that nothing is parsed before the caller is authenticated and the request's size is checked
// (server/raw_rpc.h, docs/SECURITY.md "Limits"). Each handler times the call, then: the retrieve
// token (AuthPolicy::CheckRetrieve, when one is configured) -> the wire size against
// max_retrieve_bytes / max_feedback_bytes -> parse -> convert -> RetrievalEngine -> serialize the
// response; the status is converted with ToGrpcStatus — nothing else.
// Handlers run inline on gRPC's callback threads: Retrieve and Feedback are short (sub-millisecond
// plus, in synchronous durability, one log commit).
//
// Thread safety: the engine and metrics are shared and thread-safe; the engine, metrics and auth
// policy are borrowed and must outlive the grpc::Server this service is registered with.
#ifndef OPTOWER_SERVER_RETRIEVAL_SERVICE_H_
#define OPTOWER_SERVER_RETRIEVAL_SERVICE_H_

#include <cstdint>

#include "core/serving/retrieval_engine.h"
#include "optower/v1/optower.grpc.pb.h"
#include "server/auth.h"
#include "server/server_metrics.h"
#include "server/server_role.h"

namespace optower::server {

// Wire-size limits of the two RPCs (ServerConfig max_retrieve_bytes / max_feedback_bytes).
struct RetrievalServiceLimits {
  int64_t max_retrieve_bytes = 64 << 10;
  int64_t max_feedback_bytes = 1 << 20;
  // A trainer (role=train) answers Retrieve and Feedback FAILED_PRECONDITION, after the token
  // check (server/server_role.h).
  ServerRole role = ServerRole::kAll;
};

class RetrievalServiceImpl final
    : public v1::RetrievalService::WithRawCallbackMethod_Retrieve<
          v1::RetrievalService::WithRawCallbackMethod_Feedback<v1::RetrievalService::Service>> {
 public:
  using Limits = RetrievalServiceLimits;
  // `auth` may be null (no token required).
  RetrievalServiceImpl(const RetrievalEngine* engine, ServerMetrics* metrics,
                       const AuthPolicy* auth = nullptr, Limits limits = Limits())
      : engine_(engine), metrics_(metrics), auth_(auth), limits_(limits) {}

  grpc::ServerUnaryReactor* Retrieve(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Feedback(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;

 private:
  absl::Status Authenticate(const grpc::CallbackServerContext* context) const;

  const RetrievalEngine* const engine_;
  ServerMetrics* const metrics_;
  const AuthPolicy* const auth_;
  const Limits limits_;
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_RETRIEVAL_SERVICE_H_
