// Plain data types shared by the synthetic environment, the CSV readers, the learner, OPE and the
// service. Row-major float matrices with explicit dimensions; no torch here (this header is included
// widely).
#ifndef OPTOWER_CORE_BASE_BANDIT_DATA_H_
#define OPTOWER_CORE_BASE_BANDIT_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

namespace optower {

// Largest |reward| (and |reward bound|) accepted anywhere (RPC, trainer): far below FLT_MAX
// (3.4e38), so a reward stored as a float, and sums of many of them, stay finite.
inline constexpr double kMaxRewardMagnitude = 1e30;

// Logged bandit feedback D = {(x_i, a_i, r_i, p_i)}.
//   contexts: [size(), dim_context] row-major.
//   actions:  [size()] row indices into the ItemCatalog the log is used with (0..N-1).
//   rewards:  [size()] observed rewards.
//   pscores:  [size()] p_i = pi_0(a_i | x_i), the logging policy's single-draw propensity, in (0, 1].
struct BanditLog {
  int64_t dim_context = 0;
  std::vector<float> contexts;
  std::vector<int64_t> actions;
  std::vector<float> rewards;
  std::vector<float> pscores;

  int64_t size() const { return static_cast<int64_t>(actions.size()); }
  const float* context(int64_t i) const { return contexts.data() + i * dim_context; }
};

// The item catalog: row i has external id ids[i] and features [dim_features] at features[i*dim..].
struct ItemCatalog {
  int64_t dim_features = 0;
  std::vector<int64_t> ids;
  std::vector<float> features;  // [size(), dim_features] row-major

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
