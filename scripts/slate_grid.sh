#!/usr/bin/env bash
# Issue 16's slate grid: `optower simulate` for K in {1, 5, 10} on the issue's setting (2000 items,
# 6 rounds of 1000 requests) and on the main job's (10k items, 10 rounds of 500), seeds 1..5, and
# one line per run in OUT/results.tsv (docs/BENCHMARKS.md "Slates"; summarise with
# scripts/slate_grid_summary.py). Extra arguments go to every simulate run (e.g.
# --slate-exploration per_slate).
# usage: scripts/slate_grid.sh OUT [simulate flags...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
optower=${OPTOWER:-${BUILD_DIR:-$here/build}/cli/optower}
out=$1
shift
mkdir -p "$out"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
settings=${SETTINGS:-"issue main"}
ks=${KS:-"1 5 10"}
seeds=${SEEDS:-"1 2 3 4 5"}
for setting in $settings; do
  case $setting in
    issue) flags=(--items 2000 --rounds 6 --requests-per-round 1000) ;;
    main) flags=() ;;  # simulate's defaults: the main job (scripts/run_main.sh)
    *) echo "unknown setting $setting" >&2; exit 2 ;;
  esac
  for k in $ks; do
    for seed in $seeds; do
      run="$out/$setting-k$k-s$seed"
      "$optower" simulate "${flags[@]}" --k "$k" --seed "$seed" --out "$run" --overwrite --quiet \
        --no-plot "$@" > "$run.log" 2>&1 || { echo "FAILED $run (see $run.log)" >&2; continue; }
      /usr/bin/python3 - "$run/summary.json" "$setting" "$k" "$seed" >> "$out/results.tsv" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
last = d["rounds"][-1]
pos = ";".join(f"{v:.4f}" for v in last.get("position_values", [last["served_value_pos0"]]))
print("\t".join([sys.argv[2], sys.argv[3], sys.argv[4], f"{d['first_value']:.4f}",
                 f"{d['final_value']:.4f}", f"{last['served_value_pos0']:.4f}",
                 f"{d['optimal_value']:.4f}", f"{d['ceiling_value']:.4f}",
                 f"{d['gap_closed']:.4f}", f"{d['ceiling_gap_closed']:.4f}",
                 f"{d['wall_seconds']:.1f}", pos]))
PY
    done
  done
done
