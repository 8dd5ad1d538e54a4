#!/usr/bin/python3
"""The learning-quality grid as a markdown table (issue 14, docs/BENCHMARKS.md §1).

usage: learning_grid_table.py RESULTS_CSV [RESULTS_CSV ...]   (results.csv of `optower experiment`)
Per (setting, n): the mean normalised value ± its standard error over seeds (sd/sqrt(seeds)) of dr,
dm and ipw; the paired difference dr − dm over the same seeds ± its standard error; the mean training
time of dr and dm; and the checks of issue 14: dr >= dm − se(dr) on every row, and on the
misspecified rewards at n = 20k dr − dm > se(dr)."""
import csv
import math
import sys
from collections import defaultdict


def mean_se(xs):
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, 0.0
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    return m, sd / math.sqrt(len(xs))


def main(paths):
    value = defaultdict(dict)   # (setting, n) -> objective -> {seed: normalised}
    time = defaultdict(lambda: defaultdict(list))
    for path in paths:
        for r in csv.DictReader(open(path)):
            key = (r["setting"], int(r["n_rounds"]))
            value[key].setdefault(r["objective"], {})[int(r["seed"])] = float(r["normalized_value"])
            time[key][r["objective"]].append(float(r["train_time_s"]))

    def order(k):
        s = k[0]
        reward = 0 if "polynomial" in s else (1 if "sparse" in s else -1)
        return (reward, int(s.split("_")[0][1:]), k[1])

    print("| setting | n | dr ± se | dm ± se | ipw ± se | dr − dm (paired) ± se | dr ≥ dm − se | "
          "dr / dm time s |")
    print("|---|---|---|---|---|---|---|---|")
    fails = []
    for key in sorted(value, key=order):
        v = value[key]
        cells = {}
        for obj in ("dr", "dm", "ipw"):
            cells[obj] = "%.3f ± %.3f" % mean_se(list(v[obj].values())) if obj in v else "–"
        check, diff_cell = "–", "–"
        if "dr" in v and "dm" in v:
            seeds = sorted(set(v["dr"]) & set(v["dm"]))
            d_mean, d_se = mean_se([v["dr"][s] - v["dm"][s] for s in seeds])
            dr_mean, dr_se = mean_se(list(v["dr"].values()))
            dm_mean, _ = mean_se(list(v["dm"].values()))
            diff_cell = "%+.3f ± %.3f" % (d_mean, d_se)
            ok = dr_mean >= dm_mean - dr_se
            check = "yes" if ok else "NO"
            if not ok:
                fails.append("%s n=%d: dr %.3f < dm %.3f − se %.3f" % (key[0], key[1], dr_mean,
                                                                      dm_mean, dr_se))
            misspecified = "polynomial" in key[0] or "sparse" in key[0]
            if misspecified and key[1] == 20000:
                gain = dr_mean - dm_mean > dr_se
                check += ", gain > se: " + ("yes" if gain else "no")
        t = time[key]
        tcell = "%.2f / %.2f" % (sum(t["dr"]) / len(t["dr"]) if t["dr"] else float("nan"),
                                 sum(t["dm"]) / len(t["dm"]) if t["dm"] else float("nan"))
        print("| %s | %d | %s | %s | %s | %s | %s | %s |" % (key[0], key[1], cells["dr"], cells["dm"],
                                                          cells["ipw"], diff_cell, check, tcell))
    print()
    print("every row: dr >= dm - se(dr)" if not fails else "rows with dr < dm - se(dr):\n  " +
          "\n  ".join(fails))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
