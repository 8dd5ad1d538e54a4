// ContextSample: the most recent request contexts, kept by RetrievalEngine for the recall probe of
// the index builds it runs, as the user tower's input rows (encoded: dense features, then the
// categorical slots; core/model/two_tower_model.h EncodeContext), so a row has the model's
// ContextInputWidth values. Used
// the index builds it runs (model swaps, rebuilds after catalog drift; core/serving/index_probe.h).
// A ring of `capacity` contexts. Record never blocks a request: it is skipped when another thread
// holds the lock (another Retrieve recording, or a build reading), so under contention the sample
// thins out but stays recent. RecentLoggedContexts reads the same from the event log (start-up,
// before any request arrived).
//
// Thread safety: every method may be called concurrently.
#ifndef OPTOWER_CORE_SERVING_CONTEXT_SAMPLE_H_
#define OPTOWER_CORE_SERVING_CONTEXT_SAMPLE_H_

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/model/two_tower_model.h"
#include "core/storage/event_log.h"

namespace optower {

class ContextSample {
 public:
  explicit ContextSample(int64_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // Adds one context (dropping the oldest when full). A context of another dimension than the
  // ones held restarts the sample. Skipped if the lock is busy.
  void Record(const float* context, int64_t dim);
  // Adds `contexts` ([n, dim] row-major, oldest first), waiting for the lock.
  void RecordAll(const std::vector<float>& contexts, int64_t dim);
  // The held contexts of dimension `dim`, oldest first, [n, dim] row-major (empty if none).
  std::vector<float> Recent(int64_t dim) const;

 private:
  void AddLocked(const float* context, int64_t dim) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t capacity_;
  mutable absl::Mutex mu_;
  int64_t dim_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<float> ring_ ABSL_GUARDED_BY(mu_);  // [capacity, dim_]
  int64_t next_ ABSL_GUARDED_BY(mu_) = 0;         // slot of the next Record
  int64_t count_ ABSL_GUARDED_BY(mu_) = 0;
};

// The contexts of the last (up to) `max_contexts` requests in the log that fit `model` (dense
// features of its dim_context, categorical features of its context_fields), encoded as its user
// tower's input: oldest first, [n, ContextInputWidth(model.config())] row-major. Requests logged
// with other features (another model's schema) are skipped. Reads the newest served rows (several
// per request) only.
absl::StatusOr<std::vector<float>> RecentLoggedContexts(const EventLog& log, int64_t max_contexts,
                                                        const TwoTowerModel& model);

}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_CONTEXT_SAMPLE_H_
