#!/usr/bin/env bash
# The test command: installs missing Debian packages, builds, runs every test (ctest).
set -euo pipefail
# libgomp threads spin while waiting; with more runnable threads than cores (ctest -j, a busy
# machine) that spinning turned a 1.2 s training into 35 s. Passive waiting keeps it at ~2 s.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/bootstrap.sh"
"$here/scripts/build.sh"
cd "${BUILD_DIR:-$here/build}"
ctest --output-on-failure -j"$(nproc)" --timeout 900
# The fuzz targets (clang + libFuzzer, their own configuration in fuzz/ under the build folder):
# a few seconds each from the committed corpus, fuzz/corpus/ (docs/RELIABILITY.md "Fuzzing").
"$here/scripts/fuzz.sh" --build-only
ctest --test-dir fuzz --output-on-failure -j"$(nproc)" --timeout 300
