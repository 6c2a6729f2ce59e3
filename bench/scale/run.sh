#!/usr/bin/env bash
# Scale benchmark: a large store in SQLite: a backlog of pending triggers (Jenkins was down for
# a long time), deliveries no rule matched, and old finished ones past the retention. Loopback
# only, bounded in time; stops what it started and removes its files. Release build.
# STORE=postgres: the same in PostgreSQL, on a throwaway server the script starts
# (tests/support/pg_server.sh, fsync on) and stops.
#
#   bench/scale/run.sh           # N=1000000 deliveries by default
#   N=200000 bench/scale/run.sh
#   UNMATCHED_EVERY=0 AGED_PERCENT=0 bench/scale/run.sh   # only pending triggers, no prune
#   N=10500000 AGED=500000 BODIES=aged bench/scale/run.sh  # 10,000,000 within retention; only
#                                # the 500,000 to be pruned carry a body (the disk holds ~12 GB)
#   STORE=postgres N=1000000 bench/scale/run.sh
#   HOOKRELAY=/path/to/hookrelay bench/scale/run.sh  # the daemon of another build (the fill's is
#                                # this tree's: with STORE=postgres the daemon must know its schema)
#   HOOKRELAY=<build>/hookrelay FILL=<build>/bench/scale_fill bench/scale/run.sh  # both another's
#   KEEP=1 bench/scale/run.sh    # keeps the store, the daemon's logs and the answer times
#                                # (during.txt, after.txt) and prints where
#
# 1. Fill: bench/scale_fill.cpp submits N deliveries (the 8.8 KB GitHub push fixture, one
#    trigger each, none for every UNMATCHED_EVERY-th) through open_store() and submit(), the
#    daemon's own schema and write path, IN_FLIGHT at a time so that they group-commit. The first
#    AGED_PERCENT % are received up to AGE_DAYS ago, spread over AGED_SPAN seconds before that (by
#    default the span N deliveries received evenly over a 7-day retention would take; 0: one
#    millisecond apart, a burst), and their triggers are then marked dead (one SQL
#    UPDATE: as if Jenkins had refused them back then); AGED sets their number instead. With
#    BODIES=aged only the aged deliveries carry the body, the others an empty one (BODIES=all,
#    the default: every one). Prints how long the submits took.
# 2. Start-up to listening: `hookrelay run` on that state_dir (retention 3650d: nothing expires),
#    its Jenkins on a port nothing listens on (so nothing drains), from exec until the webhook
#    port accepts a connection (polled, STARTUP_TIMEOUT at most); RUNS times, min and median.
# 3. Admin API latency on that store (curl's time_total, median of RUNS_API): /api/v1/deliveries
#    with no filter and with each filter (source, state, outcome, since, and two combined), and
#    one delivery's /api/v1/deliveries/<id>; and two combinations that match nothing with their
#    next_cursor followed to the end, as the CLI does (once each).
# 4. A prune pass under accepts (when some are aged): `hookrelay run` again with retention
#    7d, so its first prune (at start) removes the aged deliveries; meanwhile signed webhooks are
#    POSTed back to back on one connection (bench/scale/post.py; each a new delivery id, answered
#    202 once committed), and each answer time is kept until the listing shows no aged delivery
#    left. Then POSTS_AFTER more on
#    the pruned store, for comparison. Reports how long the pass took and the accept latencies.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
N=${N:-1000000}
IN_FLIGHT=${IN_FLIGHT:-4096}
UNMATCHED_EVERY=${UNMATCHED_EVERY:-10}
AGED_PERCENT=${AGED_PERCENT:-50}
AGE_DAYS=${AGE_DAYS:-8}
AGED=${AGED:-$((N * AGED_PERCENT / 100))}
AGED_SPAN=${AGED_SPAN:-$((AGED * 7 * 86400 / N))}
BODIES=${BODIES:-all}
POSTS_AFTER=${POSTS_AFTER:-200}
PRUNE_TIMEOUT=${PRUNE_TIMEOUT:-1800}
RUNS=${RUNS:-3}
RUNS_API=${RUNS_API:-5}
RELAY_PORT=${RELAY_PORT:-18180}
ADMIN_PORT=${ADMIN_PORT:-18183}
JENKINS_PORT=${JENKINS_PORT:-18181} # nothing listens here: Jenkins is down
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-120}
SECRET=bench-secret

if [[ -z "${HOOKRELAY:-}" || -z "${FILL:-}" ]]; then
  build_release hookrelay scale_fill
fi
relay=${HOOKRELAY:-$root/build/release/hookrelay}
fill=${FILL:-$root/build/release/bench/scale_fill}

work=$(mktemp -d /tmp/hookrelay-scale.XXXXXX)
daemon=""
poster=""
pg_state=""
cleanup() {
  if [[ -n "$poster" ]]; then kill "$poster" 2>/dev/null || true; fi
  if [[ -n "$daemon" ]]; then
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
  fi
  if [[ -n "$pg_state" ]]; then "$root/tests/support/pg_server.sh" stop "$pg_state" || true; fi
  if [[ -n "${KEEP:-}" ]]; then echo "files kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

store_yaml=""
store_name="SQLite"
if [[ "${STORE:-sqlite}" == postgres ]]; then
  pg_state="$work/pg"
  database_url=$(bench_pg_database "$pg_state" scale)
  export SCALE_DATABASE_URL=$database_url
  # shellcheck disable=SC2016  # ${env:…} is hookrelay's, not the shell's
  store_yaml='backend: postgres, postgres: {url: "${env:SCALE_DATABASE_URL}"}, '
  store_name="PostgreSQL"
fi
# sql QUERY: runs it on the store (sqlite3 or psql), prints the result.
sql() {
  if [[ -n "$pg_state" ]]; then
    psql "$database_url" -XAtqc "$1"
  else
    sqlite3 "$state/hookrelay.db" "$1"
  fi
}

if (exec 3<>"/dev/tcp/127.0.0.1/$JENKINS_PORT") 2>/dev/null; then
  echo "run.sh: something listens on JENKINS_PORT $JENKINS_PORT; it must be closed" >&2
  exit 2
fi

body="$root/tests/data/github/push-branch-update.json"
state="$work/state"
# write_config FILE RETENTION
write_config() {
  cat >"$1" <<YAML
listen: 127.0.0.1:$RELAY_PORT
admin: {listen: "127.0.0.1:$ADMIN_PORT", token: "\${env:BENCH_SECRET}"}
state_dir: $state
log: {level: warn}
server: {threads: 2}
store: {${store_yaml}retention: $2}
sources:
  github: {provider: github, secret: "\${env:BENCH_SECRET}"}
jenkins:
  ci: {url: "http://127.0.0.1:$JENKINS_PORT/", user: bench, api_token: "\${env:BENCH_SECRET}", follow: none}
$(bench_rules_yaml)
YAML
}
write_config "$work/relay.yaml" 3650d
write_config "$work/relay-prune.yaml" 7d
config="$work/relay.yaml"

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
minimum() { sort -g | head -1; }
now() { date +%s.%N; }

# --- 1. fill ------------------------------------------------------------------------------------
aged=$AGED
unmatched=$((UNMATCHED_EVERY > 0 ? N / UNMATCHED_EVERY : 0))
echo "filling $state with $N deliveries ($aged aged) ..." >&2
fill_s=$(SCALE_FILL_DATABASE_URL=${database_url:-} "$fill" "$state" "$N" "$body" ci acme/app/main \
  "$IN_FLIGHT" "$UNMATCHED_EVERY" "$aged" $((AGE_DAYS * 86400)) "$BODIES" "$AGED_SPAN")
if ((aged > 0)); then
  # The aged deliveries are the first ids (submitted first, in order); last_outcome is bytea in
  # PostgreSQL, text in SQLite.
  if [[ -n "$pg_state" ]]; then
    sql "UPDATE triggers SET state = 'dead', outcome = 'dead',
      last_outcome = convert_to('HTTP 404', 'UTF8') WHERE delivery <= $aged" >/dev/null
    sql "VACUUM ANALYZE" >/dev/null
    # The fill's pages written now, not by a checkpoint still flushing them while the phases below
    # measure (its fsyncs held a webhook's commit for up to 449 ms at the prune pass's start).
    sql "CHECKPOINT" >/dev/null
  else
    sql "UPDATE triggers SET state = 'dead', outcome = 'dead',
      last_outcome = 'HTTP 404' WHERE delivery <= $aged" >/dev/null
  fi
fi
if [[ -z "$pg_state" ]]; then
  # The fill's gigabytes on the disk now, as PostgreSQL's CHECKPOINT above does: a daemon started
  # while the kernel still writes them back waits for them at its first sync (start-up 0.41-0.46 s
  # right after a fill of 10,500,000 against 0.09 s once they were written, 2026-12-05).
  sync -f "$state/hookrelay.db"
fi
pending=$(sql "SELECT COUNT(*) FROM triggers WHERE state = 'pending'")
dead=$(sql "SELECT COUNT(*) FROM triggers WHERE state = 'dead'")
if [[ -n "$pg_state" ]]; then
  store_size=$(sql "SELECT pg_size_pretty(pg_database_size('scale'))")
else
  # The database and its WAL, not the intake log's preallocated segments (state/intake/).
  store_size=$(du -shc "$state"/hookrelay.db* | tail -1 | cut -f1)
fi
# Nothing is received after this (until the prune phase): a `since` that matches nothing.
quiet_since=$(date -u -d '+1 second' +%Y-%m-%dT%H:%M:%SZ)

# --- 2. start-up to listening ----------------------------------------------------------------------
# start_daemon: runs hookrelay in the background (its pid in $daemon) and sets $took to the
# seconds from exec until the webhook port accepted a connection.
start_daemon() {
  local start deadline
  start=$(now)
  BENCH_SECRET=$SECRET "$relay" run --config "$config" >>"$work/relay.log" 2>&1 &
  daemon=$!
  deadline=$(($(date +%s) + STARTUP_TIMEOUT))
  until (exec 3<>"/dev/tcp/127.0.0.1/$RELAY_PORT") 2>/dev/null; do
    if ! kill -0 "$daemon" 2>/dev/null; then
      echo "hookrelay exited during start-up; its log:" >&2
      cat "$work/relay.log" >&2
      exit 1
    fi
    if (($(date +%s) >= deadline)); then
      echo "hookrelay did not listen within ${STARTUP_TIMEOUT}s" >&2
      exit 1
    fi
    sleep 0.005
  done
  took=$(awk -v s="$start" -v e="$(now)" 'BEGIN {printf "%.3f", e - s}')
}
stop_daemon() {
  kill "$daemon"
  wait "$daemon" 2>/dev/null || true
  daemon=""
}

startups=()
for ((i = 0; i < RUNS; i++)); do
  start_daemon
  startups+=("$took")
  stop_daemon
done
startup_min=$(printf '%s\n' "${startups[@]}" | minimum)
startup_med=$(printf '%s\n' "${startups[@]}" | median)

# --- 3. admin API latency ----------------------------------------------------------------------------
start_daemon
admin="http://127.0.0.1:$ADMIN_PORT/api/v1"
auth=(-H "Authorization: Bearer $SECRET")
deadline=$(($(date +%s) + STARTUP_TIMEOUT))
until curl -fs -o /dev/null "${auth[@]}" "$admin/status"; do
  if (($(date +%s) >= deadline)); then
    echo "the admin API did not answer within ${STARTUP_TIMEOUT}s" >&2
    exit 1
  fi
  sleep 0.01
done
# One delivery id for `deliveries show`: the newest of the listing.
one_id=$(curl -fs "${auth[@]}" "$admin/deliveries?limit=1" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["deliveries"][0]["delivery_id"])')

# time_get PATH: the median of RUNS_API curl time_total of GET PATH, in ms; checks the answer is 200
# and reports how many items a listing returned.
api_rows=()
time_get() {
  local path=$1 times=() t code items
  for ((i = 0; i < RUNS_API; i++)); do
    read -r code t < <(curl -s -o "$work/answer.json" -w '%{http_code} %{time_total}\n' \
      "${auth[@]}" "$admin$path")
    if [[ $code != 200 ]]; then
      echo "GET $path answered $code: $(cat "$work/answer.json")" >&2
      exit 1
    fi
    times+=("$t")
  done
  items=$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1]));
print(len(d["deliveries"]) if "deliveries" in d else 1)' "$work/answer.json")
  api_rows+=("| GET $path | $(printf '%s\n' "${times[@]}" | median | awk '{printf "%.1f", $1 * 1000}') ms | $items |")
}
# follow_all PATH: GET PATH, then its next_cursor until there is none (as the CLI does): the whole
# answer's time, in how many requests, and how many items.
follow_all() {
  local path=$1 row
  row=$(python3 - "$admin$path" "$SECRET" <<'PY'
import json, sys, time, urllib.request
url, secret = sys.argv[1], sys.argv[2]
requests = items = 0
cursor = None
started = time.monotonic()
while True:
    page = url + (("&" if "?" in url else "?") + "cursor=" + cursor if cursor else "")
    request = urllib.request.Request(page, headers={"Authorization": "Bearer " + secret})
    with urllib.request.urlopen(request, timeout=60) as answer:
        body = json.load(answer)
    requests += 1
    items += len(body.get("deliveries", []))
    cursor = body.get("next_cursor")
    if not cursor:
        break
print("%.1f ms in %d requests | %d" % ((time.monotonic() - started) * 1000, requests, items))
PY
  )
  api_rows+=("| GET $path, its cursor followed to the end | $row |")
}
time_get "/deliveries"
time_get "/deliveries?state=pending"
time_get "/deliveries?outcome=dead"
time_get "/deliveries?outcome=unmatched"
time_get "/deliveries/$one_id"
time_get "/deliveries?state=dead"
time_get "/deliveries?state=delivered"
time_get "/deliveries?outcome=delivered"
time_get "/deliveries?outcome=held"
time_get "/deliveries?source=github"
time_get "/deliveries?source=gitlab"
time_get "/deliveries?since=1h"
time_get "/deliveries?since=$quiet_since"
time_get "/deliveries?source=github&since=$quiet_since"
time_get "/deliveries?state=pending&since=$quiet_since"
time_get "/deliveries?outcome=unmatched&since=$quiet_since"
time_get "/deliveries?source=github&state=dead"
time_get "/deliveries?source=github&outcome=unmatched"
# Combinations no delivery matches, one filter checked on every row the other walks.
time_get "/deliveries?source=gitlab&state=pending"
time_get "/deliveries?source=gitlab&outcome=unmatched"
time_get "/deliveries?state=pending&outcome=dead"
follow_all "/deliveries?state=pending&outcome=dead"
follow_all "/deliveries?source=gitlab&state=pending"
time_get "/deliveries?cursor=$((aged / 2))"
time_get "/deliveries?outcome=unmatched&cursor=$((aged / 2))"
stop_daemon

# --- 4. a prune pass under accepts -------------------------------------------------------------
prune_rows=()
if ((aged > 0)); then
  config="$work/relay-prune.yaml"
  signature="sha256=$(openssl dgst -sha256 -hmac "$SECRET" "$body" | awk '{print $NF}')"
  # post PREFIX OUT ARGS...: signed webhooks back to back on one connection (bench/scale/post.py),
  # their answer times into OUT; fails unless each is answered 202.
  post() {
    python3 "$root/bench/scale/post.py" "$RELAY_PORT" "$signature" "$body" "$2" "$1" "${@:3}"
  }
  # aged_left: whether the listing below the first new delivery still shows an aged one, or (in
  # PostgreSQL) a partition of the bodies table for an hour the retention has passed is still
  # there: the pass drops those last.
  aged_left() {
    local listed
    listed=$(curl -fs "${auth[@]}" "$admin/deliveries?limit=1&cursor=$((aged + 1))" |
      python3 -c 'import json, sys; print(len(json.load(sys.stdin)["deliveries"]))')
    if [[ $listed == 0 && -n "$pg_state" ]]; then
      sql "SELECT count(*) FROM pg_class WHERE relname ~ '^bodies_[0-9]{10}\$'
        AND relname < 'bodies_' || to_char(now() AT TIME ZONE 'UTC' - interval '7 days', 'YYYYMMDDHH24')"
    else
      echo "$listed"
    fi
  }
  prune_start=$(now)
  start_daemon
  # Webhooks posted for the whole pass (thousands), so that any accept the pass holds up is among
  # them.
  post prune-during "$work/during.txt" --until "$work/pruned" --limit $((PRUNE_TIMEOUT + 60)) &
  poster=$!
  deadline=$(($(date +%s) + PRUNE_TIMEOUT))
  while true; do
    if ! kill -0 "$daemon" 2>/dev/null; then
      echo "hookrelay exited during the prune pass; its log:" >&2
      cat "$work/relay.log" >&2
      exit 1
    fi
    if ! kill -0 "$poster" 2>/dev/null; then
      wait "$poster" || exit 1 # it said why
      echo "the poster stopped before the prune pass ended" >&2
      exit 1
    fi
    [[ $(aged_left) != 0 ]] || break
    if (($(date +%s) >= deadline)); then
      echo "the prune did not finish within ${PRUNE_TIMEOUT}s" >&2
      exit 1
    fi
    sleep 0.2
  done
  touch "$work/pruned"
  wait "$poster"
  poster=""
  mapfile -t during <"$work/during.txt"
  prune_s=$(awk -v s="$prune_start" -v e="$(now)" 'BEGIN {printf "%.1f", e - s}')
  post prune-after "$work/after.txt" --count "$POSTS_AFTER"
  mapfile -t after <"$work/after.txt"
  left=$(curl -fs "${auth[@]}" "$admin/deliveries?limit=1000&cursor=$((aged + 1))" |
    python3 -c 'import json, sys; print(len(json.load(sys.stdin)["deliveries"]))')
  stop_daemon
  # latencies NAME TIMES...: one table row: count, median, p99, max in ms, how many over 50 ms.
  latencies() {
    local name=$1
    shift
    if (($# == 0)); then # the pass ended before the first answer
      echo "| $name | 0 | | | | 0 |"
      return
    fi
    printf '%s\n' "$@" | sort -g | awk -v name="$name" '{v[NR] = $1 * 1000}
      $1 * 1000 > 50 {over++}
      END {p = int(NR * 0.99 + 0.999); if (p < 1) p = 1
           printf "| %s | %d | %.1f ms | %.1f ms | %.1f ms | %d |\n", name, NR,
             (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[p], v[NR], over}'
  }
  # The pass starts with the daemon, so the daemon's own first second (where the runs of
  # 2026-12-02 had their longest accepts) is told apart from the rest of the pass.
  first=$(awk 'NR == 1 {print $2}' "$work/during.txt")
  mapfile -t starting < <(awk -v t0="${first:-0}" '$2 - t0 < 1' "$work/during.txt")
  mapfile -t running < <(awk -v t0="${first:-0}" '$2 - t0 >= 1' "$work/during.txt")
  prune_rows+=("$(latencies "during the prune pass" "${during[@]}")")
  prune_rows+=("$(latencies "of those, the daemon's first second" "${starting[@]}")")
  prune_rows+=("$(latencies "of those, the rest of the pass" "${running[@]}")")
  prune_rows+=("$(latencies "after it, same daemon" "${after[@]}")")
  if [[ $left != 0 ]]; then
    echo "after the prune $left aged deliveries are still listed" >&2
    exit 1
  fi
fi

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo
if [[ $BODIES == all ]]; then
  kept="8.8 KB GitHub push bodies kept"
else
  kept="8.8 KB GitHub push bodies kept for the $aged aged deliveries only, empty for the others"
fi
echo "Scale: $N deliveries in the $store_name store ($kept): $pending pending"
echo "triggers, $dead dead ($aged deliveries received over ${AGED_SPAN} s up to $AGE_DAYS days ago), $unmatched without a"
echo "trigger; Jenkins unreachable. Machine: $(nproc) cores, $cpu."
echo "Command: STORE=${STORE:-sqlite} N=$N UNMATCHED_EVERY=$UNMATCHED_EVERY AGED=$aged AGED_SPAN=$AGED_SPAN BODIES=$BODIES bench/scale/run.sh"
echo
echo "| measure | figure |"
echo "| --- | --- |"
echo "| fill: $N deliveries via submit(), $IN_FLIGHT in flight | ${fill_s} s ($(awk -v n="$N" -v s="$fill_s" 'BEGIN {printf "%.0f", n / s}')/s), store $store_size |"
echo "| start-up to listening, $RUNS runs | min ${startup_min} s, median ${startup_med} s |"
echo
echo "Admin API, median of $RUNS_API (curl time_total):"
echo
echo "| request | median | items returned |"
echo "| --- | --- | --- |"
for row in "${api_rows[@]}"; do echo "$row"; done
if ((${#prune_rows[@]} > 0)); then
  echo
  echo "Prune pass (retention 7d: the $aged aged deliveries expire) from exec until none is listed:"
  echo "${prune_s} s ($(awk -v n="$aged" -v s="$prune_s" 'BEGIN {printf "%.0f", n / s}') deliveries/s),"
  echo "including start-up. Accept latency of signed webhooks POSTed back to back on one connection"
  echo "(bench/scale/post.py, from sending each until its answer):"
  echo
  echo "| webhooks | count | median | p99 | max | over 50 ms |"
  echo "| --- | --- | --- | --- | --- | --- |"
  for row in "${prune_rows[@]}"; do echo "$row"; done
fi
