#!/usr/bin/python3
"""The Python client (client/python/optower_client) against a real optower-server.

    /usr/bin/python3 tests/python/test_client.py --server-bin build/server/optower-server \
        --gen-dir build/client/python/gen [unittest args]

Each test class starts its own optower-server on 127.0.0.1 with an ephemeral port (--port 0; the
port is read from its "listening on" line), a tiny random catalog and random towers, and stops it
with SIGTERM (expecting exit 0). Run by ctest (tests/CMakeLists.txt: python_client).
"""

import argparse
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

_ARGS = None
DIM_CONTEXT = 4
N_ITEMS = 20
ADMIN_TOKEN = "admin-token-0123456789abcdef"
RETRIEVE_TOKEN = "retrieve-token-0123456789abcdef"


def _parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-bin", required=True)
    parser.add_argument("--gen-dir", required=True, help="<build>/client/python/gen")
    parser.add_argument("--client-dir", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "client", "python"))
    parser.add_argument("--openssl", default=shutil.which("openssl") or "/usr/bin/openssl")
    args, rest = parser.parse_known_args()
    sys.path[:0] = [os.path.abspath(args.gen_dir), os.path.abspath(args.client_dir)]
    return args, rest


class ServerProcess:
    """optower-server as a subprocess in a temporary folder."""

    def __init__(self, extra_args=(), env=None):
        self.dir = tempfile.mkdtemp(prefix="optower_pytest_")
        rng = np.random.default_rng(7)
        items = os.path.join(self.dir, "items.csv")
        with open(items, "w") as f:
            f.write("item,f0,f1,f2\n")
            for i in range(N_ITEMS):
                f.write(f"{100 + i}," + ",".join(f"{v:.5f}" for v in rng.normal(size=3)) + "\n")
        argv = [_ARGS.server_bin, "--data_dir", os.path.join(self.dir, "data"), "--items", items,
                "--dim_context", str(DIM_CONTEXT), "--port", "0", "--min_events", "10",
                "--train_epochs", "3", "--shutdown_deadline_ms", "2000", *extra_args]
        full_env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
        full_env.pop("OPTOWER_ADMIN_TOKEN", None)
        full_env.update(env or {})
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._stderr,
                                     env=full_env, text=True)
        self.address = self._wait_listening(timeout=60)

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("optower-server listening on "):
                    return line.strip().rsplit(" ", 1)[1]
            if self.proc.poll() is not None:
                break
        self.stop()
        with open(self.stderr_path) as f:
            raise RuntimeError(f"optower-server did not start: {f.read()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        code = self.proc.returncode
        shutil.rmtree(self.dir, ignore_errors=True)
        return code


def _send_traffic(client, rounds, k=3, seed=0):
    """Serves `rounds` slates and rewards every served item; returns the accepted count."""
    rng = np.random.default_rng(seed)
    preference = rng.normal(size=DIM_CONTEXT)
    events = []
    for _ in range(rounds):
        context = rng.normal(size=DIM_CONTEXT).astype(np.float32)
        slate = client.retrieve(context, k=k)
        clicked = float(context @ preference > 0)
        for item in slate.items:
            events.append((slate.request_id, item.item_id, clicked if item.position == 0 else 0.0))
    accepted = 0
    for start in range(0, len(events), 1000):
        accepted += client.feedback_batch(events[start:start + 1000]).accepted
    return accepted


def _wait_committed(client, feedback_rows, timeout=10):
    """Feedback is acknowledged before its group commit; a training job reads committed rows."""
    deadline = time.monotonic() + timeout
    while client.stats().event_log.feedback_rows < feedback_rows:
        if time.monotonic() > deadline:
            raise AssertionError(f"feedback rows not committed within {timeout} s")
        time.sleep(0.05)


class ClientTest(unittest.TestCase):
    """A server without tokens: the data plane, the trainer, errors."""

    @classmethod
    def setUpClass(cls):
        cls.server = ServerProcess()
        from optower_client import Client
        cls.client = Client(cls.server.address, timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        code = cls.server.stop()
        assert code == 0, f"optower-server exited with {code}"

    def test_retrieve_returns_k_items_with_propensities(self):
        slate = self.client.retrieve(np.ones(DIM_CONTEXT, dtype=np.float32), k=5, seed=3,
                                     exclude=[100, 101])
        self.assertEqual(len(slate.request_id), 32)
        self.assertTrue(slate.model_version)  # "init-0", or the version the retrain test promoted
        self.assertEqual([item.position for item in slate.items], [0, 1, 2, 3, 4])
        ids = [item.item_id for item in slate.items]
        self.assertEqual(len(set(ids)), 5)
        self.assertFalse({100, 101} & set(ids))
        for item in slate.items:
            self.assertGreater(item.propensity, 0)
            self.assertLessEqual(item.propensity, 1)
            self.assertGreater(item.conditional_propensity, 0)
            self.assertLessEqual(item.conditional_propensity, 1)
        # Position 0 is a single draw: its conditional probability is its propensity.
        self.assertAlmostEqual(slate.items[0].conditional_propensity, slate.items[0].propensity,
                               places=12)
        again = self.client.retrieve([1.0] * DIM_CONTEXT, k=5, seed=3, exclude=[100, 101])
        self.assertEqual([item.item_id for item in again.items], ids)  # same seed, same slate

    def test_feedback_outcomes(self):
        slate = self.client.retrieve([0.5] * DIM_CONTEXT, k=2)
        served = slate.items[0].item_id
        self.assertEqual(self.client.feedback(slate.request_id, served, 1.0), "accepted")
        self.assertEqual(self.client.feedback(slate.request_id, served, 0.0), "duplicate")
        unserved = next(i for i in range(100, 100 + N_ITEMS)
                        if i not in {item.item_id for item in slate.items})
        self.assertEqual(self.client.feedback(slate.request_id, unserved, 1.0), "unknown")
        batch = self.client.feedback_batch([(slate.request_id, slate.items[1].item_id, 0.5),
                                            (slate.request_id, served, 1.0)])
        self.assertEqual((batch.accepted, batch.duplicate, batch.unknown), (1, 1, 0))

    def test_errors_carry_the_code_and_the_servers_message(self):
        import grpc
        from optower_client import OptowerError
        with self.assertRaises(OptowerError) as caught:
            self.client.retrieve([0.0] * DIM_CONTEXT, k=0)
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertTrue(caught.exception.message.startswith("k=0: k must be in [1, "),
                        caught.exception.message)
        self.assertEqual(caught.exception.rpc, "Retrieve")
        self.assertIn("k=0: k must be in", str(caught.exception))
        with self.assertRaises(OptowerError) as caught:
            self.client.retrieve([0.0, 1.0], k=1)
        self.assertEqual(caught.exception.message,
                         f"context.dense has 2 values: expected dim_context={DIM_CONTEXT}")
        with self.assertRaises(OptowerError) as caught:
            self.client.feedback_batch([("r", 1, float("nan"))])
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("events[0].reward=nan: must be finite", caught.exception.message)
        with self.assertRaises(OptowerError) as caught:
            self.client.job("no-such-job")
        self.assertEqual(caught.exception.code, grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(OptowerError) as caught:
            self.client.rollback("zzz")
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn('version="zzz"', caught.exception.message)

    def test_client_side_argument_errors(self):
        from optower_client import Client
        with self.assertRaises(ValueError):
            self.client.retrieve(np.zeros((2, 2)), k=1)
        with self.assertRaises(ValueError):
            self.client.feedback_batch([("only two", 1)])
        with self.assertRaises(ValueError):
            Client(self.server.address, timeout=0)

    def test_health_and_stats(self):
        self.assertEqual(self.client.health(), "SERVING")
        self.assertEqual(self.client.health("optower.v1.RetrievalService"), "SERVING")
        stats = self.client.stats()
        self.assertEqual(stats.catalog_size, N_ITEMS)
        self.assertEqual(stats.dim_context, DIM_CONTEXT)

    def test_retrain_watch_models_and_rollback(self):
        import grpc
        from optower_client import OptowerError, TrainingProgress, optower_pb2
        before = self.client.stats().event_log.feedback_rows
        accepted = _send_traffic(self.client, rounds=200)
        _wait_committed(self.client, before + accepted)

        events = []
        job = self.client.retrain(watch=True, progress=events.append)
        self.assertTrue(events)
        self.assertTrue(all(isinstance(e, TrainingProgress) for e in events))
        self.assertEqual([e.seq for e in events], list(range(1, len(events) + 1)))
        self.assertTrue(events[-1].final)
        self.assertEqual(events[-1].phase, "done")
        self.assertIn("epoch", "\n".join(str(e) for e in events))  # one-line summaries
        self.assertIn(job.state, (optower_pb2.TRAINING_JOB_STATE_SUCCEEDED,
                                  optower_pb2.TRAINING_JOB_STATE_REJECTED), job.reason)
        self.assertEqual(events[-1].state, job.state)
        self.assertTrue(job.version)
        self.assertEqual(self.client.job(job.job_id).version, job.version)
        self.assertIn(job.job_id, [j.job_id for j in self.client.jobs()])

        models = self.client.models()
        self.assertIn(job.version, [m.version for m in models.models])
        rolled = self.client.rollback(job.version)
        self.assertEqual(rolled.version, job.version)
        self.assertEqual(self.client.models().serving_version, job.version)
        self.assertEqual(self.client.retrieve([0.0] * DIM_CONTEXT, k=1).model_version, job.version)
        with self.assertRaises(OptowerError) as caught:
            self.client.rollback("999999")
        self.assertEqual(caught.exception.code, grpc.StatusCode.NOT_FOUND)

        # watch=False returns at once with the queued (or already running) job.
        queued = self.client.retrain(watch=False)
        self.assertIn(queued.state, (optower_pb2.TRAINING_JOB_STATE_QUEUED,
                                     optower_pb2.TRAINING_JOB_STATE_RUNNING,
                                     optower_pb2.TRAINING_JOB_STATE_SUCCEEDED,
                                     optower_pb2.TRAINING_JOB_STATE_REJECTED))
        final = list(self.client.watch(queued.job_id))[-1]
        self.assertTrue(final.final)


class TokenTest(unittest.TestCase):
    """A server with an admin token (from a file) and a retrieve token (from a file)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="optower_pytoken_")
        admin_file = os.path.join(cls.tmp, "admin_token")
        retrieve_file = os.path.join(cls.tmp, "retrieve_token")
        with open(admin_file, "w") as f:
            f.write(ADMIN_TOKEN + "\n")  # the trailing newline is trimmed
        with open(retrieve_file, "w") as f:
            f.write(RETRIEVE_TOKEN)
        cls.server = ServerProcess(["--admin_token_file", admin_file,
                                    "--retrieve_token_file", retrieve_file])

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert code == 0, f"optower-server exited with {code}"

    def assertUnauthenticated(self, call):
        import grpc
        from optower_client import OptowerError
        with self.assertRaises(OptowerError) as caught:
            call()
        self.assertEqual(caught.exception.code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(caught.exception.message, "missing or invalid bearer token")
        for secret in (ADMIN_TOKEN, RETRIEVE_TOKEN):
            self.assertNotIn(secret, str(caught.exception))

    def test_admin_rpcs_need_the_admin_token(self):
        from optower_client import Client
        with Client(self.server.address) as anonymous, \
                Client(self.server.address, token="wrong-token-0123456789abcdef") as wrong, \
                Client(self.server.address, token=RETRIEVE_TOKEN) as data_plane:
            for client in (anonymous, wrong, data_plane):
                self.assertUnauthenticated(client.stats)
                self.assertUnauthenticated(client.models)
                self.assertUnauthenticated(lambda: client.retrain(watch=False))
                self.assertUnauthenticated(lambda: client.rollback("000001"))
                self.assertEqual(client.health(), "SERVING")  # health needs no token
        with Client(self.server.address, token=ADMIN_TOKEN) as admin:
            self.assertEqual(admin.stats().catalog_size, N_ITEMS)
            self.assertEqual(list(admin.models().models), [])

    def test_retrieve_and_feedback_need_the_retrieve_token(self):
        from optower_client import Client
        with Client(self.server.address) as anonymous:
            self.assertUnauthenticated(lambda: anonymous.retrieve([0.0] * DIM_CONTEXT, k=1))
            self.assertUnauthenticated(lambda: anonymous.feedback("r", 100, 1.0))
        with Client(self.server.address, token=RETRIEVE_TOKEN) as client:
            slate = client.retrieve([0.0] * DIM_CONTEXT, k=1)
            self.assertEqual(client.feedback(slate.request_id, slate.items[0].item_id, 1.0),
                             "accepted")
        # The admin token is accepted on the data plane too; admin_token overrides per group.
        with Client(self.server.address, token=RETRIEVE_TOKEN, admin_token=ADMIN_TOKEN) as both:
            self.assertEqual(len(both.retrieve([0.0] * DIM_CONTEXT, k=2).items), 2)
            self.assertEqual(both.stats().catalog_size, N_ITEMS)


class TlsTest(unittest.TestCase):
    """A TLS server with a CA made here with the openssl CLI."""

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(_ARGS.openssl):
            raise unittest.SkipTest("no openssl CLI")
        cls.tmp = tempfile.mkdtemp(prefix="optower_pytls_")
        cls.ca, cls.cert, cls.key = _make_test_pki(cls.tmp)
        cls.server = ServerProcess(["--tls_cert", cls.cert, "--tls_key", cls.key])

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert code == 0, f"optower-server exited with {code}"

    def test_tls_client_connects_and_plaintext_client_is_refused(self):
        import grpc
        from optower_client import Client, OptowerError
        with Client(self.server.address, tls_root_cert=self.ca) as secure:
            self.assertEqual(len(secure.retrieve([0.0] * DIM_CONTEXT, k=1).items), 1)
        with open(self.ca, "rb") as f:
            with Client(self.server.address, tls_root_cert=f.read()) as secure_bytes:
                self.assertEqual(secure_bytes.health(), "SERVING")
        with Client(self.server.address, timeout=3) as plaintext:
            with self.assertRaises(OptowerError) as caught:
                plaintext.retrieve([0.0] * DIM_CONTEXT, k=1)
            self.assertEqual(caught.exception.code, grpc.StatusCode.UNAVAILABLE)


class CategoricalClientTest(unittest.TestCase):
    """A server whose random towers declare a categorical schema (issue 12): features in retrieve,
    categorical item fields in upsert_items, and the server's errors for unknown names."""

    @classmethod
    def setUpClass(cls):
        cls.config_dir = tempfile.mkdtemp(prefix="optower_pytest_cfg_")
        config = os.path.join(cls.config_dir, "server.txt")
        with open(config, "w") as f:
            f.write('init_context_fields { name: "user" buckets: 1024 width: 4 }\n'
                    'init_context_fields { name: "tags" buckets: 64 width: 4 max_ids: 2 }\n'
                    'init_item_fields { name: "brand" buckets: 64 width: 4 }\n')
        cls.server = ServerProcess(extra_args=("--config", config))
        from optower_client import Client
        cls.client = Client(cls.server.address, timeout=30)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        code = cls.server.stop()
        shutil.rmtree(cls.config_dir, ignore_errors=True)
        assert code == 0, f"optower-server exited with {code}"

    def test_retrieve_with_categorical_features(self):
        context = np.zeros(DIM_CONTEXT, dtype=np.float32)
        slate = self.client.retrieve(context, k=2, categorical={"user": 12, "tags": [3, 9]})
        self.assertEqual(len(slate.items), 2)
        numpy_id = self.client.retrieve(context, k=1, categorical={"user": np.int64(5)})
        self.assertEqual(len(numpy_id.items), 1)

    def test_unknown_feature_is_invalid_argument_naming_it(self):
        import grpc
        from optower_client import OptowerError
        with self.assertRaises(OptowerError) as caught:
            self.client.retrieve([0.0] * DIM_CONTEXT, k=1, categorical={"user": 1, "foo": 2})
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("context.categorical[1].name='foo': not a field of the model's schema "
                      "(fields: user, tags)", str(caught.exception))
        with self.assertRaises(TypeError):
            self.client.retrieve([0.0] * DIM_CONTEXT, k=1, categorical=[("user", 1)])

    def test_upsert_items_with_categorical_fields(self):
        import grpc
        from optower_client import OptowerError
        response = self.client.upsert_items([(900, [0.1, 0.2, 0.3], {"brand": 7}),
                                             (901, [0.0, 0.0, 0.0])])
        self.assertEqual(response.inserted, 2)
        others = [100 + i for i in range(N_ITEMS)] + [901]
        slate = self.client.retrieve([0.0] * DIM_CONTEXT, k=1, exclude=others)
        self.assertEqual(slate.items[0].item_id, 900)
        with self.assertRaises(OptowerError) as caught:
            self.client.upsert_items([(902, [0.0, 0.0, 0.0], {"colour": 1})])
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("items[0].categorical 'colour': not a field of the model's item schema",
                      str(caught.exception))
        self.client.delete_items([900, 901])


def _make_test_pki(folder):
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it (PEM paths)."""
    def run(*args):
        subprocess.run([_ARGS.openssl, *args], check=True, cwd=folder, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "1", "-subj", "/CN=optower test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    with open(os.path.join(folder, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "ext.cnf")
    return tuple(os.path.join(folder, n) for n in ("ca.pem", "server.pem", "server.key"))


if __name__ == "__main__":
    _ARGS, _rest = _parse_args()
    unittest.main(argv=[sys.argv[0], *_rest], verbosity=2)
