#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: private unix-socket directory, no TCP listener,
# fsync off (a test server's data may be lost; that is the point of it).
#
#   pg_server.sh start STATE    initdb + start a server; writes STATE/conninfo (libpq key=value)
#   pg_server.sh stop STATE     stop it (immediate) and remove everything it had
#   pg_server.sh restart STATE  pg_ctl restart (fast); the same socket and data
#   pg_server.sh halt STATE     stop it, keep the data (start-again starts it)
#   pg_server.sh start-again STATE
#
# HOOKRELAY_PG_DURABLE=1 keeps fsync and full-page writes on (benchmarks); by default they are off.
# HOOKRELAY_PG_OPTIONS adds server options (`-c name=value ...`), e.g. to load pg_stat_statements.
#
# STATE is a directory the script owns (created when missing). The server itself lives in a
# fresh directory under /tmp (owned by the `postgres` user when run as root: initdb and pg_ctl
# refuse to run as root), named in STATE/server; the socket path must stay short (108 bytes).
# Exits non-zero, with the server log on stderr, when the server cannot be started: tests that
# need it must then fail, never skip.
set -euo pipefail

cmd=${1:-}
state=${2:-}
if [[ -z "$cmd" || -z "$state" ]]; then
  echo "usage: $0 start|stop|restart|halt|start-again STATE_DIR" >&2
  exit 2
fi

# The newest installed server (Debian: /usr/lib/postgresql/<major>/bin).
bindir=""
for d in /usr/lib/postgresql/*/bin; do
  [[ -x "$d/pg_ctl" ]] && bindir=$d
done
if [[ -z "$bindir" ]]; then
  echo "pg_server.sh: no PostgreSQL server found under /usr/lib/postgresql (scripts/install-deps.sh installs it)" >&2
  exit 1
fi

# The port only names the socket file (.s.PGSQL.<port>): with no TCP listener, servers in
# different directories never collide.
port=5432
user=hookrelay

as_server() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

server_dir() {
  [[ -f "$state/server" ]] && cat "$state/server"
}

pg_ctl_start() {
  local dir=$1
  local durability="-c fsync=off -c full_page_writes=off"
  if [[ "${HOOKRELAY_PG_DURABLE:-0}" == 1 ]]; then durability=""; fi
  as_server "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -o \
    "-p $port -k $dir -c listen_addresses='' $durability -c max_connections=300 -c unix_socket_permissions=0777 ${HOOKRELAY_PG_OPTIONS:-}" \
    start >/dev/null
}

case "$cmd" in
  start)
    mkdir -p "$state"
    if old=$(server_dir) && [[ -n "$old" && -d "$old" ]]; then
      "$0" stop "$state" || true
      mkdir -p "$state"
    fi
    dir=$(mktemp -d /tmp/hookrelay-pg-XXXXXX)
    chmod 0755 "$dir"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; fi
    echo "$dir" >"$state/server"
    if ! as_server "$bindir/initdb" -D "$dir/data" -A trust -U "$user" --no-sync -E UTF8 \
      --locale=C >"$dir/initdb.log" 2>&1; then
      cat "$dir/initdb.log" >&2
      exit 1
    fi
    if ! pg_ctl_start "$dir"; then
      cat "$dir/log" >&2 || true
      exit 1
    fi
    echo "host=$dir port=$port user=$user dbname=postgres" >"$state/conninfo"
    echo "pg_server.sh: PostgreSQL ($("$bindir/postgres" --version)) at $dir"
    ;;
  stop)
    if dir=$(server_dir) && [[ -n "$dir" && -d "$dir" ]]; then
      as_server "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
      rm -rf "$dir"
    fi
    rm -rf "$state"
    ;;
  restart)
    dir=$(server_dir)
    as_server "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -m fast -w -t 60 restart >/dev/null
    ;;
  halt)
    dir=$(server_dir)
    as_server "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  start-again)
    dir=$(server_dir)
    pg_ctl_start "$dir"
    ;;
  *)
    echo "pg_server.sh: unknown command '$cmd'" >&2
    exit 2
    ;;
esac
