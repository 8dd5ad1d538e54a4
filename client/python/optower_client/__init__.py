"""optower's Python client: a small API over the gRPC services, and offline CSV readers.

    from optower_client import Client, OptowerError, read_logs_csv

Needs Debian's python3-grpcio, python3-protobuf and python3-numpy, and the modules generated from
proto/: `pip install --no-index --no-build-isolation ./client/python` (into a venv made with
--system-site-packages) puts them inside this package; for development, the build's `optower_python`
target makes them in <build>/client/python/gen, to put on PYTHONPATH with this folder's parent
(client/python). See client/python/README.md.
"""

from .client import Client, OptowerError, TrainingProgress
from .logs import (CsvError, ItemTable, LogData, categorical_id_from_text, read_items_csv,
                   read_items_table, read_logs_csv)
from ._generated import health_pb2, optower_pb2

__all__ = [
    "Client",
    "CsvError",
    "ItemTable",
    "LogData",
    "OptowerError",
    "TrainingProgress",
    "categorical_id_from_text",
    "health_pb2",
    "optower_pb2",
    "read_items_csv",
    "read_items_table",
    "read_logs_csv",
]
