#!/usr/bin/env python3
"""scripts/check_layers.py catches each kind of violation, and passes the repository itself.

  check_layers_test.py REPO_ROOT

Builds small source trees in a temporary folder, one per rule, and runs the checker on each: the
clean tree must pass, each broken one must fail naming the file and line. Exit 1 on any mismatch.
"""
import os
import subprocess
import sys
import tempfile

repo = os.path.abspath(sys.argv[1])
checker = os.path.join(repo, "scripts", "check_layers.py")


def run(tree):
    with tempfile.TemporaryDirectory() as root:
        for path, text in tree.items():
            os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
            with open(os.path.join(root, path), "w") as f:
                f.write(text)
        p = subprocess.run([sys.executable, checker, root], capture_output=True, text=True)
        return p.returncode, p.stderr


GOOD = {
    "core/base/a.h": "#include <string>\n",
    "core/model/m.h": '#include "core/base/a.h"\n#include <torch/torch.h>\n',
    "core/serving/s.cc": '#include "core/model/m.h"\n',
    "server/x.cc": '#include "core/serving/s.cc"\n#include <grpcpp/grpcpp.h>\n',
}
CASES = [
    ("upward include", {"core/base/a.h": '#include "core/model/m.h"\n'}, "core/base/a.h:1:"),
    ("gRPC in core", {"core/serving/s.cc": "#include <grpcpp/grpcpp.h>\n"}, "core/serving/s.cc:1:"),
    ("server/ in core", {"core/model/m.h": '#include "server/x.cc"\n'}, "core/model/m.h:1:"),
    ("torch outside model", {"core/serving/s.cc": "#include <torch/torch.h>\n"}, "core/serving/s.cc:1:"),
    ("unknown library", {"core/misc/z.h": "\n"}, "core/misc/z.h:1:"),
    ("flat core file", {"core/z.h": "\n"}, "core/z.h:1:"),
    ("cycle in a library", {"core/base/a.h": '#include "core/base/b.h"\n',
                            "core/base/b.h": '#include "core/base/a.h"\n'}, "include cycle"),
]

failures = []
code, err = run(GOOD)
if code != 0:
    failures.append(f"clean tree rejected: {err}")
for name, change, expected in CASES:
    code, err = run({**GOOD, **change})
    if code != 1 or expected not in err:
        failures.append(f"{name}: exit {code}, stderr {err!r} (expected exit 1 naming {expected!r})")
code, err = run_repo = subprocess.run([sys.executable, checker, repo], capture_output=True,
                                      text=True).returncode, ""
if code != 0:
    failures.append("the repository itself violates the rules (run scripts/check_layers.py .)")
for f in failures:
    print("FAIL:", f)
print(f"check_layers_test: {len(CASES) + 2 - len(failures)}/{len(CASES) + 2} passed")
sys.exit(1 if failures else 0)
