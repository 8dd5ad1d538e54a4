"""Installs optower's Python client, with its generated gRPC stubs inside the package.

    /usr/bin/python3 -m venv --system-site-packages .venv
    .venv/bin/pip install --no-index --no-build-isolation ./client/python

Offline and from Debian packages only: grpc, google.protobuf and numpy come from the system site
packages (python3-grpcio, python3-protobuf, python3-numpy), the build uses the system setuptools
(python3-setuptools) and wheel, and the stubs are generated at build time from ../../proto with
Debian's protoc (protobuf-compiler) and grpc_python_plugin (protobuf-compiler-grpc) into
optower_client/_proto/. There is deliberately no pyproject.toml: a [build-system] table would make
pip build in an isolated environment, which downloads setuptools from an index.
"""

import atexit
import os
import re
import shutil
import subprocess
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
# The .proto files live at the top of the source tree (client/python/../../proto); pip builds in
# place (pip >= 21.3), so this path holds for `pip install ./client/python`.
PROTO_ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
# (proto path under PROTO_ROOT, the name it is compiled as, the module basename)
PROTOS = [
    ("optower/v1/optower.proto", "optower/v1/optower.proto", "optower"),
    # Compiled as optower/health/v1/health.proto, as the CMake target does (client/python/
    # CMakeLists.txt): the descriptor's file name must not clash with another copy of grpc.health.v1
    # (e.g. grpcio-health-checking) loaded in the same process. The service name is unchanged.
    ("grpc/health/v1/health.proto", "optower/health/v1/health.proto", "health"),
]


def _tool(name, package):
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"optower_client: {name} not found: install the Debian package {package} "
                         "(scripts/bootstrap.sh does)")
    return path


def generate_stubs(out_dir):
    """Writes <module>_pb2.py and <module>_pb2_grpc.py of every proto into out_dir (a package)."""
    protoc = _tool("protoc", "protobuf-compiler")
    plugin = _tool("grpc_python_plugin", "protobuf-compiler-grpc")
    for source, _, _ in PROTOS:
        if not os.path.isfile(os.path.join(PROTO_ROOT, source)):
            raise SystemExit(f"optower_client: {os.path.join(PROTO_ROOT, source)} not found: install "
                             "from optower's source tree (pip install ./client/python)")
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as stage, tempfile.TemporaryDirectory() as gen:
        for source, compiled_as, _ in PROTOS:
            os.makedirs(os.path.dirname(os.path.join(stage, compiled_as)), exist_ok=True)
            shutil.copyfile(os.path.join(PROTO_ROOT, source), os.path.join(stage, compiled_as))
        subprocess.run([protoc, f"--proto_path={stage}", f"--python_out={gen}",
                        f"--grpc_python_out={gen}", f"--plugin=protoc-gen-grpc_python={plugin}",
                        *[compiled_as for _, compiled_as, _ in PROTOS]], check=True)
        for _, compiled_as, module in PROTOS:
            folder = os.path.join(gen, os.path.dirname(compiled_as))
            dotted = os.path.dirname(compiled_as).replace("/", ".")
            for suffix in ("_pb2.py", "_pb2_grpc.py"):
                with open(os.path.join(folder, module + suffix), encoding="utf-8") as f:
                    text = f.read()
                # `from optower.v1 import optower_pb2 as ...` -> a relative import inside _proto.
                text = re.sub(rf"^from {re.escape(dotted)} import ", "from . import ", text,
                              flags=re.MULTILINE)
                with open(os.path.join(out_dir, module + suffix), "w", encoding="utf-8") as f:
                    f.write(text)
    with open(os.path.join(out_dir, "__init__.py"), "w", encoding="utf-8") as f:
        f.write('"""Generated at install time from proto/ (setup.py): never edit."""\n')


class BuildPyWithStubs(build_py):
    """build_py that also generates optower_client/_proto into the build folder."""

    def run(self):
        super().run()
        generate_stubs(os.path.join(self.build_lib, "optower_client", "_proto"))


# pip builds in the source folder: keep build/ and *.egg-info out of it (a temporary folder that is
# removed when this process ends; pip has copied the wheel by then).
_SCRATCH = tempfile.mkdtemp(prefix="optower_client_build_")
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)

setup(
    name="optower-client",
    version="0.1.0",
    description="optower's Python client: gRPC API and CSV readers",
    packages=["optower_client"],
    python_requires=">=3.9",
    # Not declared as install_requires: they come from Debian (python3-grpcio, python3-protobuf,
    # python3-numpy) through --system-site-packages, and pip must not try to fetch them.
    cmdclass={"build_py": BuildPyWithStubs},
    options={"build": {"build_base": os.path.join(_SCRATCH, "build")},
             "egg_info": {"egg_base": _SCRATCH}},
)
