#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, a clang configuration of its own in $BUILD_DIR/fuzz) and runs
# each for SECONDS (default 300), reporting executions and findings per target.
#
#   scripts/fuzz.sh [SECONDS]      build, then fuzz every target SECONDS each
#   scripts/fuzz.sh --build-only   configure and build only (scripts/test.sh uses this)
#   FUZZ_TARGETS="csv_logs metrics_http" scripts/fuzz.sh 60     a subset
#
# New inputs go to $BUILD_DIR/fuzz/corpus/<target>/ (the committed fuzz/corpus/<target>/ is only
# read); crashes go to $BUILD_DIR/fuzz/artifacts/. Copy a crashing input into fuzz/corpus/<target>/
# once fixed, as a regression seed. Exit status: 1 if any target found something.
set -euo pipefail
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
here=$(cd "$(dirname "$0")/.." && pwd)
fuzz_build=${FUZZ_BUILD_DIR:-${BUILD_DIR:-$here/build}/fuzz}
export CCACHE_BASEDIR=$here CCACHE_NOHASHDIR=1 CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-include_file_mtime,include_file_ctime,time_macros}

# FindOpenMP (FAISS's config needs it) would pick clang's libomp, a second OpenMP runtime next to
# LibTorch's libgomp (and a package more to install): point it at GCC's libgomp instead.
gomp=$(g++ -print-file-name=libgomp.so)
cmake -S "$here" -B "$fuzz_build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOPTOWER_FUZZ=ON \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DOpenMP_C_FLAGS=-fopenmp=libgomp -DOpenMP_CXX_FLAGS=-fopenmp=libgomp \
  -DOpenMP_C_LIB_NAMES=gomp -DOpenMP_CXX_LIB_NAMES=gomp -DOpenMP_gomp_LIBRARY="$gomp" >/dev/null
cmake --build "$fuzz_build" -j"$(nproc)"
[ "${1:-}" = "--build-only" ] && exit 0

seconds=${1:-300}
targets=${FUZZ_TARGETS:-$(cd "$here/fuzz" && ls -- *_fuzz.cc | sed 's/_fuzz\.cc$//')}
found=0
printf '%-16s %12s %10s %8s  %s\n' target executions exec/s corpus findings
for t in $targets; do
  scratch=$fuzz_build/corpus/$t
  artifacts=$fuzz_build/artifacts
  mkdir -p "$scratch" "$artifacts"
  log=$fuzz_build/fuzz-$t.log
  before=$(ls "$artifacts" | grep -c "^$t-" || true)
  # -fork would use both cores; one process per target keeps the machine usable.
  "$fuzz_build/fuzz/${t}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "$scratch" "$here/fuzz/corpus/$t" \
    >"$log" 2>&1 || true
  after=$(ls "$artifacts" | grep -c "^$t-" || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(ls "$scratch" | wc -l)
  findings=$((after - before))
  [ "$findings" -gt 0 ] && found=1
  note=$findings
  [ "$findings" -gt 0 ] && note="$findings (see $log, $artifacts/$t-*)"
  printf '%-16s %12s %10s %8s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "$corpus" "$note"
done
exit $found
