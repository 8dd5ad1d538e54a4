// Mean and sample standard deviation of a few values (seeds of an experiment), for the CLI's
// experiment summaries.
#ifndef OPTOWER_CLI_SAMPLE_STATS_H_
#define OPTOWER_CLI_SAMPLE_STATS_H_

#include <cmath>
#include <vector>

namespace optower::cli {

inline double Mean(const std::vector<double>& x) {
  double s = 0;
  for (double v : x) s += v;
  return x.empty() ? 0.0 : s / static_cast<double>(x.size());
}

// Sample standard deviation (n - 1); 0 for fewer than two values.
inline double Sd(const std::vector<double>& x) {
  if (x.size() < 2) return 0.0;
  const double m = Mean(x);
  double s = 0;
  for (double v : x) s += (v - m) * (v - m);
  return std::sqrt(s / static_cast<double>(x.size() - 1));
}

}  // namespace optower::cli

#endif  // OPTOWER_CLI_SAMPLE_STATS_H_
