#!/usr/bin/env bash
# Off-policy check on real logged data: the Open Bandit Dataset sample (shared/obd/men, README there).
#   1. import the campaign (optower import obd);
#   2. estimate the uniform-random policy's CTR from the BTS log (IPS, SNIPS, DR; DR's q̂ fitted on
#      that log) and compare it with the random log's observed CTR (Wilson 95% interval);
#   3. train a DR policy on the BTS log and estimate its CTR on the random log (uniform
#      propensities: IPS is unbiased there), beside both logging policies' observed CTRs.
# Writes OUT/summary.md (tables) and the JSON of every step.
# usage: scripts/obd_check.sh OUT [BUILD_DIR]   (OPTOWER_SHARED_DIR overrides ../shared; SEED=0)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: scripts/obd_check.sh OUT [BUILD_DIR]}
build=${2:-$here/build}
shared=${OPTOWER_SHARED_DIR:-$here/../shared}
seed=${SEED:-0}
threads=${THREADS:-2}
export OMP_WAIT_POLICY=PASSIVE
optower="$build/cli/optower"
mkdir -p "$out"

"$optower" import obd --dir "$shared/obd/men" --out "$out/data" --overwrite | tee "$out/import.txt"
data="$out/data"
# Sanity: on the random log itself IPS must equal the observed CTR exactly (w = 1 everywhere).
"$optower" evaluate --uniform --logs "$data/logs_random.csv" --items "$data/items.csv" \
  --seed "$seed" --threads "$threads" --json > "$out/uniform_on_random.json"
"$optower" evaluate --uniform --logs "$data/logs_bts.csv" --items "$data/items.csv" \
  --seed "$seed" --threads "$threads" --json > "$out/uniform_on_bts.json"
"$optower" train --logs "$data/logs_bts.csv" --items "$data/items.csv" --objective dr \
  --seed "$seed" --threads "$threads" --out "$out/model_bts" --overwrite --quiet
"$optower" evaluate --model "$out/model_bts" --logs "$data/logs_random.csv" --json \
  > "$out/dr_policy_on_random.json"

/usr/bin/python3 - "$out" <<'PY'
import json, math, sys
out = sys.argv[1]
imp = {p["policy"]: p for p in json.load(open(f"{out}/data/import.json"))["policies"]}
def est(name):
    return {e["estimator"].upper(): e for e in json.load(open(f"{out}/{name}.json"))["estimates"]}
def pct(v):
    return f"{100*v:.3f}"
def ci(lo, hi):
    return f"[{pct(lo)}, {pct(hi)}]"
rnd, bts = imp["random"], imp["bts"]
truth = (rnd["ctr_wilson95_low"], rnd["ctr_wilson95_high"])
# The random log's CTR is itself a sample: the estimate - observed difference has (the two logs
# being independent) standard error sqrt(se_est^2 + p(1-p)/n).
se_obs = math.sqrt(rnd["ctr"] * (1 - rnd["ctr"]) / rnd["rows"])
lines = ["# Open Bandit Dataset (men, 10k + 10k rows): off-policy check", "",
         "CTR in %, 95% intervals (estimators: normal approximation; observed CTRs: Wilson).", "",
         "## 1. Value of the uniform-random policy estimated from the BTS log", "",
         f"Ground truth: the random log's observed CTR {pct(rnd['ctr'])} {ci(*truth)} "
         f"({rnd['clicks']} clicks / {rnd['rows']} rows).", "",
         f"| estimator on logs_bts.csv | CTR | 95% interval | covers {pct(rnd['ctr'])}? | "
         "estimate - observed [95%] | max weight | ESS |", "|---|---|---|---|---|---|---|"]
for name, e in est("uniform_on_bts").items():
    covers = e["ci_low"] <= rnd["ctr"] <= e["ci_high"]
    diff = e["value"] - rnd["ctr"]
    half = 1.959964 * math.hypot(e["std_error"], se_obs)
    lines.append(f"| {name} | {pct(e['value'])} | {ci(e['ci_low'], e['ci_high'])} | "
                 f"{'yes' if covers else 'no'} | {pct(diff)} {ci(diff - half, diff + half)} | "
                 f"{e['max_weight']:.1f} | {e['effective_sample_size']:.0f} |")
self_check = est("uniform_on_random")["IPS"]["value"]
lines += ["", f"Sanity: IPS of the uniform policy on the random log itself = {pct(self_check)} "
          f"(observed {pct(rnd['ctr'])}).", "",
          "## 2. A DR policy trained on the BTS log, evaluated on the random log", "",
          "| policy | CTR | 95% interval | how |", "|---|---|---|---|",
          f"| random (logging) | {pct(rnd['ctr'])} | {ci(*truth)} | observed (Wilson) |",
          f"| BTS (logging) | {pct(bts['ctr'])} | "
          f"{ci(bts['ctr_wilson95_low'], bts['ctr_wilson95_high'])} | observed (Wilson) |"]
for name, e in est("dr_policy_on_random").items():
    lines.append(f"| DR policy trained on BTS | {pct(e['value'])} | "
                 f"{ci(e['ci_low'], e['ci_high'])} | {name} on logs_random.csv "
                 f"(max w {e['max_weight']:.1f}, ESS {e['effective_sample_size']:.0f}) |")
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
