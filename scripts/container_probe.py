#!/usr/bin/python3
"""The client side of scripts/container_check.sh: talks to an optower-server in a container from
outside it, over loopback only, with the Python client (client/python, Debian's python3-grpcio).

  container_probe.py wait  --addr 127.0.0.1:P [--timeout S] [--container NAME]
        prints the seconds until SERVING; gives up early when the podman container NAME stops
  container_probe.py check --addr 127.0.0.1:P --metrics 127.0.0.1:M --dim D --admin-token-file F
        Retrieve, Feedback, /metrics, and the admin RPCs: refused without the token, served with it.
        Prints the request id it logged (the caller looks for it in events.sqlite after the stop).

Exit 0 when every check passed; 1 with one line per failed check on stderr.
"""

import argparse
import subprocess
import sys
import time
import urllib.request

from optower_client import Client, OptowerError

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, file=sys.stderr)
    if not cond:
        failures.append(what)
    return cond


def wait(args):
    start = time.monotonic()
    status = "UNREACHABLE"
    last_alive_check = start
    with Client(args.addr, timeout=2.0) as c:
        while time.monotonic() - start < args.timeout:
            if args.container and time.monotonic() - last_alive_check > 2:
                last_alive_check = time.monotonic()
                state = subprocess.run(["podman", "inspect", "--format", "{{.State.Status}}",
                                        args.container], capture_output=True, text=True).stdout
                if state.strip() != "running":
                    print(f"container_probe: container {args.container} is {state.strip()}",
                          file=sys.stderr)
                    return 1
            try:
                status = c.health()
            except OptowerError as e:
                status = e.code.name if hasattr(e.code, "name") else str(e.code)
            if status == "SERVING":
                print(f"{time.monotonic() - start:.1f}")
                return 0
            time.sleep(0.2)
    print(f"container_probe: not SERVING after {args.timeout:.0f} s (last: {status})", file=sys.stderr)
    return 1


def check_all(args):
    token = open(args.admin_token_file).read().strip()
    with Client(args.addr, timeout=20.0) as c:
        check(c.health() == "SERVING", "gRPC health (grpc.health.v1, service \"\") is SERVING")

        response = c.retrieve([0.1 * (i + 1) for i in range(args.dim)], k=5, seed=7)
        ids = [item.item_id for item in response.items]
        check(len(ids) == 5 and len(set(ids)) == 5 and response.request_id,
              f"Retrieve k=5 returns 5 distinct items with a request id ({ids}, {response.request_id!r})")
        check(all(0 < item.propensity <= 1 for item in response.items),
              "Retrieve: every propensity is in (0, 1]")
        outcome = c.feedback(response.request_id, ids[0], 1.0)
        check(outcome == "accepted", f"Feedback of a served item is accepted ({outcome})")
        outcome = c.feedback(response.request_id, 10**12, 1.0)
        check(outcome == "unknown", f"Feedback of an item not served is 'unknown' ({outcome})")

        # The admin RPCs: GetStats stands for all of them (the token check is one interceptor).
        try:
            c.stats()
            check(False, "GetStats without the admin token is refused (it was served)")
        except OptowerError as e:
            check(e.code.name in ("UNAUTHENTICATED", "PERMISSION_DENIED"),
                  f"GetStats without the admin token is refused ({e.code.name})")
    with Client(args.addr, token=token, timeout=20.0) as c:
        stats = c.stats()
        check(stats is not None, "GetStats with the admin token is served")
    with Client(args.addr, token="not-the-token", timeout=20.0) as c:
        try:
            c.stats()
            check(False, "GetStats with a wrong token is refused (it was served)")
        except OptowerError as e:
            check(e.code.name in ("UNAUTHENTICATED", "PERMISSION_DENIED"),
                  f"GetStats with a wrong token is refused ({e.code.name})")

    with urllib.request.urlopen(f"http://{args.metrics}/metrics", timeout=10) as r:
        body = r.read().decode()
        check(r.status == 200, f"/metrics answers 200 ({r.status})")
    for name in ("optower_rpc_requests_total", "optower_items_served_total",
                 "optower_feedback_events_total", "optower_catalog_items"):
        check(f"\n{name}" in body or body.startswith(name), f"/metrics has {name}")
    served = [l for l in body.splitlines() if l.startswith("optower_items_served_total")]
    check(served and float(served[0].split()[-1]) >= 5, f"/metrics counts the 5 served items ({served})")

    print(response.request_id)
    return 1 if failures else 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["wait", "check"])
    p.add_argument("--addr", required=True)
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--container")
    p.add_argument("--metrics")
    p.add_argument("--dim", type=int, default=8)
    p.add_argument("--admin-token-file")
    args = p.parse_args()
    for addr in (args.addr, args.metrics):
        if addr and not addr.startswith("127."):
            sys.exit(f"container_probe: {addr}: loopback addresses only")
    sys.exit(wait(args) if args.command == "wait" else check_all(args))


if __name__ == "__main__":
    main()
