#include "cli/simulate_env.h"

#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/synthetic/categorical_env.h"
#include "core/synthetic/synthetic_env.h"

namespace optower::cli::sim {
namespace {

// OBP's synthetic bandit in streaming mode; its action contexts are the catalog's item features.
class DenseEnvironment : public SimEnvironment {
 public:
  DenseEnvironment(std::unique_ptr<SyntheticBandit> env, int64_t dim)
      : env_(std::move(env)), dim_(dim) {}
  ItemCatalog Items() const override { return env_->Items(); }
  void SampleRound(int64_t n) override { contexts_ = env_->SampleContexts(n); }
  const float* Dense(int64_t i) const override { return contexts_.data() + i * dim_; }
  std::vector<CategoricalFeature> Categorical(int64_t) const override { return {}; }
  absl::StatusOr<DenseMatrix> ExpectedReward(int64_t first, int64_t rows) override {
    const std::vector<float> part(contexts_.begin() + first * dim_,
                                  contexts_.begin() + (first + rows) * dim_);
    return env_->ExpectedReward(part);
  }
  float SampleReward(double q) override { return env_->SampleReward(q); }

 private:
  std::unique_ptr<SyntheticBandit> env_;
  int64_t dim_;
  std::vector<float> contexts_;
};

class CategoricalEnvironment : public SimEnvironment {
 public:
  CategoricalEnvironment(CategoricalEnv env, uint64_t seed)
      : env_(std::move(env)), seed_(seed), rng_(seed * 0x9e3779b97f4a7c15ull + 3) {}
  ItemCatalog Items() const override { return env_.items(); }
  void SampleRound(int64_t n) override {
    round_ = env_.SampleContexts(n, seed_ * 1000003 + ++rounds_);
    columns_ = env_.ContextColumns(round_);
  }
  const float* Dense(int64_t i) const override {
    return round_.dense.data() + i * round_.dim_context;
  }
  std::vector<CategoricalFeature> Categorical(int64_t i) const override {
    return columns_.RowFeatures(i);
  }
  absl::StatusOr<DenseMatrix> ExpectedReward(int64_t first, int64_t rows) override {
    CategoricalContexts part;
    part.dim_context = round_.dim_context;
    part.dense.assign(round_.dense.begin() + first * round_.dim_context,
                      round_.dense.begin() + (first + rows) * round_.dim_context);
    part.users.assign(round_.users.begin() + first, round_.users.begin() + first + rows);
    return env_.ExpectedRewards(part);
  }
  float SampleReward(double q) override {
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < q ? 1.0f : 0.0f;
  }
  // The schema a deployment would declare, sized as DeriveCategoricalFields would.
  std::vector<CategoricalField> ContextFields() const override {
    const CategoricalEnvOptions& o = env_.options();
    return {{"user", DefaultCategoricalBuckets(o.n_users), 16, 1},
            {"segment", DefaultCategoricalBuckets(o.n_segments), 16, 1}};
  }
  std::vector<CategoricalField> ItemFields() const override {
    return {{"category", DefaultCategoricalBuckets(env_.options().n_categories), 16, 1}};
  }
  bool ItemIdEmbedding() const override { return true; }

 private:
  CategoricalEnv env_;
  uint64_t seed_;
  int64_t rounds_ = 0;
  std::mt19937_64 rng_;
  CategoricalContexts round_;
  CategoricalColumns columns_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SimEnvironment>> MakeSimEnvironment(const SimFlags& f) {
  if (f.setting == "categorical") {
    CategoricalEnvOptions o;
    o.n_items = f.items;
    o.dim_context = f.dim_context;
    o.dim_item = f.dim_item_features;
    o.seed = static_cast<uint64_t>(f.seed);
    ASSIGN_OR_RETURN(CategoricalEnv env, CategoricalEnv::Create(o));
    return std::unique_ptr<SimEnvironment>(
        new CategoricalEnvironment(std::move(env), static_cast<uint64_t>(f.seed)));
  }
  SyntheticOptions options;
  options.n_actions = f.items;
  options.dim_context = f.dim_context;
  options.dim_action_context = f.dim_item_features;
  ASSIGN_OR_RETURN(options.reward_type, ParseRewardType(f.reward));
  options.seed = static_cast<uint64_t>(f.seed);
  ASSIGN_OR_RETURN(std::unique_ptr<SyntheticBandit> env, SyntheticBandit::Create(options));
  env->FixStatistics(f.reference_rounds);
  return std::unique_ptr<SimEnvironment>(new DenseEnvironment(std::move(env), f.dim_context));
}

}  // namespace optower::cli::sim
