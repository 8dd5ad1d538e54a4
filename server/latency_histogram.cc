#include "server/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace optower::server {

int LatencyHistogram::BucketOf(double micros) {
  if (!(micros >= 1.0)) return 0;
  const int b = 1 + static_cast<int>(std::floor(std::log10(micros) * kBucketsPerDecade));
  return std::min(b, kBuckets - 1);
}

double LatencyHistogram::BucketMiddleMs(int bucket) {
  if (bucket == 0) return 0.0005;
  // Bucket b >= 1 covers [10^((b-1)/24), 10^(b/24)) µs; report its geometric middle.
  const double lo_exp = static_cast<double>(bucket - 1) / kBucketsPerDecade;
  return std::pow(10.0, lo_exp + 0.5 / kBucketsPerDecade) / 1000.0;
}

void LatencyHistogram::Record(absl::Duration latency, bool ok) {
  const int64_t ns = std::max<int64_t>(0, absl::ToInt64Nanoseconds(latency));
  counts_[BucketOf(static_cast<double>(ns) / 1000.0)].fetch_add(1, std::memory_order_relaxed);
  if (!ok) errors_.fetch_add(1, std::memory_order_relaxed);
  total_ns_.fetch_add(ns, std::memory_order_relaxed);
  int64_t seen = max_ns_.load(std::memory_order_relaxed);
  while (ns > seen && !max_ns_.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
  }
}

LatencyHistogram::Summary LatencyHistogram::Summarize() const {
  Summary s;
  std::array<int64_t, kBuckets> counts;
  for (int b = 0; b < kBuckets; ++b) {
    counts[b] = counts_[b].load(std::memory_order_relaxed);
    s.count += counts[b];
  }
  s.errors = errors_.load(std::memory_order_relaxed);
  s.max_ms = static_cast<double>(max_ns_.load(std::memory_order_relaxed)) / 1e6;
  if (s.count == 0) return s;
  s.mean_ms = static_cast<double>(total_ns_.load(std::memory_order_relaxed)) / 1e6 /
              static_cast<double>(s.count);
  auto quantile = [&](double q) {
    // The smallest bucket whose cumulative count reaches ceil(q * count).
    const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * s.count)));
    int64_t cum = 0;
    for (int b = 0; b < kBuckets; ++b) {
      cum += counts[b];
      if (cum >= rank) return std::min(BucketMiddleMs(b), s.max_ms);
    }
    return s.max_ms;
  };
  s.p50_ms = quantile(0.50);
  s.p95_ms = quantile(0.95);
  s.p99_ms = quantile(0.99);
  return s;
}

}  // namespace optower::server
