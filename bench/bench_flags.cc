#include "bench/bench_flags.h"

#include "cli/flag_parser.h"

namespace optower::bench {

void AddBenchFlags(cli::FlagParser& p, Flags* fp) {
  Flags& f = *fp;
  p.AddString("sizes", &f.sizes, "catalog sizes, comma separated (empty: none, e.g. with --swap)");
  p.AddString("indexes", &f.indexes, "index types: exact,ivf,hnsw");
  p.AddString("concurrency", &f.concurrency, "outstanding requests (closed loop), comma separated");
  p.AddString("logging", &f.logging, "off,on: serve without / with the SQLite event log");
  p.AddInt("repeats", &f.repeats, "runs per configuration (medians reported)");
  p.AddDouble("duration", &f.duration_s, "seconds per measured run");
  p.AddDouble("warmup", &f.warmup_s, "seconds of warm-up per run (not measured)");
  p.AddInt("max_requests", &f.max_requests, "cap on calls per run");
  p.AddInt("channels", &f.channels, "client channels (connections), at most c per run");
  p.AddInt("threads", &f.threads, "cores: raw FAISS/engine threads and index-build threads");
  p.AddInt("k", &f.k, "slate size");
  p.AddInt("top_m", &f.top_m, "candidates per request");
  p.AddInt("dim", &f.dim, "embedding dimension d");
  p.AddInt("item_features", &f.item_features, "item feature dimension");
  p.AddInt("context_features", &f.context_features, "context dimension");
  p.AddInt("items_per_cluster", &f.items_per_cluster, "clusters = max(10, N / this)");
  p.AddDouble("within_sd", &f.within_sd, "within-cluster sd of item features (centres sd 1)");
  p.AddInt("user_segments", &f.user_segments, "context mixture components");
  p.AddString("model", &f.model, "trained (optower's learner, objective dm) | random towers");
  p.AddInt("train_rounds", &f.train_rounds, "logged rounds to train the bench's model on");
  p.AddInt("n_contexts", &f.n_contexts, "distinct request contexts");
  p.AddString("index_scale", &f.index_scale,
              "catalog sizes for AUTO's choice with the server defaults and the cost of catalog "
              "changes at the largest (index_scale_bench.cc)");
  p.AddInt("index_scale_logged", &f.index_scale_logged,
           "--index_scale: logged contexts in the probe (0 = sampled only)");
  p.AddInt("recall_queries", &f.recall_queries, "queries for recall on the bench's query set");
  p.AddInt("hnsw_max_items", &f.hnsw_max_items, "skip HNSW above this catalog size");
  p.AddInt("exact_max_concurrency", &f.exact_max_concurrency, "at 1M, exact runs up to this c");
  p.AddDouble("exact_duration", &f.exact_duration_s, "seconds per run for exact at >= 1M");
  p.AddString("ivf_nprobe", &f.ivf_nprobe,
              "IVF nprobe: one value or one per --sizes entry (server default 16)");
  p.AddInt("ivf_nlist", &f.ivf_nlist, "IVF nlist (0 = automatic)");
  p.AddInt("hnsw_ef_search", &f.hnsw_ef_search, "HNSW efSearch (server default 128)");
  p.AddDouble("raw_duration", &f.raw_duration_s, "seconds per raw FAISS / engine measurement");
  p.AddString("work_dir", &f.work_dir, "scratch folder for event logs");
  p.AddString("out_csv", &f.out_csv, "write every serving run here");
  p.AddBool("serving", &f.serving, "run the gRPC serving runs (else only index/raw measurements)");
  p.AddBool("swap", &f.swap, "run the model-swap benchmark");
  p.AddInt("swap_items", &f.swap_items, "catalog size of the swap benchmark");
  p.AddString("swap_index", &f.swap_index, "index of the swap benchmark");
  p.AddDouble("swap_rate", &f.swap_rate, "open-loop QPS (0 = swap_load_fraction x capacity)");
  p.AddDouble("swap_load_fraction", &f.swap_load_fraction, "steady load as a share of capacity");
  p.AddInt("swap_concurrency", &f.swap_concurrency, "cap on outstanding calls in the open loop");
  p.AddDouble("swap_window", &f.swap_window_s, "seconds before/after each swap");
  p.AddInt("swaps", &f.swaps, "number of swaps (alternating models)");
  p.AddInt("swap_build_threads", &f.swap_build_threads, "OpenMP threads of the swap's index build");
  p.AddBool("swap_logging", &f.swap_logging, "event log on during the swap benchmark");
  p.AddString("swap_model_b", &f.swap_model_b,
              "retrain (default: model a retrained, as the trainer does) | independent");
  p.AddBool("swap_warm_start", &f.swap_warm_start,
            "IVF warm start of the swap's index build from the served index (default true)");
  p.AddInt("swap_warm_iterations", &f.swap_warm_iterations,
           "Lloyd steps of the IVF warm start (ivf_warm_start_iterations, default 0)");
  p.AddString("swap_priority", &f.swap_priority,
              "idle (default) | nice | normal: priority of the swap's build (engine: "
              "build_priority; rpc: the server's background_priority)");
  p.AddString("swap_via", &f.swap_via,
              "engine (in-process ReplaceModel) | rpc (optower-server child: TriggerRetrain, "
              "Rollback)");
  p.AddString("server_binary", &f.server_binary, "optower-server binary for --swap_via rpc");
  p.AddInt("seed_requests", &f.seed_requests, "rpc: Retrieve+Feedback calls to train on");
  p.AddInt("trainer_epochs", &f.train_epochs, "rpc: policy epochs of the retrain job");
  p.AddInt("crosscheck_items", &f.crosscheck_items,
           "> 0: closed-loop runs against a real optower-server process (--server_binary) "
           "at this catalog size (one process per concurrency level)");
  p.AddString("crosscheck_index", &f.crosscheck_index, "index of the cross-check server");
}

}  // namespace optower::bench
