// Scale benchmark of the DR learner: --gradient exact computes the second term sum_a pi(a|x) q̂(x,a)
// with one [batch, N] product (and the item tower over all N items) per step; --gradient sampled
// over a head + tail candidate set (core/learning/sampled_gradient.h). Reports the time per
// training step, training samples/s, the proposal rebuilds' time (sampled: item tower over the
// catalog + index build, once per epoch, a separate cost) and the process's peak RSS for one
// catalog size; run once per size (peak RSS is per process).
//
// usage: train_scale_bench --items N [--rounds R] [--batch 256] [--dim 64] [--item-features 16]
//                          [--epochs 1] [--threads 0] [--gradient exact|sampled] [--head 64]
//                          [--tail 1024]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "cli/flag_parser.h"
#include "core/learning/policy_learner.h"

int main(int argc, char** argv) {
  int64_t n_items = 1000, rounds = 20000, batch = 256, dim = 64, item_features = 16, epochs = 1,
          threads = 0, context_dim = 16, head = 64, tail = 1024;
  std::string gradient = "exact";
  optower::cli::FlagParser p("train_scale_bench --items N", "DR training throughput and peak RSS.");
  p.AddInt("items", &n_items, "catalog size N");
  p.AddInt("rounds", &rounds, "logged rounds");
  p.AddInt("batch", &batch, "minibatch size");
  p.AddInt("dim", &dim, "tower output dimension d");
  p.AddInt("item-features", &item_features, "dense item features");
  p.AddInt("context-dim", &context_dim, "context features");
  p.AddInt("epochs", &epochs, "policy epochs");
  p.AddInt("threads", &threads, "intra-op threads (0 = all cores)");
  p.AddString("gradient", &gradient, "exact | sampled | auto");
  p.AddInt("head", &head, "sampled: proposal rows per context");
  p.AddInt("tail", &tail, "sampled: uniform draws per minibatch");
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
  auto mode = optower::ParseGradientMode(gradient);
  if (!mode.ok()) {
    std::fprintf(stderr, "train_scale_bench: %s\n", std::string(mode.status().message()).c_str());
    return 2;
  }
  o.sampled.mode = *mode;
  o.sampled.head_items = static_cast<int>(head);
  o.sampled.tail_items = static_cast<int>(tail);
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
      "items=%lld gradient=%s batch=%lld d=%lld threads=%d train_rows=%lld epochs=%d "
      "steps=%lld step_ms=%.1f samples_per_s=%.0f policy_seconds=%.2f proposal_seconds=%.2f "
      "peak_rss_mb=%.0f\n",
      static_cast<long long>(n_items), m.gradient.c_str(), static_cast<long long>(batch),
      static_cast<long long>(dim), m.threads, static_cast<long long>(m.n_train), m.epochs_run,
      static_cast<long long>(m.train_steps), 1000.0 * m.step_seconds / std::max<int64_t>(m.train_steps, 1),
      samples / m.step_seconds, m.policy_seconds, m.proposal_seconds, ru.ru_maxrss / 1024.0);
  return 0;
}
