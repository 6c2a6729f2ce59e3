#!/usr/bin/env bash
# The drain alone: how fast hookrelay (release build, SQLite store) delivers a backlog of pending
# triggers to a Jenkins (nginx) that answers 201 at once, with no webhooks arriving. The store is
# filled once (bench/scale_fill: the 8.8 KB push fixture, one pending trigger each) and every run
# starts from a copy of it, so runs of different builds drain the same backlog; with several
# builds the runs alternate between them. Loopback only, bounded in time; stops what it started
# and removes its files.
# STORE=postgres: the PostgreSQL store, on a throwaway server the script starts
# (tests/support/pg_server.sh, fsync on); the filled database is the template of each run's.
#
#   bench/load/drain.sh                      # N=50000, this tree's release build, RUNS=2
#   HOOKRELAYS="/tmp/old/hookrelay build/release/hookrelay" RUNS=3 bench/load/drain.sh
#   MAX_IN_FLIGHT=64 bench/load/drain.sh     # the Jenkins entry's max_in_flight (default 16)
#   SERVER_THREADS=1 bench/load/drain.sh     # server.threads (default 2)
#   STORE=postgres bench/load/drain.sh       # adds the server's CPU per trigger
#   FOLLOW=1 bench/load/drain.sh             # the triggers are followed to their result
#                                            # (`follow: finished`, the default for a Jenkins), in
#                                            # an nginx that gives each build its own queue item
#                                            # and answers every read at once (two per trigger)
#   FOLLOW=1 FOLLOW_MAX_IN_FLIGHT=8 bench/load/drain.sh   # the Jenkins entry's follow_max_in_flight
#                                            # (default 2, hookrelay's)
#
# Prints one line per run: the build, the triggers delivered, the time from the first build
# request nginx received to the last, the rate, and the daemon's CPU per trigger (all threads, and
# the store thread alone); then how the requests arrived at nginx: the share of the milliseconds
# with none, and with one from every slot (the slots moving in lockstep). With FOLLOW=1 also the
# reads that followed the triggers: when the last trigger's result was read, the rate from the
# first build request to then, and the daemon's CPU per trigger until then.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
N=${N:-50000}
RUNS=${RUNS:-2}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-16}
RELAY_PORT=${RELAY_PORT:-18580}
JENKINS_PORT=${JENKINS_PORT:-18581}
ADMIN_PORT=${ADMIN_PORT:-18583}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-120}
SECRET=bench-secret
follow=none
# What only a build's read holds in nginx's log (jenkins/follow.cpp's build_path()): each trigger's
# last read, after its queue item's.
build_read="api/json?tree=number"
if [[ -n "${FOLLOW:-}" ]]; then
  follow=finished
  export JENKINS_FOLLOW=1 SCALE_FILL_FOLLOW=finished
fi

if [[ -z "${HOOKRELAYS:-}" || -z "${FILL:-}" ]]; then
  build_release hookrelay scale_fill
fi
read -r -a relays <<<"${HOOKRELAYS:-$root/build/release/hookrelay}"
fill=${FILL:-$root/build/release/bench/scale_fill}

work=$(mktemp -d /tmp/hookrelay-drain.XXXXXX)
pids=()
pg_state=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n "$pg_state" ]]; then "$root/tests/support/pg_server.sh" stop "$pg_state" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

body="$root/tests/data/github/push-branch-update.json"
store_yaml=""
postmaster=""
if [[ "${STORE:-sqlite}" == postgres ]]; then
  pg_state="$work/pg"
  HOOKRELAY_PG_DURABLE=1 "$root/tests/support/pg_server.sh" start "$pg_state" >"$work/pg-start.log"
  conninfo=$(cat "$pg_state/conninfo")
  postmaster=$(head -1 "$(cat "$pg_state/server")/data/postmaster.pid")
  psql "$conninfo" -Xqc 'CREATE DATABASE filled'
  SCALE_FILL_DATABASE_URL="$conninfo dbname=filled" \
    "$fill" "$work/filled" "$N" "$body" ci acme/app/main 4096 0 0 0 >/dev/null
  psql "$conninfo dbname=filled" -Xqc 'VACUUM ANALYZE'
  export DRAIN_DATABASE_URL="$conninfo dbname=run"
  # shellcheck disable=SC2016  # ${env:…} is hookrelay's, not the shell's
  store_yaml='store: {backend: postgres, postgres: {url: "${env:DRAIN_DATABASE_URL}"}}'
else
  "$fill" "$work/filled" "$N" "$body" ci acme/app/main 4096 0 0 0 >/dev/null
fi
clk_tck=$(getconf CLK_TCK)

cat >"$work/relay.yaml" <<YAML
listen: 127.0.0.1:$RELAY_PORT
admin: {listen: "127.0.0.1:$ADMIN_PORT"}
state_dir: $work/state
log: {level: warn}
server: {threads: ${SERVER_THREADS:-2}}
sources:
  github: {provider: github, secret: "\${env:BENCH_SECRET}"}
jenkins:
  ci: {url: "http://127.0.0.1:$JENKINS_PORT/", user: bench, api_token: "\${env:BENCH_SECRET}", max_in_flight: $MAX_IN_FLIGHT, follow: $follow, follow_max_in_flight: ${FOLLOW_MAX_IN_FLIGHT:-2}}
dispatch: {max_in_flight: $((MAX_IN_FLIGHT * 2))}
$store_yaml
$(bench_rules_yaml)
YAML

echo "drain of $N pending triggers (8.8 KB push each), Jenkins max_in_flight $MAX_IN_FLIGHT, nginx answering 201"
for _ in $(seq 1 "$RUNS"); do
  for relay in "${relays[@]}"; do
    rm -rf "$work/state" "$work/nginx"
    if [[ -n "$pg_state" ]]; then
      mkdir -p "$work/state"
      # A file copy, checkpointed: PostgreSQL 15 writes a template's copy into the WAL by default,
      # and its checkpoint would then run during the drain.
      PGOPTIONS='-c client_min_messages=warning' psql "$conninfo" -Xq -v ON_ERROR_STOP=1 \
        -c 'DROP DATABASE IF EXISTS run' \
        -c 'CREATE DATABASE run TEMPLATE filled STRATEGY FILE_COPY' -c CHECKPOINT
      pg_before=$(pg_cpu_ticks "$postmaster")
    else
      cp -a "$work/filled" "$work/state"
    fi
    jenkins_nginx_conf "$work/nginx" "$JENKINS_PORT"
    nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
    nginx_pid=$!
    wait_port "$JENKINS_PORT"
    BENCH_SECRET=$SECRET "$relay" run --config "$work/relay.yaml" 2>"$work/relay.log" &
    daemon=$!
    pids=("$nginx_pid" "$daemon")
    wait_build_requests "$work/nginx/access.log" "$N" "$DRAIN_TIMEOUT" >/dev/null
    # CPU ticks (user + system) of the whole daemon and of its store thread.
    all=$(awk '{print $14 + $15}' "/proc/$daemon/stat")
    store=0
    written=0
    for t in /proc/"$daemon"/task/*; do
      if [[ $(cat "$t/comm") == hookrelay-store ]]; then
        store=$(sed 's/^.*) //' "$t/stat" | awk '{print $12 + $13}')
        written=$(awk '/^wchar/ {print $2}' "$t/io")
      fi
    done
    server=-1
    if [[ -n "$pg_state" ]]; then server=$(($(pg_cpu_ticks "$postmaster") - pg_before)); fi
    followed_all=0
    if [[ -n "${FOLLOW:-}" ]]; then
      wait_build_requests "$work/nginx/access.log" "$N" "$DRAIN_TIMEOUT" "$build_read" >/dev/null
      followed_all=$(awk '{print $14 + $15}' "/proc/$daemon/stat")
    fi
    kill "$daemon" "$nginx_pid"
    wait "$daemon" "$nginx_pid" 2>/dev/null || true
    awk -v relay="$relay" -v all="$all" -v store="$store" -v hz="$clk_tck" -v w="$written" \
      -v slots="$MAX_IN_FLIGHT" -v server="$server" '
      $0 ~ /POST \/job\// {n++; if (!first) first = $1; last = $1; per_ms[int(($1 - first) * 1000)]++}
      END {printf "%s: %d triggers in %.2f s: %.0f/s; CPU %.0f µs per trigger ",
          relay, n, last - first, n / (last - first), 1e6 * all / hz / n
        if (server >= 0) printf "(PostgreSQL server %.0f µs)\n", 1e6 * server / hz / n
        else printf "(store thread %.0f µs, %.0f B written)\n", 1e6 * store / hz / n, w / n
        ms = int((last - first) * 1000) + 1
        for (t = 0; t < ms; t++) { if (!(t in per_ms)) idle++; else if (per_ms[t] >= slots) full++ }
        printf "  nginx got no build request in %.0f %% of the milliseconds, all %d slots'"'"' in one in %.0f %%\n",
          100 * idle / ms, slots, 100 * full / ms}' \
      "$work/nginx/access.log"
    if [[ -n "${FOLLOW:-}" ]]; then
      awk -v hz="$clk_tck" -v cpu="$followed_all" -v build_read="$build_read" '
        $0 ~ /POST \/job\// {if (!first) first = $1}
        index($0, build_read) {n++; last = $1}
        END {if (n > 0 && last > first) printf "  followed to the result: %d triggers, the last %.2f s after the first build request: %.0f/s; CPU %.0f µs per trigger until then\n",
          n, last - first, n / (last - first), 1e6 * cpu / hz / n}' "$work/nginx/access.log"
    fi
  done
done
