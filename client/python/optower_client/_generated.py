"""Imports the modules generated from proto/.

An installed package (pip install ./client/python; see setup.py) carries them in
optower_client/_proto. In a source checkout they come from the build's `optower_python` target:
<build>/client/python/gen must be on sys.path (PYTHONPATH), or named by the environment variable
OPTOWER_PYTHON_GEN; otherwise the ImportError says how to get them.
"""

import os
import sys


def _import_installed():
    from ._proto import health_pb2, health_pb2_grpc, optower_pb2, optower_pb2_grpc  # noqa: F401

    return optower_pb2, optower_pb2_grpc, health_pb2, health_pb2_grpc


def _import():
    from optower.health.v1 import health_pb2, health_pb2_grpc  # noqa: F401
    from optower.v1 import optower_pb2, optower_pb2_grpc  # noqa: F401

    return optower_pb2, optower_pb2_grpc, health_pb2, health_pb2_grpc


try:
    optower_pb2, optower_pb2_grpc, health_pb2, health_pb2_grpc = _import_installed()
except ImportError:
    try:
        optower_pb2, optower_pb2_grpc, health_pb2, health_pb2_grpc = _import()
    except ImportError as first_error:
        _gen = os.environ.get("OPTOWER_PYTHON_GEN", "")
        if _gen and os.path.isdir(_gen) and _gen not in sys.path:
            sys.path.insert(0, _gen)
            optower_pb2, optower_pb2_grpc, health_pb2, health_pb2_grpc = _import()
        else:
            raise ImportError(
                "optower_client: the generated modules (optower_pb2, ...) are not importable: "
                "install the package (pip install ./client/python, client/python/README.md), or "
                "build the CMake target `optower_python` and put <build>/client/python/gen on "
                "PYTHONPATH (or set OPTOWER_PYTHON_GEN to it); "
                f"the import failed with: {first_error}"
            ) from first_error

__all__ = ["optower_pb2", "optower_pb2_grpc", "health_pb2", "health_pb2_grpc"]
