// event_log_bench: the per-Retrieve cost and the throughput of the event log, on SQLite or
// PostgreSQL (docs/EVENT_LOG.md "Cost per Retrieve"; docs/BENCHMARKS.md "PostgreSQL event log").
//
// --threads appender threads (the request path) append --slates slates of K items with d-float
// contexts in total, in --durability group (group commit) or sync mode, optionally paced at --rate
// slates/s in total (0 = as fast as possible), then Close() the log. Repeated --runs times, each
// on a fresh log; every run prints one line and the last line holds the medians. Per run:
//   slates/s        slates / wall time from the first append to the end of Close (all committed)
//   p50/p99 us      wall time of one AppendSlate call (what a Retrieve waits for)
//   append_cpu_us   CPU of the appending threads per slate (building the slate + AppendSlate)
//   writer_cpu_us   CPU of the rest of this process per slate = the writer thread (SQLite, or the
//                   libpq client side: PostgreSQL's own CPU is in its server processes, not here)
//   total_cpu_us    process CPU / N
//   writer_csw      voluntary context switches of the writer per slate (1 thread only)
//
//   event_log_bench [--slates=200000] [--k=10] [--dim=64] [--rate=0] [--delay_ms=5]
//                   [--threads=1] [--durability=group|sync] [--runs=1]
//                   [--backend=sqlite|postgres] [--path=/tmp/event_log_bench.db]
//                   [--dsn_file=F]   (postgres: libpq keywords, e.g. build/pg/dsn of
//                                     scripts/pg_test_server.sh; each run uses a new schema)
//                   [--pg_schema=S]  (postgres: log into schema S, created if needed and kept, so
//                                     that several bench processes share one log like replicas)
//
// The "before" figures in docs/EVENT_LOG.md (schema 1, one ServedEvent per item) were measured with
// this file as of commit cb29eb6, which still had --api=served and -DEVENT_LOG_BENCH_V1.
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/storage/event_log.h"
#include "core/storage/pg_connection.h"
#include "core/storage/postgres_event_log.h"
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
  int k = 10, dim = 64, threads = 1, runs = 1;
  double rate = 0, delay_ms = 5;
  bool sync = false;
  std::string backend = "sqlite";
  std::string path = "/tmp/event_log_bench.db";
  std::string dsn_file;
  std::string pg_schema;  // shared by several bench processes (the replicas case); kept at the end
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
    } else if (Flag(argv[i], "--threads", &v)) {
      ok = absl::SimpleAtoi(v, &f.threads) && f.threads > 0;
    } else if (Flag(argv[i], "--runs", &v)) {
      ok = absl::SimpleAtoi(v, &f.runs) && f.runs > 0;
    } else if (Flag(argv[i], "--rate", &v)) {
      ok = absl::SimpleAtod(v, &f.rate) && f.rate >= 0;
    } else if (Flag(argv[i], "--delay_ms", &v)) {
      ok = absl::SimpleAtod(v, &f.delay_ms) && f.delay_ms >= 0;
    } else if (Flag(argv[i], "--durability", &v)) {
      ok = v == "group" || v == "sync";
      f.sync = v == "sync";
    } else if (Flag(argv[i], "--backend", &v)) {
      ok = v == "sqlite" || v == "postgres";
      f.backend = v;
    } else if (Flag(argv[i], "--path", &v)) {
      f.path = v;
    } else if (Flag(argv[i], "--dsn_file", &v) || Flag(argv[i], "--dsn-file", &v)) {
      f.dsn_file = v;
    } else if (Flag(argv[i], "--pg_schema", &v)) {
      f.pg_schema = v;
    } else {
      return absl::StrCat("unknown argument '", argv[i], "'");
    }
    if (!ok) return absl::StrCat("bad value in '", argv[i], "'");
  }
  if (f.backend == "postgres" && f.dsn_file.empty()) return "--backend=postgres needs --dsn_file";
  return "";
}

// A fresh log per run: the SQLite file removed first, or a new PostgreSQL schema (dropped by
// DropPgSchema). Returns the opened log.
absl::StatusOr<std::unique_ptr<optower::EventLog>> OpenFresh(const Flags& f, int run,
                                                            std::string* schema) {
  optower::EventLogOptions o;
  o.path = f.path;
  o.durability = f.sync ? optower::EventLogOptions::Durability::kSynchronous
                        : optower::EventLogOptions::Durability::kGroupCommit;
  o.max_commit_delay = absl::Milliseconds(f.delay_ms);
  // Unpaced runs append far ahead of the writer on purpose (they measure its throughput): let the
  // whole backlog queue instead of refusing appends once it is older than the write-failure window
  // or larger than the byte limit (docs/EVENT_LOG.md "Write failures").
  o.write_failure_window = absl::Hours(1);
  o.writer_stall_timeout = absl::Minutes(10);
  o.max_queue_bytes = int64_t{16} << 30;
  if (f.backend == "sqlite") {
    for (const char* suffix : {"", "-wal", "-shm"}) unlink((f.path + suffix).c_str());
    return optower::SqliteEventLog::Open(o);
  }
  absl::StatusOr<std::string> dsn = optower::LoadPgDsn(f.dsn_file);
  if (!dsn.ok()) return dsn.status();
  absl::StatusOr<std::unique_ptr<optower::PgConnection>> c =
      optower::PgConnection::Connect(*dsn, "event_log_bench");
  if (!c.ok()) return c.status();
  const std::string name =
      f.pg_schema.empty() ? absl::StrCat("bench_", getpid(), "_", run) : f.pg_schema;
  if (f.pg_schema.empty()) *schema = name;  // ours: dropped after the run
  absl::Status s = (*c)->Exec(
      absl::StrCat("SET client_min_messages = warning; ",
                   f.pg_schema.empty() ? absl::StrCat("DROP SCHEMA IF EXISTS ", name, " CASCADE; ")
                                       : "",
                   "CREATE SCHEMA IF NOT EXISTS ", name),
      "create bench schema");
  if (!s.ok()) return s;
  return optower::PostgresEventLog::Open(
      o, absl::StrCat(*dsn, " options='-c search_path=", name, "'"));
}

void DropPgSchema(const Flags& f, const std::string& schema) {
  if (schema.empty()) return;
  absl::StatusOr<std::string> dsn = optower::LoadPgDsn(f.dsn_file);
  if (!dsn.ok()) return;
  absl::StatusOr<std::unique_ptr<optower::PgConnection>> c =
      optower::PgConnection::Connect(*dsn, "event_log_bench");
  if (c.ok()) {
    (*c)->Exec(absl::StrCat("SET client_min_messages = warning; DROP SCHEMA ", schema, " CASCADE"),
               "drop").IgnoreError();
  }
}

struct Result {
  double wall_s = 0, slates_per_s = 0, p50_us = 0, p99_us = 0;
  double append_cpu_us = 0, writer_cpu_us = 0, total_cpu_us = 0, writer_csw = 0;
  int64_t commits = 0;
  double max_commit_ms = 0;
};

// One appender thread: slates [first, first + count) (slate i is slate first + i of the run).
struct Appender {
  int64_t first = 0, count = 0;
  std::vector<float> latencies_us;
  double cpu_us = 0;
  std::string error;
};

void Append(const Flags& f, optower::EventLog& log, int run, absl::Time start, Appender& a) {
  std::vector<float> context(static_cast<size_t>(f.dim));
  for (int c = 0; c < f.dim; ++c) context[c] = 0.01f * static_cast<float>(c) - 0.3f;
  a.latencies_us.reserve(static_cast<size_t>(a.count));
  const double per_thread_rate = f.rate / f.threads;
  for (int64_t n = 0; n < a.count; ++n) {
    const int64_t i = a.first + n;
    if (per_thread_rate > 0) {
      const absl::Time due = start + absl::Seconds(static_cast<double>(n) / per_thread_rate);
      const absl::Time now = absl::Now();
      if (now < due) absl::SleepFor(due - now);
    }
    const std::string request_id = absl::StrCat("bench-", getpid(), "-", run, "-", i);
    // Timed: building the slate as RetrieveImpl does, plus the AppendSlate call.
    const double c0 = ThreadCpuUs();
    const int64_t w0 = absl::GetCurrentTimeNanos();
    optower::ServedSlate slate;
    slate.request_id = request_id;
    slate.k = f.k;
    slate.m = 10 * f.k;
    slate.epsilon = 0.05;
    slate.temperature = 1.0;
    slate.model_version = "000042";
    slate.context = context;
    slate.time_us = 1'700'000'000'000'000 + i;
    slate.items.reserve(static_cast<size_t>(f.k));
    for (int j = 0; j < f.k; ++j) slate.items.push_back({i * f.k + j, j, 1.0 / (2.0 + j), 0.5});
    const absl::Status s = log.AppendSlate(std::move(slate));
    a.latencies_us.push_back(static_cast<float>((absl::GetCurrentTimeNanos() - w0) * 1e-3));
    a.cpu_us += ThreadCpuUs() - c0;
    if (!s.ok()) {
      a.error = absl::StrCat("append ", i, ": ", s.ToString());
      return;
    }
  }
}

absl::StatusOr<Result> RunOnce(const Flags& f, int run) {
  std::string schema;
  absl::StatusOr<std::unique_ptr<optower::EventLog>> log = OpenFresh(f, run, &schema);
  if (!log.ok()) return log.status();
  std::vector<Appender> appenders(static_cast<size_t>(f.threads));
  for (int t = 0; t < f.threads; ++t) {
    appenders[t].first = f.slates * t / f.threads;
    appenders[t].count = f.slates * (t + 1) / f.threads - appenders[t].first;
  }
  rusage self0, self1, thread0, thread1;
  getrusage(RUSAGE_SELF, &self0);
  getrusage(RUSAGE_THREAD, &thread0);
  const absl::Time start = absl::Now();
  if (f.threads == 1) {
    Append(f, **log, run, start, appenders[0]);  // on this thread: its csw are the appender's
  } else {
    std::vector<std::thread> threads;
    for (Appender& a : appenders) {
      threads.emplace_back([&, p = &a] { Append(f, **log, run, start, *p); });
    }
    for (std::thread& t : threads) t.join();
  }
  const absl::Status closed = (*log)->Close();
  Result r;
  r.wall_s = absl::ToDoubleSeconds(absl::Now() - start);
  getrusage(RUSAGE_SELF, &self1);
  getrusage(RUSAGE_THREAD, &thread1);
  for (const Appender& a : appenders) {
    if (!a.error.empty()) return absl::InternalError(a.error);
  }
  if (!closed.ok()) return closed;
  const optower::EventLog::Stats stats = (*log)->stats();
  if (stats.served_rows != f.slates * f.k) {
    return absl::InternalError(absl::StrCat("expected ", f.slates * f.k, " served rows, stats say ",
                                            stats.served_rows));
  }
  log->reset();
  DropPgSchema(f, schema);

  std::vector<float> latencies;
  double append_cpu = 0;
  for (const Appender& a : appenders) {
    latencies.insert(latencies.end(), a.latencies_us.begin(), a.latencies_us.end());
    append_cpu += a.cpu_us;
  }
  std::sort(latencies.begin(), latencies.end());
  const double n = static_cast<double>(f.slates);
  r.slates_per_s = n / r.wall_s;
  r.p50_us = latencies[latencies.size() / 2];
  r.p99_us = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  const double total_cpu = CpuUs(self1) - CpuUs(self0);
  r.append_cpu_us = append_cpu / n;
  r.total_cpu_us = total_cpu / n;
  r.writer_cpu_us = (total_cpu - append_cpu) / n;
  // Voluntary switches of everyone but this (appending) thread; meaningful with one appender.
  r.writer_csw = f.threads == 1 ? static_cast<double>((self1.ru_nvcsw - self0.ru_nvcsw) -
                                                      (thread1.ru_nvcsw - thread0.ru_nvcsw)) / n
                                : -1;
  r.commits = stats.commits;
  r.max_commit_ms = stats.max_commit_ms;
  return r;
}

void Print(const char* label, const Flags& f, const Result& r) {
  std::printf(
      "%s backend=%s durability=%s threads=%d slates=%lld k=%d dim=%d rate=%g delay_ms=%g | wall "
      "%.2f s (%.0f slates/s) | append p50 %.1f us p99 %.1f us | per slate: append_cpu_us %.2f "
      "writer_cpu_us %.2f total_cpu_us %.2f writer_csw %.3f | commits %lld, max commit %.1f ms\n",
      label, f.backend.c_str(), f.sync ? "sync" : "group", f.threads,
      static_cast<long long>(f.slates), f.k, f.dim, f.rate, f.delay_ms, r.wall_s, r.slates_per_s,
      r.p50_us, r.p99_us, r.append_cpu_us, r.writer_cpu_us, r.total_cpu_us, r.writer_csw,
      static_cast<long long>(r.commits), r.max_commit_ms);
}

// The median of each field over the runs.
Result Median(std::vector<Result> runs) {
  auto med = [&runs](auto field) {
    std::vector<double> v;
    for (const Result& r : runs) v.push_back(static_cast<double>(r.*field));
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  Result m;
  m.wall_s = med(&Result::wall_s);
  m.slates_per_s = med(&Result::slates_per_s);
  m.p50_us = med(&Result::p50_us);
  m.p99_us = med(&Result::p99_us);
  m.append_cpu_us = med(&Result::append_cpu_us);
  m.writer_cpu_us = med(&Result::writer_cpu_us);
  m.total_cpu_us = med(&Result::total_cpu_us);
  m.writer_csw = med(&Result::writer_csw);
  m.commits = static_cast<int64_t>(med(&Result::commits));
  m.max_commit_ms = med(&Result::max_commit_ms);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (const std::string error = ParseFlags(argc, argv, flags); !error.empty()) return Fail(error);
  std::vector<Result> results;
  for (int run = 0; run < flags.runs; ++run) {
    absl::StatusOr<Result> r = RunOnce(flags, run);
    if (!r.ok()) return Fail(r.status().ToString());
    Print(absl::StrCat("run ", run + 1, "/", flags.runs).c_str(), flags, *r);
    results.push_back(*r);
  }
  Print("median", flags, Median(results));
  return 0;
}
