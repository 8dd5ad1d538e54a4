#!/usr/bin/env bash
# Quality benchmark of issue 2 §6: OBP's reference settings (dim_context 5, one-hot actions, linear
# behaviour, beta = -3; 10, 100 and 1000 actions; n = 1k, 5k, 20k), 5 seeds, objectives dr/dm/ipw,
# compared with OBP NNPolicyLearner(dr) from shared/obp/reference.csv.
# usage: scripts/bench_quality.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
out=${2:-$here/out/quality}
shared=${OPTOWER_SHARED_DIR:-$here/../shared}
mkdir -p "$out"
for n_actions in 10 100 1000; do
  "$build/cli/optower" experiment --n-actions "$n_actions" --dim-context 5 --one-hot \
    --behavior linear --beta -3 --reward logistic --sizes 1000,5000,20000 \
    --objectives "${OBJECTIVES:-dr,dm,ipw}" --seeds "${SEEDS:-5}" --test-rounds 10000 \
    --out "$out/A$n_actions" --overwrite --quiet
done
/usr/bin/python3 "$here/scripts/compare_reference.py" "$shared/obp/reference.csv" \
  "$out"/A*/results.csv | tee "$out/comparison.md"
