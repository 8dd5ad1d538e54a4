#!/usr/bin/env bash
# Speed benchmark of issue 2 §6: `optower train --objective dr` on 20k rounds x 100 actions
# (OBP setting A100_onehot_linear_b-3, seed 0), 5 runs per thread setting; prints the medians.
# OBP's NNPolicyLearner(dr) took 132.9 s on the same setting (shared/obp/reference.csv).
# usage: scripts/bench_speed.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
optower=${1:-$here/build}/cli/optower
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$optower" synth --n-actions 100 --dim-context 5 --one-hot --rounds 20000 --beta -3 \
  --behavior linear --reward logistic --seed 0 --out "$work/data" >/dev/null
for threads in 0 1; do
  times=()
  for i in 1 2 3 4 5; do
    rm -rf "$work/model"
    t=$("$optower" train --logs "$work/data/logs.csv" --items "$work/data/items.csv" --objective dr \
      --out "$work/model" --quiet --threads "$threads" | sed -nE 's/.* in ([0-9.]+) s .*/\1/p')
    times+=("$t")
  done
  median=$(printf '%s\n' "${times[@]}" | sort -g | sed -n 3p)
  echo "threads=$threads (0 = all cores) OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}: runs ${times[*]} s; median $median s; OBP 132.9 s; ratio $(awk -v m="$median" 'BEGIN{printf "1/%.0f", 132.9/m}')"
done
