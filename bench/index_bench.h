// The index benchmark (part 2 of optower_bench's header comment): per catalog size and index type,
// builds the ModelSnapshot once, measures recall@10/@100 of the index on the bench's own queries
// against exact search, the raw FAISS throughput of that same index object (single-query Search on 1
// and `threads` threads, batched SearchBatch) and the in-process RetrievalEngine without and with
// the event log. Also the index options every benchmark builds with (the server's defaults).
#ifndef OPTOWER_BENCH_INDEX_BENCH_H_
#define OPTOWER_BENCH_INDEX_BENCH_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/bench_data.h"
#include "bench/bench_flags.h"
#include "core/serving/item_index.h"
#include "core/serving/model_snapshot.h"
#include "core/serving/retrieval_engine.h"

namespace optower::bench {

// --ivf_nprobe: one value, or one per --sizes entry.
int64_t NprobeFor(const Flags& f, int64_t n);

// The server's default index options with the bench's type ("exact" | "ivf" | "hnsw" | else auto),
// nprobe, nlist, efSearch and `build_threads`.
ItemIndexOptions IndexOptions(const std::string& type, const Flags& f, int build_threads,
                              int64_t n);

// The server's default engine options with --top_m and `index`.
RetrievalEngineOptions EngineOptions(const Flags& f, const ItemIndexOptions& index);

struct GroundTruth {
  int64_t nq = 0;
  int64_t m = 0;
  std::vector<int64_t> ids;  // [nq, m] exact top-m
};

struct RawResult {
  double qps = 0;
  double p50_us = 0, p99_us = 0;
  int64_t calls = 0;
};

struct IndexReport {
  int64_t n = 0;
  std::string index;
  std::string built;  // type actually built
  double build_s = 0;
  double recall_build = 0;
  double recall10 = 0, recall100 = 0;
  RawResult raw1, rawT;
  double batch_qps = 0;
  double engine_qps = 0;
  double engine_log_qps = 0;
  double others_cores = 0;  // other processes' CPU during the raw/engine measurements
  std::string loadavg;
  std::string build_report;
};


// One index type at one size: its report and the snapshot (served next by the serving runs).
struct IndexRun {
  IndexReport report;
  std::shared_ptr<const ModelSnapshot> snapshot;
  RetrievalEngineOptions engine_options;
};

// Builds `type` over `ds`, measures it and prints its lines. `gt` is the exact top-100 of the
// bench's queries, computed on the first call of a size. Errors name the step that failed.
absl::StatusOr<IndexRun> MeasureIndex(const Flags& f, const Dataset& ds, const std::string& type,
                                      std::optional<GroundTruth>* gt);

}  // namespace optower::bench

#endif  // OPTOWER_BENCH_INDEX_BENCH_H_
