#include "bench/bench_data.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_format.h"
#include "bench/bench_util.h"
#include "core/learning/objective.h"
#include "core/learning/policy_learner.h"
#include "core/base/status_macros.h"

namespace optower::bench {
namespace {

// A served model: "trained" = optower's learner (objective dm: q̂ two-tower fitted by BCE, policy =
// its towers) on `rounds` logged rounds with uniform logging over a 4,000-item sample of the whole
// universe and Bernoulli rewards from q; "random" = randomly initialised towers (what
// optower-server serves before its first training).
// With `init`, the model is a retrain of `init` as optower-server's trainer does it (objective dr,
// policy warm-started from the served model, 2 epochs) on a fresh log.
absl::StatusOr<TwoTowerModel> MakeModel(const World& w, const Flags& f, uint64_t seed,
                                        std::string* note, const TwoTowerModel* init = nullptr) {
  TwoTowerConfig mc;
  mc.dim_context = w.dc;
  mc.dim_item = w.df;
  mc.hidden = {64};
  mc.embedding_dim = f.dim;
  mc.activation = "relu";
  mc.temperature = 1.0;
  if (f.model == "random") {
    *note = absl::StrFormat("random towers (MLP %d->64->%d relu, seed %d)", w.df, f.dim, seed);
    return TwoTowerModel::Create(mc, {}, seed);
  }
  const auto t0 = Clock::now();
  const int64_t n_train_items = 4000;
  ItemCatalog items = MakeItems(w, n_train_items, kUniverse, f.within_sd, 0, 100 + seed);
  BanditLog log;
  log.dim_context = w.dc;
  log.contexts = MakeContexts(w, f.train_rounds, f.user_segments, 200 + seed);
  std::mt19937_64 rng(300 + seed);
  std::uniform_int_distribution<int64_t> pick(0, n_train_items - 1);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  double mean_q = 0;
  for (int64_t i = 0; i < f.train_rounds; ++i) {
    const int64_t a = pick(rng);
    const float* x = log.context(i);
    const float* fa = items.feature(a);
    double s = 0;
    for (int64_t r = 0; r < w.dc; ++r) {
      double row = 0;
      for (int64_t c = 0; c < w.df; ++c) row += double(w.w[r * w.df + c]) * fa[c];
      s += double(x[r]) * row;
    }
    const double q = 1.0 / (1.0 + std::exp(-(s / 4.0 - 1.0)));
    mean_q += q;
    log.actions.push_back(a);
    log.rewards.push_back(unif(rng) < q ? 1.0f : 0.0f);
    log.pscores.push_back(1.0f / static_cast<float>(n_train_items));
  }
  PolicyLearnerOptions o;
  o.objective = init != nullptr ? Objective::kDr : Objective::kDm;
  o.init = init;
  o.hidden = {64};
  o.embedding_dim = f.dim;
  o.temperature = 0.1;
  o.epochs = init != nullptr ? 2 : 1;
  o.reward_model.hidden = {64};
  o.reward_model.embedding_dim = f.dim;
  o.reward_model.epochs = 20;
  o.reward_model.seed = seed;
  o.seed = seed;
  o.threads = static_cast<int>(f.threads);
  ASSIGN_OR_RETURN(PolicyTrainResult r, TrainPolicy(log, items, o));
  *note = absl::StrFormat(
      "towers MLP %d->64->%d relu trained by optower's learner (%s, seed %d) on %d "
      "uniformly logged rounds over a %d-item sample, true q(x,a) = sigmoid(x'Wf/4 - 1) (mean %.3f); "
      "trained in %.1f s",
      w.df, f.dim,
      init != nullptr ? "objective dr, 2 epochs warm-started from model a, as the trainer retrains"
                      : "objective dm",
      seed, f.train_rounds, n_train_items, mean_q / f.train_rounds,
      SecondsSince(t0));
  return std::move(r.policy);
}

}  // namespace

World MakeWorld(const Flags& f) {
  World w;
  w.df = f.item_features;
  w.dc = f.context_features;
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  w.centres.resize(static_cast<size_t>(kUniverse * w.df));
  for (float& c : w.centres) c = normal(rng);
  w.segments.resize(static_cast<size_t>(f.user_segments * w.dc));
  for (float& c : w.segments) c = normal(rng);
  w.w.resize(static_cast<size_t>(w.dc * w.df));
  for (float& c : w.w) c = normal(rng);
  return w;
}

// n items from the first `clusters` centres (cluster chosen uniformly), within-cluster sd.
ItemCatalog MakeItems(const World& w, int64_t n, int64_t clusters, double within_sd,
                      int64_t first_id, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> pick(0, clusters - 1);
  ItemCatalog items;
  items.dim_features = w.df;
  items.ids.resize(static_cast<size_t>(n));
  items.features.resize(static_cast<size_t>(n * w.df));
  for (int64_t i = 0; i < n; ++i) {
    items.ids[static_cast<size_t>(i)] = first_id + i;
    const float* c = w.centres.data() + pick(rng) * w.df;
    float* x = items.features.data() + i * w.df;
    for (int64_t j = 0; j < w.df; ++j) x[j] = c[j] + static_cast<float>(within_sd) * normal(rng);
  }
  return items;
}

std::vector<float> MakeContexts(const World& w, int64_t n, int64_t segments, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> pick(0, segments - 1);
  std::vector<float> x(static_cast<size_t>(n * w.dc));
  for (int64_t i = 0; i < n; ++i) {
    const float* s = w.segments.data() + pick(rng) * w.dc;
    for (int64_t j = 0; j < w.dc; ++j) x[i * w.dc + j] = s[j] + 0.5f * normal(rng);
  }
  return x;
}

double TrueQ(const World& w, const float* x, const float* fa) {
  double s = 0;
  for (int64_t r = 0; r < w.dc; ++r) {
    double row = 0;
    for (int64_t c = 0; c < w.df; ++c) row += double(w.w[r * w.df + c]) * fa[c];
    s += double(x[r]) * row;
  }
  return 1.0 / (1.0 + std::exp(-(s / 4.0 - 1.0)));
}

absl::StatusOr<Dataset> MakeDataset(int64_t n, const World& w, const Models& m, const Flags& f) {
  Dataset ds;
  ds.n = n;
  ds.clusters = std::clamp<int64_t>(n / std::max<int64_t>(1, f.items_per_cluster), 10, kUniverse);
  ds.catalog = MakeItems(w, n, ds.clusters, f.within_sd, 1000000, 1000 + static_cast<uint64_t>(n));
  ds.contexts = MakeContexts(w, f.n_contexts, f.user_segments, 77);
  ds.model = m.a;
  ds.model_b = m.b;
  ds.model_note = m.note_a;
  ASSIGN_OR_RETURN(ds.queries, ds.model->EmbedContexts(ds.contexts.data(), f.n_contexts));
  return ds;
}

absl::StatusOr<Models> MakeModels(const World& w, const Flags& f, bool need_b) {
  Models m;
  ASSIGN_OR_RETURN(TwoTowerModel a, MakeModel(w, f, 1, &m.note_a));
  m.a = std::make_shared<const TwoTowerModel>(std::move(a));
  if (need_b) {
    ASSIGN_OR_RETURN(TwoTowerModel b,
                     MakeModel(w, f, 2, &m.note_b,
                               f.swap_model_b == "retrain" ? m.a.get() : nullptr));
    m.b = std::make_shared<const TwoTowerModel>(std::move(b));
  }
  return m;
}


}  // namespace optower::bench
