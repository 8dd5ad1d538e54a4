#!/usr/bin/python3
"""The Python client installs like a package: the README's command, then a Retrieve + Feedback.

    /usr/bin/python3 tests/python/test_install.py --server-bin build/server/optower-server

Makes a virtual environment in a temporary folder with Debian's interpreter and
--system-site-packages (so python3-grpcio, python3-protobuf and python3-numpy are seen), runs
`pip install --no-index --no-build-isolation client/python` in it with no pip configuration (no
index, no extra wheel folders: offline), and from the venv's python — started outside the source
tree, with no PYTHONPATH — imports optower_client, checks that its generated stubs come from the
installed package, and does a Retrieve and a Feedback against a real optower-server on 127.0.0.1.
Run by ctest (tests/CMakeLists.txt: python_install).
"""

import argparse
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

_ARGS = None
DIM_CONTEXT = 3

CLIENT_SNIPPET = r"""
import json, sys
import optower_client
from optower_client import Client
with Client(sys.argv[1], timeout=30) as c:
    slate = c.retrieve([0.5, -0.25, 1.0], k=2)
    outcome = c.feedback(slate.request_id, slate.items[0].item_id, 1.0)
print(json.dumps({
    "package": optower_client.__file__,
    "stubs": optower_client.optower_pb2.__spec__.origin,
    "items": [i.item_id for i in slate.items],
    "outcome": outcome,
}))
"""


def _parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--client-dir", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "client", "python"))
    args, rest = parser.parse_known_args()
    return args, rest


def _clean_env():
    """The environment without anything that would let the venv find the source or build trees,
    or pip find packages anywhere but on this machine's Debian site-packages."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("PYTHONPATH", "OPTOWER_PYTHON_GEN",
                                                      "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               OMP_WAIT_POLICY="PASSIVE")
    return env


class InstalledClientTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="optower_install_test_")
        self.server = None

    def tearDown(self):
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, argv, timeout=300):
        r = subprocess.run(argv, cwd=self.dir, env=_clean_env(), capture_output=True, text=True,
                           timeout=timeout)
        self.assertEqual(r.returncode, 0, f"{' '.join(argv)}:\n{r.stdout}\n{r.stderr}")
        return r.stdout

    def _start_server(self):
        items = os.path.join(self.dir, "items.csv")
        with open(items, "w") as f:
            f.write("item,f0,f1\n")
            for i in range(10):
                f.write(f"{100 + i},{0.1 * i:.2f},{1.0 - 0.2 * i:.2f}\n")
        self.server = subprocess.Popen(
            [_ARGS.server_bin, "--data_dir", os.path.join(self.dir, "data"), "--items", items,
             "--dim_context", str(DIM_CONTEXT), "--port", "0", "--host", "127.0.0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_clean_env(), text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.server.stdout], [], [], 0.2)
            if ready:
                line = self.server.stdout.readline()
                if line.startswith("optower-server listening on "):
                    return line.strip().rsplit(" ", 1)[1]
            if self.server.poll() is not None:
                break
        self.fail("optower-server did not start")

    def test_pip_install_into_a_venv_then_retrieve_and_feedback(self):
        venv = os.path.join(self.dir, "venv")
        self._run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv])
        pip = os.path.join(venv, "bin", "pip")
        self._run([pip, "install", "--no-index", "--no-build-isolation",
                   os.path.abspath(_ARGS.client_dir)])
        # Nothing of the build was left in the source tree.
        for leftover in ("build", "optower_client.egg-info"):
            self.assertFalse(os.path.exists(os.path.join(_ARGS.client_dir, leftover)), leftover)

        address = self._start_server()
        python = os.path.join(venv, "bin", "python")
        out = json.loads(self._run([python, "-c", CLIENT_SNIPPET, address], timeout=120))
        site = os.path.realpath(venv)
        self.assertTrue(os.path.realpath(out["package"]).startswith(site), out["package"])
        self.assertTrue(os.path.realpath(out["stubs"]).startswith(
            os.path.join(site, "lib")), out["stubs"])
        self.assertIn(os.path.join("optower_client", "_proto", "optower_pb2.py"), out["stubs"])
        self.assertEqual(len(out["items"]), 2)
        self.assertEqual(out["outcome"], "accepted")


if __name__ == "__main__":
    _ARGS, _rest = _parse_args()
    unittest.main(argv=[sys.argv[0], *_rest])
