#!/usr/bin/env bash
# The store on its own (bench/store_bench.cpp) against SQLite and against PostgreSQL, both
# durable (SQLite synchronous=FULL; a throwaway local PostgreSQL 15 server with fsync on, its
# data under /tmp like SQLite's), in one run. Release build.
#
#   bench/store/run.sh [google-benchmark flags, e.g. --benchmark_min_time=2]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cmake -S "$root" -B "$root/build/release" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DHOOKRELAY_BUILD_TESTS=OFF >/dev/null
cmake --build "$root/build/release" --target store_bench >/dev/null
bench="$root/build/release/bench/store_bench"

work=$(mktemp -d /tmp/hookrelay-store-bench.XXXXXX)
cleanup() {
  "$root/tests/support/pg_server.sh" stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== sqlite (state_dir $work/sqlite)"
HOOKRELAY_BENCH_STORE="sqlite:$work/sqlite" "$bench" "$@"

HOOKRELAY_PG_DURABLE=1 "$root/tests/support/pg_server.sh" start "$work/pg" >/dev/null
conninfo=$(cat "$work/pg/conninfo")
psql "$conninfo" -qc "CREATE DATABASE bench" >/dev/null
echo "== postgres (local server, unix socket, fsync on)"
HOOKRELAY_BENCH_STORE="postgres:$conninfo dbname=bench" "$bench" "$@"
