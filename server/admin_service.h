// AdminService (optower.v1) on gRPC's callback API: catalog changes (UpsertItems, DeleteItems),
// GetStats, and the trainer's RPCs (TriggerRetrain, WatchTraining, GetTrainingJob,
// ListTrainingJobs, ListModels, Rollback).
//
// Calls that rebuild the item index (UpsertItems, DeleteItems, Rollback: seconds to minutes for
// large approximate indexes) must not occupy one of gRPC's callback threads: they run one at a
// time on this service's own worker thread, which finishes the call when the new snapshot is
// published; at most Info::max_queue calls wait (RESOURCE_EXHAUSTED beyond), and a call whose
// deadline passed or whose client went away while it waited is not run. WatchTraining streams from
// a thread of its own per call (server/training_watch.h), at most Info::max_watchers at a time.
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

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/storage/event_log.h"
#include "core/storage/model_store.h"
#include "core/serving/retrieval_engine.h"
#include "core/training/trainer.h"
#include "optower/v1/optower.grpc.pb.h"
#include "server/auth.h"
#include "server/model_publisher.h"
#include "server/server_metrics.h"
#include "server/server_role.h"
#include "server/training_watch.h"

namespace optower::server {

// Every unary RPC is a raw (grpc::ByteBuffer) method: the handler checks the admin token, then
// the request's wire size (UpsertItems: max_receive_message_bytes; the others: max_admin_bytes),
// and only then parses (server/raw_rpc.h). WatchTraining stays typed: its request has no repeated
// field, so gRPC's parse costs about its wire size.
using AdminServiceBase = v1::AdminService::WithRawCallbackMethod_UpsertItems<
    v1::AdminService::WithRawCallbackMethod_DeleteItems<
        v1::AdminService::WithRawCallbackMethod_GetStats<
            v1::AdminService::WithRawCallbackMethod_TriggerRetrain<
                v1::AdminService::WithCallbackMethod_WatchTraining<
                    v1::AdminService::WithRawCallbackMethod_GetTrainingJob<
                        v1::AdminService::WithRawCallbackMethod_ListTrainingJobs<
                            v1::AdminService::WithRawCallbackMethod_ListModels<
                                v1::AdminService::WithRawCallbackMethod_Rollback<
                                    v1::AdminService::Service>>>>>>>>>;

class AdminServiceImpl final : public AdminServiceBase {
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
    // Limits (ServerConfig; docs/SECURITY.md "Limits").
    int64_t max_admin_bytes = 64 << 10;   // wire size of every admin request but UpsertItems
    int64_t max_upsert_bytes = 64 << 20;  // UpsertItems (= max_receive_message_bytes)
    int max_queue = 16;     // calls waiting for the worker; RESOURCE_EXHAUSTED beyond
    int max_watchers = 16;  // concurrent WatchTraining streams; RESOURCE_EXHAUSTED beyond
    // Scale-out (docs/SCALING.md): a serving replica (role=serve) answers the admin writes
    // (UpsertItems, DeleteItems, TriggerRetrain, Rollback) FAILED_PRECONDITION naming
    // trainer_address, after the token check. scale_out fills GetStats.scale_out (optional).
    ServerRole role = ServerRole::kAll;
    std::string trainer_address;
    std::function<void(v1::ScaleOutStats*)> scale_out;
  };
  AdminServiceImpl(Deps deps, Info info);
  ~AdminServiceImpl() override;

  grpc::ServerUnaryReactor* UpsertItems(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* DeleteItems(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* TriggerRetrain(grpc::CallbackServerContext* context,
                                           const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<v1::TrainingEvent>* WatchTraining(
      grpc::CallbackServerContext* context, const v1::WatchTrainingRequest* request) override;
  grpc::ServerUnaryReactor* GetTrainingJob(grpc::CallbackServerContext* context,
                                           const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListTrainingJobs(grpc::CallbackServerContext* context,
                                             const grpc::ByteBuffer* request,
                                             grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Rollback(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;

  // Runs what is queued, stops the worker, ends live WatchTraining streams (UNAVAILABLE) and waits
  // for them; later catalog/rollback calls fail with UNAVAILABLE. Idempotent.
  void Stop();

  // Exposed for tests: queues `job` on the worker like a catalog call (same bound, same errors).
  absl::Status QueueForTest(std::function<void()> job) { return Offload("test", std::move(job)); }

 private:
  // Queues `job` for the worker: OK, UNAVAILABLE once stopped, RESOURCE_EXHAUSTED when
  // info.max_queue calls are already waiting (both naming `method`).
  absl::Status Offload(const char* method, std::function<void()> job);
  void WorkerLoop();
  void FillStats(v1::GetStatsResponse* response) const;
  // UNAUTHENTICATED unless the call carries the admin token (when one is configured).
  absl::Status Authenticate(const grpc::CallbackServerContext* context) const;
  // The shape of every unary handler: authenticate, check the wire size, parse a Request, then
  // run `work(request, &response)` inline or (on_worker) on the worker thread, serialize the
  // response and finish the call. On the worker, a call whose deadline passed or whose client
  // cancelled while it waited is finished with DEADLINE_EXCEEDED / CANCELLED without running.
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Serve(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* wire, grpc::ByteBuffer* out,
      const char* method, RpcStat* stat, bool on_worker,
      std::function<absl::Status(const Request&, Response*)> work);
  // Finishes a call inline with `status` and records it.
  grpc::ServerUnaryReactor* FinishInline(grpc::CallbackServerContext* context, RpcStat* stat,
                                         absl::Time start, const absl::Status& status);

  const Deps deps_;
  const Info info_;

  absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
  WatchRegistry watches_{info_.max_watchers};
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_ADMIN_SERVICE_H_
