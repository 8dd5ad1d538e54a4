#!/usr/bin/python3
"""Sets optower's experiment results beside OBP's reference numbers (shared/obp/reference.csv).

usage: compare_reference.py REFERENCE_CSV RESULTS_CSV [RESULTS_CSV ...]
For every (setting, n) in the reference, prints OBP NNPolicyLearner(dr)'s mean normalised value, and
optower's mean (and sd, seeds) per objective, and whether optower's DR mean is at least OBP's."""
import csv
import sys
from collections import defaultdict

import numpy as np


def main(ref_path, result_paths):
    obp = defaultdict(list)
    obp_time = defaultdict(list)
    for r in csv.DictReader(open(ref_path)):
        if r["learner"] == "NNPolicyLearner-dr":
            obp[(r["setting"], int(r["n_rounds"]))].append(float(r["normalized_value"]))
            obp_time[(r["setting"], int(r["n_rounds"]))].append(float(r["train_time_s"]))
    ours = defaultdict(lambda: defaultdict(list))
    ours_time = defaultdict(lambda: defaultdict(list))
    for path in result_paths:
        for r in csv.DictReader(open(path)):
            key = (r["setting"], int(r["n_rounds"]))
            ours[key][r["objective"]].append(float(r["normalized_value"]))
            ours_time[key][r["objective"]].append(float(r["train_time_s"]))
    print("| setting | n | OBP dr (seeds) | OBP time s | optower dr mean ± sd (seeds) | optower dr time s | dm | ipw | dr ≥ OBP |")
    print("|---|---|---|---|---|---|---|---|---|")
    ok_all = True
    for key in sorted(obp, key=lambda k: (int(k[0].split("_")[0][1:]), k[1])):
        if key not in ours:
            continue
        o = ours[key]
        dr = np.array(o.get("dr", []))
        cell = lambda name: (f"{np.mean(o[name]):.3f}" if name in o else "–")
        ok = len(dr) > 0 and dr.mean() >= np.mean(obp[key])
        ok_all &= ok
        print(f"| {key[0]} | {key[1]} | {np.mean(obp[key]):.3f} ({len(obp[key])}) | "
              f"{np.mean(obp_time[key]):.1f} | {dr.mean():.3f} ± {dr.std(ddof=1) if len(dr) > 1 else 0:.3f} ({len(dr)}) | "
              f"{np.mean(ours_time[key]['dr']):.2f} | {cell('dm')} | {cell('ipw')} | {'yes' if ok else 'NO'} |")
    print()
    print("all settings: optower dr >= OBP dr" if ok_all else "some setting: optower dr < OBP dr")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
