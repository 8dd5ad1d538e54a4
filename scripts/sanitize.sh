#!/usr/bin/env bash
# The test suite under sanitizers (docs/RELIABILITY.md "Sanitizers"), each in a build folder of its
# own next to BUILD_DIR (g++'s sanitizers: the same compiler and ABI as the main build and Debian's
# LibTorch):
#
#   scripts/sanitize.sh [asan|tsan|quick|all]     default: all (= asan + tsan)
#
#   asan   every test (ctest) built with -fsanitize=address,undefined, in $BUILD_DIR-asan;
#   tsan   the concurrency tests (event log, retrieval engine, trainer, servers) built with
#          -fsanitize=thread, in $BUILD_DIR-tsan;
#   quick  event_log_test alone (torch-free: the event log's core/ files + the test, compiled
#          directly) under ASan+UBSan and under TSan, in $BUILD_DIR-sanitize-quick: minutes
#          instead of hours.
#
# TSan and Debian's Abseil: libabsl_synchronization is not built with TSan, so TSan cannot see
# absl::Mutex / absl::Notification and reports every access they guard as a race (docs/
# RELIABILITY.md "Sanitizers"). Suppressions cannot help (the racing frames are ours). The tsan and
# quick modes therefore print the race count per test and fail only when a test fails; read the
# reports, do not gate on them, until an instrumented Abseil is used.
#
# LibTorch, OpenMP (libgomp), gRPC, protobuf and FAISS are Debian's uninstrumented libraries: the
# reports they cause are suppressed in tests/sanitizers/*.supp, each with the reason. Extra ctest
# arguments: CTEST_ARGS="-R EventLog". Exit status: non-zero if any test or sanitizer failed.
set -euo pipefail
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
here=$(cd "$(dirname "$0")/.." && pwd)
base=${BUILD_DIR:-$here/build}
supp=$here/tests/sanitizers
export CCACHE_BASEDIR=$here CCACHE_NOHASHDIR=1 CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-include_file_mtime,include_file_ctime,time_macros}
mode=${1:-all}
status=0
# exitcode=0: a test's exit status is its own (TSan's default 66 on any report; see above).
tsan_options="halt_on_error=0:exitcode=0:second_deadlock_stack=1:report_signal_unsafe=0:suppressions=$supp/tsan.supp"
asan_options="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:suppressions=$supp/asan.supp"
lsan_options="suppressions=$supp/lsan.supp:print_suppressions=0"
ubsan_options="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"

configure() {  # build_dir flags [cmake args]
  cmake -S "$here" -B "$1" -G Ninja "${@:3}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOPTOWER_BUILD_BENCH=OFF \
    -DCMAKE_CXX_FLAGS="$2" -DCMAKE_C_FLAGS="$2" \
    -DCMAKE_EXE_LINKER_FLAGS="$2" -DCMAKE_SHARED_LINKER_FLAGS="$2" >/dev/null
}

if [ "$mode" = asan ] || [ "$mode" = all ]; then
  build=$base-asan
  configure "$build" "-fsanitize=address,undefined -fno-omit-frame-pointer"
  # Set before the build too: gtest_discover_tests runs each test binary when it is linked.
  # halt_on_error: the first UB report fails its test (UBSan alone would print and go on).
  export ASAN_OPTIONS=$asan_options LSAN_OPTIONS=$lsan_options UBSAN_OPTIONS=$ubsan_options
  SECONDS=0
  cmake --build "$build" -j"$(nproc)"
  echo "sanitize: asan build took ${SECONDS}s" >&2
  SECONDS=0
  (cd "$build" && ctest --output-on-failure -j"$(nproc)" --timeout 1800 ${CTEST_ARGS:-}) || status=1
  echo "sanitize: asan tests took ${SECONDS}s" >&2
  unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
fi

if [ "$mode" = tsan ] || [ "$mode" = all ]; then
  build=$base-tsan
  tests=(event_log_test retrieval_engine_test trainer_test server_test trainer_server_test)
  # PRE_TEST: list the tests when ctest runs, not by running each binary at build time.
  configure "$build" "-fsanitize=thread" -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST
  SECONDS=0
  cmake --build "$build" -j"$(nproc)" --target "${tests[@]}"
  echo "sanitize: tsan build took ${SECONDS}s" >&2
  export TSAN_OPTIONS="$tsan_options"
  # gcc 12's TSan maps its shadow memory at fixed addresses; with the kernel's address-space
  # randomisation above 28 bits it aborts ("unexpected memory mapping"). setarch -R turns it off
  # for the test process only.
  SECONDS=0
  for t in "${tests[@]}"; do
    if ! setarch "$(uname -m)" -R "$build/tests/$t" --gtest_brief=1 \
         >"$build/$t.log" 2>&1; then
      echo "sanitize: tsan: $t FAILED (see $build/$t.log)" >&2
      status=1
    else
      echo "sanitize: tsan: $t passed; $(grep -c "WARNING: ThreadSanitizer" "$build/$t.log") race" \
           "reports (see $build/$t.log)" >&2
    fi
  done
  echo "sanitize: tsan tests took ${SECONDS}s" >&2
fi
if [ "$mode" = quick ]; then
  build=$base-sanitize-quick
  # The SQLite event log (core/storage/sqlite_event_log.h lists its parts).
  event_log_sources=(core/storage/sqlite_util.cc core/storage/event_log_schema.cc
                     core/storage/event_log_validation.cc core/storage/event_log_options.cc
                     core/storage/event_log_queue.cc core/storage/event_log_write_connection.cc
                     core/storage/event_log_writer.cc core/storage/event_log_reader.cc
                     core/storage/sqlite_event_log.cc)
  libs=$(pkg-config --libs absl_status absl_statusor absl_strings absl_str_format \
         absl_synchronization absl_time absl_flat_hash_map absl_flat_hash_set absl_hash gtest gmock)
  for san in asan tsan; do
    flags="-fsanitize=address,undefined"
    [ $san = tsan ] && flags="-fsanitize=thread"
    mkdir -p "$build/$san"
    SECONDS=0
    objs=()
    for src in "${event_log_sources[@]}" tests/event_log_test.cc; do
      obj=$build/$san/$(basename "$src" .cc).o
      ccache g++ -std=c++17 -O1 -g $flags -fno-omit-frame-pointer -I"$here" -c "$here/$src" -o "$obj"
      objs+=("$obj")
    done
    g++ $flags "${objs[@]}" \
      -o "$build/$san/event_log_test" $libs -lgtest_main -lsqlite3 -lpthread
    echo "sanitize: quick $san build took ${SECONDS}s" >&2
    # Under TSan the SIGKILL tests' wall-clock windows (an ack older than 200 ms is committed; 100
    # acks in 600 ms) do not hold: TSan slows commits ~10x (up to 281 ms measured). Not a lost row.
    filter="*"
    [ $san = tsan ] && filter="-*OnSigkill"
    SECONDS=0
    if ! ASAN_OPTIONS=$asan_options LSAN_OPTIONS=$lsan_options UBSAN_OPTIONS=$ubsan_options \
         TSAN_OPTIONS=$tsan_options setarch "$(uname -m)" -R "$build/$san/event_log_test" \
         --gtest_brief=1 --gtest_filter="$filter" >"$build/$san.log" 2>&1; then
      echo "sanitize: quick $san: event_log_test FAILED (see $build/$san.log)" >&2
      status=1
    else
      echo "sanitize: quick $san: event_log_test passed in ${SECONDS}s;" \
           "$(grep -c "WARNING: ThreadSanitizer" "$build/$san.log") TSan reports" >&2
    fi
  done
fi
exit $status
