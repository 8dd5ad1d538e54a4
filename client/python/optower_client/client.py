"""A small synchronous Python API over optower's gRPC services (docs/SERVING.md).

    from optower_client import Client, OptowerError

    with Client("127.0.0.1:50051", token=os.environ.get("OPTOWER_TOKEN")) as c:
        slate = c.retrieve([0.1] * 8, k=5)
        c.feedback(slate.request_id, slate.items[0].item_id, reward=1.0)
        job = c.retrain(watch=True)          # prints one line per progress event
        for m in c.models().models:
            print(m.version, m.decision, m.serving)

Results are the generated messages of proto/optower/v1/optower.proto (optower_pb2.RetrieveResponse,
TrainingJob, ListModelsResponse, ...): every field documented there is available. A failed call
raises OptowerError with the canonical gRPC code and the server's message unchanged (e.g.
INVALID_ARGUMENT "k=0: k must be in [1, 100]"); arguments the client can check itself (types,
shapes) raise TypeError/ValueError naming the argument.

Thread safety: a Client may be used from several threads at once (one channel; gRPC multiplexes).
"""

import math
import os
from dataclasses import dataclass

import grpc

from ._generated import health_pb2, health_pb2_grpc, optower_pb2, optower_pb2_grpc

_MAX_MESSAGE_BYTES = 64 << 20


class OptowerError(Exception):
    """A failed RPC: `code` (grpc.StatusCode), `message` (the server's, unchanged), `rpc`."""

    def __init__(self, rpc, code, message):
        self.rpc = rpc
        self.code = code
        self.message = message
        super().__init__(f"{rpc}: {message} [{code.name}]")

    @classmethod
    def from_rpc_error(cls, rpc, error):
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        details = error.details() if hasattr(error, "details") else str(error)
        return cls(rpc, code or grpc.StatusCode.UNKNOWN, details or "")


@dataclass
class TrainingProgress:
    """One progress event of a training job: the TrainingEvent message's fields are attributes
    (phase, epoch, epochs, loss, validation_value, improved, message, final, state, decision,
    reason, new_version, ope), and str() is a one-line summary, so `progress=print` reads well."""

    event: object  # optower_pb2.TrainingEvent

    def __getattr__(self, name):
        return getattr(self.event, name)

    def __str__(self):
        e = self.event
        head = f"[{e.job_id}] {e.phase}"
        if e.final:
            state = optower_pb2.TrainingJobState.Name(e.state).replace("TRAINING_JOB_STATE_", "")
            parts = [head + ":", state]
            if e.decision:
                parts.append(e.decision)
            if e.new_version:
                parts.append(f"version {e.new_version}")
            if e.reason:
                parts.append(f"({e.reason})")
            return " ".join(parts)
        if e.epochs > 0 and e.epoch > 0:
            line = f"{head} epoch {e.epoch}/{e.epochs} loss {e.loss:.6g}"
            if e.validation_value != 0 or e.phase == "policy":
                line += f" validation {e.validation_value:.6g}"
            if e.improved:
                line += " *"
            return line
        return f"{head}: {e.message}" if e.message else head


def _read_bytes(value, name):
    """PEM given as bytes, or a path to read."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, (str, os.PathLike)):
        with open(value, "rb") as f:
            return f.read()
    raise TypeError(f"{name}: expected a path or PEM bytes, got {type(value).__name__}")


def _dense(context):
    """A flat list of floats from a sequence or a 1-D numpy array."""
    shape = getattr(context, "shape", None)
    if shape is not None and len(shape) != 1:
        raise ValueError(f"context has shape {tuple(shape)}: expected a 1-D sequence of floats")
    try:
        return [float(x) for x in context]
    except (TypeError, ValueError) as e:
        raise TypeError(f"context: expected a sequence of floats ({e})") from None


def _add_categorical(repeated, categorical, what):
    """Adds {name: ids} (ids: an int or an iterable of ints) to a repeated CategoricalFeature."""
    if categorical is None:
        return
    if not hasattr(categorical, "items"):
        raise TypeError(f"{what}: expected a mapping {{name: [ids]}}, got {type(categorical).__name__}")
    for name, ids in categorical.items():
        if isinstance(ids, (int,)) or hasattr(ids, "__index__"):
            ids = [ids]
        try:
            values = [int(i) for i in ids]
        except (TypeError, ValueError) as e:
            raise TypeError(f"{what}[{name!r}]: expected an int or a sequence of ints ({e})") from None
        repeated.add(name=str(name), ids=values)


class Client:
    """A connection to one optower-server.

    addr: "host:port". token: sent as `authorization: Bearer <token>` with every call (the admin
    token, or the retrieve token for Retrieve/Feedback only); admin_token overrides it for the admin
    RPCs. TLS is on when tls=True or any tls_* argument is given: tls_root_cert is the CA the
    server's certificate must chain to (a path or PEM bytes; None = the system's roots);
    tls_client_cert/tls_client_key for mutual TLS; tls_server_name overrides the name checked
    against the certificate. timeout: default deadline in seconds of every unary call.
    wait_for_ready: wait for the server to come up instead of failing fast with UNAVAILABLE.
    """

    def __init__(self, addr, token=None, tls_root_cert=None, *, admin_token=None, tls=False,
                 tls_client_cert=None, tls_client_key=None, tls_server_name=None, timeout=10.0,
                 wait_for_ready=False):
        if not addr or not isinstance(addr, str):
            raise ValueError(f"addr={addr!r}: expected 'host:port'")
        if not (isinstance(timeout, (int, float)) and timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout={timeout!r}: must be > 0 seconds")
        if (tls_client_cert is None) != (tls_client_key is None):
            raise ValueError("tls_client_cert and tls_client_key: give both or neither")
        self.addr = addr
        self.timeout = float(timeout)
        self.wait_for_ready = bool(wait_for_ready)
        self._metadata = self._auth(token, "token")
        self._admin_metadata = (self._auth(admin_token, "admin_token")
                                if admin_token is not None else self._metadata)
        options = [("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES)]
        use_tls = tls or any(v is not None for v in
                             (tls_root_cert, tls_client_cert, tls_client_key, tls_server_name))
        if use_tls:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read_bytes(tls_root_cert, "tls_root_cert"),
                private_key=_read_bytes(tls_client_key, "tls_client_key"),
                certificate_chain=_read_bytes(tls_client_cert, "tls_client_cert"))
            if tls_server_name:
                options.append(("grpc.ssl_target_name_override", tls_server_name))
            self._channel = grpc.secure_channel(addr, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(addr, options=options)
        self._retrieval = optower_pb2_grpc.RetrievalServiceStub(self._channel)
        self._admin = optower_pb2_grpc.AdminServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    @staticmethod
    def _auth(token, name):
        if token is None:
            return ()
        if not isinstance(token, str) or not token.strip():
            raise ValueError(f"{name}: expected a non-empty string")
        return (("authorization", f"Bearer {token.strip()}"),)

    # ---- plumbing ----

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _call(self, rpc, method, request, metadata, timeout):
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout,
                          metadata=metadata, wait_for_ready=self.wait_for_ready)
        except grpc.RpcError as e:
            raise OptowerError.from_rpc_error(rpc, e) from None

    def _unary(self, rpc, request, timeout=None):
        return self._call(rpc, getattr(self._retrieval, rpc), request, self._metadata, timeout)

    def _admin_unary(self, rpc, request, timeout=None):
        return self._call(rpc, getattr(self._admin, rpc), request, self._admin_metadata, timeout)

    # ---- RetrievalService ----

    def retrieve(self, context, k, exclude=None, seed=None, *, request_id=None, categorical=None,
                 timeout=None):
        """Samples k items for `context` (dim_context floats; a list or 1-D numpy array).

        exclude: item ids never to serve. seed: reproducible sampling. request_id: your own id
        (unique; default: generated by the server). categorical: {name: ids} with ids an int or a
        list of ints, e.g. {"user": 12, "tags": [3, 9]}: checked by the server against the served
        model's context schema (an unknown name is INVALID_ARGUMENT), used and logged.
        Returns optower_pb2.RetrieveResponse (request_id, model_version, items[k] with item_id,
        position, score, propensity = pi_0(a|x), conditional_propensity = the probability of that
        draw given the earlier positions; their product is the probability of the ordered slate).
        """
        request = optower_pb2.RetrieveRequest(k=int(k))
        request.context.dense.extend(_dense(context))
        _add_categorical(request.context.categorical, categorical, "categorical")
        if exclude is not None:
            request.exclude_item_ids.extend(int(i) for i in exclude)
        if seed is not None:
            request.seed = int(seed)
        if request_id is not None:
            request.request_id = request_id
        return self._unary("Retrieve", request, timeout)

    def feedback(self, request_id, item_id, reward, *, timeout=None):
        """Records one reward. Returns "accepted", "duplicate" (a reward for that pair was already
        recorded; the first stays) or "unknown" (that item was not served in that request)."""
        response = self.feedback_batch([(request_id, item_id, reward)], timeout=timeout)
        if not response.outcomes:
            return "unspecified"
        return _OUTCOMES.get(response.outcomes[0], "unspecified")

    def feedback_batch(self, events, *, timeout=None):
        """Records many rewards in one call: `events` is an iterable of
        (request_id, item_id, reward). Returns optower_pb2.FeedbackResponse (accepted, duplicate,
        unknown, and the outcomes in order)."""
        request = optower_pb2.FeedbackRequest()
        for i, event in enumerate(events):
            try:
                request_id, item_id, reward = event
            except (TypeError, ValueError):
                raise ValueError(f"events[{i}]={event!r}: expected (request_id, item_id, reward)") \
                    from None
            request.events.add(request_id=request_id, item_id=int(item_id), reward=float(reward))
        return self._unary("Feedback", request, timeout)

    # ---- AdminService: the catalog and statistics ----

    def upsert_items(self, items, *, timeout=600.0):
        """Adds or replaces items: `items` is an iterable of (item_id, features) or
        (item_id, features, categorical), categorical being {name: ids} of the model's item fields
        (e.g. {"brand": 7}). Waits for the index build (hence the long default timeout). Returns
        optower_pb2.UpsertItemsResponse."""
        request = optower_pb2.UpsertItemsRequest()
        for i, entry in enumerate(items):
            if len(entry) not in (2, 3):
                raise ValueError(f"items[{i}]: expected (item_id, features[, categorical])")
            item = request.items.add(item_id=int(entry[0]), features=_dense(entry[1]))
            if len(entry) == 3:
                _add_categorical(item.categorical, entry[2], f"items[{i}].categorical")
        return self._admin_unary("UpsertItems", request, timeout)

    def delete_items(self, item_ids, *, timeout=600.0):
        """Removes items. Returns optower_pb2.DeleteItemsResponse."""
        request = optower_pb2.DeleteItemsRequest(item_ids=[int(i) for i in item_ids])
        return self._admin_unary("DeleteItems", request, timeout)

    def stats(self, *, timeout=None):
        """optower_pb2.GetStatsResponse: model, catalog, index, counters, event log, latencies,
        the trainer's state."""
        return self._admin_unary("GetStats", optower_pb2.GetStatsRequest(), timeout)

    def health(self, service="", *, timeout=None):
        """The gRPC health status of `service` ("" = the whole server): "SERVING",
        "NOT_SERVING", ... Needs no token."""
        try:
            response = self._health.Check(health_pb2.HealthCheckRequest(service=service),
                                          timeout=self.timeout if timeout is None else timeout,
                                          wait_for_ready=self.wait_for_ready)
        except grpc.RpcError as e:
            raise OptowerError.from_rpc_error("Health.Check", e) from None
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    # ---- AdminService: the trainer (docs/TRAINING.md) ----

    def retrain(self, force=False, watch=True, progress=print, *, timeout=None):
        """Starts a retraining job (force: promote even if the OPE gate rejects).

        watch=True: streams the job's progress, calling progress(TrainingProgress) for every event
        (progress=print prints one line each; None = silent), until the job ends; `timeout` bounds
        the whole stream (None = until the job ends). Returns the job (optower_pb2.TrainingJob):
        with watch=True its final state (SUCCEEDED, REJECTED, FAILED or CANCELLED; a rejected or
        failed job is not an exception — read state, decision and reason), with watch=False as
        queued. Raises OptowerError FAILED_PRECONDITION when a job is already queued or running.
        """
        response = self._admin_unary("TriggerRetrain",
                                     optower_pb2.TriggerRetrainRequest(force=bool(force)))
        if watch:
            for event in self.watch(response.job_id, timeout=timeout):
                if progress is not None:
                    progress(TrainingProgress(event))
        return self.job(response.job_id)

    def watch(self, job_id, after_seq=0, *, timeout=None):
        """Yields the job's TrainingEvent messages (seq > after_seq) until its final event.
        `timeout` bounds the whole stream (None = none)."""
        request = optower_pb2.WatchTrainingRequest(job_id=job_id, after_seq=int(after_seq))
        try:
            for event in self._admin.WatchTraining(request, timeout=timeout,
                                                   metadata=self._admin_metadata,
                                                   wait_for_ready=self.wait_for_ready):
                yield event
        except grpc.RpcError as e:
            raise OptowerError.from_rpc_error("WatchTraining", e) from None

    def job(self, job_id, *, timeout=None):
        """optower_pb2.TrainingJob. OptowerError NOT_FOUND for an unknown job id."""
        return self._admin_unary("GetTrainingJob",
                                 optower_pb2.GetTrainingJobRequest(job_id=job_id), timeout)

    def jobs(self, *, timeout=None):
        """The jobs the server keeps in memory, oldest first (list of optower_pb2.TrainingJob)."""
        return list(self._admin_unary("ListTrainingJobs", optower_pb2.ListTrainingJobsRequest(),
                                      timeout).jobs)

    def models(self, *, timeout=None):
        """optower_pb2.ListModelsResponse: .models (every stored version, ascending, each with
        serving/current/decision/ope/...) and .serving_version."""
        return self._admin_unary("ListModels", optower_pb2.ListModelsRequest(), timeout)

    def rollback(self, version, *, timeout=600.0):
        """Serves stored `version` again (waits for the index build). Returns
        optower_pb2.RollbackResponse (version, previous_version). OptowerError INVALID_ARGUMENT for
        a malformed version, NOT_FOUND for an unknown one."""
        return self._admin_unary("Rollback", optower_pb2.RollbackRequest(version=str(version)),
                                 timeout)


_OUTCOMES = {
    optower_pb2.FEEDBACK_OUTCOME_ACCEPTED: "accepted",
    optower_pb2.FEEDBACK_OUTCOME_DUPLICATE: "duplicate",
    optower_pb2.FEEDBACK_OUTCOME_UNKNOWN: "unknown",
}
