#include "bench/bench_util.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace optower::bench {
namespace {

// Busy CPU seconds of the whole machine since boot (/proc/stat: user+nice+system+irq+softirq+steal).
double MachineBusySeconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  in >> cpu >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5] >> v[6] >> v[7];
  const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz;
}

double OwnCpuSeconds() {
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

}  // namespace

std::vector<int64_t> ParseIntList(const std::string& text) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t v = 0;
    if (absl::SimpleAtoi(part, &v)) out.push_back(v);
  }
  return out;
}

std::vector<std::string> ParseList(const std::string& text) {
  return absl::StrSplit(text, ',', absl::SkipEmpty());
}

std::string LoadAvg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return absl::StrCat(a, " ", b, " ", c);
}

double Load1() {
  std::ifstream in("/proc/loadavg");
  double a = 0;
  in >> a;
  return a;
}

OthersCpu::OthersCpu()
    : busy0_(MachineBusySeconds()), own0_(OwnCpuSeconds()), t0_(Clock::now()) {}

double OthersCpu::Cores() const {
  const double wall = std::chrono::duration<double>(Clock::now() - t0_).count();
  if (wall <= 0) return 0;
  return std::max(0.0, (MachineBusySeconds() - busy0_) - (OwnCpuSeconds() - own0_)) / wall;
}

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void Say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace optower::bench
