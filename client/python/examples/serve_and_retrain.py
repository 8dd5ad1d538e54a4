#!/usr/bin/python3
"""A worked example: connect to a running optower-server, serve, send rewards, retrain, print the
models.

    PYTHONPATH=build/client/python/gen:client/python /usr/bin/python3 \
        client/python/examples/serve_and_retrain.py --server 127.0.0.1:50051 [--token-file F]

The rewards are simulated: a hidden linear preference over the context decides whether the user
"clicks" the first served item. Retraining needs enough logged feedback (TrainerConfig.min_events,
default 100); with --rounds below that the job ends FAILED with the trainer's reason, which the
script prints like any other outcome.
"""

import argparse
import os
import sys
import time

import numpy as np

from optower_client import Client, OptowerError, optower_pb2


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="127.0.0.1:50051", help="host:port")
    parser.add_argument("--token-file", help="admin token file (else $OPTOWER_TOKEN)")
    parser.add_argument("--tls-ca", help="CA certificate (PEM) of a TLS server")
    parser.add_argument("--rounds", type=int, default=300, help="Retrieve calls to make")
    parser.add_argument("--k", type=int, default=5, help="slate size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="promote even if the gate rejects")
    args = parser.parse_args()

    token = os.environ.get("OPTOWER_TOKEN")
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()

    rng = np.random.default_rng(args.seed)
    with Client(args.server, token=token, tls_root_cert=args.tls_ca, wait_for_ready=True) as c:
        stats = c.stats()
        dim = stats.dim_context
        print(f"connected to {args.server}: model {stats.model_version}, "
              f"{stats.catalog_size} items, dim_context {dim}, epsilon {stats.epsilon:g}")

        # 1. Serve, and send a reward for every served item (1 for the "clicked" first item).
        preference = rng.normal(size=dim)
        events = []
        for _ in range(args.rounds):
            context = rng.normal(size=dim).astype(np.float32)
            slate = c.retrieve(context, k=args.k)
            clicked = float(context @ preference + rng.normal() > 0)
            for item in slate.items:
                reward = clicked if item.position == 0 else 0.0
                events.append((slate.request_id, item.item_id, reward))
        sent = c.feedback_batch(events[:1000])  # at most max_feedback_batch (1000) per call
        for start in range(1000, len(events), 1000):
            more = c.feedback_batch(events[start:start + 1000])
            sent.accepted += more.accepted
            sent.duplicate += more.duplicate
            sent.unknown += more.unknown
        print(f"served {args.rounds} slates of {args.k}; feedback: {sent.accepted} accepted, "
              f"{sent.duplicate} duplicate, {sent.unknown} unknown")

        # Feedback is acknowledged before its commit (group commit, docs/SERVING.md); a job reads
        # what is committed, so wait until this run's rows are in the log.
        deadline = time.monotonic() + 10
        while (c.stats().event_log.feedback_rows < stats.event_log.feedback_rows + sent.accepted
               and time.monotonic() < deadline):
            time.sleep(0.05)

        # 2. Retrain from the logs, printing the progress events as they come.
        try:
            job = c.retrain(force=args.force, watch=True, progress=print)
        except OptowerError as e:
            print(f"retrain refused: {e}", file=sys.stderr)
            return 1
        state = optower_pb2.TrainingJobState.Name(job.state).replace("TRAINING_JOB_STATE_", "")
        print(f"job {job.job_id}: {state}, version {job.version or '-'}, decision "
              f"{job.decision or '-'}: {job.reason}")

        # 3. The stored model versions.
        models = c.models()
        print(f"serving {models.serving_version}")
        for m in models.models:
            mark = "*" if m.serving else " "
            dr = f" DR new {m.ope.new_value.value:.4f} vs old {m.ope.old_value.value:.4f}" \
                if m.HasField("ope") else ""
            print(f" {mark} {m.version} {m.decision:9s} {m.objective or '-':4s} "
                  f"n_train={m.n_train}{dr}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
