#!/usr/bin/env bash
# How soon a pull request hears each step: webhooks sent one at a time to hookrelay (release build,
# SQLite store, the defaults: dispatch.poll_interval 1 s, follow_poll_initial 2 s), and for each
# the time from its 202 to the build request at Jenkins, to the first commit status posted to
# GitHub ("Queued in Jenkins") and to the last (the build's result). One nginx stands in for both:
# Jenkins (jenkins_nginx_conf with JENKINS_FOLLOW=1: each build has a queue item whose first read
# shows it started, and whose build's read shows it finished) and GitHub's status API (201). With
# several builds (HOOKRELAYS="<a> <b>") the runs alternate between them. Loopback only, bounded in
# count and time; stops what it started and removes its files.
#
#   bench/load/story.sh                          # N=10 webhooks, this tree's release build, RUNS=1
#   HOOKRELAYS="/tmp/old/hookrelay build/release/hookrelay" RUNS=2 bench/load/story.sh
#   STORE_YAML='store: {intake_log: false}' bench/load/story.sh   # a store setting of its own
#
# Prints one line per run: the build, then for each step the median and the largest time over
# the N webhooks.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
N=${N:-10}
RUNS=${RUNS:-1}
RELAY_PORT=${RELAY_PORT:-18680}
JENKINS_PORT=${JENKINS_PORT:-18681}
ADMIN_PORT=${ADMIN_PORT:-18683}
SECRET=bench-secret

if [[ -z "${HOOKRELAYS:-}" ]]; then
  build_release hookrelay
fi
read -r -a relays <<<"${HOOKRELAYS:-$root/build/release/hookrelay}"

work=$(mktemp -d /tmp/hookrelay-story.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

body="$root/tests/data/github/push-branch-update.json"
cat >"$work/relay.yaml" <<YAML
listen: 127.0.0.1:$RELAY_PORT
admin: {listen: "127.0.0.1:$ADMIN_PORT"}
state_dir: $work/state
log: {level: warn}
sources:
  github:
    provider: github
    secret: "\${env:BENCH_SECRET}"
    status: {token: "\${env:BENCH_SECRET}", api_url: "http://127.0.0.1:$JENKINS_PORT"}
jenkins:
  ci: {url: "http://127.0.0.1:$JENKINS_PORT/", user: bench, api_token: "\${env:BENCH_SECRET}"}
$(bench_rules_yaml)
${STORE_YAML:-}
YAML

echo "$N webhooks one at a time (8.8 KB push each), each followed to its result; times from the 202"
for _ in $(seq 1 "$RUNS"); do
  for relay in "${relays[@]}"; do
    rm -rf "$work/state" "$work/nginx"
    # Also GitHub's status API: every POST to /repos/…/statuses/… gets its 201.
    JENKINS_FOLLOW=1 jenkins_nginx_conf "$work/nginx" "$JENKINS_PORT"
    nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
    nginx_pid=$!
    pids=("$nginx_pid")
    wait_port "$JENKINS_PORT"
    BENCH_SECRET=$SECRET "$relay" run --config "$work/relay.yaml" 2>"$work/relay.log" &
    daemon=$!
    pids+=("$daemon")
    wait_port "$RELAY_PORT"
    python3 - "$RELAY_PORT" "$body" "$SECRET" "$N" "$work/nginx/access.log" "$relay" <<'PY'
import hashlib, hmac, http.client, statistics, sys, time
port, body_file, secret, n, log, relay = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
body = open(body_file, "rb").read()
signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

def lines():
    with open(log) as f:
        return [l.split(" ", 1) for l in f]

def wait_for(count, text, deadline):
    # Polls the access log every 5 ms until it holds `count` lines with `text`; their times.
    while time.time() < deadline:
        times = [float(t) for t, rest in lines() if text in rest]
        if len(times) >= count:
            return times
        time.sleep(0.005)
    sys.exit(f"{relay}: gave up waiting for {count} x {text!r}")

steps = {"build request": [], "first status": [], "last status": []}
for i in range(n):
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    conn.request("POST", "/hooks/github", body, {
        "Content-Type": "application/json", "X-GitHub-Event": "push",
        "X-GitHub-Delivery": f"story-{time.time_ns()}-{i}", "X-Hub-Signature-256": signature})
    answer = conn.getresponse()
    answer.read()
    accepted = time.time()
    if answer.status != 202:
        sys.exit(f"{relay}: webhook answered {answer.status}")
    deadline = accepted + 30
    build = wait_for(i + 1, "POST /job/", deadline)[i]
    # Three statuses a build: queued, running, its result (the last).
    posts = wait_for(3 * (i + 1), "/statuses/", deadline)
    # The build request may reach Jenkins before this client has read its 202: 0 then.
    steps["build request"].append(max(0.0, build - accepted))
    steps["first status"].append(posts[3 * i] - accepted)
    steps["last status"].append(posts[3 * i + 2] - accepted)
print(relay + ": " + "; ".join(
    f"{k} median {1000 * statistics.median(v):.0f} ms, max {1000 * max(v):.0f} ms" for k, v in steps.items()))
PY
    kill "$daemon" "$nginx_pid" 2>/dev/null || true
    wait "$daemon" "$nginx_pid" 2>/dev/null || true
  done
done
