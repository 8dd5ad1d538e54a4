"""optower's Python client: a small API over the gRPC services, and offline CSV readers.

    from optower_client import Client, OptowerError, read_logs_csv

Needs Debian's python3-grpcio, python3-protobuf and python3-numpy, and the modules generated from
proto/ by the build (CMake target `optower_python`): put <build>/client/python/gen and this folder's
parent (client/python) on PYTHONPATH. See client/python/README.md.
"""

from .client import Client, OptowerError, TrainingProgress
from .logs import CsvError, LogData, read_items_csv, read_logs_csv
from ._generated import health_pb2, optower_pb2

__all__ = [
    "Client",
    "CsvError",
    "LogData",
    "OptowerError",
    "TrainingProgress",
    "health_pb2",
    "optower_pb2",
    "read_items_csv",
    "read_logs_csv",
]
