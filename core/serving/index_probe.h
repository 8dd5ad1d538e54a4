// IndexProbe: the queries an index build measures recall@10 on — the user tower's outputs, since
// those are what a Retrieve searches with (perturbed item vectors, the fallback inside ItemIndex,
// overstated HNSW's recall 0.93-0.998 against 0.65 on real queries: docs/BENCHMARKS.md §4a).
// Contexts come from the log (the most recent request contexts the caller has: RetrievalEngine's
// ContextSample, or the event log at start-up) and, when there are fewer than wanted, are topped up
// with contexts sampled from N(ctx_mean, ctx_std^2) per coordinate — the user tower's own input
// standardisation (mean 0, sd 1 for fresh towers), so sampled contexts cover the range the tower
// was trained on.
#ifndef OPTOWER_CORE_SERVING_INDEX_PROBE_H_
#define OPTOWER_CORE_SERVING_INDEX_PROBE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model/two_tower_model.h"

namespace optower {

struct IndexProbe {
  std::vector<float> queries;  // [count(), embedding_dim] user-tower outputs
  int64_t logged = 0;          // how many came from logged contexts
  int64_t sampled = 0;         // how many from sampled contexts
  int64_t count() const { return logged + sampled; }
  std::string Describe() const;  // "user tower on 120 logged + 380 sampled contexts"
};

// `count` queries (>= 1): the last min(count, n) rows of `logged_contexts` ([n,
// ContextInputWidth] row-major, encoded user-tower inputs; null or empty = none), then sampled
// contexts (seeded by `seed`; dense part from the moments, categorical slots empty = -1). InvalidArgument when
// logged_contexts is not a whole number of rows or holds a non-finite value.
absl::StatusOr<IndexProbe> MakeIndexProbe(const TwoTowerModel& model,
                                          const std::vector<float>* logged_contexts,
                                          int64_t count, uint64_t seed);

}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_INDEX_PROBE_H_
