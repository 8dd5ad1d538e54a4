#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests and benchmarks (docs/SCALING.md "Testing"):
#
#   scripts/pg_test_server.sh start DIR   initdb + start; writes DIR/dsn (libpq keywords, password
#                                         included, mode 600) and DIR/port
#   scripts/pg_test_server.sh stop DIR    stop it (fast shutdown) and remove its data
#
# The server runs from a private temporary data folder as an unprivileged user (PostgreSQL refuses
# to run as root: as root this script uses the `postgres` account that Debian's package creates),
# listens on 127.0.0.1 only, on a free port, with password (SCRAM) authentication for TCP — the
# same path a deployment's DSN takes — and fsync on. Needs Debian's postgresql-15 (scripts/bootstrap.sh).
# `start` on a DIR whose server is still running restarts nothing and exits 0.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
  echo "$0: PostgreSQL is not installed (run scripts/bootstrap.sh: it installs postgresql-15)" >&2
  exit 1
fi

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop_server() {
  if [[ -f "$dir/datadir" ]]; then
    local data
    data=$(cat "$dir/datadir")
    if [[ -f "$data/postmaster.pid" ]]; then
      as_pg "$bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$(dirname "$data")"
  fi
  rm -rf "$dir"
}

case "$cmd" in
  stop)
    stop_server
    ;;
  start)
    if [[ -f "$dir/datadir" && -f "$(cat "$dir/datadir")/postmaster.pid" ]] &&
       as_pg "$bin/pg_ctl" -D "$(cat "$dir/datadir")" status >/dev/null 2>&1; then
      exit 0
    fi
    stop_server
    mkdir -p "$dir"
    top=$(mktemp -d /tmp/optower-pg.XXXXXX)
    chmod 700 "$top"
    data="$top/data"
    mkdir -m 700 "$data"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$top" "$data"
    password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    pwfile="$top/pw"
    printf '%s\n' "$password" > "$pwfile"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$pwfile"
    port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_pg "$bin/initdb" -D "$data" -U optower --pwfile="$pwfile" --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$top/initdb.log" 2>&1 || {
      cat "$top/initdb.log" >&2; exit 1; }
    rm -f "$pwfile"
    echo "$data" > "$dir/datadir"
    as_pg "$bin/pg_ctl" -D "$data" -l "$top/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$top -c max_connections=300 -c fsync=on" \
      start >/dev/null || { cat "$top/server.log" >&2; exit 1; }
    as_pg "$bin/psql" -h "$top" -p "$port" -U optower -d postgres -q -c "CREATE DATABASE optower" >/dev/null
    umask 077
    printf 'host=127.0.0.1 port=%s user=optower password=%s dbname=optower\n' "$port" "$password" > "$dir/dsn"
    echo "$port" > "$dir/port"
    echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data $data); DSN in $dir/dsn"
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
