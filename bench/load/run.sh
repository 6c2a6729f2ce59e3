#!/usr/bin/env bash
# Whole-daemon load benchmark, loopback only, bounded in time; stops by itself and cleans up.
#
#   bench/load/run.sh            # DURATION=20s CONNECTIONS=32 THREADS=2 by default
#   IDS=random bench/load/run.sh # random (version 4 UUID) delivery ids (bench/load/post.lua)
#
# 1. nginx on 127.0.0.1 stands in for Jenkins and answers every request 201 at once.
# 2. hookrelay (release build) with one GitHub source and a rule that matches the payload, in
#    three set-ups, one after the other:
#      a. the SQLite store (the default: webhooks answered from its intake log);
#      a'. the SQLite store with `store.intake_log: false` (answered after the database's own
#          group commit; docs/performance.md);
#      b. the PostgreSQL store, one instance;
#      c. the PostgreSQL store, two instances sharing one database.
#    PostgreSQL is a throwaway server this script starts (tests/support/pg_server.sh: run as the
#    `postgres` user, a private unix-socket directory, no TCP listener, fsync on) and removes at
#    exit; b and c get a fresh database each.
# 3. wrk posts the 8.8 KB GitHub push fixture with a precomputed signature and a unique delivery
#    id per request; then we wait (bounded by DRAIN_TIMEOUT) until every accepted trigger reached
#    nginx. With two instances, two wrk processes run at once, each with half the connections and
#    threads against one instance (what a load balancer would do, without a proxy's CPU on this
#    machine); their requests/s add up, and each one's latency percentiles are shown.
# 4. The same wrk run against `webhook` (adnanh/webhook) with an HMAC rule and /bin/true, once the
#    PostgreSQL server is stopped.
# 5. The ceiling, measured first, on the idle machine: the same wrk run against nginx answering
#    `return 202` (it reads and discards the body): what this machine can receive with wrk on the
#    same two cores.
# Prints per row: accepted/s, p50/p99 latency, peak RSS (summed over instances), delivered
# triggers/s (from wrk's start until the last one reached nginx), the drain rate after the load
# (triggers that reached nginx after wrk stopped, over the time from wrk's end to the last one:
# the backlog the load left, delivered with the CPU to itself), hookrelay's CPU per accepted
# delivery (CPU seconds of the daemon processes, user + system, from wrk's start to the last
# delivery, over the accepted deliveries: what one webhook costs end to end, receiving, storing
# and delivering it, independent of what else ran on the machine), and the PostgreSQL server's CPU:
# CPU seconds of the postmaster and all its processes (their /proc/<pid>/stat utime + stime, and
# the postmaster's cutime + cstime for those that exited) over the same wall time, as a
# percentage of one core.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
RELAY_PORT=${RELAY_PORT:-18080}
RELAY_PORT2=${RELAY_PORT2:-18082}
ADMIN_PORT=${ADMIN_PORT:-18083}
ADMIN_PORT2=${ADMIN_PORT2:-18084}
JENKINS_PORT=${JENKINS_PORT:-18081}
PEER_PORT=${PEER_PORT:-18090}
CEILING_PORT=${CEILING_PORT:-18091}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-120}
SECRET=bench-secret
if ((CONNECTIONS < 2 || THREADS < 2)); then
  echo "run.sh: CONNECTIONS and THREADS must be at least 2 (the two-instance run splits them)" >&2
  exit 2
fi

"$root/scripts/install-deps.sh" --bench >/dev/null
build_release hookrelay

work=$(mktemp -d /tmp/hookrelay-bench.XXXXXX)
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
signature="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$body" | cut -d' ' -f1)"
clk_tck=$(getconf CLK_TCK)

# --- Jenkins stand-in --------------------------------------------------------------------------
# The ceiling row's server: answers every webhook 202, no log.
jenkins_nginx_conf "$work/nginx" "$JENKINS_PORT" "  server {
    listen 127.0.0.1:$CEILING_PORT;
    access_log off;
    location / { return 202; }
  }"
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)

wait_port "$JENKINS_PORT"
wait_port "$CEILING_PORT"

peak_rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# wrk_run URL PATH NAME CONNECTIONS THREADS: wrk's report goes to $work/NAME.wrk
wrk_run() {
  BODY_FILE="$body" SIGNATURE="$signature" TARGET_PATH="$2" RUN_ID="$3-" \
    wrk -t"$5" -c"$4" -d"$DURATION" --latency -s "$root/bench/load/post.lua" \
    "$1" >"$work/$3.wrk"
}

# summarize NAME: requests/s, p50, p99, total requests, non-2xx of $work/NAME.wrk
summarize() {
  local f="$work/$1.wrk"
  local rps p50 p99 total bad
  rps=$(awk '/Requests\/sec/ {print $2}' "$f")
  p50=$(awk '$1 == "50%" {print $2}' "$f")
  p99=$(awk '$1 == "99%" {print $2}' "$f")
  total=$(awk '/requests in/ {print $1}' "$f")
  bad=$(awk '/Non-2xx/ {print $5}' "$f")
  echo "$rps ${p50} ${p99} $total ${bad:-0}"
}

# CPU ticks (user + system) of the processes given, so far.
proc_cpu_ticks() {
  local ticks=0 p
  for p in "$@"; do
    ticks=$((ticks + $(stat_fields "$p" | awk '{s = $12 + $13} END {print s + 0}')))
  done
  echo "$ticks"
}

# relay_config FILE PORT ADMIN_PORT STATE_DIR [STORE_YAML]
relay_config() {
  cat >"$1" <<YAML
listen: 127.0.0.1:$2
admin: {listen: "127.0.0.1:$3"}
state_dir: $4
log: {level: warn}
server: {threads: 2}
${5:-}
sources:
  github: {provider: github, secret: "\${env:BENCH_SECRET}"}
jenkins:
  # follow: none: nginx is not Jenkins (it has no queue or build API to follow), so following
  # would only measure reads of answers it cannot give. Ingest and delivery are what this measures.
  ci: {url: "http://127.0.0.1:$JENKINS_PORT/", user: bench, api_token: "\${env:BENCH_SECRET}", max_in_flight: 16, follow: none}
dispatch: {max_in_flight: 32}
$(bench_rules_yaml)
YAML
}

rows=()

# measure_relay LABEL INSTANCES STORE_YAML TITLE: starts INSTANCES daemons (on RELAY_PORT and
# RELAY_PORT2; with PostgreSQL on $database_url), loads them, waits for every trigger, stops them
# and appends a row named TITLE to `rows`.
measure_relay() {
  local label=$1 n=$2 store=$3 title=$4
  local ports=("$RELAY_PORT" "$RELAY_PORT2") admins=("$ADMIN_PORT" "$ADMIN_PORT2")
  local relays=() i
  for ((i = 0; i < n; i++)); do
    relay_config "$work/$label-$i.yaml" "${ports[$i]}" "${admins[$i]}" "$work/$label-$i.state" "$store"
    BENCH_SECRET=$SECRET BENCH_DATABASE_URL=${database_url:-} \
      "$root/build/release/hookrelay" run --config "$work/$label-$i.yaml" 2>"$work/$label-$i.log" &
    relays+=($!)
    pids+=($!)
  done
  for ((i = 0; i < n; i++)); do wait_port "${ports[$i]}"; done

  local before pg_before=0 start relay_before
  before=$(wait_build_requests "$work/nginx/access.log" 0 0)
  relay_before=$(proc_cpu_ticks "${relays[@]}")
  start=$(date +%s.%N)
  if [[ -n "${postmaster:-}" ]]; then pg_before=$(pg_cpu_ticks "$postmaster"); fi
  local wrks=()
  for ((i = 0; i < n; i++)); do
    wrk_run "http://127.0.0.1:${ports[$i]}" /hooks/github "$label-$i" \
      $((CONNECTIONS / n)) $((THREADS / n)) &
    wrks+=($!)
  done
  for w in "${wrks[@]}"; do wait "$w"; done
  local load_end
  load_end=$(date +%s.%N)

  local rps=0 total=0 bad=0 p50s=() p99s=() r a b t x
  for ((i = 0; i < n; i++)); do
    read -r r a b t x < <(summarize "$label-$i")
    rps=$(awk -v s="$rps" -v r="$r" 'BEGIN {printf "%.0f", s + r}')
    total=$((total + t))
    bad=$((bad + x))
    p50s+=("$a")
    p99s+=("$b")
  done
  local accepted=$((total - bad)) delivered=0
  # Every accepted webhook queues one trigger; wait (bounded) until nginx saw all of them.
  delivered=$(($(wait_build_requests "$work/nginx/access.log" $((before + accepted)) \
    "$DRAIN_TIMEOUT") - before))
  local end pg_share="n/a" rss=0 relay_ticks
  end=$(date +%s.%N)
  relay_ticks=$(($(proc_cpu_ticks "${relays[@]}") - relay_before))
  if [[ -n "${postmaster:-}" ]]; then
    pg_share=$(awk -v t="$(($(pg_cpu_ticks "$postmaster") - pg_before))" -v hz="$clk_tck" \
      -v s="$start" -v e="$end" 'BEGIN {printf "%.0f %%", 100 * t / hz / (e - s)}')
  fi
  for p in "${relays[@]}"; do rss=$((rss + $(peak_rss_kb "$p"))); done
  for p in "${relays[@]}"; do kill "$p"; done
  for p in "${relays[@]}"; do wait "$p" 2>/dev/null || true; done

  local delivered_rate p50 p99 drain cpu_per
  delivered_rate=$(awk -v n="$delivered" -v s="$start" -v e="$end" 'BEGIN {printf "%.0f", n / (e - s)}')
  # Build requests that arrived after wrk stopped, over the time until the last one.
  drain=$(drain_after "$work/nginx/access.log" "$load_end" | awk '{printf "%s (%s)", $1, $2}')
  drain=${drain:-n/a}
  cpu_per=$(awk -v t="$relay_ticks" -v hz="$clk_tck" -v n="$accepted" \
    'BEGIN {if (n > 0) printf "%.0f µs", 1e6 * t / hz / n; else print "n/a"}')
  p50=$(IFS=/; echo "${p50s[*]}")
  p99=$(IFS=/; echo "${p99s[*]}")
  p50=${p50//\// / }
  p99=${p99//\// / }
  rows+=("| $title | $rps | $p50 | $p99 | $(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}') MB | $bad of $total | $delivered_rate ($delivered of $accepted delivered) | $drain | $cpu_per | $pg_share |")
}

# --- the ceiling: nginx `return 202`, first, on the idle machine ---------------------------------
# Measured last until 2026-12-02, it ran while webhook was still running the /bin/true of every
# request it had answered (it answers first and runs the command after) and the PostgreSQL server
# was still up: 7,031/s where the same wrk against the same nginx alone made 48,204/s.
wrk_run "http://127.0.0.1:$CEILING_PORT" /hooks/github ceiling "$CONNECTIONS" "$THREADS"
read -r crps cp50 cp99 ctotal cbad < <(summarize ceiling)
rows=("| nginx \`return 202\` (the ceiling) | $(awk -v r="$crps" 'BEGIN {printf "%.0f", r}') | $cp50 | $cp99 | n/a | $cbad of $ctotal | n/a | n/a | n/a | n/a |")

# --- a. hookrelay on SQLite --------------------------------------------------------------------
measure_relay sqlite 1 "" "hookrelay, SQLite (the intake log)"
measure_relay sqlite-nolog 1 "store: {intake_log: false}" "hookrelay, SQLite, \`store.intake_log: false\`"

# --- b, c. hookrelay on PostgreSQL ---------------------------------------------------------------
pg_state="$work/pg"
HOOKRELAY_PG_DURABLE=1 "$root/tests/support/pg_server.sh" start "$pg_state" >"$work/pg-start.log"
pg_conninfo=$(cat "$pg_state/conninfo")
pg_dir=$(cat "$pg_state/server")
postmaster=$(head -1 "$pg_dir/data/postmaster.pid")
pg_version=$(psql "$pg_conninfo" -XAtc 'SHOW server_version' | cut -d' ' -f1)
# shellcheck disable=SC2016  # hookrelay's ${env:...}, not the shell's
pg_store='store: {backend: postgres, postgres: {url: "${env:BENCH_DATABASE_URL}"}}'

psql "$pg_conninfo" -Xqc 'CREATE DATABASE bench_one'
database_url="$pg_conninfo dbname=bench_one"
measure_relay pg1 1 "$pg_store" "hookrelay, PostgreSQL, 1 instance"

psql "$pg_conninfo" -Xqc 'CREATE DATABASE bench_two'
database_url="$pg_conninfo dbname=bench_two"
measure_relay pg2 2 "$pg_store" "hookrelay, PostgreSQL, 2 instances (1 database)"
postmaster=""
"$root/tests/support/pg_server.sh" stop "$pg_state" >/dev/null
pg_state=""

# --- d. webhook (adnanh) ---------------------------------------------------------------------------
cat >"$work/hooks.json" <<JSON
[{"id": "relay", "execute-command": "/bin/true",
  "trigger-rule": {"match": {"type": "payload-hmac-sha256", "secret": "$SECRET",
                             "parameter": {"source": "header", "name": "X-Hub-Signature-256"}}}}]
JSON
webhook -hooks "$work/hooks.json" -ip 127.0.0.1 -port "$PEER_PORT" >"$work/webhook.log" 2>&1 &
peer=$!
pids+=("$peer")
wait_port "$PEER_PORT"
wrk_run "http://127.0.0.1:$PEER_PORT" /hooks/relay peer "$CONNECTIONS" "$THREADS"
read -r prps pp50 pp99 ptotal pbad < <(summarize peer)
rows+=("| webhook 2.8 (/bin/true) | $(awk -v r="$prps" 'BEGIN {printf "%.0f", r}') | $pp50 | $pp99 | $(awk -v k="$(peak_rss_kb "$peer")" 'BEGIN {printf "%.1f", k / 1024}') MB | $pbad of $ptotal | n/a | n/a | n/a | n/a |")

echo
echo "Load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, 8.8 KB GitHub push, unique delivery ids;"
echo "two instances: two wrk -t$((THREADS / 2)) -c$((CONNECTIONS / 2)), one per instance (p50/p99 of each)."
echo "PostgreSQL $pg_version (local, unix socket, fsync on); its CPU as a percentage of one core over"
echo "the wall time from wrk's start to the last delivery; $(nproc) cores in all."
echo
echo "| daemon | accepted/s | p50 | p99 | peak RSS | non-2xx | delivered triggers/s | drain after the load, triggers/s (how many) | hookrelay CPU per accepted delivery | PostgreSQL CPU |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for row in "${rows[@]}"; do echo "$row"; done
