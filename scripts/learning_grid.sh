#!/usr/bin/env bash
# The learning-quality grid of issue 14 (docs/BENCHMARKS.md §1): OBP's reference settings
# (dim_context 5, one-hot actions, linear behaviour, beta = -3) with the logistic, logistic-polynomial
# and logistic-sparse rewards; 10, 100 and 1000 actions; n = 1k, 5k, 20k; 5 seeds (0-4); dr, dm, ipw;
# the experiment's default learner. Then scripts/learning_grid_table.py prints the markdown table
# (mean ± standard error over seeds, the paired DR − DM difference, the checks of issue 14).
# usage: scripts/learning_grid.sh [BUILD_DIR] [OUT_DIR] [extra `optower experiment` flags...]
#   SEEDS (default 5), OBJECTIVES (default dr,dm,ipw), PARALLEL (default 1: settings run at once),
#   REWARDS, ACTIONS (default all three each).
set -euo pipefail
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
out=${2:-$here/out/learning_grid}
shift $(( $# >= 2 ? 2 : $# ))
mkdir -p "$out"
jobs=()
for reward in ${REWARDS:-logistic logistic-polynomial logistic-sparse}; do
  for n_actions in ${ACTIONS:-10 100 1000}; do
    jobs+=("$reward $n_actions")
  done
done
run_one() {
  local reward=$1 n_actions=$2
  shift 2
  "$build/cli/optower" experiment --n-actions "$n_actions" --dim-context 5 --one-hot \
    --behavior linear --beta -3 --reward "$reward" --sizes 1000,5000,20000 \
    --objectives "${OBJECTIVES:-dr,dm,ipw}" --seeds "${SEEDS:-5}" --test-rounds 10000 \
    --out "$out/A${n_actions}_$reward" --overwrite --quiet --no-plot "$@" > "$out/A${n_actions}_$reward.log"
}
export -f run_one
export build out
printf '%s\n' "${jobs[@]}" | xargs -P "${PARALLEL:-1}" -I{} bash -c 'run_one {} "$@"' _ "$@"
/usr/bin/python3 "$here/scripts/learning_grid_table.py" "$out"/A*/results.csv | tee "$out/grid.md"
