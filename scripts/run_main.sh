#!/usr/bin/env bash
# The main job: installs missing Debian packages, builds, and runs the learning-curve experiment on
# OBP's synthetic data (100 actions, linear behaviour with beta = -3) at a size that finishes in a few
# minutes on 2 cores. Results: out/main/{results.csv,summary.csv,summary.json,learning_curve.png}.
set -euo pipefail
# libgomp threads spin while waiting; with more runnable threads than cores (ctest -j, a busy
# machine) that spinning turned a 1.2 s training into 35 s. Passive waiting keeps it at ~2 s.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/bootstrap.sh"
"$here/scripts/build.sh"
"${BUILD_DIR:-$here/build}/cli/optower" experiment --n-actions 100 --dim-context 5 --one-hot \
  --behavior linear --beta -3 --sizes 1000,2000,5000,10000,20000 --objectives dr,ipw,dm \
  --seeds 5 --out "$here/out/main" --overwrite --quiet "$@"
