#!/usr/bin/env bash
# Scale benchmark: a large backlog of pending triggers in the SQLite store (Jenkins was down for
# a long time). Loopback only, bounded in time; stops what it started and removes its files.
# Release build.
#
#   bench/scale/run.sh           # N=1000000 pending triggers by default
#   N=200000 bench/scale/run.sh
#
# 1. Fill: bench/scale_fill.cpp submits N deliveries (the 8.8 KB GitHub push fixture, one
#    trigger each) through open_store() and submit(), the daemon's own schema and write path,
#    IN_FLIGHT at a time so that they group-commit. Prints how long that took.
# 2. Start-up to listening: `hookrelay run` on that state_dir, its Jenkins on a port nothing
#    listens on (so nothing drains), from exec until the webhook port accepts a connection
#    (polled, STARTUP_TIMEOUT at most); RUNS times, min and median.
# 3. Admin API latency on that store (curl's time_total, median of RUNS_API): /api/v1/deliveries
#    with no filter, ?state=pending, ?outcome=dead, ?outcome=unmatched, and one delivery's
#    /api/v1/deliveries/<id>.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
N=${N:-1000000}
IN_FLIGHT=${IN_FLIGHT:-4096}
RUNS=${RUNS:-3}
RUNS_API=${RUNS_API:-5}
RELAY_PORT=${RELAY_PORT:-18180}
ADMIN_PORT=${ADMIN_PORT:-18183}
JENKINS_PORT=${JENKINS_PORT:-18181} # nothing listens here: Jenkins is down
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-120}
SECRET=bench-secret

cmake -S "$root" -B "$root/build/release" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DHOOKRELAY_BUILD_TESTS=OFF >/dev/null
cmake --build "$root/build/release" --target hookrelay scale_fill >/dev/null
relay="$root/build/release/hookrelay"
fill="$root/build/release/bench/scale_fill"

work=$(mktemp -d /tmp/hookrelay-scale.XXXXXX)
daemon=""
cleanup() {
  if [[ -n "$daemon" ]]; then
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if (exec 3<>"/dev/tcp/127.0.0.1/$JENKINS_PORT") 2>/dev/null; then
  echo "run.sh: something listens on JENKINS_PORT $JENKINS_PORT; it must be closed" >&2
  exit 2
fi

body="$root/tests/data/github/push-branch-update.json"
state="$work/state"
cat >"$work/relay.yaml" <<YAML
listen: 127.0.0.1:$RELAY_PORT
admin: {listen: "127.0.0.1:$ADMIN_PORT", token: "\${env:BENCH_SECRET}"}
state_dir: $state
log: {level: warn}
server: {threads: 2}
sources:
  github: {provider: github, secret: "\${env:BENCH_SECRET}"}
jenkins:
  ci: {url: "http://127.0.0.1:$JENKINS_PORT/", user: bench, api_token: "\${env:BENCH_SECRET}", follow: none}
rules:
  - name: branches
    when: {event: push, branch: main}
    trigger:
      jenkins: ci
      job: "{{ repository.namespace }}/{{ repository.name }}/{{ branch }}"
      parameters: {GIT_COMMIT: "{{ commit }}"}
YAML

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
minimum() { sort -g | head -1; }
now() { date +%s.%N; }

# --- 1. fill ------------------------------------------------------------------------------------
echo "filling $state with $N pending triggers ..." >&2
fill_s=$("$fill" "$state" "$N" "$body" ci acme/app/main "$IN_FLIGHT")
store_size=$(du -sh "$state" | cut -f1)

# --- 2. start-up to listening ----------------------------------------------------------------------
# start_daemon: runs hookrelay in the background (its pid in $daemon) and sets $took to the
# seconds from exec until the webhook port accepted a connection.
start_daemon() {
  local start deadline
  start=$(now)
  BENCH_SECRET=$SECRET "$relay" run --config "$work/relay.yaml" >>"$work/relay.log" 2>&1 &
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
time_get "/deliveries"
time_get "/deliveries?state=pending"
time_get "/deliveries?outcome=dead"
time_get "/deliveries?outcome=unmatched"
time_get "/deliveries/$one_id"
stop_daemon

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "Scale: $N pending triggers in the SQLite store (8.8 KB GitHub push bodies kept), Jenkins"
echo "unreachable. Machine: $(nproc) cores, $cpu. Command: N=$N bench/scale/run.sh"
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
