// sampler_bench: SlateSampler::Sample's CPU per slate in both exploration modes (issue 16;
// docs/BENCHMARKS.md "Slate sampler: exploration modes").
//
// A random catalog of N items (dim d, standard normal embeddings, exact index), 16 random queries
// with their top-M candidates precomputed (the index search is not timed), then per setting
// (mode x K x tau) `reps` Sample calls cycling through the queries, timed with the thread's CPU
// clock, best of 3 rounds (the machine is shared). eps = 0.1, no exclusions.
//
//   sampler_bench [--items=1000000] [--dim=32] [--m=100] [--reps=20000]
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "core/serving/item_index.h"
#include "core/serving/slate_sampler.h"

namespace {

double ThreadCpuUs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) * 1e-3;
}

bool Flag(const char* arg, const char* name, int64_t* value) {
  const std::string prefix = std::string("--") + name + "=";
  if (!absl::StartsWith(arg, prefix)) return false;
  if (!absl::SimpleAtoi(arg + prefix.size(), value) || *value < 1) {
    std::fprintf(stderr, "sampler_bench: %s: want a positive integer\n", arg);
    std::exit(2);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n = 1000000, dim = 32, m = 100, reps = 20000;
  for (int i = 1; i < argc; ++i) {
    if (!Flag(argv[i], "items", &n) && !Flag(argv[i], "dim", &dim) && !Flag(argv[i], "m", &m) &&
        !Flag(argv[i], "reps", &reps)) {
      std::fprintf(stderr, "sampler_bench: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(n * dim));
  for (float& v : x) v = normal(rng);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[i] = 7 * i + 3;
  optower::ItemIndexOptions io;
  io.type = optower::ItemIndexOptions::Type::kExact;
  auto index = optower::ItemIndex::Build(x.data(), n, dim, ids, io);
  if (!index.ok()) {
    std::fprintf(stderr, "sampler_bench: %s\n", index.status().ToString().c_str());
    return 1;
  }
  constexpr int kQueries = 16;
  std::vector<std::vector<float>> queries(kQueries, std::vector<float>(static_cast<size_t>(dim)));
  std::vector<std::vector<optower::SearchHit>> cands(kQueries);
  for (int q = 0; q < kQueries; ++q) {
    for (float& v : queries[q]) v = normal(rng);
    auto hits = (*index)->Search(queries[q].data(), m);
    if (!hits.ok()) return 1;
    cands[q] = *hits;
  }
  std::printf("mode,k,temperature,us_per_slate,items,dim,m,reps\n");
  for (const double tau : {1.0, 0.05}) {
    for (const int64_t k : {int64_t{1}, int64_t{10}}) {
      for (const auto mode :
           {optower::SlateExploration::kPerSlate, optower::SlateExploration::kPerPosition}) {
        optower::SlateSamplerOptions so;
        so.epsilon = 0.1;
        so.temperature = tau;
        so.exploration = mode;
        auto sampler = optower::SlateSampler::Create(so);
        if (!sampler.ok()) return 1;
        double best = std::numeric_limits<double>::infinity();
        int64_t sink = 0;
        for (int round = 0; round < 3; ++round) {
          const double t0 = ThreadCpuUs();
          for (int64_t i = 0; i < reps; ++i) {
            const int q = static_cast<int>(i % kQueries);
            auto slate = sampler->Sample(queries[q].data(), cands[q], **index, {}, k,
                                         static_cast<uint64_t>(round * reps + i));
            if (!slate.ok()) {
              std::fprintf(stderr, "sampler_bench: %s\n", slate.status().ToString().c_str());
              return 1;
            }
            sink += slate->items.back().item_id;
          }
          best = std::min(best, (ThreadCpuUs() - t0) / static_cast<double>(reps));
        }
        std::printf("%s,%lld,%g,%.2f,%lld,%lld,%lld,%lld\n", optower::SlateExplorationName(mode),
                    static_cast<long long>(k), tau, best, static_cast<long long>(n),
                    static_cast<long long>(dim), static_cast<long long>(m),
                    static_cast<long long>(reps));
        if (sink == 0) std::fprintf(stderr, "(sink %lld)\n", static_cast<long long>(sink));
      }
    }
  }
  return 0;
}
