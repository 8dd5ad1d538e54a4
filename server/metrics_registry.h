// MetricsRegistry: Prometheus counters, gauges and histograms with labels, and their text exposition
// (format 0.0.4, https://prometheus.io/docs/instrumenting/exposition_formats/). Debian 12 packages no
// Prometheus client library for C++, so this is a small one with only what optower needs.
//
//   MetricsRegistry registry;
//   ASSIGN_OR_RETURN(CounterFamily* requests,
//                    registry.AddCounter("optower_rpc_requests_total", "RPCs by method and code.",
//                                        {"method", "code"}));
//   ASSIGN_OR_RETURN(Counter* ok, requests->WithLabels({"Retrieve", "OK"}));   // once, at setup
//   ok->Increment();                                                            // hot path
//   std::string text = registry.Render();                                      // GET /metrics
//
// Hot path: Counter::Increment, Gauge::Set/Add and Histogram::Observe are a few relaxed atomic
// operations on a cache-line-aligned child: no lock, no allocation. WithLabels looks the child up
// under a reader lock (and creates it under the writer lock the first time), so callers keep the
// returned pointer instead of looking it up per call. Children are never removed: a pointer stays
// valid as long as the registry.
//
// Callback families (AddCallback) are sampled when Render runs: for values another component
// already keeps (the event log's queue depth, the trainer's job counts), so that nothing has to push
// them.
//
// Output: families in registration order, each with "# HELP" and "# TYPE" lines, then its samples
// sorted by label values. Label values are escaped (\\, \", \n), HELP text too (\\, \n). A histogram
// writes cumulative `<name>_bucket{...,le="<bound>"}` lines ending with le="+Inf", then `<name>_sum`
// and `<name>_count` (equal to the +Inf bucket). Whole numbers are written as integers, others in
// the shortest form that reads back to the same double (fixed notation down to 0.0001); +Inf, -Inf
// and NaN as Prometheus spells them.
//
// Thread safety: every method may be called from any thread, concurrently with Render. A rendered
// histogram is not an atomic cut: observations made during Render may be missing from some lines
// (its _count is computed from the buckets, so _count always equals the +Inf bucket).
#ifndef OPTOWER_SERVER_METRICS_REGISTRY_H_
#define OPTOWER_SERVER_METRICS_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace optower::server {

// A monotonically increasing count (Prometheus "counter").
class alignas(64) Counter {
 public:
  // `n` must be >= 0 (negative values are ignored: a counter never decreases).
  void Increment(int64_t n = 1) {
    if (n > 0) value_.fetch_add(n, std::memory_order_relaxed);
  }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// A value that goes up and down (Prometheus "gauge").
class alignas(64) Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double delta);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted in buckets with fixed upper bounds (Prometheus "histogram").
class alignas(64) Histogram {
 public:
  // `bounds`: finite, strictly increasing upper bounds (checked by the family). +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);

  // Counts `v` in the first bucket whose bound is >= v (Prometheus buckets are "le"); NaN is
  // counted in +Inf only, and ignored by the sum.
  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;      // [B] finite upper bounds
    std::vector<int64_t> cumulative; // [B + 1] counts of observations <= bounds[i]; last = +Inf
    double sum = 0;
    int64_t count() const { return cumulative.empty() ? 0 : cumulative.back(); }
  };
  Snapshot Read() const;

 private:
  const std::vector<double> bounds_;
  // Non-cumulative per-bucket counts; [bounds_.size()] is the overflow (+Inf) bucket.
  std::unique_ptr<std::atomic<int64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

// Bucket bounds helpers (seconds for latencies, by Prometheus convention).
// `start`, start*factor, ..., `count` bounds. Requires start > 0, factor > 1, count >= 1.
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// 100 µs .. 10 s, roughly x2.5 per step: the default for optower's RPC latencies.
std::vector<double> DefaultLatencyBuckets();

// The children of one labelled metric (one per distinct list of label values).
template <typename T>
class MetricFamily {
 public:
  // The child for `label_values` (one per label name, in the family's order), created on first use
  // with all counts zero. InvalidArgument naming the family when the number of values is wrong.
  absl::StatusOr<T*> WithLabels(absl::Span<const std::string> label_values);
  // Convenience for families without labels (InvalidArgument if the family has labels).
  absl::StatusOr<T*> Unlabelled() { return WithLabels({}); }

  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

 private:
  friend class MetricsRegistry;
  MetricFamily(std::string name, std::vector<std::string> label_names,
               std::function<std::unique_ptr<T>()> make)
      : name_(std::move(name)), label_names_(std::move(label_names)), make_(std::move(make)) {}
  // (label values, child) pairs sorted by label values, for Render.
  std::vector<std::pair<std::vector<std::string>, const T*>> Children() const;

  const std::string name_;
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<T>()> make_;
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_ ABSL_GUARDED_BY(mu_);
};

using CounterFamily = MetricFamily<Counter>;
using GaugeFamily = MetricFamily<Gauge>;
using HistogramFamily = MetricFamily<Histogram>;

// One sample returned by a callback family: label values (one per label name) and the value.
struct MetricSample {
  std::vector<std::string> label_values;
  double value = 0;
};

enum class MetricType { kCounter, kGauge };

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Registration. InvalidArgument naming the value when `name` is not a valid metric name
  // ([a-zA-Z_:][a-zA-Z0-9_:]*), a label name is invalid ([a-zA-Z_][a-zA-Z0-9_]*, not starting with
  // "__", not "le" for histograms), a label name repeats, or histogram bounds are not finite and
  // strictly increasing; AlreadyExists when `name` is registered. The family lives as long as the
  // registry.
  absl::StatusOr<CounterFamily*> AddCounter(const std::string& name, const std::string& help,
                                            std::vector<std::string> label_names = {});
  absl::StatusOr<GaugeFamily*> AddGauge(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names = {});
  absl::StatusOr<HistogramFamily*> AddHistogram(const std::string& name, const std::string& help,
                                                std::vector<std::string> label_names,
                                                std::vector<double> bounds);
  // A family whose samples come from `collect`, called by every Render (on the rendering thread,
  // without the registry's lock held; it must be thread-safe and must not call this registry).
  // Samples whose label count differs from `label_names` are dropped; duplicates are written as
  // returned.
  absl::Status AddCallback(const std::string& name, const std::string& help, MetricType type,
                           std::vector<std::string> label_names,
                           std::function<std::vector<MetricSample>()> collect);

  // The exposition text (see the file comment). Ends with a newline unless empty.
  std::string Render() const;

 private:
  struct Entry;
  absl::Status CheckNew(const std::string& name, const std::vector<std::string>& label_names,
                        bool histogram) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Registers a new entry (after CheckNew) and returns it for the caller to attach its family.
  Entry* AppendEntry(const std::string& name, const std::string& help, const char* type,
                     const std::vector<std::string>& label_names)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);  // registration order
};

// Exposition helpers, exposed for tests.
// A label value or HELP text escaped for the text format (`help` = true escapes only \ and \n).
std::string EscapeMetricText(const std::string& text, bool help);
// An integer for whole numbers below 1e15, else the shortest round-trip decimal (%g style);
// "+Inf", "-Inf", "NaN" for the non-finite values.
std::string FormatMetricValue(double value);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_METRICS_REGISTRY_H_
