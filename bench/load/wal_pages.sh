#!/usr/bin/env bash
# Where the SQLite store's WAL pages go: under the load of bench/load/profile.sh, copies the WAL
# SNAPSHOTS times (default 40), 0.1 s apart, from 4 s into the load, then the database once, and
# prints the pages each commit wrote by table and index (bench/load/wal_pages.py, SQLite's dbstat):
# for the commits that insert deliveries, and for the others (queue operations committed alone).
# Loopback only, bounded in time; removes what it copied.
#
#   bench/load/wal_pages.sh                          # this tree's release build
#   HOOKRELAY=/path/to/hookrelay bench/load/wal_pages.sh
#   IDS=random bench/load/wal_pages.sh               # any of profile.sh's settings
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
SNAPSHOTS=${SNAPSHOTS:-40}

copies=$(mktemp -d /tmp/hookrelay-wal-pages.XXXXXX)
trap 'rm -rf "$copies"' EXIT
before=$(ls -d /tmp/hookrelay-profile.* 2>/dev/null || true)
DURATION=${DURATION:-12s} "$root/bench/load/profile.sh" >"$copies/profile.txt" 2>&1 &
profile=$!

# profile.sh's state directory: the one that was not there before, once its WAL exists.
state=""
for _ in $(seq 1 600); do
  for dir in /tmp/hookrelay-profile.*; do
    if [[ -f "$dir/state/hookrelay.db-wal" ]] && ! grep -qxF "$dir" <<<"$before"; then
      state="$dir/state"
    fi
  done
  [[ -n "$state" ]] && break
  sleep 0.1
done
if [[ -z "$state" ]]; then
  wait "$profile" || true
  echo "wal_pages: the load's store never appeared; profile.sh said:" >&2
  cat "$copies/profile.txt" >&2
  exit 1
fi
sleep 4
for i in $(seq 1 "$SNAPSHOTS"); do
  cp "$state/hookrelay.db-wal" "$copies/$i.wal"
  sleep 0.1
done
cp "$state/hookrelay.db-wal" "$copies/last.wal"
cp "$state/hookrelay.db" "$copies/db"
wait "$profile"
grep -E 'Requests/sec|^ +99%' "$copies/profile.txt"
python3 "$root/bench/load/wal_pages.py" "$copies/db" "$copies/last.wal" "$copies"/[0-9]*.wal
