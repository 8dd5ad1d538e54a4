// Per-RPC server-side statistics, shared by the services: the latency histogram that GetStats
// summarises and, when attached, the RPC's Prometheus counters by status code
// (server/prometheus_exporter.h, docs/METRICS.md).
// Thread safety: Record is lock-free; `prometheus` is set before the server accepts calls and not
// changed afterwards; the struct itself is never resized.
#ifndef OPTOWER_SERVER_SERVER_METRICS_H_
#define OPTOWER_SERVER_SERVER_METRICS_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/latency_histogram.h"
#include "server/prometheus_exporter.h"

namespace optower::server {

// One RPC method.
struct RpcStat {
  // One finished call (handler start to Finish) and its status.
  void Record(absl::Duration latency, const absl::Status& status) {
    latency_histogram.Record(latency, status.ok());
    if (prometheus != nullptr) prometheus->Record(status.code(), latency);
  }

  LatencyHistogram latency_histogram;
  RpcMetrics* prometheus = nullptr;  // borrowed; null = GetStats only
};

struct ServerMetrics {
  RpcStat retrieve;
  RpcStat feedback;
  RpcStat upsert_items;
  RpcStat delete_items;
  RpcStat get_stats;
  RpcStat trigger_retrain;
  RpcStat watch_training;  // whole stream: start to Finish
  RpcStat get_training_job;
  RpcStat list_training_jobs;
  RpcStat list_models;
  RpcStat rollback;  // includes the wait for the admin worker and the index build

  // Points every RpcStat at `exporter`'s recorder of the same method (the proto names).
  void AttachPrometheus(const PrometheusExporter& exporter) {
    const std::pair<const char*, RpcStat*> all[] = {
        {"Retrieve", &retrieve},           {"Feedback", &feedback},
        {"UpsertItems", &upsert_items},    {"DeleteItems", &delete_items},
        {"GetStats", &get_stats},          {"TriggerRetrain", &trigger_retrain},
        {"WatchTraining", &watch_training}, {"GetTrainingJob", &get_training_job},
        {"ListTrainingJobs", &list_training_jobs}, {"ListModels", &list_models},
        {"Rollback", &rollback}};
    for (const auto& [method, stat] : all) stat->prometheus = exporter.rpc(method);
  }
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_SERVER_METRICS_H_
