// `optower simulate`'s results: the summary numbers over all rounds, the final table on stdout, and
// the rounds.csv / summary.json texts (their columns and keys are documented in docs/SIMULATION.md).
#ifndef OPTOWER_CLI_SIMULATE_OUTPUT_H_
#define OPTOWER_CLI_SIMULATE_OUTPUT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/simulate_flags.h"
#include "cli/simulate_loop.h"

namespace optower::cli::sim {

struct Summary {
  // Averaged over every round's contexts.
  double optimal = 0, uniform = 0, ceiling = 0;
  double first = 0;        // the first round's served value
  double final_value = 0;  // the last round's served value
};

// `rounds` must not be empty.
Summary Summarize(const std::vector<RoundResult>& rounds);

// The table of rounds and the summary line, on stdout.
void PrintResults(const std::vector<RoundResult>& rounds, const Summary& s, double wall_seconds);

std::string RoundsCsv(const std::vector<RoundResult>& rounds, const Summary& s);

absl::StatusOr<std::string> SummaryJson(const SimFlags& f, const std::vector<RoundResult>& rounds,
                                        const Summary& s, double wall_seconds);

}  // namespace optower::cli::sim

#endif  // OPTOWER_CLI_SIMULATE_OUTPUT_H_
