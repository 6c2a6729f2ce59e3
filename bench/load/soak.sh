#!/usr/bin/env bash
# Does a long run leave anything behind? hookrelay (release build, SQLite store with its
# defaults) under rounds of load, with Jenkins down (answering 503) through every other round,
# every build followed to its result, retention and pruning short enough that the store reaches a
# steady size. Each round waits for every accepted trigger to reach Jenkins and its build to be
# followed to its result, then samples the daemon's memory, open files and threads, the state
# directory's size, and what is still open in the store. Loopback only, bounded in time
# (ROUNDS x (DURATION + that wait, DRAIN_TIMEOUT at most)); stops what it started and removes its
# files (KEEP=1 keeps them and prints where).
#
#   bench/load/soak.sh                    # ROUNDS=10 DURATION=20s, wrk -t1 -c4
#   ROUNDS=40 bench/load/soak.sh          # longer
#   HOOKRELAY=/path/to/hookrelay bench/load/soak.sh   # another build
#   STORE=postgres bench/load/soak.sh     # the PostgreSQL store, on a throwaway server this script
#                                         # starts (tests/support/pg_server.sh, fsync on); the
#                                         # store column is then the database's size
#
# Prints one line per round: the deliveries accepted in it and in all, the build requests Jenkins
# answered 201 in all, the daemon's resident memory (VmRSS) and its peak so far (VmHWM), its open
# file descriptors and threads, the store's size (the state directory: database, WAL and intake
# log; or the PostgreSQL database), the triggers still open and the builds followed to their
# result so far (/metrics). Then the resident memory's change from the end of round 2 (caches
# warm, the first prunes done) to the last round. Exits 1 when an accepted delivery did not reach
# Jenkins, or a build was not followed to its result, within DRAIN_TIMEOUT of its round.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
ROUNDS=${ROUNDS:-10}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-4}
THREADS=${THREADS:-1}
RELAY_PORT=${RELAY_PORT:-18290}
JENKINS_PORT=${JENKINS_PORT:-18291}
ADMIN_PORT=${ADMIN_PORT:-18293}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-180}
SECRET=bench-secret

bench_relay

bench_start soak

# Jenkins: queue items and builds to follow; while $work/nginx/down exists, 503 to every build
# request and probe (as a Jenkins restarting behind a proxy), reads still answered.
JENKINS_FOLLOW=1 jenkins_nginx_conf "$work/nginx" "$JENKINS_PORT"
sed -i "s|^      add_header Location|      if (-f $work/nginx/down) { return 503; }\n&|" \
  "$work/nginx/nginx.conf"
grep -q 'nginx/down' "$work/nginx/nginx.conf" || {
  echo "soak.sh: could not add the outage switch to nginx.conf" >&2
  exit 1
}
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)

store_yaml="store: {retention: 1m, prune_interval: 20s}"
if [[ "${STORE:-sqlite}" == postgres ]]; then
  pg_state="$work/pg"
  BENCH_DATABASE_URL=$(bench_pg_database "$pg_state" bench)
  export BENCH_DATABASE_URL
  # shellcheck disable=SC2016  # ${env:…} is hookrelay's, not the shell's
  store_yaml='store: {backend: postgres, postgres: {url: "${env:BENCH_DATABASE_URL}"}, retention: 1m, prune_interval: 20s}'
fi
# The size of what the store keeps: the state directory, or the PostgreSQL database.
store_mb() {
  if [[ -n "$pg_state" ]]; then
    psql "$BENCH_DATABASE_URL" -XAtc "SELECT pg_database_size('bench') / 1048576.0"
  else
    bc -l <<<"$(du -sk "$work/state" | cut -f1) / 1024"
  fi
}

cat >"$work/relay.yaml" <<YAML
listen: 127.0.0.1:$RELAY_PORT
admin: {listen: "127.0.0.1:$ADMIN_PORT", token: "\${env:BENCH_SECRET}"}
state_dir: $work/state
log: {level: warn}
$store_yaml
sources:
  github: {provider: github, secret: "\${env:BENCH_SECRET}"}
jenkins:
  ci: {url: "http://127.0.0.1:$JENKINS_PORT/", user: bench, api_token: "\${env:BENCH_SECRET}", follow_poll_initial: 500ms, follow_max_in_flight: 16, probe_initial: 200ms, probe_max: 1s}
$(bench_rules_yaml)
YAML
BENCH_SECRET=$SECRET "$relay" run --config "$work/relay.yaml" 2>"$work/relay.log" &
daemon=$!
pids+=("$daemon")
wait_port "$RELAY_PORT"
wait_port "$JENKINS_PORT"

status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$daemon/status"; }
# From /metrics: the open triggers (the backlog gauges summed), and the builds followed to their
# result so far.
open_work() {
  curl -fsS -H "Authorization: Bearer $SECRET" "http://127.0.0.1:$ADMIN_PORT/metrics" |
    awk '$1 ~ /^hookrelay_backlog(\{|$)/ {t += $2} $1 ~ /^hookrelay_builds_total(\{|$)/ {b += $2}
      END {printf "%d %d\n", t, b}'
}
# Build requests Jenkins answered 201 so far.
built() { grep -c '"POST /job/[^"]*" 201' "$work/nginx/access.log" || true; }
# Waits until Jenkins has answered N build requests 201 and every build it answered has been
# followed to its result (DRAIN_TIMEOUT at most); prints "BUILT OPEN FOLLOWED".
wait_settled() {
  local deadline=$((SECONDS + DRAIN_TIMEOUT)) n open followed
  while :; do
    n=$(built)
    read -r open followed < <(open_work)
    if ((n >= $1 && followed >= n)) || ((SECONDS >= deadline)); then break; fi
    sleep 0.5 # poll interval
  done
  echo "$n $open $followed"
}

printf '%5s %-7s %9s %9s %9s %8s %8s %5s %7s %9s %6s %9s\n' round jenkins accepted "in all" built \
  "RSS MB" "peak MB" fds threads "store MB" open followed
total=0
rss_warm=""
late=0 # rounds whose deliveries or follows were not done within DRAIN_TIMEOUT
for ((round = 1; round <= ROUNDS; round++)); do
  jenkins=up
  if ((round % 2 == 0)); then
    jenkins=down
    touch "$work/nginx/down"
  fi
  BODY_FILE="$body" SIGNATURE="$signature" TARGET_PATH=/hooks/github RUN_ID="soak-$round-" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$root/bench/load/post.lua" \
    "http://127.0.0.1:$RELAY_PORT" >"$work/wrk-$round.txt"
  rm -f "$work/nginx/down"
  requests=$(awk '/requests in/ {print $1}' "$work/wrk-$round.txt")
  bad=$(awk '/Non-2xx/ {print $5}' "$work/wrk-$round.txt")
  accepted=$((requests - ${bad:-0}))
  total=$((total + accepted))
  read -r delivered open followed < <(wait_settled "$total")
  if ((delivered < total || followed < delivered)); then late=$((late + 1)); fi
  rss=$(status_kb VmRSS)
  if ((round == 2)); then rss_warm=$rss; fi
  printf '%5d %-7s %9d %9d %9d %8.1f %8.1f %5d %7d %9.1f %6d %9d\n' "$round" "$jenkins" \
    "$accepted" "$total" "$delivered" "$(bc -l <<<"$rss / 1024")" \
    "$(bc -l <<<"$(status_kb VmHWM) / 1024")" "$(find "/proc/$daemon/fd" -mindepth 1 | wc -l)" \
    "$(status_kb Threads)" "$(store_mb)" \
    "$open" "$followed"
done
if [[ -n "$rss_warm" ]]; then
  awk -v a="$rss_warm" -v b="$rss" -v n="$ROUNDS" \
    'BEGIN {printf "resident memory from round 2 to round %d: %.1f MB to %.1f MB (%+.1f MB)\n", n, a / 1024, b / 1024, (b - a) / 1024}'
fi
errors=$(grep -c '\[error\]\|\[critical\]' "$work/relay.log" || true)
echo "error lines in the daemon's log: $errors"
if ((late > 0)); then
  echo "soak.sh: in $late rounds the deliveries or their follows were not done within ${DRAIN_TIMEOUT}s" >&2
fi
if ((delivered < total)); then
  echo "soak.sh: $((total - delivered)) accepted deliveries did not reach Jenkins within ${DRAIN_TIMEOUT}s" >&2
  exit 1
fi
if ((followed < delivered)); then
  echo "soak.sh: $((delivered - followed)) builds were not followed to their result within ${DRAIN_TIMEOUT}s" >&2
  exit 1
fi
if ((late > 0)); then exit 1; fi
echo "every accepted delivery reached Jenkins ($total), and every build was followed to its result"
