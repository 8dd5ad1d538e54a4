#!/usr/bin/python3
"""Learning-curve plot for `optower experiment`: true policy value vs logged-data size n, mean and
spread (min..max over seeds) per objective, with the behaviour and optimal policies as lines.

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
    behavior, optimal, setting = [], [], ""
    with open(results_path, newline="") as f:
        for row in csv.DictReader(f):
            setting = row["setting"]
            runs[row["objective"]][int(row["n_rounds"])].append(float(row["value"]))
            behavior.append(float(row["behavior_value"]))
            optimal.append(float(row["optimal_value"]))
    if not runs:
        sys.exit("plot_experiment.py: no rows in " + results_path)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    colors = {"dr": "tab:blue", "ipw": "tab:orange", "dm": "tab:green"}
    for objective, by_n in sorted(runs.items()):
        ns = sorted(by_n)
        vals = [np.array(by_n[n]) for n in ns]
        mean = np.array([v.mean() for v in vals])
        c = colors.get(objective)
        ax.plot(ns, mean, marker="o", label=f"{objective} (mean)", color=c)
        ax.fill_between(ns, [v.min() for v in vals], [v.max() for v in vals], alpha=0.2, color=c)
    ax.axhline(np.mean(optimal), color="black", linestyle="--", label="optimal")
    ax.axhline(np.mean(behavior), color="gray", linestyle=":", label="behaviour")
    ax.set_xscale("log")
    ax.set_xlabel("logged rounds n")
    ax.set_ylabel("true policy value on test contexts")
    seeds = max(len(v) for by_n in runs.values() for v in by_n.values())
    ax.set_title(f"{setting}: learned policies ({seeds} seeds; band = min..max)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
