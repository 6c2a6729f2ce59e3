#!/usr/bin/env bash
# Peak and resident memory of the real daemon on large signed JSON bodies (docs/operations.md,
# "Memory ceilings"). Loopback only; stops by itself.
#
#   bench/memory/run.sh                      # uses build/dev/hookrelay
#   HOOKRELAY=build/release/hookrelay bench/memory/run.sh
#
# For each payload (bench/memory/payloads.py) it starts a fresh daemon (default server settings:
# body_limit 25MiB, threads 2), posts the signed body once, then four at once, and prints the
# answers, the daemon's peak RSS (VmHWM) after each step, and its RSS (VmRSS) SETTLE seconds after
# the burst.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
HOOKRELAY=${HOOKRELAY:-$root/build/dev/hookrelay}
PORT=${PORT:-18180}
SETTLE=${SETTLE:-15}
SECRET=bench-memory-secret

work=$(mktemp -d /tmp/hookrelay-memory.XXXXXX)
daemon=
cleanup() {
  if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

python3 "$root/bench/memory/payloads.py" small-elements $((24 * 1024 * 1024)) "$work/small-elements.json" >/dev/null
python3 "$root/bench/memory/payloads.py" github-push-max $((25 * 1024 * 1024)) "$work/github-push-max.json" >/dev/null

cat >"$work/hookrelay.yaml" <<YAML
listen: 127.0.0.1:$PORT
state_dir: $work/var
log: {level: warn}
admin: {enabled: false}
sources:
  github: {provider: github, secret: "\${env:BENCH_SECRET}"}
jenkins:
  ci: {url: "http://127.0.0.1:9/"}
rules:
  - name: branches
    when: {event: push}
    trigger: {jenkins: ci, job: "{{ repository.name }}/{{ branch }}"}
YAML

kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$daemon/status"; }
mib() { echo "$(( $1 / 1024 )) MiB"; }

post() {  # post <body file> <delivery id>
  local sig
  sig="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$1" | cut -d' ' -f1)"
  curl -s -o "$work/answer-$2" -w '%{http_code}' "http://127.0.0.1:$PORT/hooks/github" \
    -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
    -H "X-GitHub-Delivery: $2" -H "X-Hub-Signature-256: $sig" --data-binary @"$1"
  echo " $(head -c 160 "$work/answer-$2")"
}

for payload in small-elements github-push-max; do
  body="$work/$payload.json"
  rm -rf "$work/var"
  BENCH_SECRET=$SECRET "$HOOKRELAY" run --config "$work/hookrelay.yaml" 2>"$work/log" &
  daemon=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
    sleep 0.1
  done
  echo "== $payload: $(stat -c %s "$body") bytes; idle daemon RSS $(mib "$(kib VmRSS)")"
  echo "one:  $(post "$body" "$payload-1")"
  echo "      peak $(mib "$(kib VmHWM)")"
  for i in 2 3 4 5; do post "$body" "$payload-$i" >"$work/burst-$i" & done
  wait $(jobs -p | grep -v "^$daemon\$")
  for i in 2 3 4 5; do echo "four: $(cat "$work/burst-$i")"; done
  echo "      peak $(mib "$(kib VmHWM)")"
  sleep "$SETTLE"
  echo "      resident ${SETTLE}s after the burst $(mib "$(kib VmRSS)")"
  kill "$daemon"; wait "$daemon" 2>/dev/null || true; daemon=
done
