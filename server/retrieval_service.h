// RetrievalService (optower.v1) on gRPC's callback API. Each handler times the call, converts the
// request, delegates to RetrievalEngine and converts the status with ToGrpcStatus — nothing else.
// Handlers run inline on gRPC's callback threads: Retrieve and Feedback are short (sub-millisecond
// plus, in synchronous durability, one log commit).
//
// Thread safety: the engine and metrics are shared and thread-safe; both are borrowed and must
// outlive the grpc::Server this service is registered with.
#ifndef OPTOWER_SERVER_RETRIEVAL_SERVICE_H_
#define OPTOWER_SERVER_RETRIEVAL_SERVICE_H_

#include "core/retrieval_engine.h"
#include "optower/v1/optower.grpc.pb.h"
#include "server/server_metrics.h"

namespace optower::server {

class RetrievalServiceImpl final : public v1::RetrievalService::CallbackService {
 public:
  RetrievalServiceImpl(const RetrievalEngine* engine, ServerMetrics* metrics)
      : engine_(engine), metrics_(metrics) {}

  grpc::ServerUnaryReactor* Retrieve(grpc::CallbackServerContext* context,
                                     const v1::RetrieveRequest* request,
                                     v1::RetrieveResponse* response) override;
  grpc::ServerUnaryReactor* Feedback(grpc::CallbackServerContext* context,
                                     const v1::FeedbackRequest* request,
                                     v1::FeedbackResponse* response) override;

 private:
  const RetrievalEngine* const engine_;
  ServerMetrics* const metrics_;
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_RETRIEVAL_SERVICE_H_
