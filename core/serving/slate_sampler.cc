#include "core/serving/slate_sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

// xoshiro256++ seeded through splitmix64 (Blackman & Vigna): tiny state, a few ns per draw, and
// the same stream on every platform, so a logged seed reproduces its slate.
class Xoshiro256pp {
 public:
  explicit Xoshiro256pp(uint64_t seed) {
    for (uint64_t& word : s_) word = SplitMix64(seed);
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[0] + s_[3], 23) + s_[0];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform01() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n), unbiased (Lemire, "Fast random integer generation in an interval", 2019).
  uint64_t Below(uint64_t n) {
    unsigned __int128 m = static_cast<unsigned __int128>(Next()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(Next()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t SplitMix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t s_[4];
};

enum class Blocked : uint8_t { kExcluded, kCandidate, kDrawn };

// pi_0 restricted to what Sample needs: the candidates' probabilities, eps/N for everything
// else, and the catalog rows a uniform draw must reject. Rows, not ids, so that a rejected
// uniform draw never touches the (large, uncached) catalog id array.
struct Distribution {
  std::vector<int64_t> cand_ids;  // C' = C \ E, in input order
  std::vector<int64_t> cand_rows;
  std::vector<float> cand_scores;
  std::vector<double> cand_prob;  // pi_0(a|x) for a in C'
  double uniform_prob = 0.0;      // eps / N: pi_0 of every eligible item outside C'
  int64_t num_eligible = 0;       // N
  int64_t num_excluded = 0;       // |E ∩ catalog|
  absl::flat_hash_map<int64_t, Blocked> blocked;  // rows of C' ∪ (E ∩ catalog), later ∪ drawn
};

absl::StatusOr<Distribution> Prepare(const SlateSamplerOptions& options,
                                     const std::vector<SearchHit>& candidates,
                                     const ItemIndex& catalog,
                                     const std::vector<int64_t>& exclude, int64_t k_reserve) {
  Distribution d;
  d.blocked.reserve(candidates.size() + exclude.size() + static_cast<size_t>(k_reserve));
  // Catalog lookups are batched (ItemIndex::RowsOf prefetches): on a 1M-item catalog they were
  // ~85% of the sampling time when done one by one.
  std::vector<int64_t> rows(exclude.size());
  catalog.RowsOf(exclude.data(), static_cast<int64_t>(exclude.size()), rows.data());
  for (int64_t row : rows) {
    if (row >= 0) d.blocked.emplace(row, Blocked::kExcluded);
  }
  d.num_excluded = static_cast<int64_t>(d.blocked.size());
  d.num_eligible = catalog.size() - d.num_excluded;

  d.cand_ids.reserve(candidates.size());
  d.cand_rows.reserve(candidates.size());
  d.cand_scores.reserve(candidates.size());
  std::vector<int64_t> cand_input_ids(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) cand_input_ids[i] = candidates[i].item_id;
  rows.resize(candidates.size());
  catalog.RowsOf(cand_input_ids.data(), static_cast<int64_t>(candidates.size()), rows.data());
  float max_score = -INFINITY;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const SearchHit& c = candidates[i];
    if (!std::isfinite(c.score)) {
      return absl::InvalidArgumentError(absl::StrCat("candidates[", i, "].score=", c.score,
                                                     " (item ", c.item_id, "): must be finite"));
    }
    // Checking membership guarantees that the logged propensities describe the distribution
    // actually sampled (a foreign candidate would get eps/N that no uniform draw can realise).
    const int64_t row = rows[i];
    if (row < 0) {
      return absl::InvalidArgumentError(absl::StrCat("candidates[", i, "].item_id=", c.item_id,
                                                     ": not in the catalog"));
    }
    auto [it, inserted] = d.blocked.emplace(row, Blocked::kCandidate);
    if (!inserted) {
      if (it->second == Blocked::kExcluded) continue;  // excluded candidates are not eligible
      return absl::InvalidArgumentError(absl::StrCat("candidates[", i, "].item_id=", c.item_id,
                                                     ": repeated candidate"));
    }
    d.cand_ids.push_back(c.item_id);
    d.cand_rows.push_back(row);
    d.cand_scores.push_back(c.score);
    max_score = std::max(max_score, c.score);
  }

  const double eps = options.epsilon;
  if (d.num_eligible < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "N=0: every catalog item is excluded (catalog ", catalog.size(), ", excluded ",
        d.num_excluded, ")"));
  }
  if (d.cand_ids.empty() && eps < 1.0 && !options.greedy) {
    return absl::InvalidArgumentError(absl::StrCat(
        "candidates: none left after exclusion (", candidates.size(),
        " given), so the softmax part of pi_0 is undefined for epsilon=", eps, " < 1"));
  }
  d.uniform_prob = eps / static_cast<double>(d.num_eligible);
  // Softmax in double, shifted by the max score so the largest weight is exp(0) = 1.
  const double inv_tau = 1.0 / options.temperature;
  d.cand_prob.resize(d.cand_ids.size());
  double z = 0.0;
  for (size_t i = 0; i < d.cand_ids.size(); ++i) {
    d.cand_prob[i] = std::exp((double(d.cand_scores[i]) - double(max_score)) * inv_tau);
    z += d.cand_prob[i];
  }
  const double scale = (1.0 - eps) / z;
  for (double& p : d.cand_prob) p = p * scale + d.uniform_prob;
  return d;
}

float Dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

absl::StatusOr<SlateSampler> SlateSampler::Create(const SlateSamplerOptions& options) {
  if (!(options.epsilon >= 0.0 && options.epsilon <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("epsilon=", options.epsilon, ": must be in [0, 1]"));
  }
  if (!(options.temperature > 0.0) || !std::isfinite(options.temperature)) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature=", options.temperature, ": must be finite and > 0"));
  }
  return SlateSampler(options);
}

namespace {

// Greedy serving: the k best-scored candidates in score order, each logged with propensity 1.
absl::StatusOr<Slate> GreedySlate(const Distribution& d, int64_t k, Slate slate) {
  const int64_t num_cand = static_cast<int64_t>(d.cand_ids.size());
  if (k > num_cand) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k=", k, ": greedy serving needs k <= number of eligible candidates ", num_cand));
  }
  std::vector<int64_t> order(static_cast<size_t>(num_cand));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
    return d.cand_scores[a] > d.cand_scores[b] || (d.cand_scores[a] == d.cand_scores[b] && a < b);
  });
  for (int64_t pos = 0; pos < k; ++pos) {
    const int64_t i = order[pos];
    slate.items.push_back({d.cand_ids[i], pos, d.cand_scores[i], /*propensity=*/1.0, true});
  }
  return slate;
}

// The candidate whose cumulative remaining weight first exceeds r; the last remaining one absorbs
// rounding at the top of the range. -1 when no weight is left.
int64_t DrawCandidate(const std::vector<double>& w, double r) {
  int64_t pick = -1;
  double acc = 0.0;
  for (int64_t i = 0; i < static_cast<int64_t>(w.size()); ++i) {
    if (w[i] <= 0.0) continue;
    pick = i;
    acc += w[i];
    if (r < acc) break;
  }
  return pick;
}

// A row drawn uniformly among the eligible items outside C' not drawn yet (d->blocked holds the
// others); marks it drawn.
absl::StatusOr<int64_t> DrawOutside(const ItemIndex& catalog, int64_t outside_left,
                                    Xoshiro256pp& rng, Distribution* d) {
  const uint64_t n_catalog = static_cast<uint64_t>(catalog.size());
  int64_t row = -1;
  if (static_cast<uint64_t>(outside_left) * 4 >= n_catalog) {
    // Acceptance probability outside_left / n_catalog >= 1/4: at most 4 tries expected.
    do {
      row = static_cast<int64_t>(rng.Below(n_catalog));
    } while (d->blocked.contains(row));
  } else {
    // The blocked set covers > 3/4 of the catalog, so the catalog is at most 4/3 of
    // |C ∪ E ∪ drawn|: enumerating it costs no more than building that set did.
    int64_t target = static_cast<int64_t>(rng.Below(static_cast<uint64_t>(outside_left)));
    for (int64_t j = 0; j < catalog.size(); ++j) {
      if (d->blocked.contains(j)) continue;
      if (target-- == 0) {
        row = j;
        break;
      }
    }
    if (row < 0) {
      return absl::InternalError(absl::StrCat("uniform enumeration found fewer than ",
                                              outside_left, " eligible items"));
    }
  }
  d->blocked.emplace(row, Blocked::kDrawn);
  return row;
}

}  // namespace

absl::StatusOr<Slate> SlateSampler::Sample(const float* query,
                                           const std::vector<SearchHit>& candidates,
                                           const ItemIndex& catalog,
                                           const std::vector<int64_t>& exclude, int64_t k,
                                           uint64_t seed) const {
  if (k < 1) return absl::InvalidArgumentError(absl::StrCat("k=", k, ": must be >= 1"));
  if (query == nullptr) return absl::InvalidArgumentError("query=null");
  ASSIGN_OR_RETURN(Distribution d, Prepare(options_, candidates, catalog, exclude, k));
  if (k > d.num_eligible) {
    return absl::InvalidArgumentError(absl::StrCat("k=", k, ": must be in [1, N=", d.num_eligible,
                                                   "] (catalog minus exclusions)"));
  }
  const int64_t num_cand = static_cast<int64_t>(d.cand_ids.size());
  Slate slate;
  slate.num_eligible = d.num_eligible;
  slate.num_candidates = num_cand;
  slate.items.reserve(static_cast<size_t>(k));
  if (options_.greedy) return GreedySlate(d, k, std::move(slate));

  if (options_.epsilon == 0.0) {
    // Without exploration only candidates whose softmax weight did not underflow can be drawn.
    const int64_t drawable = std::count_if(d.cand_prob.begin(), d.cand_prob.end(),
                                           [](double p) { return p > 0.0; });
    if (k > drawable) {
      return absl::InvalidArgumentError(absl::StrCat(
          "k=", k, ": with epsilon=0 only ", drawable,
          " candidates have non-zero probability (M=", num_cand, ", temperature=",
          options_.temperature, ")"));
    }
  }

  Xoshiro256pp rng(seed);
  // Remaining candidate weights: a drawn candidate's weight becomes 0 ("remove"), and drawing
  // proportionally to what remains is the renormalisation. The mass is kept incrementally; its
  // rounding drift (~1e-16) is far below the smallest weight eps/N whenever eps > 0.
  std::vector<double> w = d.cand_prob;
  double cand_mass = 0.0;
  int64_t cand_left = 0;
  for (double p : w) {
    cand_mass += p;
    cand_left += p > 0.0 ? 1 : 0;
  }
  int64_t outside_left = d.num_eligible - num_cand;  // eligible items outside C' not yet drawn

  for (int64_t pos = 0; pos < k; ++pos) {
    const double outside_mass = static_cast<double>(outside_left) * d.uniform_prob;
    const double r = rng.Uniform01() * (cand_mass + outside_mass);

    // outside_mass is 0 when nothing is left outside C' or epsilon = 0: never draw outside then,
    // even if rounding put r at the very top of the range.
    if (outside_mass <= 0.0 || (cand_left > 0 && r < cand_mass)) {
      const int64_t pick = DrawCandidate(w, r);
      if (pick < 0) {
        return absl::InternalError(absl::StrCat("no drawable candidate left at position ", pos));
      }
      slate.items.push_back({d.cand_ids[pick], pos, d.cand_scores[pick], d.cand_prob[pick], true});
      cand_mass -= w[pick];
      w[pick] = 0.0;
      if (--cand_left == 0) cand_mass = 0.0;
      continue;
    }
    ASSIGN_OR_RETURN(const int64_t row, DrawOutside(catalog, outside_left, rng, &d));
    --outside_left;
    slate.items.push_back({catalog.ids()[row], pos,
                           Dot(query, catalog.embedding(row), catalog.dim()), d.uniform_prob,
                           false});
  }
  return slate;
}

absl::StatusOr<std::vector<double>> SlateSampler::FirstDrawDistribution(
    const std::vector<SearchHit>& candidates, const ItemIndex& catalog,
    const std::vector<int64_t>& exclude) const {
  if (options_.greedy) {
    return absl::FailedPreconditionError(
        "greedy=true: the deterministic top-K policy has no single-draw distribution");
  }
  ASSIGN_OR_RETURN(Distribution d, Prepare(options_, candidates, catalog, exclude, 0));
  std::vector<double> pi(static_cast<size_t>(catalog.size()), d.uniform_prob);
  for (const auto& [row, kind] : d.blocked) {
    if (kind == Blocked::kExcluded) pi[row] = 0.0;
  }
  for (size_t i = 0; i < d.cand_rows.size(); ++i) pi[d.cand_rows[i]] = d.cand_prob[i];
  return pi;
}

}  // namespace optower
