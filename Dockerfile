# syntax=docker/dockerfile:1
# optower container image: a build stage that installs exactly the packages of scripts/bootstrap.sh
# and builds Release, and a runtime stage with only the shared libraries the binaries load.
#
#   docker build -t optower:latest .
#   docker run --rm -p 50051:50051 -p 9464:9464 -v optower-data:/var/lib/optower optower:latest
#
# See deploy/README.md for the compose file and the Kubernetes manifests.

# ---------------------------------------------------------------------------------------------
# Build stage
# ---------------------------------------------------------------------------------------------
FROM debian:bookworm AS build

# The build stage's package list IS scripts/bootstrap.sh's (equal by construction; the test
# tests/deploy_lint_test.py checks that the script is copied and run here and that no other
# apt-get install happens in this stage). Copied alone first so the package layer stays cached
# until the list changes.
COPY scripts/bootstrap.sh /src/scripts/bootstrap.sh
RUN bash /src/scripts/bootstrap.sh && rm -rf /var/lib/apt/lists/*

COPY . /src
WORKDIR /src

# scripts/build.sh takes no extra CMake arguments, so this is its configure + build with the tests
# and benchmarks switched off and only the two shipped binaries built. ccache (from bootstrap.sh)
# keeps its cache in a BuildKit cache mount, so rebuilds after a source change are cheap.
ENV CCACHE_DIR=/root/.cache/ccache CCACHE_BASEDIR=/src CCACHE_NOHASHDIR=1 \
    CCACHE_SLOPPINESS=include_file_mtime,include_file_ctime,time_macros
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -S /src -B /src/build -G Ninja -DCMAKE_BUILD_TYPE=Release \
          -DOPTOWER_BUILD_TESTS=OFF -DOPTOWER_BUILD_BENCH=OFF \
 && cmake --build /src/build -j"$(nproc)" --target optower-server optower \
 && strip --strip-unneeded /src/build/server/optower-server /src/build/cli/optower

# ---------------------------------------------------------------------------------------------
# Runtime stage
# ---------------------------------------------------------------------------------------------
FROM debian:bookworm AS runtime

# The Debian 12 runtime packages of what the binaries link (readelf NEEDED of optower-server and
# optower): libtorch-dev -> libtorch1.13, libgrpc++-dev -> libgrpc++1.51 + libgrpc29,
# libprotobuf-dev -> libprotobuf32, libabsl-dev -> libabsl20220623, libsqlite3-dev -> libsqlite3-0;
# FAISS is linked statically (Debian's libfaiss-dev ships only libfaiss.a) and needs BLAS/LAPACK
# and OpenMP at run time: libopenblas0-openmp (provides libblas.so.3 / liblapack.so.3, and wins
# the alternatives over the reference BLAS that libtorch1.13 may pull in) and libgomp1.
# libc6, libstdc++6 and libgcc-s1 are in the base image.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libtorch1.13 \
      libopenblas0-openmp \
      libgomp1 \
      libgrpc++1.51 \
      libgrpc29 \
      libprotobuf32 \
      libabsl20220623 \
      libsqlite3-0 \
 && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid so that Kubernetes can verify runAsNonRoot and fsGroup can match.
RUN groupadd --system --gid 10001 optower \
 && useradd --system --uid 10001 --gid optower --home-dir /var/lib/optower --shell /usr/sbin/nologin optower \
 && install -d -o optower -g optower -m 0750 /var/lib/optower \
 && install -d -m 0755 /etc/optower

COPY --from=build /src/build/server/optower-server /usr/local/bin/optower-server
COPY --from=build /src/build/cli/optower /usr/local/bin/optower
# The example config (listens on 0.0.0.0:50051, data in /var/lib/optower); compose and Kubernetes
# mount their own over it.
COPY deploy/config/server.textproto /etc/optower/server.textproto

# Fail the image build, not the first start, if a shared library is missing from the list above.
RUN ! ldd /usr/local/bin/optower-server /usr/local/bin/optower | grep "not found"

# libgomp's active spin-waiting collapses throughput when cores are shared (docs/BENCHMARKS.md §2).
ENV OMP_WAIT_POLICY=PASSIVE
USER 10001:10001
WORKDIR /var/lib/optower
# /var/lib/optower is --data_dir: the event log (events.sqlite, SQLite WAL) and the model store
# (models/). One server per volume: SQLite allows one writer (deploy/README.md).
VOLUME ["/var/lib/optower"]
# 50051: gRPC (Retrieve/Feedback, admin RPCs, grpc.health.v1.Health); 9464: Prometheus /metrics.
EXPOSE 50051 9464

# The gRPC health service (grpc.health.v1, whole server). Debian 12 has no grpc_health_probe, so
# the optower CLI does the check. The start period covers model loading and the ANN index build.
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
  CMD ["optower", "health", "--server", "127.0.0.1:50051"]

ENTRYPOINT ["optower-server"]
CMD ["--config=/etc/optower/server.textproto", "--metrics_port=9464"]
