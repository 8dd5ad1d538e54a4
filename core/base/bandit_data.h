// Plain data types shared by the synthetic environment, the CSV readers, the learner, OPE and the
// service. Row-major float matrices with explicit dimensions; no torch here (this header is included
// widely).
#ifndef OPTOWER_CORE_BASE_BANDIT_DATA_H_
#define OPTOWER_CORE_BASE_BANDIT_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/categorical.h"

namespace optower {

// Largest |reward| (and |reward bound|) accepted anywhere (RPC, trainer): far below FLT_MAX
// (3.4e38), so a reward stored as a float, and sums of many of them, stay finite.
inline constexpr double kMaxRewardMagnitude = 1e30;

// Logged bandit feedback D = {(x_i, a_i, r_i, p_i)}.
//   contexts: [size(), dim_context] row-major.
//   actions:  [size()] row indices into the ItemCatalog the log is used with (0..N-1).
//   rewards:  [size()] observed rewards.
//   pscores:  [size()] p_i = the logging policy's probability of drawing a_i at this draw, in (0, 1]:
//             pi_0(a_i | x_i) for single draws (K = 1, offline logs), and for the item at position
//             j of a slate the conditional probability of that draw given the items drawn before
//             it (EventLog's conditional_propensity; DESIGN §3, docs/LEARNING.md "Slates").
// Slates (optional; empty = every sample is a single draw from the whole catalog):
//   positions:      [size()] 0-based position of the sample in its slate;
//   prefix_offsets: [size() + 1]; prefix_rows[prefix_offsets[i] .. prefix_offsets[i+1]) are the
//                   catalog rows served at the earlier positions of sample i's slate, i.e. the
//                   items its draw could not pick. The learner and OPE value sample i's draw
//                   under the target policy restricted to the catalog minus those rows.
//   first_draw_pscores: [size()] or empty: pi_0(a_i | x_i), the single-draw probability of the
//                   logged item (EventLog's propensity), kept for the top-K correction
//                   (core/training/slate_learning.h), which weights with it instead of pscores.
//   A positions column without prefix_offsets (offline logs with a `position` column, e.g. the
//   Open Bandit Dataset) records each row's slot; each row is then a draw of its own with the
//   logged pscore (the marginal propensity at that position), as OBP treats such logs.
// Categorical context features (docs/FEATURES.md): context_categorical holds size() rows of raw
// ids, or no fields at all (a dense-only log).
struct BanditLog {
  int64_t dim_context = 0;
  std::vector<float> contexts;
  std::vector<int64_t> actions;
  std::vector<float> rewards;
  std::vector<float> pscores;
  std::vector<int32_t> positions;
  std::vector<int64_t> prefix_offsets;
  std::vector<int64_t> prefix_rows;
  std::vector<float> first_draw_pscores;
  CategoricalColumns context_categorical;

  int64_t size() const { return static_cast<int64_t>(actions.size()); }
  const float* context(int64_t i) const { return contexts.data() + i * dim_context; }
  bool has_slates() const { return !prefix_offsets.empty(); }
  int32_t position(int64_t i) const { return positions.empty() ? 0 : positions[i]; }
  // The earlier items of sample i's slate: [begin, end) pointers into prefix_rows (empty without
  // slates).
  const int64_t* prefix_begin(int64_t i) const {
    return has_slates() ? prefix_rows.data() + prefix_offsets[i] : nullptr;
  }
  const int64_t* prefix_end(int64_t i) const {
    return has_slates() ? prefix_rows.data() + prefix_offsets[i + 1] : nullptr;
  }
  // Appends sample i of `from` (with its slate fields when `from` has them) to this log.
  void AppendFrom(const BanditLog& from, int64_t i) {
    contexts.insert(contexts.end(), from.context(i), from.context(i) + from.dim_context);
    actions.push_back(from.actions[i]);
    rewards.push_back(from.rewards[i]);
    pscores.push_back(from.pscores[i]);
    if (!from.first_draw_pscores.empty()) first_draw_pscores.push_back(from.first_draw_pscores[i]);
    if (!from.context_categorical.empty()) {
      if (context_categorical.empty())
        context_categorical = CategoricalColumns(from.context_categorical.fields());
      context_categorical.AppendRow(from.context_categorical, i);
    }
    if (!from.positions.empty() && !from.has_slates()) positions.push_back(from.positions[i]);
    if (!from.has_slates()) return;
    if (prefix_offsets.empty()) prefix_offsets.push_back(0);
    positions.push_back(from.position(i));
    prefix_rows.insert(prefix_rows.end(), from.prefix_begin(i), from.prefix_end(i));
    prefix_offsets.push_back(static_cast<int64_t>(prefix_rows.size()));
  }
};

// The item catalog: row i has external id ids[i], dense features [dim_features] at
// features[i*dim..], and (optionally) raw categorical item features: categorical holds size() rows,
// or no fields at all.
struct ItemCatalog {
  int64_t dim_features = 0;
  std::vector<int64_t> ids;
  std::vector<float> features;  // [size(), dim_features] row-major
  CategoricalColumns categorical;

  int64_t size() const { return static_cast<int64_t>(ids.size()); }
  const float* feature(int64_t i) const { return features.data() + i * dim_features; }
};

// A dense row-major matrix of doubles, used for ground truth (expected rewards, policies).
struct DenseMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<double> data;  // [rows, cols]

  DenseMatrix() = default;
  DenseMatrix(int64_t r, int64_t c) : rows(r), cols(c), data(static_cast<size_t>(r * c), 0.0) {}
  double& at(int64_t r, int64_t c) { return data[static_cast<size_t>(r * cols + c)]; }
  double at(int64_t r, int64_t c) const { return data[static_cast<size_t>(r * cols + c)]; }
  const double* row(int64_t r) const { return data.data() + r * cols; }
  double* row(int64_t r) { return data.data() + r * cols; }
};

}  // namespace optower

#endif  // OPTOWER_CORE_BASE_BANDIT_DATA_H_
