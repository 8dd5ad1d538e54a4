// optower_bench's flags (every benchmark reads the same Flags; --help lists them with defaults).
#ifndef OPTOWER_BENCH_BENCH_FLAGS_H_
#define OPTOWER_BENCH_BENCH_FLAGS_H_

#include <cstdint>
#include <string>

namespace optower::cli {
class FlagParser;
}  // namespace optower::cli

namespace optower::bench {

struct Flags {
  std::string sizes = "10000,100000,1000000";
  std::string indexes = "exact,ivf,hnsw";
  std::string concurrency = "1,4,16";
  std::string logging = "off,on";
  int64_t repeats = 3;
  double duration_s = 5;
  double warmup_s = 1;
  int64_t max_requests = 200000;
  int64_t channels = 4;
  int64_t threads = 2;  // cores used: raw FAISS loops, engine loops, index builds
  int64_t k = 10;
  int64_t top_m = 100;
  int64_t dim = 64;
  int64_t item_features = 16;
  int64_t context_features = 16;
  int64_t items_per_cluster = 1000;
  double within_sd = 0.15;
  int64_t user_segments = 32;
  std::string model = "trained";  // trained | random
  int64_t train_rounds = 40000;
  int64_t n_contexts = 4096;
  // --index_scale: sizes for AUTO's choice with the server defaults and catalog-change costs.
  std::string index_scale;
  int64_t index_scale_logged = 500;
  int64_t recall_queries = 1000;
  int64_t hnsw_max_items = 100000;   // HNSW above this is skipped (build cost; DESIGN §2)
  int64_t exact_max_concurrency = 16;
  double exact_duration_s = 5;
  std::string ivf_nprobe = "16";
  int64_t ivf_nlist = 0;
  int64_t hnsw_ef_search = 128;
  double raw_duration_s = 3;
  std::string work_dir = "/tmp/optower_bench";
  std::string out_csv;
  // Swap benchmark.
  bool swap = false;
  bool serving = true;
  int64_t swap_items = 100000;
  std::string swap_index = "ivf";
  double swap_rate = 0;           // 0 = swap_load_fraction x the measured closed-loop capacity
  double swap_load_fraction = 0.5;
  int64_t swap_concurrency = 64;  // cap on outstanding calls in the open loop
  double swap_window_s = 10;      // before-window length and gap between swaps
  int64_t swaps = 3;
  int64_t swap_build_threads = 1;
  bool swap_logging = true;
  // OS priority of the swap's build and (rpc) of training jobs: the engine's build_priority /
  // the server's background_priority (core/base/background_priority.h).
  std::string swap_priority = "idle";
  // Model b of the swaps: "retrain" = model a retrained on a fresh log (what the trainer publishes);
  // "independent" = trained from scratch with another seed (an unrelated model).
  std::string swap_model_b = "retrain";
  bool swap_warm_start = true;  // the index build's ivf_warm_start
  int64_t swap_warm_iterations = 0;  // its ivf_warm_start_iterations
  // "engine": in-process RetrievalEngine::ReplaceModel; "rpc": a real optower-server child process,
  // swaps through the admin RPCs (TriggerRetrain with force, then Rollback twice).
  std::string swap_via = "engine";
  std::string server_binary;  // for --swap_via rpc
  int64_t seed_requests = 600;   // rpc: Retrieve + Feedback calls before the load (training data)
  int64_t train_epochs = 2;      // rpc: the trainer's policy epochs
  // Cross-check: the same closed-loop runs against a real optower-server child process.
  int64_t crosscheck_items = 0;  // 0 = off
  std::string crosscheck_index = "ivf";
};

// Registers every flag of `f` with `parser` (the current values are the defaults).
void AddBenchFlags(cli::FlagParser& parser, Flags* f);

}  // namespace optower::bench

#endif  // OPTOWER_BENCH_BENCH_FLAGS_H_
