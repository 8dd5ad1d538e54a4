# syntax=docker/dockerfile:1
# optower container image: a build stage that installs exactly the packages of scripts/bootstrap.sh
# and builds Release, and a runtime stage with only the shared libraries the binaries load (copied
# from the build stage by scripts/runtime_libs.sh: 0.7 GB instead of 1.4 GB with apt packages).
#
#   docker build -t optower:latest .
#   docker run --rm -p 50051:50051 -p 9464:9464 -v optower-data:/var/lib/optower optower:latest
#
# See deploy/README.md for the compose file and the Kubernetes manifests.

# ---------------------------------------------------------------------------------------------
# The base image's package list: their libraries are in the runtime stage already
# ---------------------------------------------------------------------------------------------
FROM debian:bookworm AS base
RUN dpkg-query -W -f='${Package}\n' > /base-packages.txt

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

# The runtime libraries: every shared object the two binaries load (ldd), at the path the loader
# finds it at, except those of the base image's packages; plus their package/version list.
COPY --from=base /base-packages.txt /tmp/base-packages.txt
RUN bash /src/scripts/runtime_libs.sh /runtime-root /tmp/base-packages.txt \
      /src/build/server/optower-server /src/build/cli/optower

# ---------------------------------------------------------------------------------------------
# Runtime stage
# ---------------------------------------------------------------------------------------------
FROM debian:bookworm AS runtime

# The shared libraries the binaries load, copied from the build stage rather than installed with
# apt: libtorch1.13's package depends on OpenCV, FFmpeg, GDAL, Qt and, through
# libopencv-core406 -> libglx0 -> libglx-mesa0 -> libgl1-mesa-dri, on libLLVM-15 (114 MB); the
# libraries libtorch_cpu.so NEEDs (OpenCV, FFmpeg, ...) must be loadable, but the Mesa drivers, LLVM,
# data files and docs those packages also install never are. scripts/runtime_libs.sh explains the
# copy; /usr/share/doc/optower/runtime-libraries.txt names each library's Debian package and version
# (the image's dpkg database does not know them: scan that list for security updates). FAISS is
# linked statically; BLAS/LAPACK are OpenBLAS (openmp), the build stage's alternative.
COPY --from=build /runtime-root/ /
RUN ldconfig

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

# Fail the image build, not the first start, if a shared library is missing or needs a newer
# symbol version than the base image has (ldd reports both as "not found").
RUN ! ldd /usr/local/bin/optower-server /usr/local/bin/optower 2>&1 | grep "not found"

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
