#!/usr/bin/env bash
# One `optower train` on an OBP-style setting with ground truth, the way an outside check runs it:
# synth (100 actions, 5-dim contexts, 5-dim N(0,1) action contexts, linear behaviour, beta = 1,
# 20k rounds), `optower train` with its defaults (plus any extra flags), `optower policy` on the test
# contexts, and the true value of the learned policy beside the optimal one. Prints one line per
# seed: value, optimal, gap, and wall / user / sys seconds of the `optower train` process (start-up
# included). docs/BENCHMARKS.md §1 "issue 14".
# usage: scripts/train_check.sh [BUILD_DIR] [OUT_DIR] [SEEDS (default "0 1 2 3 4")] [train flags...]
set -euo pipefail
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build}/cli/optower
out=${2:-$here/out/train_check}
seeds=${3:-0 1 2 3 4}
shift $(( $# >= 3 ? 3 : $# ))
for seed in $seeds; do
  d=$out/seed$seed
  [ -f "$d/data/logs.csv" ] || "$bin" synth --n-actions 100 --dim-context 5 --dim-action-context 5 \
    --beta 1 --behavior linear --rounds 20000 --seed "$seed" --out "$d/data" --overwrite >/dev/null
  t=$( { /usr/bin/time -f "%e %U %S" "$bin" train --logs "$d/data/logs.csv" \
         --items "$d/data/items.csv" --out "$d/model" --overwrite --quiet "$@" >/dev/null; } 2>&1 )
  "$bin" policy --model "$d/model" --contexts "$d/data/test_contexts.csv" --out "$d/pi.csv" >/dev/null
  /usr/bin/python3 - "$d" "$seed" $t <<'PY'
import sys
import numpy as np
d, seed, wall, user, sys_s = sys.argv[1:6]
pi = np.loadtxt(d + "/pi.csv", delimiter=",", skiprows=1)
q = np.loadtxt(d + "/data/test_expected_reward.csv", delimiter=",", skiprows=1)
v, opt = (pi * q).sum(1).mean(), q.max(1).mean()
print(f"seed {seed}: value {v:.4f} optimal {opt:.4f} gap {opt - v:.4f} "
      f"train wall {wall} s user {user} s sys {sys_s} s")
PY
done
