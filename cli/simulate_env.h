// The ground-truth environment behind `optower simulate` (--setting): OBP's synthetic bandit with
// dense features (`dense`, the main job) or the categorical environment of docs/LEARNING.md
// "Categorical features" (`categorical`: users, segments and item categories sent as categorical
// features, the initial model declaring that schema and an item-id embedding).
//
// Thread safety: one thread (the round loop); the latency probe draws its own contexts.
#ifndef OPTOWER_CLI_SIMULATE_ENV_H_
#define OPTOWER_CLI_SIMULATE_ENV_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/simulate_flags.h"
#include "core/base/bandit_data.h"
#include "core/base/categorical.h"

namespace optower::cli::sim {

class SimEnvironment {
 public:
  virtual ~SimEnvironment() = default;
  virtual ItemCatalog Items() const = 0;
  // Draws a round of n contexts, kept until the next call.
  virtual void SampleRound(int64_t n) = 0;
  virtual const float* Dense(int64_t i) const = 0;  // [dim_context] of the round's context i
  // Context i's categorical features (empty for the dense setting).
  virtual std::vector<CategoricalFeature> Categorical(int64_t i) const = 0;
  // True expected rewards q(x_i, a) for rows [first, first + rows) of the round -> [rows, N].
  virtual absl::StatusOr<DenseMatrix> ExpectedReward(int64_t first, int64_t rows) = 0;
  virtual float SampleReward(double q) = 0;
  // The initial model's categorical schema and id embedding (empty / false for dense).
  virtual std::vector<CategoricalField> ContextFields() const { return {}; }
  virtual std::vector<CategoricalField> ItemFields() const { return {}; }
  virtual bool ItemIdEmbedding() const { return false; }
};

absl::StatusOr<std::unique_ptr<SimEnvironment>> MakeSimEnvironment(const SimFlags& f);

}  // namespace optower::cli::sim

#endif  // OPTOWER_CLI_SIMULATE_ENV_H_
