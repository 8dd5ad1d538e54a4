#include "core/learning/policy_selection.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace optower {

double AutoWeightClip(int64_t n) {
  return std::max(kMinWeightClip, std::sqrt(static_cast<double>(std::max<int64_t>(n, 0))));
}

double ResolveWeightClip(double configured, int64_t n) {
  return configured < 0 ? AutoWeightClip(n) : configured;
}

double MeanOfTerms(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

PairedGain ComparePaired(const std::vector<double>& candidate, const std::vector<double>& reference,
                         double z) {
  PairedGain g;
  const size_t n = std::min(candidate.size(), reference.size());
  if (n == 0) return g;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += candidate[i] - reference[i];
  g.gain = sum / static_cast<double>(n);
  if (n >= 2) {
    double ss = 0;
    for (size_t i = 0; i < n; ++i) {
      const double d = candidate[i] - reference[i] - g.gain;
      ss += d * d;
    }
    g.std_error = std::sqrt(ss / static_cast<double>(n - 1) / static_cast<double>(n));
  }
  g.lower = g.gain - z * g.std_error;
  return g;
}

CandidateSelection::CandidateSelection(std::vector<double> reference_terms, double z)
    : reference_(std::move(reference_terms)), z_(z) {
  reference_mean_ = MeanOfTerms(reference_);
  selected_mean_ = reference_mean_;
}

bool CandidateSelection::Offer(int id, const std::vector<double>& terms) {
  const PairedGain g = ComparePaired(terms, reference_, z_);
  if (!(g.lower > best_lower_)) return false;
  best_lower_ = g.lower;
  selected_ = id;
  selected_mean_ = MeanOfTerms(terms);
  return true;
}

}  // namespace optower
