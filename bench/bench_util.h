// Small helpers shared by optower_bench's benchmarks: comma-separated lists, the machine's load and
// the CPU other processes used during a measurement, timing, medians, and printing a line at once.
#ifndef OPTOWER_BENCH_BENCH_UTIL_H_
#define OPTOWER_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace optower::bench {

using Clock = std::chrono::steady_clock;

// "1,4,16" -> {1, 4, 16} (entries that are not integers are skipped).
std::vector<int64_t> ParseIntList(const std::string& text);
// "a,b" -> {"a", "b"}.
std::vector<std::string> ParseList(const std::string& text);

// /proc/loadavg's three load averages, "l1 l5 l15".
std::string LoadAvg();
// The 1-minute load average.
double Load1();

// CPU used by OTHER processes (in cores) over an interval: the contamination of a measurement.
class OthersCpu {
 public:
  OthersCpu();
  double Cores() const;

 private:
  double busy0_, own0_;
  Clock::time_point t0_;
};

double SecondsSince(Clock::time_point t0);
double Median(std::vector<double> v);
// Prints `line` and a newline on stdout and flushes.
void Say(const std::string& line);

}  // namespace optower::bench

#endif  // OPTOWER_BENCH_BENCH_UTIL_H_
