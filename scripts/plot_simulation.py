#!/usr/bin/python3
"""Learning curve of `optower simulate` (the closed loop). Left: the TRUE value of what the server
served in each round (mean q(x, a) over the served items), with the optimal value of the same
contexts, the epsilon ceiling ((1 - eps) optimal + eps uniform: the best a server that explores
with eps can serve) and the first round's value as lines; each point is labelled with the model version that
served the round. Middle: the share of the gap closed, (v - v_first) / (v_optimal - v_first). Right (slates, k > 1):
the served value at each position per round, with the best K-slate's value at that position.

usage: plot_simulation.py rounds.csv summary.json out.png
Runs with Debian's /usr/bin/python3 (python3-matplotlib)."""
import csv
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(rounds_path: str, summary_path: str, out_path: str) -> None:
    with open(rounds_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit("plot_simulation.py: no rows in " + rounds_path)
    with open(summary_path) as f:
        summary = json.load(f)
    rounds = [int(r["round"]) for r in rows]
    served = [float(r["served_value"]) for r in rows]
    gap = [float(r["gap_closed"]) if r["gap_closed"] else float("nan") for r in rows]
    versions = [r["model_version"] for r in rows]
    optimal = summary["optimal_value"]
    first = summary["first_value"]
    uniform = summary.get("uniform_value")
    ceiling = summary.get("ceiling_value")
    s = summary["setting"]

    k = int(s["k"])
    slate = k > 1 and "value_pos0" in rows[0]
    if slate:
        fig, (ax, axg, axp) = plt.subplots(1, 3, figsize=(18, 4.5), dpi=110)
    else:
        fig, (ax, axg) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=110)
    ax.plot(rounds, served, marker="o", color="tab:blue", label="served value (true)")
    for x, y, v in zip(rounds, served, versions):
        ax.annotate(v, (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7)
    ax.axhline(optimal, color="black", linestyle="--", label=f"optimal {optimal:.3f}")
    if ceiling is not None:
        ax.axhline(ceiling, color="tab:purple", linestyle="--", alpha=0.6,
                   label=f"epsilon ceiling {ceiling:.3f}")
    ax.axhline(first, color="gray", linestyle=":", label=f"first round {first:.3f}")
    if uniform is not None:
        ax.axhline(uniform, color="tab:red", linestyle="-.", alpha=0.5,
                   label=f"uniform {uniform:.3f}")
    ax.set_xlabel("round (a retrain between rounds)")
    ax.set_ylabel("mean true q(x, a) of served items")
    ax.set_xticks(rounds)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    features = (f"N(0,1)x{s['dim_item_features']}" if s["dim_item_features"] > 0 else "one-hot")
    ax.set_title(f"{s['items']} items ({features}), {s['requests_per_round']} requests/round, "
                 f"k={s['k']}, eps={s['epsilon']:g}, {s['objective']}", fontsize=10)

    axg.plot(rounds, gap, marker="o", color="tab:green")
    axg.axhline(1.0, color="black", linestyle="--", label="optimal")
    if summary.get("ceiling_gap_closed") is not None:
        axg.axhline(summary["ceiling_gap_closed"], color="tab:purple", linestyle="--", alpha=0.6,
                    label=f"epsilon ceiling {summary['ceiling_gap_closed']:.3f}")
    axg.axhline(0.5, color="tab:orange", linestyle=":", label="target 0.5")
    axg.axhline(0.0, color="gray", linestyle=":", label="first round")
    axg.set_xlabel("round")
    axg.set_ylabel("gap closed")
    axg.set_xticks(rounds)
    axg.grid(True, alpha=0.3)
    axg.legend(loc="lower right", fontsize=8)
    axg.set_title("(v - v_first) / (v_optimal - v_first)", fontsize=10)
    if slate:
        cmap = plt.get_cmap("viridis")
        for j in range(k):
            col = cmap(j / max(k - 1, 1))
            vals = [float(r[f"value_pos{j}"]) if r[f"value_pos{j}"] else float("nan") for r in rows]
            best = sum(float(r[f"optimal_pos{j}"]) for r in rows) / len(rows)
            axp.plot(rounds, vals, marker="o", markersize=3, color=col, label=f"position {j}")
            axp.axhline(best, color=col, linestyle="--", alpha=0.4)
        axp.set_xlabel("round")
        axp.set_ylabel("mean true q(x, a) at the position")
        axp.set_xticks(rounds)
        axp.grid(True, alpha=0.3)
        axp.legend(loc="lower right", fontsize=7, ncol=2)
        axp.set_title("per position (dashed: best K-slate at that position)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_path)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3])
