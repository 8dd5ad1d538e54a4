// OptowerClient: a small synchronous C++ API over optower's gRPC stubs. Every call returns
// absl::StatusOr; a gRPC error becomes an absl::Status with the same canonical code and the server's
// message (e.g. InvalidArgument "k=0: k must be in [1, 100]").
//
//   ASSIGN_OR_RETURN(auto client, OptowerClient::Connect({.address = "127.0.0.1:50051"}));
//   v1::RetrieveRequest request;
//   request.mutable_context()->add_dense(0.5f);
//   request.set_k(10);
//   ASSIGN_OR_RETURN(v1::RetrieveResponse response, client->Retrieve(request));
//
// Per call, CallOptions set the deadline (default: ClientOptions::default_deadline) and extra
// metadata (e.g. an "authorization" header); ClientOptions::metadata is sent with every call.
//
// Thread safety: an OptowerClient may be used from any number of threads at once (one channel,
// shared; gRPC multiplexes calls over it).
#ifndef OPTOWER_CLIENT_OPTOWER_CLIENT_H_
#define OPTOWER_CLIENT_OPTOWER_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "optower/v1/optower.grpc.pb.h"

namespace optower::client {

namespace v1 = ::optower::v1;

using Metadata = std::vector<std::pair<std::string, std::string>>;

struct ClientOptions {
  std::string address;  // "host:port", required
  // Used when a call sets no deadline of its own; must be > 0.
  absl::Duration default_deadline = absl::Seconds(10);
  Metadata metadata;  // sent with every call (keys lower-case, as gRPC requires)
  // Null = plaintext (grpc::InsecureChannelCredentials()); MakeChannelCredentials
  // (client/tls_credentials.h) builds TLS ones from PEM files.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  int max_receive_message_bytes = 64 << 20;
  int max_send_message_bytes = 64 << 20;
  // Wait for the channel to connect instead of failing fast with UNAVAILABLE while the server starts.
  bool wait_for_ready = false;
};

struct CallOptions {
  absl::Duration deadline = absl::ZeroDuration();  // <= 0: ClientOptions::default_deadline
  Metadata metadata;                               // in addition to ClientOptions::metadata
};

class OptowerClient {
 public:
  // Creates the channel (it connects lazily, on the first call). InvalidArgument for an empty
  // address or a non-positive default deadline.
  static absl::StatusOr<std::unique_ptr<OptowerClient>> Connect(const ClientOptions& options);

  absl::StatusOr<v1::RetrieveResponse> Retrieve(const v1::RetrieveRequest& request,
                                                const CallOptions& call = {}) const;
  // Convenience: a dense context and k.
  absl::StatusOr<v1::RetrieveResponse> Retrieve(const std::vector<float>& context, int32_t k,
                                                const CallOptions& call = {}) const;
  absl::StatusOr<v1::FeedbackResponse> Feedback(const v1::FeedbackRequest& request,
                                                const CallOptions& call = {}) const;
  // Convenience: one (request id, item, reward) triple.
  absl::StatusOr<v1::FeedbackResponse> Feedback(const std::string& request_id, int64_t item_id,
                                                double reward, const CallOptions& call = {}) const;
  absl::StatusOr<v1::UpsertItemsResponse> UpsertItems(const v1::UpsertItemsRequest& request,
                                                      const CallOptions& call = {}) const;
  absl::StatusOr<v1::DeleteItemsResponse> DeleteItems(const v1::DeleteItemsRequest& request,
                                                      const CallOptions& call = {}) const;
  absl::StatusOr<v1::GetStatsResponse> GetStats(const CallOptions& call = {}) const;

  // ---- The trainer (docs/TRAINING.md) ----
  // Starts a retraining job; returns its id at once. FailedPrecondition naming the running job when
  // one is queued or running (or when the server runs without a trainer). `force` promotes even if
  // the OPE gate rejects.
  absl::StatusOr<std::string> TriggerRetrain(bool force, const CallOptions& call = {}) const;
  // Streams the job's progress: calls `on_event` (on this thread) for every event in order, and
  // blocks until the stream ends. OK after the final event (event.final() == true; its `state`,
  // `decision`, `reason`, `new_version` and `ope` say how the job ended — a rejected or failed job
  // is still an OK stream). NotFound for an unknown job id. The deadline (CallOptions::deadline, else
  // ClientOptions::default_deadline) bounds the whole stream: give a long one for long jobs.
  absl::Status WatchTraining(const std::string& job_id,
                             const std::function<void(const v1::TrainingEvent&)>& on_event,
                             const CallOptions& call = {}) const;
  // NotFound for an unknown (or no longer kept) job id.
  absl::StatusOr<v1::TrainingJob> GetTrainingJob(const std::string& job_id,
                                                 const CallOptions& call = {}) const;
  // Jobs kept in memory by the server, oldest first.
  absl::StatusOr<v1::ListTrainingJobsResponse> ListTrainingJobs(const CallOptions& call = {}) const;
  // Every stored model version, ascending, with the served one marked.
  absl::StatusOr<v1::ListModelsResponse> ListModels(const CallOptions& call = {}) const;
  // Serves a stored version again (returns once it is served). InvalidArgument for a malformed
  // version, NotFound for an unknown one.
  absl::Status Rollback(const std::string& version, const CallOptions& call = {}) const;

  // The standard gRPC health check of `service` ("" = the whole server).
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> CheckHealth(
      const std::string& service = "", const CallOptions& call = {}) const;

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  const ClientOptions& options() const { return options_; }

 private:
  OptowerClient(ClientOptions options, std::shared_ptr<grpc::Channel> channel);
  // Fills a ClientContext with the deadline, metadata and wait-for-ready of `call`.
  void Prepare(const CallOptions& call, grpc::ClientContext* context) const;

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::RetrievalService::Stub> retrieval_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// grpc::Status -> absl::Status (same canonical code, same message; OK -> OkStatus).
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace optower::client

#endif  // OPTOWER_CLIENT_OPTOWER_CLIENT_H_
