#include "server/retrieval_service.h"

#include "absl/time/clock.h"
#include "core/status_macros.h"
#include "server/call_deadline.h"
#include "server/proto_convert.h"
#include "server/status_util.h"

namespace optower::server {
namespace {

absl::Status DoRetrieve(const RetrievalEngine& engine, const v1::RetrieveRequest& request,
                        v1::RetrieveResponse* response, absl::Time deadline) {
  ASSIGN_OR_RETURN(const RetrieveResult result, engine.Retrieve(FromProto(request), deadline));
  ToProto(result, response);
  return absl::OkStatus();
}

absl::Status DoFeedback(const RetrievalEngine& engine, const v1::FeedbackRequest& request,
                        v1::FeedbackResponse* response, absl::Time deadline) {
  ASSIGN_OR_RETURN(const FeedbackResult result, engine.Feedback(FromProto(request), deadline));
  ToProto(result, response);
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* RetrievalServiceImpl::Retrieve(grpc::CallbackServerContext* context,
                                                         const v1::RetrieveRequest* request,
                                                         v1::RetrieveResponse* response) {
  const absl::Time start = absl::Now();
  absl::Status status = auth_ != nullptr ? auth_->CheckRetrieve(context->client_metadata())
                                         : absl::OkStatus();
  if (status.ok()) status = DoRetrieve(*engine_, *request, response, CallDeadline(*context));
  metrics_->retrieve.Record(absl::Now() - start, status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* RetrievalServiceImpl::Feedback(grpc::CallbackServerContext* context,
                                                         const v1::FeedbackRequest* request,
                                                         v1::FeedbackResponse* response) {
  const absl::Time start = absl::Now();
  absl::Status status = auth_ != nullptr ? auth_->CheckRetrieve(context->client_metadata())
                                         : absl::OkStatus();
  if (status.ok()) status = DoFeedback(*engine_, *request, response, CallDeadline(*context));
  metrics_->feedback.Record(absl::Now() - start, status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace optower::server
