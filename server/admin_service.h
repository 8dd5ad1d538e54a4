// AdminService (optower.v1) on gRPC's callback API: UpsertItems, DeleteItems, GetStats.
//
// Catalog changes rebuild the item index (seconds to minutes for large approximate indexes), which
// must not occupy one of gRPC's callback threads: they run one at a time on this service's own worker
// thread, which finishes the call when the new snapshot is published. GetStats runs inline.
// The trainer's RPCs (TriggerRetrain, WatchTraining, ...) belong here too when they exist.
//
// Thread safety: handlers may be called concurrently. The engine, event log and metrics are borrowed
// and must outlive this service; the service must outlive the grpc::Server it is registered with
// (Stop() is called after the server's Shutdown returned; the destructor calls it too).
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
#include "core/retrieval_engine.h"
#include "optower/v1/optower.grpc.pb.h"
#include "server/server_metrics.h"

namespace optower::server {

class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  struct Info {
    std::string event_log_path;
    std::string durability;  // "group" | "sync"
    absl::Time started;
  };
  // `event_log` may be null (engine without logging).
  AdminServiceImpl(RetrievalEngine* engine, const EventLog* event_log, ServerMetrics* metrics,
                   Info info);
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

  // Runs what is queued, then stops the worker; later catalog calls fail with UNAVAILABLE.
  // Idempotent.
  void Stop();

 private:
  // Queues `job` for the worker; false once stopped.
  bool Offload(std::function<void()> job);
  void WorkerLoop();
  void FillStats(v1::GetStatsResponse* response) const;

  RetrievalEngine* const engine_;
  const EventLog* const event_log_;
  ServerMetrics* const metrics_;
  const Info info_;

  absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_ADMIN_SERVICE_H_
