#!/usr/bin/env bash
# The README's "Getting started" holds verbatim: its first block is exactly `make run` and
# `make test`; with the daemon started the way `make run` starts it, every later ```sh block runs,
# in order, in one shell (as in the second terminal the README asks for), and shows what the
# README says it shows. Ports 8080 and 9090 become free ones so the test can run anywhere; nothing
# else in the blocks is changed.
#   readme_test.sh <source dir> <hookrelay binary>
set -euo pipefail
src=$1
binary=$2
readonly k_start_deadline=20 # seconds

for tool in curl openssl; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed: scripts/install-deps.sh"; exit 1; }
done

work=$(mktemp -d)
daemon_pid=""
cleanup() {
  if [[ -n "$daemon_pid" ]]; then kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The ```sh blocks of README.md, one file each: block.1, block.2, ...
awk -v dir="$work" '
  /^```sh$/ { n++; out = dir "/block." n; inside = 1; next }
  /^```$/ && inside { inside = 0; close(out); next }
  inside { print > out }
' "$src/README.md"
blocks=$(ls "$work"/block.* | wc -l)
((blocks >= 4)) || { echo "README.md has only $blocks sh blocks"; exit 1; }

commands=$(sed -e 's/[[:space:]]*#.*$//' "$work/block.1" | grep -v '^$')
if [[ "$commands" != $'make run\nmake test' ]]; then
  echo "the README's first block is not exactly 'make run' and 'make test':"
  cat "$work/block.1"
  exit 1
fi

# A port nothing listens on, below the kernel's ephemeral range: a port in that range may be
# the local end of another test's connection at any moment (or a port-0 listener's), and the
# daemon then cannot listen on it ("Address already in use").
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
port_base=10000 port_span=$((ephemeral_low - 10000))
if ((port_span < 1000)); then port_base=20000 port_span=20000; fi
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((port_base + RANDOM % port_span))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  echo "no free port" >&2
  exit 1
}
http_port=$(free_port)
admin_port=$(free_port)
[[ "$http_port" != "$admin_port" ]] || admin_port=$(free_port)

# A checkout as the README's reader has it: the config (with the ports moved), the test data, and
# the binary where `make run` builds it.
tree="$work/tree"
mkdir -p "$tree/build/dev"
cp -r "$src/config" "$tree/config"
ln -s "$src/tests" "$tree/tests"
ln -s "$(realpath "$binary")" "$tree/build/dev/hookrelay"
sed -i -e "s/^listen: 127.0.0.1:8080\$/listen: 127.0.0.1:$http_port/" \
  -e "s/^  listen: 127.0.0.1:9090\$/  listen: 127.0.0.1:$admin_port/" "$tree/config/hookrelay.yaml"
grep -q "127.0.0.1:$http_port" "$tree/config/hookrelay.yaml" &&
  grep -q "127.0.0.1:$admin_port" "$tree/config/hookrelay.yaml" ||
  { echo "config/hookrelay.yaml no longer listens on 8080 and 9090 as the README says"; exit 1; }

# The daemon, exactly as the Makefile's `run` target starts it (from the checkout, with the
# environment cleared of anything this test's caller had set).
(
  cd "$tree" && mkdir -p var
  exec env -i PATH="$PATH" HOME="$work" sh -c \
    "set -a && . ./config/dev.env && set +a && exec build/dev/hookrelay run --config config/hookrelay.yaml --ready-file $work/ready"
) >"$work/daemon.log" 2>&1 &
daemon_pid=$!
until=$((SECONDS + k_start_deadline))
until grep -q '^admin=' "$work/ready" 2>/dev/null; do
  if ((SECONDS >= until)) || ! kill -0 "$daemon_pid" 2>/dev/null; then
    echo "the daemon did not start:"
    cat "$work/daemon.log"
    exit 1
  fi
  sleep 0.1
done

# Blocks 2.. in one shell, in order, from the checkout, ports moved.
script="$work/second-terminal.sh"
echo 'set -euo pipefail' >"$script"
for i in $(seq 2 "$blocks"); do
  sed -e "s/localhost:8080/localhost:$http_port/g" -e "s/localhost:9090/localhost:$admin_port/g" \
    "$work/block.$i" >>"$script"
done
if ! out=$(cd "$tree" && env -i PATH="$PATH" HOME="$work" bash "$script" 2>&1); then
  echo "a README block failed:"
  echo "$out"
  echo "--- daemon log"
  cat "$work/daemon.log"
  exit 1
fi

expect() {
  if ! grep -qF -- "$1" <<<"$out"; then
    echo "the README's blocks did not print: $1"
    echo "$out"
    exit 1
  fi
}
expect '"status":"accepted","matched_rules":["branch-builds"]'   # the curl push
expect 'pull-requests  matched'                                   # explain's table
expect 'JENKINS'                                                  # status
expect 'rule branch-builds'                                       # deliveries show "$id"
expect 'hookrelay_webhooks_received_total{code="202"'        # /metrics
echo "README blocks 1-$blocks hold verbatim"
