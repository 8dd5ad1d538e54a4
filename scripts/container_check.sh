#!/usr/bin/env bash
# Builds the container image (Dockerfile) and checks it for real, from outside, over loopback only:
#
#   scripts/container_check.sh             build optower:test, run it, check it
#   scripts/container_check.sh --compose   the same, then bring deploy/docker-compose.yml up
#                                          (podman-compose) and check that too
#   scripts/container_check.sh --no-build  reuse the optower:test image already built
#
# What it checks: the image runs as uid 10001; the default command refuses to start on 0.0.0.0
# without an admin token; with the token mounted at /run/secrets/optower_admin_token the server
# answers gRPC health SERVING, a Retrieve and a Feedback, serves /metrics, refuses the admin RPCs
# without the token and serves them with it; the image's HEALTHCHECK command passes; SIGTERM stops
# it with exit code 0 and the event log holds the Retrieve and the Feedback. Figures (build time,
# image size, start-up time to SERVING) go to stdout and to $OPTOWER_CHECK_DIR/logs.
#
# Tools: Debian's buildah, mmdebstrap, podman (runc, slirp4netns) and, for --compose,
# podman-compose, installed here with apt-get when missing (scripts/bootstrap.sh does not: only this
# check needs them). Nothing is pulled from a registry: the debian:bookworm base image is made with
# mmdebstrap from Debian's archive the first time and kept in the local store. Storage is buildah's
# vfs driver in $OPTOWER_CHECK_DIR (default /var/lib/optower-check). vfs stores every cached layer
# as a full copy of its file system: the layer cache of one build takes about 35 GB (the build stage
# is ~2.7 GB a step), so the script refuses to build with less than 40 GB free. Run as root. Takes about 25-35 min from scratch on 2 busy cores (the build compiles
# optower), a few minutes with a warm layer cache: deploy/README.md has the measured figures.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
state=${OPTOWER_CHECK_DIR:-/var/lib/optower-check}
image=optower:test
compose=0 build=1 keep=0
for a in "$@"; do
  case "$a" in
    --compose) compose=1 ;;
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "container_check: unknown argument '$a' (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "container_check: run as root (buildah/podman rootful)" >&2; exit 2; }

say() { printf 'container_check: %s\n' "$*" >&2; }
failures=0
ok() { printf 'ok   %s\n' "$*" >&2; }
fail() { printf 'FAIL %s\n' "$*" >&2; failures=$((failures + 1)); }
expect() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- tools ------------------------------------------------------------------------------------
need=(buildah mmdebstrap podman runc slirp4netns protobuf-compiler protobuf-compiler-grpc
      python3-grpcio python3-protobuf)
((compose)) && need+=(podman-compose)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# One store for buildah, podman and podman-compose, apart from any other use of them on the machine.
# vfs: works on any file system, in a container too (overlay needs kernel or FUSE support).
# runc + cgroupfs and ulimits below the hard limits: crun refuses hybrid cgroup hierarchies, and a
# container without CAP_SYS_RESOURCE cannot set RLIMIT_NPROC/NOFILE to podman's defaults.
mkdir -p "$state/logs"
cat > "$state/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$state/storage"
runroot = "/run/optower-check"
EOF
cat > "$state/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
export CONTAINERS_STORAGE_CONF=$state/storage.conf CONTAINERS_CONF=$state/containers.conf
bah=(buildah --storage-driver vfs)

# ---- the base image ---------------------------------------------------------------------------
if ! "${bah[@]}" inspect --type image docker.io/library/debian:bookworm >/dev/null 2>&1; then
  say "making debian:bookworm with mmdebstrap (once)"
  t0=$(now)
  rm -f "$state/base.tar"
  nice -n 19 mmdebstrap --variant=minbase --mode=root bookworm "$state/base.tar" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" \
    > "$state/logs/mmdebstrap.log" 2>&1 || { tail -20 "$state/logs/mmdebstrap.log" >&2; exit 1; }
  c=$("${bah[@]}" from scratch)
  "${bah[@]}" add "$c" "$state/base.tar" / >/dev/null
  "${bah[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd bash "$c"
  "${bah[@]}" commit --rm -q "$c" docker.io/library/debian:bookworm >/dev/null
  rm -f "$state/base.tar"
  say "base image made in $(since "$t0") s"
fi

# ---- build ------------------------------------------------------------------------------------
if ((build)); then
  free_gb=$(df -P -BG "$state" | awk 'NR == 2 { sub("G", "", $4); print $4 }')
  if [ "$free_gb" -lt 40 ]; then
    say "only ${free_gb} GB free under $state: a vfs build needs about 40 GB (the machine is shared;"
    say "remove old layers with: CONTAINERS_STORAGE_CONF=$state/storage.conf buildah rmi --prune)"
    exit 1
  fi
  say "building $image (log: $state/logs/build.log)"
  t0=$(now)
  # --format docker keeps HEALTHCHECK (the OCI image format has no such field); --layers caches
  # every step, and the build stage's RUN --mount=type=cache keeps ccache between builds.
  if ! nice -n 19 "${bah[@]}" bud --pull-never --isolation chroot --format docker --layers \
       -t "$image" "$here" > "$state/logs/build.log" 2>&1; then
    tail -30 "$state/logs/build.log" >&2
    "${bah[@]}" rm --all >/dev/null 2>&1 || true
    say "the image build failed"
    exit 1
  fi
  build_s=$(since "$t0")
  echo "build_seconds $build_s" | tee -a "$state/logs/figures.txt"
  # A failed or interrupted build leaves its working containers (full copies on vfs) behind; this
  # store is the check's own, so none of them is anyone else's.
  "${bah[@]}" rm --all >/dev/null 2>&1 || true
fi
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image_bytes $size ($((size / 1000000)) MB)" | tee -a "$state/logs/figures.txt"

# ---- what the image says about itself ---------------------------------------------------------
expect "the image's USER is 10001:10001" \
  test "$(podman image inspect --format '{{.Config.User}}' "$image")" = 10001:10001
healthcheck=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$image")
expect "the image has a HEALTHCHECK ($healthcheck)" grep -q optower <<< "$healthcheck"
mnt=$(podman image mount "$image")
config_has_token=0
grep -q '^ *admin_token_file:' "$mnt/etc/optower/server.textproto" && config_has_token=1
has_opt_out=0
grep -q insecure_open_admin "$mnt/usr/local/bin/optower-server" && has_opt_out=1
podman image unmount "$image" >/dev/null

# ---- a client on the host: the Python client with stubs generated here --------------------------
run=$(mktemp -d "$state/run.XXXXXX")
containers=()
cleanup() {
  for c in "${containers[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  ((keep)) || rm -rf "$run"
}
trap cleanup EXIT
gen=$run/gen
mkdir -p "$gen" "$run/stage/optower/health/v1"
cp "$here/proto/grpc/health/v1/health.proto" "$run/stage/optower/health/v1/"
plugin=(--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin --python_out="$gen" --grpc_python_out="$gen")
protoc --proto_path="$here/proto" "${plugin[@]}" optower/v1/optower.proto
protoc --proto_path="$run/stage" "${plugin[@]}" optower/health/v1/health.proto
probe() { PYTHONPATH=$gen:$here/client/python /usr/bin/python3 "$here/scripts/container_probe.py" "$@"; }
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The volume: a catalog of 200 items with 8 features (the example config's items_path and
# dim_context), owned by the image's user.
new_data() {
  local d=$1
  mkdir -p "$d/catalog"
  /usr/bin/python3 - "$d/catalog/items.csv" <<'EOF'
import random, sys
rng = random.Random(7)
with open(sys.argv[1], "w") as f:
    f.write("item," + ",".join(f"f{i}" for i in range(8)) + "\n")
    for item in range(1, 201):
        f.write(f"{item}," + ",".join(f"{rng.gauss(0, 1):.4f}" for _ in range(8)) + "\n")
EOF
  chown -R 10001:10001 "$d"
}
head -c 32 /dev/urandom | base64 > "$run/admin_token"
chown 10001:10001 "$run/admin_token"
chmod 0400 "$run/admin_token"
secret=(-v "$run/admin_token:/run/secrets/optower_admin_token:ro")

# Waits for container $1 to exit (at most $2 s); prints its exit code, or "running".
wait_exit() {
  local deadline=$(( $(date +%s) + $2 ))
  while [ "$(podman inspect --format '{{.State.Status}}' "$1")" = running ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo running; return; }
    sleep 1
  done
  podman inspect --format '{{.State.ExitCode}}' "$1"
}

# The checks of the server in container $1 (started here unless $6 = started) whose gRPC port is
# 127.0.0.1:$2 and metrics 127.0.0.1:$3, with its volume at $4; stops it at the end. $5: a label.
check_running() {
  local c=$1 port=$2 mport=$3 data=$4 label=$5 t0 up request_id code
  [ "${6:-}" = started ] || podman start "$c" >/dev/null
  if ! up=$(probe wait --addr "127.0.0.1:$port" --timeout 300 --container "$c"); then
    fail "$label: SERVING within 300 s"; podman logs "$c" 2>&1 | tail -20 >&2; return
  fi
  ok "$label: SERVING after $up s"
  echo "${label}_startup_seconds $up" | tee -a "$state/logs/figures.txt"
  if request_id=$(probe check --addr "127.0.0.1:$port" --metrics "127.0.0.1:$mport" --dim 8 \
                    --admin-token-file "$run/admin_token"); then
    ok "$label: Retrieve, Feedback, /metrics and the admin token (container_probe.py)"
  else
    fail "$label: Retrieve, Feedback, /metrics and the admin token (container_probe.py)"
  fi
  expect "$label: the server process runs as uid 10001" \
    test "$(podman exec "$c" id -u)" = 10001
  expect "$label: the event log on the volume is owned by uid 10001" \
    test "$(stat -c %u "$data/events.sqlite")" = 10001
  expect "$label: the image's HEALTHCHECK command passes (podman healthcheck run)" \
    podman healthcheck run "$c"
  t0=$(now)
  podman stop -t 60 "$c" >/dev/null   # SIGTERM; SIGKILL only after 60 s
  code=$(wait_exit "$c" 5)
  echo "${label}_stop_seconds $(since "$t0")" | tee -a "$state/logs/figures.txt"
  expect "$label: SIGTERM: exit code 0 ($code)" test "$code" = 0
  podman logs "$c" > "$run/$label.log" 2>&1 || true
  expect "$label: SIGTERM: the server logged a clean shutdown" \
    grep -q "SIGTERM received" "$run/$label.log"
  expect "$label: SIGTERM: the event log was closed" grep -q "event log closed" "$run/$label.log"
  expect "$label: events.sqlite holds the Retrieve and its Feedback after the stop" \
    /usr/bin/python3 - "$data/events.sqlite" "$request_id" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rid = sys.argv[2].strip().splitlines()[-1]
served = db.execute("SELECT count(*) FROM served JOIN requests ON served.request = requests.id "
                    "WHERE requests.request_id = ?", (rid,)).fetchone()[0]
fed = db.execute("SELECT count(*) FROM feedback WHERE request_id = ?", (rid,)).fetchone()[0]
sys.exit(0 if served == 5 and fed == 1 else 1)
EOF
}

# ---- 1. the default command without a token: refused --------------------------------------------
# In a network namespace of its own (--network none): if it did start, nothing could reach it.
if ((has_opt_out)); then
  new_data "$run/data-default"
  c=optower-check-default-$$
  containers+=("$c")
  podman create --name "$c" --network none -v "$run/data-default:/var/lib/optower" "$image" >/dev/null
  podman start "$c" >/dev/null
  code=$(wait_exit "$c" 120)
  podman logs "$c" > "$run/default.log" 2>&1 || true
  expect "the default command without an admin token exits 2 on 0.0.0.0 ($code: $(tail -1 "$run/default.log"))" \
    test "$code" = 2
else
  say "SKIP the default-refuses-without-a-token check: this optower-server has no --insecure_open_admin" \
      "(issue 9's hardening is not merged yet), so its default still starts without a token"
fi

# ---- 2. the image with the token mounted: the full check ----------------------------------------
# Its own network namespace (slirp4netns), the ports published on the host's loopback only.
new_data "$run/data"
port=$(free_port) mport=$(free_port)
args=()   # the image's default CMD, once the example config names the token file
((config_has_token)) || args=(--config=/etc/optower/server.textproto --metrics_port=9464
                             --admin_token_file=/run/secrets/optower_admin_token)
c=optower-check-$$
containers+=("$c")
podman create --name "$c" --network slirp4netns:port_handler=slirp4netns \
  -p "127.0.0.1:$port:50051" -p "127.0.0.1:$mport:9464" \
  -v "$run/data:/var/lib/optower" "${secret[@]}" "$image" "${args[@]}" >/dev/null
check_running "$c" "$port" "$mport" "$run/data" container

# ---- 3. deploy/docker-compose.yml with podman-compose -------------------------------------------
if ((compose)); then
  # Debian 12's podman-compose (1.0.3) always attaches a service to a bridge network of its own
  # (CNI) and ignores network_mode; this wrapper gives the container slirp4netns instead, so the
  # published ports (127.0.0.1:50051, 127.0.0.1:9464, as in the compose file) are forwarded from
  # the host's loopback and no traffic goes to a bridge address.
  cat > "$run/podman" <<'EOF'
#!/bin/bash
if [ "$1" = network ] && { [ "$2" = exists ] || [ "$2" = create ]; }; then exit 0; fi
args=() skip=0
for a in "$@"; do
  if ((skip)); then skip=0; continue; fi
  case "$a" in --net|--network-alias) skip=1; continue ;; esac
  args+=("$a")
done
case "${args[0]}" in
  run|create) args=("${args[0]}" --network slirp4netns:port_handler=slirp4netns "${args[@]:1}") ;;
esac
exec podman "${args[@]}"
EOF
  chmod +x "$run/podman"
  for p in 50051 9464; do
    if /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $p), 1)" 2>/dev/null; then
      fail "compose: 127.0.0.1:$p is in use on this host: cannot publish the compose file's port"
      exit 1
    fi
  done
  # The compose file as it is, plus: the image just built, and the token file of this run.
  cat > "$run/compose.check.yml" <<EOF
services:
  optower:
    image: $image
secrets:
  optower_admin_token:
    file: $run/admin_token
EOF
  pc=(podman-compose --podman-path "$run/podman" -p optower-check
      -f "$here/deploy/docker-compose.yml" -f "$run/compose.check.yml")
  containers+=(optower-check_optower_1)
  podman volume rm -f optower-check_optower-data >/dev/null 2>&1 || true
  # The demo catalog with the image's optower synth, as deploy/README.md makes it, but with podman
  # itself: podman-compose 1.0.3's `run` always builds a service that has `build:` (from scratch,
  # with podman build), whatever the flags.
  podman run --rm --network none -v optower-check_optower-data:/var/lib/optower --entrypoint optower \
    "$image" synth --n-actions 1000 --dim-context 8 --dim-action-context 8 --rounds 1 \
    --test-rounds 1 --out /var/lib/optower/catalog \
    > "$state/logs/compose-synth.log" 2>&1 || { tail -20 "$state/logs/compose-synth.log" >&2; fail "compose: optower synth"; }
  vol=$(podman volume inspect --format '{{.Mountpoint}}' optower-check_optower-data)
  expect "compose: optower synth wrote the catalog to the named volume" test -s "$vol/catalog/items.csv"
  "${pc[@]}" up -d --no-build > "$state/logs/compose-up.log" 2>&1 ||
    { tail -20 "$state/logs/compose-up.log" >&2; fail "compose: podman-compose up"; }
  c=$(podman ps -a --filter label=io.podman.compose.project=optower-check --format '{{.Names}}' | head -1)
  if [ -z "$c" ]; then
    fail "compose: podman-compose up made no container"
  else
    containers+=("$c")
    check_running "$c" 50051 9464 "$vol" compose started
  fi
  "${pc[@]}" down >> "$state/logs/compose-up.log" 2>&1 || true
  ((keep)) || podman volume rm -f optower-check_optower-data >/dev/null 2>&1 || true
fi

if ((failures)); then
  say "$failures check(s) failed"
  exit 1
fi
say "all checks passed"
