// The entry points of optower_bench's benchmarks (optower_bench.cc dispatches on the flags). Each
// prints its lines and tables as it goes and returns the process exit code: 0, 1 (a failure), 2 (a
// bad flag combination).
#ifndef OPTOWER_BENCH_BENCHMARKS_H_
#define OPTOWER_BENCH_BENCHMARKS_H_

#include "bench/bench_data.h"
#include "bench/bench_flags.h"

namespace optower::bench {

// Per --sizes entry and --indexes type: the index benchmark (index_bench.h), then the gRPC serving
// runs against the in-process server; the summary tables at the end (serving_bench.cc).
int RunServingBench(const Flags& f, const World& world, const Models& models);

// --crosscheck_items N: closed-loop runs against a real optower-server process (crosscheck_bench.cc).
int RunCrosscheck(const Flags& f, const World& world, const Models& models);

// --swap --swap_via engine: swaps in the in-process engine under load (swap_bench.cc).
int RunSwap(const Flags& f, const World& world, const Models& models);

// --swap --swap_via rpc: retrain and rollbacks through the admin RPCs of a real optower-server
// process under load (swap_rpc_bench.cc).
int RunSwapRpc(const Flags& f, const World& world, const Models& models);

// --index_scale N,...: AUTO's choice with the server's defaults per size, catalog-change costs at
// the largest (index_scale_bench.cc).
int RunIndexScale(const Flags& f, const World& world, const Models& models);

}  // namespace optower::bench

#endif  // OPTOWER_BENCH_BENCHMARKS_H_
