// RetrievalService (optower.v1) on gRPC's callback API. Each handler times the call, checks the
// retrieve token (AuthPolicy::CheckRetrieve, when one is configured; docs/SECURITY.md), converts
// the request, delegates to RetrievalEngine and converts the status with ToGrpcStatus — nothing else.
// Handlers run inline on gRPC's callback threads: Retrieve and Feedback are short (sub-millisecond
// plus, in synchronous durability, one log commit).
//
// Thread safety: the engine and metrics are shared and thread-safe; the engine, metrics and auth
// policy are borrowed and must outlive the grpc::Server this service is registered with.
#ifndef OPTOWER_SERVER_RETRIEVAL_SERVICE_H_
#define OPTOWER_SERVER_RETRIEVAL_SERVICE_H_

#include "core/retrieval_engine.h"
#include "optower/v1/optower.grpc.pb.h"
#include "server/auth.h"
#include "server/server_metrics.h"

namespace optower::server {

class RetrievalServiceImpl final : public v1::RetrievalService::CallbackService {
 public:
  // `auth` may be null (no token required).
  RetrievalServiceImpl(const RetrievalEngine* engine, ServerMetrics* metrics,
                       const AuthPolicy* auth = nullptr)
      : engine_(engine), metrics_(metrics), auth_(auth) {}

  grpc::ServerUnaryReactor* Retrieve(grpc::CallbackServerContext* context,
                                     const v1::RetrieveRequest* request,
                                     v1::RetrieveResponse* response) override;
  grpc::ServerUnaryReactor* Feedback(grpc::CallbackServerContext* context,
                                     const v1::FeedbackRequest* request,
                                     v1::FeedbackResponse* response) override;

 private:
  const RetrievalEngine* const engine_;
  ServerMetrics* const metrics_;
  const AuthPolicy* const auth_;
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_RETRIEVAL_SERVICE_H_
