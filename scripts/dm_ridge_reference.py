#!/usr/bin/env python3
"""A reference DM for OBP's logistic reward with one-hot actions (docs/BENCHMARKS.md §1c): per-action
logistic regression on [1, x] with a shared mean and a Gaussian prior (MAP, scipy L-BFGS), the
prior's strength chosen by held-out log-loss on a seeded 80/20 split and the model refitted on all
rows; the policy is argmax of the fit. Prints the normalised value of that policy on the folder's
test contexts. It is the well-specified model for this reward, so it says how far a DM can go on
the folder's rows. Usage: /usr/bin/python3 scripts/dm_ridge_reference.py SYNTH_DIR... (folders
written by `optower synth --one-hot --reward logistic`)."""
import sys

import numpy as np
from scipy.optimize import minimize


def load(d):
    logs = np.loadtxt(d + "/logs.csv", delimiter=",", skiprows=1)
    dim = logs.shape[1] - 3
    x, a, r = logs[:, :dim], logs[:, dim].astype(int), logs[:, dim + 1]
    xt = np.loadtxt(d + "/test_contexts.csv", delimiter=",", skiprows=1)
    q = np.loadtxt(d + "/test_expected_reward.csv", delimiter=",", skiprows=1)
    pb = np.loadtxt(d + "/test_behavior_policy.csv", delimiter=",", skiprows=1)
    return x, a, r, xt, q, pb


def fit(x, a, r, n_actions, lam):
    f = np.hstack([np.ones((len(x), 1)), x])
    p = f.shape[1]

    def loss(w):
        mu, t = w[:p], w[p:].reshape(n_actions, p)
        z = (f * (t[a] + mu)).sum(1)
        g = (1 / (1 + np.exp(-z)) - r)[:, None] * f
        gt = np.zeros((n_actions, p))
        np.add.at(gt, a, g)
        value = (np.logaddexp(0, z) - r * z).sum() + 0.5 * lam * (t ** 2).sum() + 5e-4 * (mu ** 2).sum()
        return value, np.concatenate([g.sum(0) + 1e-3 * mu, (gt + lam * t).ravel()])

    w = minimize(loss, np.zeros(p + n_actions * p), jac=True, method="L-BFGS-B",
                 options={"maxiter": 500}).x
    return w[:p], w[p:].reshape(n_actions, p)


def main():
    values = []
    for d in sys.argv[1:]:
        x, a, r, xt, q, pb = load(d)
        n_actions = q.shape[1]
        idx = np.random.default_rng(0).permutation(len(x))
        tr, va = idx[: int(0.8 * len(x))], idx[int(0.8 * len(x)):]
        best = None
        for lam in [0.3, 1, 3, 10, 30]:
            mu, t = fit(x[tr], a[tr], r[tr], n_actions, lam)
            z = (np.hstack([np.ones((len(va), 1)), x[va]]) * (t[a[va]] + mu)).sum(1)
            held_out = (np.logaddexp(0, z) - r[va] * z).mean()
            if best is None or held_out < best[0]:
                best = (held_out, lam)
        mu, t = fit(x, a, r, n_actions, best[1])
        pi = (np.hstack([np.ones((len(xt), 1)), xt]) @ (t + mu).T).argmax(1)
        v = q[np.arange(len(q)), pi].mean()
        vb, vs = (pb * q).sum(1).mean(), q.max(1).mean()
        values.append((v - vb) / (vs - vb))
        print(f"{d}: prior {best[1]}, normalised value {values[-1]:.3f}", flush=True)
    print(f"mean {np.mean(values):.3f} ± {np.std(values, ddof=1) / np.sqrt(len(values)):.3f}")


if __name__ == "__main__":
    main()
