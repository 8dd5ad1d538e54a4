#!/usr/bin/python3
"""Summarises scripts/slate_grid.sh's results.tsv: per setting and K, the mean ± standard deviation
over seeds of the first and last round's served value, the last round's position-0 value, the
gap closed, the epsilon ceiling's gap and the share of it closed (gap / ceiling gap, per run), and
the last round's value per position (means).

usage: slate_grid_summary.py results.tsv [label]"""
import statistics
import sys
from collections import defaultdict


def ms(xs):
    if len(xs) < 2:
        return f"{xs[0]:.3f}"
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}"


def main(path, label):
    runs = defaultdict(list)
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        runs[(f[0], int(f[1]))].append(f)
    print(f"| {label}setting | K | seeds | first | last (slate) | last, position 0 | gap closed | "
          f"ε-ceiling gap | share of the ceiling's gap | last round per position | s/run |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (setting, k), rows in sorted(runs.items()):
        col = lambda i: [float(r[i]) for r in rows]
        pos = [[float(v) for v in r[11].split(";")] for r in rows]
        per_pos = " ".join(f"{statistics.mean(p[j] for p in pos):.3f}" for j in range(len(pos[0])))
        seeds = ",".join(r[2] for r in rows)
        print(f"| {setting} | {k} | {seeds} | {ms(col(3))} | {ms(col(4))} | {ms(col(5))} | "
              f"**{ms(col(8))}** | {ms(col(9))} | {ms([g / c for g, c in zip(col(8), col(9))])} | {per_pos} | {statistics.median(col(10)):.0f} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] + " " if len(sys.argv) > 2 else "")
