// AdminService (optower.v1) on gRPC's callback API: catalog changes (UpsertItems, DeleteItems),
// GetStats, and the trainer's RPCs (TriggerRetrain, WatchTraining, GetTrainingJob,
// ListTrainingJobs, ListModels, Rollback).
//
// Calls that rebuild the item index (UpsertItems, DeleteItems, Rollback: seconds to minutes for
// large approximate indexes) must not occupy one of gRPC's callback threads: they run one at a
// time on this service's own worker thread, which finishes the call when the new snapshot is
// published. WatchTraining streams from a thread of its own per call (server/training_watch.h).
// Everything else is short and runs inline: GetStats, TriggerRetrain (queues a job and returns),
// GetTrainingJob, ListTrainingJobs, ListModels (reads the small manifest files of the store).
// Handlers check the caller's bearer token (AuthPolicy::CheckAdmin, docs/SECURITY.md) before
// anything else, then validate, convert, delegate to core and convert the status with ToGrpcStatus.
//
// Without a trainer (TrainerConfig.disabled) the training RPCs answer FAILED_PRECONDITION;
// ListModels still lists the store.
//
// Thread safety: handlers may be called concurrently. Everything in Deps is borrowed and must
// outlive this service; the service must outlive the grpc::Server it is registered with (Stop() is
// called after the server's Shutdown returned; the destructor calls it too).
#ifndef OPTOWER_SERVER_ADMIN_SERVICE_H_
#define OPTOWER_SERVER_ADMIN_SERVICE_H_

#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/event_log.h"
#include "core/model_store.h"
#include "core/retrieval_engine.h"
#include "core/trainer.h"
#include "optower/v1/optower.grpc.pb.h"
#include "server/auth.h"
#include "server/model_publisher.h"
#include "server/server_metrics.h"
#include "server/training_watch.h"

namespace optower::server {

class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  struct Deps {
    RetrievalEngine* engine = nullptr;      // required
    const EventLog* event_log = nullptr;    // null: engine without logging
    ServerMetrics* metrics = nullptr;       // required
    const ModelStore* store = nullptr;      // null: no model store (ListModels fails)
    Trainer* trainer = nullptr;             // null: no trainer (training RPCs fail)
    const ModelPublisher* publisher = nullptr;  // optional: served_trained, publications
    const AuthPolicy* auth = nullptr;       // null: no token required
  };
  struct Info {
    std::string event_log_path;
    std::string durability;  // "group" | "sync"
    absl::Time started;
  };
  AdminServiceImpl(Deps deps, Info info);
  ~AdminServiceImpl() override;

  grpc::ServerUnaryReactor* UpsertItems(grpc::CallbackServerContext* context,
                                        const v1::UpsertItemsRequest* request,
                                        v1::UpsertItemsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteItems(grpc::CallbackServerContext* context,
                                        const v1::DeleteItemsRequest* request,
                                        v1::DeleteItemsResponse* response) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const v1::GetStatsRequest* request,
                                     v1::GetStatsResponse* response) override;
  grpc::ServerUnaryReactor* TriggerRetrain(grpc::CallbackServerContext* context,
                                           const v1::TriggerRetrainRequest* request,
                                           v1::TriggerRetrainResponse* response) override;
  grpc::ServerWriteReactor<v1::TrainingEvent>* WatchTraining(
      grpc::CallbackServerContext* context, const v1::WatchTrainingRequest* request) override;
  grpc::ServerUnaryReactor* GetTrainingJob(grpc::CallbackServerContext* context,
                                           const v1::GetTrainingJobRequest* request,
                                           v1::TrainingJob* response) override;
  grpc::ServerUnaryReactor* ListTrainingJobs(grpc::CallbackServerContext* context,
                                             const v1::ListTrainingJobsRequest* request,
                                             v1::ListTrainingJobsResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* Rollback(grpc::CallbackServerContext* context,
                                     const v1::RollbackRequest* request,
                                     v1::RollbackResponse* response) override;

  // Runs what is queued, stops the worker, ends live WatchTraining streams (UNAVAILABLE) and waits
  // for them; later catalog/rollback calls fail with UNAVAILABLE. Idempotent.
  void Stop();

 private:
  // Queues `job` for the worker; false once stopped.
  bool Offload(std::function<void()> job);
  void WorkerLoop();
  void FillStats(v1::GetStatsResponse* response) const;
  // UNAUTHENTICATED unless the call carries the admin token (when one is configured).
  absl::Status Authenticate(const grpc::CallbackServerContext* context) const;
  // Authenticates, runs `work` on the worker thread and finishes the call with its status;
  // UNAVAILABLE (naming `method`) once stopped.
  grpc::ServerUnaryReactor* RunOnWorker(grpc::CallbackServerContext* context, const char* method,
                                        RpcStat* stat, std::function<absl::Status()> work);
  // Finishes a call inline with `status` and records it.
  grpc::ServerUnaryReactor* FinishInline(grpc::CallbackServerContext* context, RpcStat* stat,
                                         absl::Time start, const absl::Status& status);

  const Deps deps_;
  const Info info_;

  absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
  WatchRegistry watches_;
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_ADMIN_SERVICE_H_
