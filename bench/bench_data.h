// optower_bench's data (stated in its output): the generative world shared by every catalog size,
// clustered item catalogs, segmented contexts, and the served towers ("trained" by optower's learner
// on uniformly logged rounds with Bernoulli rewards from the true q, or "random").
#ifndef OPTOWER_BENCH_BENCH_DATA_H_
#define OPTOWER_BENCH_BENCH_DATA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/bench_flags.h"
#include "core/base/bandit_data.h"
#include "core/model/two_tower_model.h"

namespace optower::bench {

struct Dataset {
  int64_t n = 0;
  int64_t clusters = 0;
  ItemCatalog catalog;
  std::vector<float> contexts;  // [n_contexts, context_features]
  std::shared_ptr<const TwoTowerModel> model;    // "bench-a"
  std::shared_ptr<const TwoTowerModel> model_b;  // "bench-b" (swap)
  std::vector<float> queries;   // u(contexts) of `model`, [n_contexts, dim]
  std::string model_note;
};

// The generative world shared by every catalog size: kUniverse cluster centres of item features,
// user segments of contexts, and the true expected reward
//   q(x, a) = sigmoid(x^T W f_a / 4 - 1)     (bilinear: a two-tower model can represent it).
constexpr int64_t kUniverse = 1000;

struct World {
  int64_t df = 0, dc = 0;
  std::vector<float> centres;   // [kUniverse, df], N(0, I)
  std::vector<float> segments;  // [user_segments, dc], N(0, I)
  std::vector<float> w;         // [dc, df], N(0, 1)
};

World MakeWorld(const Flags& f);

// n items from the first `clusters` centres (cluster chosen uniformly), within-cluster sd.
ItemCatalog MakeItems(const World& w, int64_t n, int64_t clusters, double within_sd,
                      int64_t first_id, uint64_t seed);

// n contexts: a user segment (chosen uniformly) + N(0, 0.5^2 I).
std::vector<float> MakeContexts(const World& w, int64_t n, int64_t segments, uint64_t seed);

// The true expected reward q(x, a) = sigmoid(x^T W f_a / 4 - 1) of context x and item features fa.
double TrueQ(const World& w, const float* x, const float* fa);

struct Models {
  std::shared_ptr<const TwoTowerModel> a, b;
  std::string note_a, note_b;
};

// Model a ("bench-a"); with `need_b` also model b ("bench-b": --swap_model_b).
absl::StatusOr<Models> MakeModels(const World& w, const Flags& f, bool need_b);

// The catalog of n items, the request contexts and model a's queries on them.
absl::StatusOr<Dataset> MakeDataset(int64_t n, const World& w, const Models& m, const Flags& f);

}  // namespace optower::bench

#endif  // OPTOWER_BENCH_BENCH_DATA_H_
