// Scale benchmark of the DR learner with the EXACT second term sum_a pi(a|x) q̂(x,a): one
// [batch, N] product (and the item tower over all N items) per step. Reports training samples/s and
// the process's peak RSS for one catalog size; run once per size (peak RSS is per process).
//
// usage: train_scale_bench --items N [--rounds R] [--batch 256] [--dim 64] [--item-features 16]
//                          [--epochs 1] [--threads 0]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <random>

#include "cli/flag_parser.h"
#include "core/learning/policy_learner.h"

int main(int argc, char** argv) {
  int64_t n_items = 1000, rounds = 20000, batch = 256, dim = 64, item_features = 16, epochs = 1,
          threads = 0, context_dim = 16;
  optower::cli::FlagParser p("train_scale_bench --items N", "DR training throughput and peak RSS.");
  p.AddInt("items", &n_items, "catalog size N");
  p.AddInt("rounds", &rounds, "logged rounds");
  p.AddInt("batch", &batch, "minibatch size");
  p.AddInt("dim", &dim, "tower output dimension d");
  p.AddInt("item-features", &item_features, "dense item features");
  p.AddInt("context-dim", &context_dim, "context features");
  p.AddInt("epochs", &epochs, "policy epochs");
  p.AddInt("threads", &threads, "intra-op threads (0 = all cores)");
  if (auto s = p.Parse(argc, argv); !s.ok() || p.help_requested()) {
    std::fprintf(stderr, "%s\n%s", std::string(s.message()).c_str(), p.Help().c_str());
    return 2;
  }
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> unif(0.f, 1.f);
  optower::ItemCatalog items;
  items.dim_features = item_features;
  for (int64_t i = 0; i < n_items; ++i) {
    items.ids.push_back(i);
    for (int64_t f = 0; f < item_features; ++f) items.features.push_back(normal(rng));
  }
  optower::BanditLog log;
  log.dim_context = context_dim;
  std::uniform_int_distribution<int64_t> pick(0, n_items - 1);
  for (int64_t i = 0; i < rounds; ++i) {
    for (int64_t f = 0; f < context_dim; ++f) log.contexts.push_back(normal(rng));
    log.actions.push_back(pick(rng));
    log.rewards.push_back(unif(rng) < 0.3f ? 1.f : 0.f);
    log.pscores.push_back(1.0f / static_cast<float>(n_items));
  }
  optower::PolicyLearnerOptions o;
  o.objective = optower::Objective::kDr;
  o.hidden = {64};
  o.embedding_dim = dim;
  o.batch_size = static_cast<int>(batch);
  o.epochs = static_cast<int>(epochs);
  o.patience = 1000;
  o.validation_fraction = 0.05;
  o.reward_model.hidden = {64};
  o.reward_model.embedding_dim = dim;
  o.reward_model.epochs = 1;
  o.reward_model.batch_size = static_cast<int>(batch);
  o.threads = static_cast<int>(threads);
  auto result = optower::TrainPolicy(log, items, o);
  if (!result.ok()) {
    std::fprintf(stderr, "train_scale_bench: %s\n", std::string(result.status().message()).c_str());
    return 1;
  }
  const auto& m = result->metrics;
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  const double samples = static_cast<double>(m.n_train) * m.epochs_run;
  std::printf(
      "items=%lld batch=%lld d=%lld threads=%d train_rows=%lld epochs=%d policy_seconds=%.2f "
      "samples_per_s=%.0f peak_rss_mb=%.0f\n",
      static_cast<long long>(n_items), static_cast<long long>(batch), static_cast<long long>(dim),
      m.threads, static_cast<long long>(m.n_train), m.epochs_run, m.policy_seconds,
      samples / m.policy_seconds, ru.ru_maxrss / 1024.0);
  return 0;
}
