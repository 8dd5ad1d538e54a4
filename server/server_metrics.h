// Per-RPC server-side latency histograms, shared by the services and reported by GetStats.
// Thread safety: LatencyHistogram is lock-free; the struct itself is never resized.
#ifndef OPTOWER_SERVER_SERVER_METRICS_H_
#define OPTOWER_SERVER_SERVER_METRICS_H_

#include "server/latency_histogram.h"

namespace optower::server {

struct ServerMetrics {
  LatencyHistogram retrieve;
  LatencyHistogram feedback;
  LatencyHistogram upsert_items;
  LatencyHistogram delete_items;
  LatencyHistogram get_stats;
  LatencyHistogram trigger_retrain;
  LatencyHistogram watch_training;  // whole stream: start to Finish
  LatencyHistogram get_training_job;
  LatencyHistogram list_training_jobs;
  LatencyHistogram list_models;
  LatencyHistogram rollback;  // includes the wait for the admin worker and the index build
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_SERVER_METRICS_H_
