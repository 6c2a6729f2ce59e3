#!/usr/bin/env bash
# Whole-daemon load benchmark, loopback only, bounded in time; stops by itself.
#
#   bench/load/run.sh            # DURATION=20s CONNECTIONS=32 by default
#
# 1. nginx on 127.0.0.1 stands in for Jenkins and answers every request 201 at once.
# 2. hookrelay (release build) with one GitHub source and a rule that matches the payload.
# 3. wrk posts the 8.8 KB GitHub push fixture with a precomputed signature and a unique delivery
#    id per request; then we wait until every accepted trigger reached nginx.
# 4. The same wrk run against `webhook` (adnanh/webhook) with an HMAC rule and /bin/true.
# Prints accepted/s, p50/p99 latency, peak RSS and delivered triggers/s for both.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
RELAY_PORT=${RELAY_PORT:-18080}
JENKINS_PORT=${JENKINS_PORT:-18081}
PEER_PORT=${PEER_PORT:-18090}
SECRET=bench-secret

"$root/scripts/install-deps.sh" --bench >/dev/null
cmake -S "$root" -B "$root/build/release" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DHOOKRELAY_BUILD_TESTS=OFF >/dev/null
cmake --build "$root/build/release" --target hookrelay >/dev/null

work=$(mktemp -d /tmp/hookrelay-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

body="$root/tests/data/github/push-branch-update.json"
signature="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$body" | cut -d' ' -f1)"

# --- Jenkins stand-in --------------------------------------------------------------------------
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log $work/nginx/access.log;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$JENKINS_PORT;
    location / {
      add_header Location "http://127.0.0.1:$JENKINS_PORT/queue/item/1/" always;
      return 201;
    }
  }
}
NGINX
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)

wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  return 1
}
wait_port "$JENKINS_PORT"

peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# wrk_run URL NAME: prints wrk's report to $work/NAME.wrk
wrk_run() {
  BODY_FILE="$body" SIGNATURE="$signature" TARGET_PATH="$2" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$root/bench/load/post.lua" \
    "$1" >"$work/$3.wrk"
}

# field NAME.wrk: requests/s, p50, p99, total requests, non-2xx
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

# --- hookrelay ---------------------------------------------------------------------------------
cat >"$work/hookrelay.yaml" <<YAML
listen: 127.0.0.1:$RELAY_PORT
state_dir: $work/state
log: {level: warn}
server: {threads: 2}
sources:
  github: {provider: github, secret: "\${env:BENCH_SECRET}"}
jenkins:
  ci: {url: "http://127.0.0.1:$JENKINS_PORT/", user: bench, api_token: "\${env:BENCH_SECRET}", max_in_flight: 16}
dispatch: {max_in_flight: 32}
rules:
  - name: branches
    when: {event: push, branch: main}
    trigger:
      jenkins: ci
      job: "{{ repository.namespace }}/{{ repository.name }}/{{ branch }}"
      parameters: {GIT_COMMIT: "{{ commit }}"}
YAML
BENCH_SECRET=$SECRET "$root/build/release/hookrelay" run --config "$work/hookrelay.yaml" \
  2>"$work/hookrelay.log" &
relay=$!
pids+=($relay)
wait_port "$RELAY_PORT"

start=$(date +%s.%N)
wrk_run "http://127.0.0.1:$RELAY_PORT" /hooks/github relay
read -r rps p50 p99 total bad < <(summarize relay)
accepted=$((total - bad))
# Every accepted webhook queues one trigger; wait (bounded) until nginx saw all of them.
delivered=0
for _ in $(seq 1 1200); do
  delivered=$(grep -c 'POST /job/' "$work/nginx/access.log" || true)
  [[ $delivered -ge $accepted ]] && break
  sleep 0.1
done
end=$(date +%s.%N)
relay_rss=$(peak_rss_mb "$relay")
delivered_rate=$(awk -v n="$delivered" -v s="$start" -v e="$end" 'BEGIN {printf "%.0f", n / (e - s)}')
kill "$relay"; wait "$relay" 2>/dev/null || true

# --- webhook (adnanh) ----------------------------------------------------------------------------
cat >"$work/hooks.json" <<JSON
[{"id": "relay", "execute-command": "/bin/true",
  "trigger-rule": {"match": {"type": "payload-hmac-sha256", "secret": "$SECRET",
                             "parameter": {"source": "header", "name": "X-Hub-Signature-256"}}}}]
JSON
webhook -hooks "$work/hooks.json" -ip 127.0.0.1 -port "$PEER_PORT" >"$work/webhook.log" 2>&1 &
peer=$!
pids+=($peer)
wait_port "$PEER_PORT"
wrk_run "http://127.0.0.1:$PEER_PORT" /hooks/relay peer
read -r prps pp50 pp99 ptotal pbad < <(summarize peer)
peer_rss=$(peak_rss_mb "$peer")

echo
echo "Load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, 8.8 KB GitHub push, unique delivery ids"
echo
echo "| daemon | accepted/s | p50 | p99 | peak RSS | non-2xx | delivered triggers/s |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
echo "| hookrelay | $rps | $p50 | $p99 | ${relay_rss} MB | $bad of $total | $delivered_rate ($delivered of $accepted delivered) |"
echo "| webhook 2.8 (/bin/true) | $prps | $pp50 | $pp99 | ${peer_rss} MB | $pbad of $ptotal | n/a |"
