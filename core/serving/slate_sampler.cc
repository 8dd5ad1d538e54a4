#include "core/serving/slate_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
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
  std::vector<double> cand_exp;   // exp((s(a) - max_score) / tau) for a in C'
  float max_score = -INFINITY;    // max_{C'} s
  size_t best = 0;                // a candidate with that score (if C' is not empty)
  double uniform_prob = 0.0;      // eps / N: pi_0 of every eligible item outside C'
  int64_t num_eligible = 0;       // N
  int64_t num_excluded = 0;       // |E ∩ catalog|
  absl::flat_hash_map<int64_t, Blocked> blocked;  // rows of C' ∪ (E ∩ catalog), later ∪ drawn
};

// Sum of v[i] over the i with !skip(i), as four interleaved partial sums: four independent
// dependency chains run ~4x faster than one running sum (a per-draw cost over M terms), and the
// order is fixed, so Prepare, Sample and StepDistribution get the same doubles from the same terms.
template <typename Skip>
double Sum4(const std::vector<double>& v, const Skip& skip) {
  double s[4] = {0.0, 0.0, 0.0, 0.0};
  for (size_t i = 0; i < v.size(); ++i) s[i & 3] += skip(i) ? 0.0 : v[i];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// pi_0 on the candidates from their scores (d->max_score and d->uniform_prob set).
void SetPi0(const SlateSamplerOptions& options, Distribution* d) {
  // Softmax in double, shifted by the max score so the largest weight is exp(0) = 1.
  const double inv_tau = 1.0 / options.temperature;
  for (size_t i = 0; i < d->cand_ids.size(); ++i) {
    if (d->cand_scores[i] == d->max_score) {
      d->best = i;
      break;
    }
  }
  d->cand_exp.resize(d->cand_ids.size());
  d->cand_prob.resize(d->cand_ids.size());
  for (size_t i = 0; i < d->cand_ids.size(); ++i) {
    d->cand_exp[i] = std::exp((double(d->cand_scores[i]) - double(d->max_score)) * inv_tau);
  }
  const double scale = (1.0 - options.epsilon) / Sum4(d->cand_exp, [](size_t) { return false; });
  for (size_t i = 0; i < d->cand_ids.size(); ++i) {
    d->cand_prob[i] = d->cand_exp[i] * scale + d->uniform_prob;
  }
}

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
  d.max_score = max_score;
  SetPi0(options, &d);
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
    slate.items.push_back({d.cand_ids[i], pos, d.cand_scores[i], /*propensity=*/1.0,
                           /*in_candidates=*/true, /*conditional_propensity=*/1.0});
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

// What is left of a slate between draws. Sample and StepDistribution both go through it, so the
// probabilities they report are the same doubles.
struct DrawState {
  std::vector<char> cand_drawn;  // [|C'|]
  int64_t cand_left = 0;         // |C_j|: candidates not drawn yet
  int64_t outside_left = 0;      // |R_j \ C_j|: eligible items outside C' not drawn yet
  int64_t eligible_left = 0;     // |R_j| = N - j
  // kPerPosition, once the best remaining candidate is far below the best of C' (see
  // PerPositionStep): e[i] = exp((s_i - shift) / tau) for the candidates not drawn, shift = the
  // max score of C_j they were computed with (NaN: never). Recomputed only when that max changes.
  double shift = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> e;

  explicit DrawState(const Distribution& d)
      : cand_drawn(d.cand_ids.size(), 0),
        cand_left(static_cast<int64_t>(d.cand_ids.size())),
        outside_left(d.num_eligible - static_cast<int64_t>(d.cand_ids.size())),
        eligible_left(d.num_eligible) {}
};

// The next draw's weights: p_j(candidate i) = w[i] / total (0 once drawn), p_j(a) = u / total for
// each of the outside_left items a outside C'. Dividing by the fresh total (1 up to rounding for
// kPerPosition, 1 - sum of the drawn pi_0 for kPerSlate) makes the reported numbers exactly the
// probabilities with which the draw r = U * total picks an item.
struct StepWeights {
  std::vector<double> w;     // [|C'|]
  double cand_mass = 0.0;    // sum of w, in candidate order
  double u = 0.0;
  double outside_mass = 0.0;  // outside_left * u
  double total = 0.0;         // cand_mass + outside_mass
};

void PerSlateStep(const Distribution& d, const DrawState& st, StepWeights* out) {
  for (size_t i = 0; i < d.cand_prob.size(); ++i) {
    out->w[i] = st.cand_drawn[i] ? 0.0 : d.cand_prob[i];
  }
  out->cand_mass = Sum4(out->w, [](size_t) { return false; });
  out->u = d.uniform_prob;
}

// The softmax over C_j is shift-invariant; the shift only keeps the weights from underflowing.
// While the best remaining candidate is within kMaxShiftGap * tau of max_{C'} s, the weights
// exp((s - max_{C'} s) / tau) computed once per slate (Distribution::cand_exp) are used: the best
// remaining one is then >= e^-100 ~ 4e-44, so every weight that matters to double precision
// relative to it is a normal double and e_i / Z_j has full precision, as with the shift
// max_{C_j} s.
// Beyond the gap the weights are recomputed with the shift max_{C_j} s, so they never underflow to
// all-zero. A pure function of the remaining set: StepDistribution gets the same doubles.
constexpr double kMaxShiftGap = 100.0;

void PerPositionStep(const SlateSamplerOptions& o, const Distribution& d, DrawState& st,
                     StepWeights* out) {
  const size_t num_cand = d.cand_ids.size();
  out->cand_mass = 0.0;
  if (st.cand_left == 0) {
    // Nothing of C' is left: uniform over R_j.
    std::fill(out->w.begin(), out->w.end(), 0.0);
    out->u = 1.0 / static_cast<double>(st.eligible_left);
    return;
  }
  // Not in C_j: drawn, or (epsilon = 0 only) pi_0 = 0 because the softmax weight underflowed: such
  // an item could not be logged, so it is not drawable at any position.
  const auto skip = [&st, &d](size_t i) {
    return st.cand_drawn[i] != 0 || !(d.cand_prob[i] > 0.0);
  };
  float best = d.max_score;
  if (skip(d.best)) {
    best = -INFINITY;
    for (size_t i = 0; i < num_cand; ++i) {
      if (!skip(i)) best = std::max(best, d.cand_scores[i]);
    }
  }
  const double inv_tau = 1.0 / o.temperature;
  const std::vector<double>* e = &d.cand_exp;
  if ((double(d.max_score) - double(best)) * inv_tau > kMaxShiftGap) {
    if (!(double(best) == st.shift)) {
      st.e.resize(num_cand);
      for (size_t i = 0; i < num_cand; ++i) {
        if (skip(i)) continue;
        st.e[i] = std::exp((double(d.cand_scores[i]) - double(best)) * inv_tau);
      }
      st.shift = double(best);
    }
    e = &st.e;
  }
  const double scale = (1.0 - o.epsilon) / Sum4(*e, skip);
  out->u = o.epsilon / static_cast<double>(st.eligible_left);
  for (size_t i = 0; i < num_cand; ++i) {
    out->w[i] = skip(i) ? 0.0 : (*e)[i] * scale + out->u;
  }
  out->cand_mass = Sum4(out->w, [](size_t) { return false; });
}

void ComputeStep(const SlateSamplerOptions& o, const Distribution& d, DrawState& st,
                 StepWeights* out) {
  out->w.resize(d.cand_ids.size());
  if (o.exploration == SlateExploration::kPerSlate) {
    PerSlateStep(d, st, out);
  } else {
    PerPositionStep(o, d, st, out);
  }
  out->outside_mass = static_cast<double>(st.outside_left) * out->u;
  out->total = out->cand_mass + out->outside_mass;
}

// With epsilon = 0 only candidates can be drawn; InvalidArgument when fewer than k of them have
// pi_0 > 0 (the propensity every served item is logged with; a softmax weight can underflow).
// kPerPosition could draw the others once the better ones are gone, but could not log them.
absl::Status CheckDrawableWithoutExploration(const SlateSamplerOptions& o, const Distribution& d,
                                             int64_t k) {
  if (o.epsilon != 0.0) return absl::OkStatus();
  const int64_t drawable = std::count_if(d.cand_prob.begin(), d.cand_prob.end(),
                                         [](double p) { return p > 0.0; });
  if (k <= drawable) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "k=", k, ": with epsilon=0 only candidates can be drawn, and only ", drawable,
      " candidates have non-zero probability (M=", d.cand_ids.size(),
      " after exclusions, temperature=", o.temperature, ")"));
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
  Slate slate;
  slate.num_eligible = d.num_eligible;
  slate.num_candidates = static_cast<int64_t>(d.cand_ids.size());
  slate.items.reserve(static_cast<size_t>(k));
  if (options_.greedy) return GreedySlate(d, k, std::move(slate));
  RETURN_IF_ERROR(CheckDrawableWithoutExploration(options_, d, k));

  Xoshiro256pp rng(seed);
  DrawState st(d);
  StepWeights step;
  for (int64_t pos = 0; pos < k; ++pos) {
    ComputeStep(options_, d, st, &step);
    const double r = rng.Uniform01() * step.total;
    // outside_mass is 0 when nothing is left outside C' or epsilon = 0: never draw outside then,
    // even if rounding put r at the very top of the range.
    if (step.outside_mass <= 0.0 || (step.cand_mass > 0.0 && r < step.cand_mass)) {
      const int64_t pick = DrawCandidate(step.w, r);
      if (pick < 0) {
        return absl::InternalError(absl::StrCat("no drawable candidate left at position ", pos));
      }
      slate.items.push_back({d.cand_ids[pick], pos, d.cand_scores[pick], d.cand_prob[pick],
                             /*in_candidates=*/true, step.w[pick] / step.total});
      st.cand_drawn[pick] = 1;
      --st.cand_left;
    } else {
      ASSIGN_OR_RETURN(const int64_t row, DrawOutside(catalog, st.outside_left, rng, &d));
      slate.items.push_back({catalog.ids()[row], pos,
                             Dot(query, catalog.embedding(row), catalog.dim()), d.uniform_prob,
                             /*in_candidates=*/false, step.u / step.total});
      --st.outside_left;
    }
    --st.eligible_left;
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

namespace {

// Marks the ids of `drawn` as drawn in `st` (and `d->blocked`); InvalidArgument for an id that is
// not eligible or repeated.
absl::Status MarkDrawn(const ItemIndex& catalog, const std::vector<int64_t>& drawn,
                       Distribution* d, DrawState* st) {
  for (size_t j = 0; j < drawn.size(); ++j) {
    const int64_t row = catalog.RowOf(drawn[j]);
    const auto at = [&] { return absl::StrCat("drawn[", j, "]=", drawn[j], ": "); };
    if (row < 0) return absl::InvalidArgumentError(at() + "not in the catalog");
    auto it = d->blocked.find(row);
    if (it == d->blocked.end()) {
      d->blocked.emplace(row, Blocked::kDrawn);
      --st->outside_left;
    } else if (it->second == Blocked::kExcluded) {
      return absl::InvalidArgumentError(at() + "excluded");
    } else if (it->second == Blocked::kDrawn) {
      return absl::InvalidArgumentError(at() + "repeated");
    } else {
      const size_t i = static_cast<size_t>(
          std::find(d->cand_rows.begin(), d->cand_rows.end(), row) - d->cand_rows.begin());
      if (st->cand_drawn[i]) return absl::InvalidArgumentError(at() + "repeated");
      st->cand_drawn[i] = 1;
      --st->cand_left;
    }
    --st->eligible_left;
  }
  if (st->eligible_left < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "drawn has ", drawn.size(), " ids: nothing of the N=", d->num_eligible,
        " eligible items is left to draw"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<double>> SlateSampler::StepDistribution(
    const std::vector<SearchHit>& candidates, const ItemIndex& catalog,
    const std::vector<int64_t>& exclude, const std::vector<int64_t>& drawn) const {
  if (options_.greedy) {
    return absl::FailedPreconditionError(
        "greedy=true: the deterministic top-K policy has no draw distribution");
  }
  const int64_t j = static_cast<int64_t>(drawn.size());
  ASSIGN_OR_RETURN(Distribution d, Prepare(options_, candidates, catalog, exclude, j));
  DrawState st(d);
  RETURN_IF_ERROR(MarkDrawn(catalog, drawn, &d, &st));
  RETURN_IF_ERROR(CheckDrawableWithoutExploration(options_, d, j + 1));
  StepWeights step;
  ComputeStep(options_, d, st, &step);
  if (!(step.total > 0.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "drawn has ", j, " ids: no item with non-zero probability is left"));
  }
  std::vector<double> p(static_cast<size_t>(catalog.size()), step.u / step.total);
  for (const auto& [row, kind] : d.blocked) {
    if (kind != Blocked::kCandidate) p[row] = 0.0;  // excluded or drawn
  }
  for (size_t i = 0; i < d.cand_rows.size(); ++i) p[d.cand_rows[i]] = step.w[i] / step.total;
  return p;
}

}  // namespace optower
