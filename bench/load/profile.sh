#!/usr/bin/env bash
# Where one webhook's cost goes: hookrelay (release build, SQLite store) under the load of
# bench/load/run.sh, with the daemon's threads told apart. Loopback only, bounded in time; stops
# what it started and removes its files (KEEP=1 keeps them and prints where).
#
#   bench/load/profile.sh                 # DURATION=10s, wrk -t2 -c32
#   PERF=1 bench/load/profile.sh          # also `perf record` the daemon; prints the top DSOs
#   PERF=1 PERF_CALLGRAPH="--call-graph dwarf,16384" KEEP=1 bench/load/profile.sh   # call stacks
#                                         # through libraries built without frame pointers
#   HOOKRELAY=/path/to/hookrelay bench/load/profile.sh   # another build, e.g. an older commit's
#   STORE_YAML='store: {keep_body: false}' bench/load/profile.sh
#   STORE=postgres bench/load/profile.sh  # the PostgreSQL store, on a throwaway server this script
#                                         # starts (tests/support/pg_server.sh, fsync on); adds the
#                                         # server's CPU per accepted delivery
#   PG_STATEMENTS=1 STORE=postgres bench/load/profile.sh   # also the server's time by statement
#                                         # (pg_stat_statements, from wrk's start to the last delivery)
#   HOOKRELAY_PG_OPTIONS="-c shared_buffers=1GB" STORE=postgres bench/load/profile.sh   # server
#                                         # options for the throwaway server
#   DRAIN=1 bench/load/profile.sh         # Jenkins (nginx) is down during the load and comes up
#                                         # after it: the rate at which the backlog drains
#   MAX_IN_FLIGHT=64 bench/load/profile.sh   # the Jenkins entry's max_in_flight (default 16)
#   SERVER_THREADS=1 bench/load/profile.sh   # server.threads (default 2)
#   PERF_FREQ=499 PERF=1 bench/load/profile.sh   # perf's sampling rate (default 999 Hz)
#   BUDGET=1 bench/load/profile.sh        # PERF=1 with DWARF call stacks at 499 Hz, and where the
#                                         # CPU per accepted delivery goes by thread and by work
#                                         # (verify, parse, inserts, commits, ...: budget.py)
#   IDS=random bench/load/profile.sh      # random (version 4 UUID) delivery ids, as GitLab, Gitea
#                                         # and Bitbucket send, instead of ids in sending order
#   RULES=1000 bench/load/profile.sh      # 999 more rules before the one that matches, none of
#                                         # them matching (bench/common.sh, bench_rules_yaml)
#
# Prints: wrk's accepted/s and latency; each daemon thread's CPU over the load (by thread name:
# hookrelay and hookrelay-io are the network threads, hookrelay-out the dispatcher's requests to
# Jenkins, hookrelay-store the SQLite writer; a copy of the binary under another name names its
# main thread after that file); the bytes the store thread wrote (the WAL and checkpoints) per
# accepted delivery; the drain rate after the load (build requests nginx received after wrk
# stopped, over the time to the last); with the SQLite store, the submit transactions during the
# load (from /metrics): how many, the deliveries and the time of each, and the share of the load's
# time the store thread spent in them.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ -n "${BUDGET:-}" ]]; then
  PERF=1
  PERF_FREQ=${PERF_FREQ:-499}
  PERF_CALLGRAPH=${PERF_CALLGRAPH:---call-graph dwarf,16384}
fi
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
RELAY_PORT=${RELAY_PORT:-18280}
JENKINS_PORT=${JENKINS_PORT:-18281}
ADMIN_PORT=${ADMIN_PORT:-18283}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-16}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-120}
SECRET=bench-secret

bench_relay

bench_start profile
clk_tck=$(getconf CLK_TCK)

jenkins_nginx_conf "$work/nginx" "$JENKINS_PORT"
start_nginx() {
  nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
  pids+=($!)
}
if [[ -z "${DRAIN:-}" ]]; then start_nginx; fi

postmaster=""
if [[ "${STORE:-sqlite}" == postgres ]]; then
  pg_state="$work/pg"
  pg_options=""
  if [[ -n "${PG_STATEMENTS:-}" ]]; then pg_options="-c shared_preload_libraries=pg_stat_statements"; fi
  HOOKRELAY_PG_DURABLE=1 HOOKRELAY_PG_OPTIONS="${HOOKRELAY_PG_OPTIONS:-} $pg_options" \
    "$root/tests/support/pg_server.sh" start "$pg_state" >"$work/pg-start.log"
  postmaster=$(head -1 "$(cat "$pg_state/server")/data/postmaster.pid")
  psql "$(cat "$pg_state/conninfo")" -Xqc 'CREATE DATABASE bench'
  BENCH_DATABASE_URL="$(cat "$pg_state/conninfo") dbname=bench"
  if [[ -n "${PG_STATEMENTS:-}" ]]; then
    psql "$BENCH_DATABASE_URL" -Xqc 'CREATE EXTENSION pg_stat_statements'
  fi
  export BENCH_DATABASE_URL
  # shellcheck disable=SC2016  # ${env:…} is hookrelay's, not the shell's
  STORE_YAML='store: {backend: postgres, postgres: {url: "${env:BENCH_DATABASE_URL}"}}'
fi

cat >"$work/relay.yaml" <<YAML
listen: 127.0.0.1:$RELAY_PORT
admin: {listen: "127.0.0.1:$ADMIN_PORT", token: "\${env:BENCH_SECRET}"}
state_dir: $work/state
log: {level: warn}
server: {threads: ${SERVER_THREADS:-2}}
${STORE_YAML:-}
sources:
  github: {provider: github, secret: "\${env:BENCH_SECRET}"}
jenkins:
  ci: {url: "http://127.0.0.1:$JENKINS_PORT/", user: bench, api_token: "\${env:BENCH_SECRET}", max_in_flight: $MAX_IN_FLIGHT, follow: none, probe_initial: 100ms}
dispatch: {max_in_flight: $((MAX_IN_FLIGHT * 2))}
$(bench_rules_yaml)
YAML
BENCH_SECRET=$SECRET "$relay" run --config "$work/relay.yaml" 2>"$work/relay.log" &
daemon=$!
pids+=("$daemon")

wait_port "$RELAY_PORT"

# One line per thread of the daemon: tid, name, CPU ticks (user + system), bytes written.
threads() {
  local t
  for t in /proc/"$daemon"/task/*; do
    printf '%s %s %s %s\n' "$(basename "$t")" "$(cat "$t/comm")" \
      "$(sed 's/^.*) //' "$t/stat" | awk '{print $12 + $13}')" \
      "$(awk '/^wchar/ {print $2}' "$t/io")"
  done | sort
}
# The store's submit transactions so far (/metrics): how many, the deliveries in them, their
# seconds.
store_commits() {
  curl -fsS -H "Authorization: Bearer $SECRET" "http://127.0.0.1:$ADMIN_PORT/metrics" |
    awk '$1 == "hookrelay_store_commit_batch_size_count" {n = $2}
      $1 == "hookrelay_store_commit_batch_size_sum" {b = $2}
      $1 == "hookrelay_store_commit_duration_seconds_sum" {s = $2}
      END {print n + 0, b + 0, s + 0}'
}
# The PostgreSQL server's CPU ticks so far (0 with the SQLite store).
server_ticks() { if [[ -n "$postmaster" ]]; then pg_cpu_ticks "$postmaster"; else echo 0; fi; }
threads >"$work/threads.before"
commits_before=$(store_commits)
pg_start=$(server_ticks)
if [[ -n "${PERF:-}" ]]; then
  read -ra callgraph <<<"${PERF_CALLGRAPH:--g}"
  perf record -F "${PERF_FREQ:-999}" "${callgraph[@]}" -p "$daemon" -o "$work/perf.data" >/dev/null 2>&1 &
  perf_pid=$!
fi
if [[ -n "${PG_STATEMENTS:-}" && -n "$postmaster" ]]; then
  psql "$BENCH_DATABASE_URL" -XAtqc 'SELECT pg_stat_statements_reset()' >/dev/null
fi
start=$(date +%s.%N)
BODY_FILE="$body" SIGNATURE="$signature" TARGET_PATH=/hooks/github RUN_ID="profile-" \
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$root/bench/load/post.lua" \
  "http://127.0.0.1:$RELAY_PORT" >"$work/wrk.txt"
load_end=$(date +%s.%N)
threads >"$work/threads.after"
commits_after=$(store_commits)
pg_loaded=$(server_ticks)
if [[ -n "${PERF:-}" ]]; then
  kill -INT "$perf_pid"
  wait "$perf_pid" 2>/dev/null || true
fi

if [[ -n "${DRAIN:-}" ]]; then start_nginx; fi
wait_port "$JENKINS_PORT"
total=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
bad=$(awk '/Non-2xx/ {print $5}' "$work/wrk.txt")
accepted=$((total - ${bad:-0}))
delivered=$(wait_build_requests "$work/nginx/access.log" "$accepted" "$DRAIN_TIMEOUT")
threads >"$work/threads.drained"
pg_drained=$(server_ticks)

seconds=$(awk -v s="$start" -v e="$load_end" 'BEGIN {print e - s}')
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, 8.8 KB GitHub push, unique delivery ids"
grep -E 'Requests/sec|^ +50%|^ +99%' "$work/wrk.txt"
echo "accepted $accepted, delivered $delivered"
echo
echo "daemon threads over the load ($seconds s): CPU as % of one core; bytes written per accepted delivery"
join "$work/threads.before" "$work/threads.after" | awk -v hz="$clk_tck" -v s="$seconds" -v n="$accepted" '
  {cpu = ($6 - $3) / hz; bytes = $7 - $4; sum += cpu
   if (cpu > 0) printf "  %-18s %5.1f %%  %8.0f B\n", $2, 100 * cpu / s, bytes / n}
  END {printf "  %-18s %5.1f %%  (%.0f µs of CPU per accepted delivery during the load)\n", "all", 100 * sum / s, 1e6 * sum / n}' |
  tee "$work/threads.txt"
if [[ -z "$postmaster" ]]; then
  # The store thread commits one transaction of submits at a time: a webhook waits for the one
  # running, then for its own.
  echo "$commits_before $commits_after" | awk -v s="$seconds" '
    {n = $4 - $1; b = $5 - $2; t = $6 - $3
     if (n > 0) printf "store: %d submit transactions (%.0f/s), %.1f deliveries and %.2f ms each; in them %.0f %% of the load\n", n, n / s, b / n, 1e3 * t / n, 100 * t / s}'
fi
# Until the last trigger reached Jenkins: what one webhook costs end to end.
join "$work/threads.before" "$work/threads.drained" | awk -v hz="$clk_tck" -v n="$accepted" '
  {sum += ($6 - $3) / hz}
  END {printf "end to end, until the last delivery: %.0f µs of CPU per accepted delivery\n", 1e6 * sum / n}'
if [[ -n "$postmaster" ]]; then
  awk -v a="$((pg_loaded - pg_start))" -v b="$((pg_drained - pg_start))" -v hz="$clk_tck" \
    -v n="$accepted" 'BEGIN {printf "PostgreSQL server CPU per accepted delivery: %.0f µs during the load, %.0f µs until the last delivery\n", 1e6 * a / hz / n, 1e6 * b / hz / n}'
fi
if [[ -n "${DRAIN:-}" ]]; then
  # Jenkins came up after the load: from its first build request to its last.
  awk '$0 ~ /POST \/job\// {n++; if (!first) first = $1; last = $1}
    END {if (n >= 100 && last > first) printf "drain of the backlog: %d triggers in %.2f s: %.0f/s\n", n, last - first, n / (last - first)}' \
    "$work/nginx/access.log"
else
  drain_after "$work/nginx/access.log" "$load_end" |
    awk '{printf "drain after the load: %d triggers at %d/s\n", $2, $1}'
fi
if [[ -n "${PG_STATEMENTS:-}" && -n "$postmaster" ]]; then
  echo
  echo "PostgreSQL: the statements by execution time (a statement's time includes waiting for the CPU)"
  echo "   time    calls  µs each  blocks     WAL B  statement"
  # shellcheck disable=SC2016  # $1 and the others are awk's, not the shell's
  psql "$BENCH_DATABASE_URL" -XAt -F $'\t' -c "
    SELECT round(100 * total_exec_time / (SELECT sum(total_exec_time) FROM pg_stat_statements)),
           calls,
           round((1000 * total_exec_time / calls)::numeric),
           round((shared_blks_hit + shared_blks_read)::numeric / calls),
           round(wal_bytes / calls), left(regexp_replace(query, '\s+', ' ', 'g'), 70)
    FROM pg_stat_statements WHERE calls >= 100 ORDER BY total_exec_time DESC LIMIT 8" |
    awk -F '\t' '{printf "  %4s%% %8s %8s %7s %9s  %s\n", $1, $2, $3, $4, $5, $6}'
fi
if [[ -n "${PERF:-}" ]]; then
  echo
  echo "perf: share of the daemon's samples by DSO"
  perf report -i "$work/perf.data" --no-children --sort dso -g none 2>/dev/null |
    grep -E '^ +[0-9.]+%' | head -12
fi
if [[ -n "${BUDGET:-}" ]]; then
  echo
  echo "where the CPU per accepted delivery went during the load (samples with this work in their stack)"
  per_delivery=$(sed -n 's/.*(\([0-9]*\) µs of CPU per accepted delivery during the load).*/\1/p' "$work/threads.txt")
  if [[ -z "$per_delivery" ]]; then
    echo "profile.sh: no CPU per accepted delivery to split (did the load accept anything?)" >&2
    exit 1
  fi
  perf script -i "$work/perf.data" -F comm,tid,ip,sym 2>/dev/null |
    python3 "$root/bench/load/budget.py" "$per_delivery" "$(basename "$relay")"
fi
