#!/usr/bin/env bash
# Installs every Debian 12 package that optower's build, tests and main job need, if missing.
# Idempotent: when everything is present it only runs dpkg queries (well under a second).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev          # two-tower model, autograd, Adam
  libfaiss-dev          # ANN index over item embeddings
  libopenblas0-openmp   # fast BLAS for torch and FAISS (reference BLAS is ~4x slower)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev           # Status/StatusOr, flags, strings, synchronization
  libgtest-dev libgmock-dev
  libsqlite3-dev        # embedded durable event log (WAL)
  libpq-dev             # PostgreSQL client: the shared event log, catalog and model registry
  postgresql-15         # the real PostgreSQL server the tests start (scripts/pg_test_server.sh)
  python3-matplotlib python3-numpy  # PNG plots (run with /usr/bin/python3)
  python3-yaml          # deploy manifest lint test
  python3-grpcio python3-protobuf  # the Python client and its tests
  python3-venv python3-setuptools python3-wheel  # `pip install ./client/python` into a venv, offline
  openssl               # test-time CA and certificates for the TLS tests
  clang-14 libclang-rt-14-dev  # libFuzzer + ASan/UBSan runtimes for the fuzz targets (fuzz/)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
