#include "server/retrieval_service.h"

#include "absl/time/clock.h"
#include "core/base/status_macros.h"
#include "server/call_deadline.h"
#include "server/proto_convert.h"
#include "server/raw_rpc.h"
#include "server/status_util.h"

namespace optower::server {
namespace {

absl::Status DoRetrieve(const RetrievalEngine& engine, const v1::RetrieveRequest& request,
                        absl::Time deadline, grpc::ByteBuffer* wire_response) {
  ASSIGN_OR_RETURN(const RetrieveResult result, engine.Retrieve(FromProto(request), deadline));
  v1::RetrieveResponse response;
  ToProto(result, &response);
  return SerializeToWire(response, wire_response);
}

absl::Status DoFeedback(const RetrievalEngine& engine, const v1::FeedbackRequest& request,
                        absl::Time deadline, grpc::ByteBuffer* wire_response) {
  ASSIGN_OR_RETURN(const FeedbackResult result, engine.Feedback(FromProto(request), deadline));
  v1::FeedbackResponse response;
  ToProto(result, &response);
  return SerializeToWire(response, wire_response);
}

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, RpcStat* stat,
                                 absl::Time start, const absl::Status& status) {
  stat->Record(absl::Now() - start, status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

absl::Status RetrievalServiceImpl::Authenticate(const grpc::CallbackServerContext* context) const {
  return auth_ != nullptr ? auth_->CheckRetrieve(context->client_metadata()) : absl::OkStatus();
}

grpc::ServerUnaryReactor* RetrievalServiceImpl::Retrieve(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request,
                                                         grpc::ByteBuffer* response) {
  const absl::Time start = absl::Now();
  v1::RetrieveRequest parsed;
  absl::Status status =
      AuthenticateAndParse(Authenticate(context), *request,
                           {"Retrieve", "max_retrieve_bytes", limits_.max_retrieve_bytes}, &parsed);
  if (status.ok()) status = RefuseServing(limits_.role, "Retrieve");
  if (status.ok()) status = DoRetrieve(*engine_, parsed, CallDeadline(*context), response);
  return Finish(context, &metrics_->retrieve, start, status);
}

grpc::ServerUnaryReactor* RetrievalServiceImpl::Feedback(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request,
                                                         grpc::ByteBuffer* response) {
  const absl::Time start = absl::Now();
  v1::FeedbackRequest parsed;
  absl::Status status =
      AuthenticateAndParse(Authenticate(context), *request,
                           {"Feedback", "max_feedback_bytes", limits_.max_feedback_bytes}, &parsed);
  if (status.ok()) status = RefuseServing(limits_.role, "Feedback");
  if (status.ok()) status = DoFeedback(*engine_, parsed, CallDeadline(*context), response);
  return Finish(context, &metrics_->feedback, start, status);
}

}  // namespace optower::server
