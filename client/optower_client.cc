#include "client/optower_client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"

namespace optower::client {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::StatusOr<std::unique_ptr<OptowerClient>> OptowerClient::Connect(const ClientOptions& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("address: empty (want host:port)");
  if (options.default_deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("default_deadline=",
                                                   absl::FormatDuration(options.default_deadline),
                                                   ": must be > 0"));
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  args.SetMaxSendMessageSize(options.max_send_message_bytes);
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      options.credentials != nullptr ? options.credentials : grpc::InsecureChannelCredentials();
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.address, credentials, args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("address=", options.address, ": no channel"));
  }
  return std::unique_ptr<OptowerClient>(new OptowerClient(options, std::move(channel)));
}

OptowerClient::OptowerClient(ClientOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      retrieval_(v1::RetrievalService::NewStub(channel_)),
      admin_(v1::AdminService::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)) {}

void OptowerClient::Prepare(const CallOptions& call, grpc::ClientContext* context) const {
  const absl::Duration timeout =
      call.deadline > absl::ZeroDuration() ? call.deadline : options_.default_deadline;
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  for (const auto& [key, value] : options_.metadata) context->AddMetadata(key, value);
  for (const auto& [key, value] : call.metadata) context->AddMetadata(key, value);
  if (options_.wait_for_ready) context->set_wait_for_ready(true);
}

absl::StatusOr<v1::RetrieveResponse> OptowerClient::Retrieve(const v1::RetrieveRequest& request,
                                                             const CallOptions& call) const {
  grpc::ClientContext context;
  Prepare(call, &context);
  v1::RetrieveResponse response;
  const grpc::Status status = retrieval_->Retrieve(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::RetrieveResponse> OptowerClient::Retrieve(const std::vector<float>& context,
                                                             int32_t k,
                                                             const CallOptions& call) const {
  v1::RetrieveRequest request;
  request.mutable_context()->mutable_dense()->Add(context.begin(), context.end());
  request.set_k(k);
  return Retrieve(request, call);
}

absl::StatusOr<v1::FeedbackResponse> OptowerClient::Feedback(const v1::FeedbackRequest& request,
                                                             const CallOptions& call) const {
  grpc::ClientContext context;
  Prepare(call, &context);
  v1::FeedbackResponse response;
  const grpc::Status status = retrieval_->Feedback(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::FeedbackResponse> OptowerClient::Feedback(const std::string& request_id,
                                                             int64_t item_id, double reward,
                                                             const CallOptions& call) const {
  v1::FeedbackRequest request;
  v1::FeedbackEvent* e = request.add_events();
  e->set_request_id(request_id);
  e->set_item_id(item_id);
  e->set_reward(reward);
  return Feedback(request, call);
}

absl::StatusOr<v1::UpsertItemsResponse> OptowerClient::UpsertItems(
    const v1::UpsertItemsRequest& request, const CallOptions& call) const {
  grpc::ClientContext context;
  Prepare(call, &context);
  v1::UpsertItemsResponse response;
  const grpc::Status status = admin_->UpsertItems(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::DeleteItemsResponse> OptowerClient::DeleteItems(
    const v1::DeleteItemsRequest& request, const CallOptions& call) const {
  grpc::ClientContext context;
  Prepare(call, &context);
  v1::DeleteItemsResponse response;
  const grpc::Status status = admin_->DeleteItems(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::GetStatsResponse> OptowerClient::GetStats(const CallOptions& call) const {
  grpc::ClientContext context;
  Prepare(call, &context);
  v1::GetStatsResponse response;
  const grpc::Status status = admin_->GetStats(&context, v1::GetStatsRequest(), &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<std::string> OptowerClient::TriggerRetrain(bool force,
                                                         const CallOptions& call) const {
  grpc::ClientContext context;
  Prepare(call, &context);
  v1::TriggerRetrainRequest request;
  request.set_force(force);
  v1::TriggerRetrainResponse response;
  const grpc::Status status = admin_->TriggerRetrain(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.job_id();
}

absl::Status OptowerClient::WatchTraining(
    const std::string& job_id, const std::function<void(const v1::TrainingEvent&)>& on_event,
    const CallOptions& call) const {
  grpc::ClientContext context;
  Prepare(call, &context);
  v1::WatchTrainingRequest request;
  request.set_job_id(job_id);
  std::unique_ptr<grpc::ClientReader<v1::TrainingEvent>> reader =
      admin_->WatchTraining(&context, request);
  v1::TrainingEvent event;
  bool saw_final = false;
  while (reader->Read(&event)) {
    saw_final = saw_final || event.final();
    if (on_event) on_event(event);
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) return FromGrpcStatus(status);
  if (!saw_final) {
    return absl::UnavailableError(
        absl::StrCat("WatchTraining: the stream of job ", job_id, " ended before its final event"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::TrainingJob> OptowerClient::GetTrainingJob(const std::string& job_id,
                                                              const CallOptions& call) const {
  grpc::ClientContext context;
  Prepare(call, &context);
  v1::GetTrainingJobRequest request;
  request.set_job_id(job_id);
  v1::TrainingJob response;
  const grpc::Status status = admin_->GetTrainingJob(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ListTrainingJobsResponse> OptowerClient::ListTrainingJobs(
    const CallOptions& call) const {
  grpc::ClientContext context;
  Prepare(call, &context);
  v1::ListTrainingJobsResponse response;
  const grpc::Status status =
      admin_->ListTrainingJobs(&context, v1::ListTrainingJobsRequest(), &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ListModelsResponse> OptowerClient::ListModels(const CallOptions& call) const {
  grpc::ClientContext context;
  Prepare(call, &context);
  v1::ListModelsResponse response;
  const grpc::Status status = admin_->ListModels(&context, v1::ListModelsRequest(), &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::Status OptowerClient::Rollback(const std::string& version, const CallOptions& call) const {
  grpc::ClientContext context;
  Prepare(call, &context);
  v1::RollbackRequest request;
  request.set_version(version);
  v1::RollbackResponse response;
  return FromGrpcStatus(admin_->Rollback(&context, request, &response));
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> OptowerClient::CheckHealth(
    const std::string& service, const CallOptions& call) const {
  grpc::ClientContext context;
  Prepare(call, &context);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = health_->Check(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.status();
}

}  // namespace optower::client
