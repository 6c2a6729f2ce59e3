#!/usr/bin/env bash
# Accepts while a backlog drains: what webhooks cost when Jenkins has just come back after a long
# outage and hookrelay is delivering everything that waited. Loopback only, bounded in time; stops
# what it started and removes its files. Release build, SQLite store.
#
#   bench/load/backlog.sh                  # N=1000000 pending triggers, DURATION=20s
#   N=200000 DURATION=10s bench/load/backlog.sh
#   HOOKRELAY=/path/to/hookrelay bench/load/backlog.sh   # another build's daemon (the fill is
#                                                        # this tree's)
#   SCRAPE=1 bench/load/backlog.sh         # also read /metrics every SCRAPE seconds during each
#                                          # load (0: one read after another), as Prometheus would
#
# 1. Fill: bench/scale_fill.cpp submits N deliveries (the 8.8 KB GitHub push fixture) with one
#    pending trigger each for job acme/app/main, through the daemon's own store and write path.
#    Then bench/backlog_count.cpp counts them three times through the store (as /metrics does),
#    and times how long other store work waits behind each count.
# 2. nginx stands in for Jenkins (201 at once, each request logged with its arrival time). Two
#    runs of the same wrk load as bench/load/run.sh (-t2 -c32, the push fixture with a unique
#    delivery id per request; its trigger goes to job woodpecker-ci/woodpecker/main):
#      a. hookrelay on an empty store;
#      b. hookrelay on the filled store: the load starts as soon as it listens, so the backlog
#         drains while the webhooks arrive.
# Prints per run: start-up to listening, accepted/s, p50/p99, peak RSS, and the build requests
# nginx received during the load (old backlog and new triggers apart, each as a rate); then the
# accepted/s of b as a percentage of a. After each load, five /metrics scrapes one after another:
# their median and longest time, and the backlog they reported (a scrape counts the open triggers
# on the store's thread, and accepts wait for it meanwhile). The backlog is not waited for after
# the load (at the drain rate printed, a million triggers take minutes): the run stops when wrk
# does.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
N=${N:-1000000}
IN_FLIGHT=${IN_FLIGHT:-4096}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
RELAY_PORT=${RELAY_PORT:-18380}
JENKINS_PORT=${JENKINS_PORT:-18381}
ADMIN_PORT=${ADMIN_PORT:-18383}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-120}
SECRET=bench-secret

"$root/scripts/install-deps.sh" --bench >/dev/null
build_release hookrelay scale_fill backlog_count
relay=${HOOKRELAY:-$root/build/release/hookrelay}
fill="$root/build/release/bench/scale_fill"
count="$root/build/release/bench/backlog_count"

work=$(mktemp -d /tmp/hookrelay-backlog.XXXXXX)
pids=()
daemon=""
cleanup() {
  for p in "${pids[@]}" $daemon; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

body="$root/tests/data/github/push-branch-update.json"
signature="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$body" | cut -d' ' -f1)"

# --- 1. fill -------------------------------------------------------------------------------------
echo "filling a store with $N pending triggers ..." >&2
fill_s=$("$fill" "$work/backlog" "$N" "$body" ci acme/app/main "$IN_FLIGHT" 0 0 0)
pending=$(sqlite3 "$work/backlog/hookrelay.db" "SELECT COUNT(*) FROM triggers WHERE state = 'pending'")
mkdir -p "$work/empty"
# The store's count of the open triggers on its own (this tree's store, whatever HOOKRELAY is),
# and how long other store work waited behind it.
counted=$("$count" "$work/backlog")

jenkins_nginx_conf "$work/nginx" "$JENKINS_PORT"
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
wait_port "$JENKINS_PORT"

now() { date +%s.%N; }
rows=()
scrape_lines=()
# run NAME STATE_DIR: one hookrelay on STATE_DIR, the wrk load from the moment it listens.
run() {
  local name=$1 state=$2 start took load_start load_end old new secs rps p50 p99 total bad rss
  local scrapes open scraper=""
  cat >"$work/$name.yaml" <<YAML
listen: 127.0.0.1:$RELAY_PORT
admin: {listen: "127.0.0.1:$ADMIN_PORT", token: "\${env:BENCH_SECRET}"}
state_dir: $state
log: {level: warn}
server: {threads: 2}
sources:
  github: {provider: github, secret: "\${env:BENCH_SECRET}"}
jenkins:
  ci: {url: "http://127.0.0.1:$JENKINS_PORT/", user: bench, api_token: "\${env:BENCH_SECRET}", max_in_flight: 16, follow: none}
dispatch: {max_in_flight: 32}
$(bench_rules_yaml)
YAML
  start=$(now)
  BENCH_SECRET=$SECRET "$relay" run --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
  daemon=$!
  local deadline=$(($(date +%s) + STARTUP_TIMEOUT))
  until (exec 3<>"/dev/tcp/127.0.0.1/$RELAY_PORT") 2>/dev/null; do
    if ! kill -0 "$daemon" 2>/dev/null || (($(date +%s) >= deadline)); then
      echo "hookrelay did not listen; its log:" >&2
      cat "$work/$name.log" >&2
      exit 1
    fi
    sleep 0.005
  done
  load_start=$(now)
  if [[ -n "${SCRAPE:-}" ]]; then
    while :; do
      curl -fsS -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $SECRET" \
        "http://127.0.0.1:$ADMIN_PORT/metrics" || break
      sleep "$SCRAPE"
    done >"$work/$name.scrapes" 2>/dev/null &
    scraper=$!
  fi
  took=$(awk -v s="$start" -v e="$load_start" 'BEGIN {printf "%.3f", e - s}')
  BODY_FILE="$body" SIGNATURE="$signature" TARGET_PATH=/hooks/github RUN_ID="$name-" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$root/bench/load/post.lua" \
    "http://127.0.0.1:$RELAY_PORT" >"$work/$name.wrk"
  load_end=$(now)
  if [[ -n "$scraper" ]]; then
    kill "$scraper"
    wait "$scraper" 2>/dev/null || true
    scrape_lines+=("$name: $(sort -n "$work/$name.scrapes" | awk '{t[NR] = $1}
      END {printf "%d reads of /metrics during the load, median %.1f ms, longest %.1f ms", NR, 1e3 * t[int((NR + 1) / 2)], 1e3 * t[NR]}')")
  fi
  scrapes=$(for _ in 1 2 3 4 5; do
    curl -fsS -o "$work/metrics.txt" -w '%{time_total}\n' -H "Authorization: Bearer $SECRET" \
      "http://127.0.0.1:$ADMIN_PORT/metrics"
  done | sort -n | awk '{t[NR] = $1} END {printf "%.1f / %.1f ms", 1e3 * t[3], 1e3 * t[5]}')
  open=$(awk '$1 ~ /^hookrelay_backlog\{/ {n += $2} END {printf "%.0f", n}' "$work/metrics.txt")
  rss=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$daemon/status")
  kill "$daemon"
  wait "$daemon" 2>/dev/null || true
  daemon=""
  # Build requests nginx received during the load: the backlog's job and the new triggers' apart.
  read -r old new < <(awk -v s="$load_start" -v e="$load_end" '$1 >= s && $1 <= e {
      if ($0 ~ /POST \/job\/acme\//) o++; else if ($0 ~ /POST \/job\/woodpecker-ci\//) n++ }
    END {print o + 0, n + 0}' "$work/nginx/access.log")
  secs=$(awk -v s="$load_start" -v e="$load_end" 'BEGIN {print e - s}')
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/$name.wrk")
  p50=$(awk '$1 == "50%" {print $2}' "$work/$name.wrk")
  p99=$(awk '$1 == "99%" {print $2}' "$work/$name.wrk")
  total=$(awk '/requests in/ {print $1}' "$work/$name.wrk")
  bad=$(awk '/Non-2xx/ {print $5}' "$work/$name.wrk")
  rows+=("| $name | $took s | $rps | $p50 | $p99 | $rss MB | $old ($(awk -v n="$old" -v s="$secs" 'BEGIN {printf "%.0f", n / s}')/s) | $new of $((total - ${bad:-0})) ($(awk -v n="$new" -v s="$secs" 'BEGIN {printf "%.0f", n / s}')/s) | $scrapes ($open open) |")
  eval "rps_$name=$rps"
}
run empty "$work/empty"
run backlog "$work/backlog"

echo "filled $N deliveries ($pending pending triggers) in ${fill_s}s; store $(du -shc "$work/backlog"/hookrelay.db* | tail -1 | cut -f1)"
echo "the backlog counted by the store alone (bench/backlog_count.cpp), three times:"
echo "$counted"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, 8.8 KB GitHub push, unique delivery ids; Jenkins (nginx) up"
echo
echo "| store | start-up to listening | accepted/s | p50 | p99 | peak RSS | backlog delivered during the load | new triggers delivered during the load | /metrics scrape after the load, median / longest of 5 |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
if ((${#scrape_lines[@]} > 0)); then
  echo
  printf '%s\n' "${scrape_lines[@]}"
fi
# shellcheck disable=SC2154 # set by run through eval
awk -v a="$rps_empty" -v b="$rps_backlog" 'BEGIN {printf "\naccepted/s with the backlog draining: %.0f %% of the empty store'"'"'s\n", 100 * b / a}'
