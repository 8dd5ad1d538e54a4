// PrometheusExporter: optower-server's metrics (every name, type and label is in docs/METRICS.md)
// on a MetricsRegistry (server/metrics_registry.h), optionally served on their own port by a
// MetricsHttpServer.
//
//   RPCs           optower_rpc_requests_total{method,code}, optower_rpc_duration_seconds{method,code}
//                  — recorded by the handlers through RpcMetrics::Record (lock-free after the first
//                  call with a given code);
//   sampled        serving counters, event log, model/catalog/index, trainer and the last OPE gate
//                  numbers — read from the components' own stats() at scrape time (Sources), so that
//                  nothing on the request path pushes them.
//
// Lifecycle: Create -> rpc(...) pointers handed to the services -> AttachSources once the
// components exist -> StartHttp (optional) -> StopHttp before the sources are destroyed.
//
// Thread safety: RpcMetrics::Record and Render may run concurrently from any thread. AttachSources
// and StartHttp/StopHttp are for the owner's start-up/shutdown thread.
#ifndef OPTOWER_SERVER_PROMETHEUS_EXPORTER_H_
#define OPTOWER_SERVER_PROMETHEUS_EXPORTER_H_

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/storage/event_log.h"
#include "core/serving/retrieval_engine.h"
#include "core/training/trainer.h"
#include "server/metrics_http_server.h"
#include "server/metrics_registry.h"

namespace optower::server {

class ModelPublisher;

// The Prometheus side of one RPC method: requests and latency by status code.
class RpcMetrics {
 public:
  RpcMetrics(std::string method, CounterFamily* requests, HistogramFamily* durations)
      : method_(std::move(method)), requests_(requests), durations_(durations) {}

  // One finished call. Lock-free once this (method, code) pair has been seen.
  void Record(absl::StatusCode code, absl::Duration latency);

  const std::string& method() const { return method_; }

 private:
  static constexpr int kCodes = 17;  // the canonical codes 0..16

  const std::string method_;
  CounterFamily* const requests_;
  HistogramFamily* const durations_;
  std::array<std::atomic<Counter*>, kCodes> counters_{};
  std::array<std::atomic<Histogram*>, kCodes> histograms_{};
};

class PrometheusExporter {
 public:
  // The RPC methods, as their proto names ("Retrieve", "Rollback", ...).
  static const std::vector<std::string>& Methods();

  // The components whose stats() are exported; all borrowed, each optional (absent = its metrics
  // are not written).
  struct Sources {
    const RetrievalEngine* engine = nullptr;
    const EventLog* event_log = nullptr;
    const Trainer* trainer = nullptr;
    const ModelPublisher* publisher = nullptr;
    absl::Time started;  // optower_start_time_seconds
  };

  // Registers every family. Internal only for a programming error in the names.
  static absl::StatusOr<std::unique_ptr<PrometheusExporter>> Create();
  ~PrometheusExporter();

  // The recorder of `method` (one of Methods()); null for an unknown name.
  RpcMetrics* rpc(const std::string& method) const;

  // Registers the sampled families reading `sources`. Call once.
  absl::Status AttachSources(const Sources& sources);

  // Serves Render() on GET /metrics (server/metrics_http_server.h). Errors name metrics_port.
  absl::Status StartHttp(const MetricsHttpServerOptions& options);
  int http_port() const { return http_ != nullptr ? http_->port() : 0; }
  void StopHttp();  // idempotent

  std::string Render() const { return registry_.Render(); }
  MetricsRegistry& registry() { return registry_; }

 private:
  PrometheusExporter() = default;

  MetricsRegistry registry_;
  std::map<std::string, std::unique_ptr<RpcMetrics>> rpcs_;
  std::unique_ptr<MetricsHttpServer> http_;
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_PROMETHEUS_EXPORTER_H_
