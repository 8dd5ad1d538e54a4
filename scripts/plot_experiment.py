#!/usr/bin/python3
"""Learning-curve plot for `optower experiment`. Left: true policy value vs logged-data size n, mean and
spread (min..max over seeds) per objective, with the behaviour and optimal policies as lines. Right: the
normalised value (V - V_behaviour) / (V_optimal - V_behaviour), which removes the seed-to-seed spread of
the generator (0 = behaviour, 1 = optimal).

usage: plot_experiment.py results.csv out.png
Runs with Debian's /usr/bin/python3 (python3-matplotlib, python3-numpy)."""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main(results_path: str, out_path: str) -> None:
    runs = defaultdict(lambda: defaultdict(list))
    normalized = defaultdict(lambda: defaultdict(list))
    behavior, optimal, setting = [], [], ""
    with open(results_path, newline="") as f:
        for row in csv.DictReader(f):
            setting = row["setting"]
            runs[row["objective"]][int(row["n_rounds"])].append(float(row["value"]))
            normalized[row["objective"]][int(row["n_rounds"])].append(float(row["normalized_value"]))
            behavior.append(float(row["behavior_value"]))
            optimal.append(float(row["optimal_value"]))
    if not runs:
        sys.exit("plot_experiment.py: no rows in " + results_path)
    fig, (ax, axn) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=110)
    colors = {"dr": "tab:blue", "ipw": "tab:orange", "dm": "tab:green"}
    for target, data in ((ax, runs), (axn, normalized)):
        for objective, by_n in sorted(data.items()):
            ns = sorted(by_n)
            vals = [np.array(by_n[n]) for n in ns]
            c = colors.get(objective)
            target.plot(ns, [v.mean() for v in vals], marker="o", label=f"{objective} (mean)", color=c)
            target.fill_between(ns, [v.min() for v in vals], [v.max() for v in vals], alpha=0.2,
                                color=c)
        target.set_xscale("log")
        target.set_xlabel("logged rounds n")
        target.grid(True, which="both", alpha=0.3)
    ax.axhline(np.mean(optimal), color="black", linestyle="--", label="optimal (mean)")
    ax.axhline(np.mean(behavior), color="gray", linestyle=":", label="behaviour (mean)")
    axn.axhline(1.0, color="black", linestyle="--", label="optimal")
    axn.axhline(0.0, color="gray", linestyle=":", label="behaviour")
    ax.set_ylabel("true policy value on test contexts")
    axn.set_ylabel("normalised value")
    seeds = max(len(v) for by_n in runs.values() for v in by_n.values())
    ax.set_title(f"{setting}: true value ({seeds} seeds; band = min..max)", fontsize=10)
    axn.set_title("normalised: (V - V_behaviour) / (V_optimal - V_behaviour)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    axn.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
