#!/usr/bin/env bash
# The test suite under sanitizers (docs/RELIABILITY.md "Sanitizers"), each in a build folder of its
# own next to BUILD_DIR (g++'s sanitizers: the same compiler and ABI as the main build and Debian's
# LibTorch):
#
#   scripts/sanitize.sh [asan|tsan|all]     default: all
#
#   asan  every test (ctest) built with -fsanitize=address,undefined, in $BUILD_DIR-asan;
#   tsan  the concurrency tests (event log, retrieval engine, trainer, servers) built with
#         -fsanitize=thread, in $BUILD_DIR-tsan.
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
  export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:suppressions=$supp/asan.supp"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
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
  export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:report_signal_unsafe=0:suppressions=$supp/tsan.supp"
  # gcc 12's TSan maps its shadow memory at fixed addresses; with the kernel's address-space
  # randomisation above 28 bits it aborts ("unexpected memory mapping"). setarch -R turns it off
  # for the test process only.
  SECONDS=0
  for t in "${tests[@]}"; do
    if ! setarch "$(uname -m)" -R "$build/tests/$t" --gtest_brief=1 \
         >"$build/$t.log" 2>&1; then
      echo "sanitize: tsan: $t FAILED (see $build/$t.log)" >&2
      status=1
    elif grep -q "WARNING: ThreadSanitizer" "$build/$t.log"; then
      echo "sanitize: tsan: $t reported races (see $build/$t.log)" >&2
      status=1
    else
      echo "sanitize: tsan: $t passed" >&2
    fi
  done
  echo "sanitize: tsan tests took ${SECONDS}s" >&2
fi
exit $status
