#!/usr/bin/env bash
# The test command: installs missing Debian packages, builds, runs every test (ctest).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/bootstrap.sh"
"$here/scripts/build.sh"
cd "${BUILD_DIR:-$here/build}"
ctest --output-on-failure -j"$(nproc)" --timeout 900
