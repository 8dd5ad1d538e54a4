// event_log_bench: the per-Retrieve cost of the event log (docs/EVENT_LOG.md, "Cost per Retrieve").
//
// One appender thread (the request path) appends N slates of K items with d-float contexts in
// group-commit mode, optionally paced at --rate slates/s (a server's request rate; 0 = as fast as
// possible), then Close()s the log. Reported per slate:
//   append_cpu_us   CPU of the appending thread to build the slate and call AppendSlate (what a
//                   Retrieve pays inline)
//   append_wall_us  wall time of the same
//   writer_cpu_us   CPU of everything else in the process = the writer thread (SQLite, commits)
//   total_cpu_us    process CPU / N (includes the pacing sleeps' own syscalls, small)
//   writer_csw      voluntary context switches of the writer thread per slate (its wake-ups)
// Only the appender and the writer run in this process, so writer = process - appender thread.
//
//   event_log_bench [--slates=200000] [--k=10] [--dim=64] [--rate=0] [--delay_ms=5]
//                   [--path=/tmp/event_log_bench.db]
//
// The "before" figures in docs/EVENT_LOG.md (schema 1, one ServedEvent per item) were measured with
// this file as of commit cb29eb6, which still had --api=served and -DEVENT_LOG_BENCH_V1.
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/storage/event_log.h"
#include "core/storage/sqlite_event_log.h"

namespace {

double ThreadCpuUs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}
double CpuUs(const rusage& r) {
  return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
}

bool Flag(const char* arg, const char* name, std::string* value) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  *value = arg + n + 1;
  return true;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "event_log_bench: %s\n", message.c_str());
  return 1;
}

struct Flags {
  int64_t slates = 200000;
  int k = 10, dim = 64;
  double rate = 0, delay_ms = 5;
  std::string path = "/tmp/event_log_bench.db";
};

// Parses the command line into `f`; "" on success, else the message.
std::string ParseFlags(int argc, char** argv, Flags& f) {
  for (int i = 1; i < argc; ++i) {
    std::string v;
    bool ok = true;
    if (Flag(argv[i], "--slates", &v)) {
      ok = absl::SimpleAtoi(v, &f.slates) && f.slates > 0;
    } else if (Flag(argv[i], "--k", &v)) {
      ok = absl::SimpleAtoi(v, &f.k) && f.k > 0;
    } else if (Flag(argv[i], "--dim", &v)) {
      ok = absl::SimpleAtoi(v, &f.dim) && f.dim >= 0;
    } else if (Flag(argv[i], "--rate", &v)) {
      ok = absl::SimpleAtod(v, &f.rate) && f.rate >= 0;
    } else if (Flag(argv[i], "--delay_ms", &v)) {
      ok = absl::SimpleAtod(v, &f.delay_ms) && f.delay_ms >= 0;
    } else if (Flag(argv[i], "--path", &v)) {
      f.path = v;
    } else {
      return absl::StrCat("unknown argument '", argv[i], "'");
    }
    if (!ok) return absl::StrCat("bad value in '", argv[i], "'");
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (const std::string error = ParseFlags(argc, argv, flags); !error.empty()) return Fail(error);
  const int64_t slates = flags.slates;
  const int k = flags.k, dim = flags.dim;
  const double rate = flags.rate, delay_ms = flags.delay_ms;
  const std::string& path = flags.path;
  for (const char* suffix : {"", "-wal", "-shm"}) unlink((path + suffix).c_str());

  optower::EventLogOptions o;
  o.path = path;
  o.durability = optower::EventLogOptions::Durability::kGroupCommit;
  o.max_commit_delay = absl::Milliseconds(delay_ms);
  // Unpaced runs append far ahead of the writer on purpose (they measure its throughput): let the
  // whole backlog queue instead of refusing appends once it is older than the write-failure window
  // or larger than the byte limit (docs/EVENT_LOG.md "Write failures").
  o.write_failure_window = absl::Hours(1);
  o.max_queue_bytes = int64_t{16} << 30;
  absl::StatusOr<std::unique_ptr<optower::EventLog>> log = optower::SqliteEventLog::Open(o);
  if (!log.ok()) return Fail(log.status().ToString());

  std::vector<float> context(static_cast<size_t>(dim));
  for (int c = 0; c < dim; ++c) context[c] = 0.01f * static_cast<float>(c) - 0.3f;

  rusage self0, thread0;
  getrusage(RUSAGE_SELF, &self0);
  getrusage(RUSAGE_THREAD, &thread0);
  const absl::Time start = absl::Now();
  double append_cpu = 0, append_wall = 0;
  for (int64_t i = 0; i < slates; ++i) {
    if (rate > 0) {
      const absl::Time due = start + absl::Seconds(static_cast<double>(i) / rate);
      const absl::Time now = absl::Now();
      if (now < due) absl::SleepFor(due - now);
    }
    const std::string request_id = absl::StrCat("bench-", i);
    const int64_t time_us = 1'700'000'000'000'000 + i;
    // Timed: building the slate as RetrieveImpl does, plus the AppendSlate call.
    const double c0 = ThreadCpuUs();
    const double w0 = absl::GetCurrentTimeNanos() * 1e-3;
    optower::ServedSlate slate;
    slate.request_id = request_id;
    slate.k = k;
    slate.m = 10 * k;
    slate.epsilon = 0.05;
    slate.temperature = 1.0;
    slate.model_version = "000042";
    slate.context = context;
    slate.time_us = time_us;
    slate.items.reserve(static_cast<size_t>(k));
    for (int j = 0; j < k; ++j) slate.items.push_back({i * k + j, j, 1.0 / (2.0 + j), 0.5});
    const absl::Status s = (*log)->AppendSlate(std::move(slate));
    append_wall += absl::GetCurrentTimeNanos() * 1e-3 - w0;
    append_cpu += ThreadCpuUs() - c0;
    if (!s.ok()) return Fail(absl::StrCat("append ", i, ": ", s.ToString()));
  }
  const absl::Status closed = (*log)->Close();
  const double wall_s = absl::ToDoubleSeconds(absl::Now() - start);
  if (!closed.ok()) return Fail(closed.ToString());
  rusage self1, thread1;
  getrusage(RUSAGE_SELF, &self1);
  getrusage(RUSAGE_THREAD, &thread1);
  const optower::EventLog::Stats stats = (*log)->stats();
  absl::StatusOr<int64_t> max_id = (*log)->MaxServedId();
  if (!max_id.ok() || stats.served_rows != slates * k) {
    return Fail(absl::StrCat("expected ", slates * k, " served rows, stats say ", stats.served_rows));
  }

  const double n = static_cast<double>(slates);
  const double total_cpu = CpuUs(self1) - CpuUs(self0);
  const double appender_cpu = CpuUs(thread1) - CpuUs(thread0);
  const long writer_csw =
      (self1.ru_nvcsw - self0.ru_nvcsw) - (thread1.ru_nvcsw - thread0.ru_nvcsw);
  std::printf(
      "slates=%lld k=%d dim=%d rate=%g delay_ms=%g | wall %.2f s (%.0f slates/s) | per slate: "
      "append_cpu_us %.2f append_wall_us %.2f writer_cpu_us %.2f total_cpu_us %.2f writer_csw %.3f "
      "| commits %lld, max commit %.1f ms\n",
      static_cast<long long>(slates), k, dim, rate, delay_ms, wall_s, n / wall_s,
      append_cpu / n, append_wall / n, (total_cpu - appender_cpu) / n, total_cpu / n,
      static_cast<double>(writer_csw) / n, static_cast<long long>(stats.commits),
      stats.max_commit_ms);
  return 0;
}
