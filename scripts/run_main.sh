#!/usr/bin/env bash
# The main job: installs missing Debian packages, builds, and runs the closed-loop simulation:
# optower-server starts on 127.0.0.1 with the embedded defaults (random towers, SQLite event log in a
# fresh folder), a population of synthetic users is served, sends reward feedback, and the server
# retrains its towers from its own logs after every round (10 rounds x 500 requests, 10k items; well
# under 5 minutes on 2 cores). Results: out/main/{rounds.csv,summary.json,learning_curve.png}.
# Extra arguments go to `optower simulate` (see `optower simulate --help`).
set -euo pipefail
# libgomp threads spin while waiting; with more runnable threads than cores (ctest -j, a busy
# machine) that spinning turned a 1.2 s training into 35 s. Passive waiting keeps it at ~2 s.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/bootstrap.sh"
"$here/scripts/build.sh"
"${BUILD_DIR:-$here/build}/cli/optower" simulate --out "$here/out/main" --overwrite "$@"
