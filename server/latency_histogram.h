// LatencyHistogram: lock-free counts of durations in log-spaced buckets, for the server-side
// latency that GetStats reports per RPC (and that a metrics endpoint can expose later).
//
// Buckets: [0, 1 µs), then 24 buckets per factor of 10 up to 100 s (relative width 10^(1/24) - 1
// ≈ 10%), then overflow. A quantile is the geometric middle of its bucket: about ±5% error.
//
// Thread safety: Record and every reader may run concurrently; a Snapshot is not an atomic cut
// across buckets (counts recorded during the read may or may not be included).
#ifndef OPTOWER_SERVER_LATENCY_HISTOGRAM_H_
#define OPTOWER_SERVER_LATENCY_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <cstdint>

#include "absl/time/time.h"

namespace optower::server {

class LatencyHistogram {
 public:
  static constexpr int kBucketsPerDecade = 24;
  static constexpr int kDecades = 8;  // 1 µs .. 100 s
  static constexpr int kBuckets = kBucketsPerDecade * kDecades + 2;

  void Record(absl::Duration latency, bool ok);

  struct Summary {
    int64_t count = 0;
    int64_t errors = 0;
    double mean_ms = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
  };
  Summary Summarize() const;

 private:
  static int BucketOf(double micros);
  static double BucketMiddleMs(int bucket);

  std::array<std::atomic<int64_t>, kBuckets> counts_{};
  std::atomic<int64_t> errors_{0};
  std::atomic<int64_t> total_ns_{0};
  std::atomic<int64_t> max_ns_{0};
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_LATENCY_HISTOGRAM_H_
