// LoadGenerator: a gRPC load generator for optower's Retrieve, on the callback (async) client API
// over several channels, for bench/optower_bench.cc.
//
// Two modes:
//   closed loop  (rate_qps == 0): `concurrency` calls are outstanding at all times; each completion
//                issues the next call. Measures throughput at a fixed number of outstanding requests.
//   open loop    (rate_qps > 0):  calls are issued at a fixed rate by a pacing thread (at most
//                `concurrency` outstanding; when that cap is hit the pacer waits). A call's latency
//                is measured from its *scheduled* start, so a stalled server shows up as latency
//                instead of silently lowering the offered load (no coordinated omission).
// Every run is bounded by a duration AND a request count, whichever comes first, and the wait for
// in-flight calls at the end is bounded too.
//
// Thread safety: Run may be called from one thread at a time; callbacks run on gRPC's threads.
#ifndef OPTOWER_BENCH_LOAD_GENERATOR_H_
#define OPTOWER_BENCH_LOAD_GENERATOR_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/time/time.h"
#include "optower/v1/optower.grpc.pb.h"

namespace optower::bench {

struct LoadSpec {
  int concurrency = 1;     // closed loop: outstanding calls; open loop: cap on outstanding calls
  double rate_qps = 0;     // > 0: open loop at this rate
  absl::Duration duration = absl::Seconds(5);
  int64_t max_requests = 100000;
  int32_t k = 10;
  absl::Duration deadline = absl::Seconds(10);  // per call
  bool record_acks = false;  // keep (request_id, item ids) of every OK response
  // Optional: set to true by another thread to end the run early (it is still time/count bounded).
  const std::atomic<bool>* stop = nullptr;
};

struct CallRecord {
  int64_t start_ns = 0;  // since the run's start (scheduled start in open loop)
  int64_t end_ns = -1;   // -1: not completed
  int32_t code = -1;     // grpc::StatusCode; -1 = not completed
  uint32_t version = 0;  // hash of the response's model_version (0 = none)
};

struct Ack {
  std::string request_id;
  std::vector<int64_t> item_ids;
};

struct LoadResult {
  int64_t issued = 0;
  int64_t completed = 0;
  int64_t ok = 0;
  int64_t failed = 0;      // completed with a non-OK status
  int64_t unfinished = 0;  // still in flight when the bounded drain gave up
  std::map<int, int64_t> failures_by_code;
  std::string first_error;
  int64_t t0_ns = 0;       // the run's start on the steady clock (ns since its epoch)
  double elapsed_s = 0;    // run start .. last completion
  double cpu_s = 0;        // process CPU (user+sys) over the run: client and in-process server
  std::vector<CallRecord> records;  // [issued], in issue order
  std::vector<Ack> acks;            // with record_acks: one per OK call (unordered)
  int64_t served_items_acked = 0;   // items in OK responses

  // Latency quantiles (ms) of OK calls whose start is in [from_ns, to_ns).
  struct Quantiles {
    int64_t n = 0;
    double p50 = 0, p95 = 0, p99 = 0, max = 0, mean = 0;
  };
  Quantiles LatencyMs(int64_t from_ns = 0, int64_t to_ns = INT64_MAX) const;
  // The same over the union of [from, to) windows.
  Quantiles LatencyMsIn(const std::vector<std::pair<int64_t, int64_t>>& windows) const;
  // OK calls per second over the run.
  double Qps() const { return elapsed_s > 0 ? static_cast<double>(ok) / elapsed_s : 0; }
};

// Steady-clock nanoseconds since its epoch (the clock of LoadResult::t0_ns).
int64_t SteadyNowNs();
// The CallRecord::version tag of a model version string.
uint32_t VersionTag(const std::string& model_version);

class LoadGenerator {
 public:
  // `address` "host:port". `channels` separate HTTP/2 connections (distinct channel args, local
  // subchannel pools). `contexts`: [n_contexts, dim] row-major request contexts, used round robin.
  LoadGenerator(const std::string& address, int channels, std::vector<float> contexts, int dim);
  ~LoadGenerator();

  // Waits (bounded) until every channel is connected. False on timeout.
  bool WaitConnected(absl::Duration timeout);

  LoadResult Run(const LoadSpec& spec);

  int channels() const { return static_cast<int>(stubs_.size()); }

 private:
  struct RunState;
  void FillRequest(int64_t index, v1::RetrieveRequest* request, int32_t k) const;

  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<v1::RetrievalService::Stub>> stubs_;
  std::vector<float> contexts_;
  int dim_;
  int64_t n_contexts_;
};

}  // namespace optower::bench

#endif  // OPTOWER_BENCH_LOAD_GENERATOR_H_
