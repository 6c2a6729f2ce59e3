# shellcheck shell=bash
# Sourced by the benchmark scripts (bench/load/*.sh, bench/scale/run.sh): what they share about
# the set-up they measure. Loopback only. Expects $root, the checkout.

# build_release TARGET...: configures build/release (Release, no tests; the daemon profile-guided
# as `make release` builds it, PGO=0 plain) and builds the targets, quietly; their binaries are
# then $root/build/release/hookrelay and .../bench/<target>.
# shellcheck disable=SC2154  # root: set by the script that sources this
build_release() {
  if [[ "${PGO:-1}" == 0 ]]; then
    cmake -S "$root" -B "$root/build/release" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DHOOKRELAY_BUILD_TESTS=OFF -DHOOKRELAY_BUILD_BENCH=ON -DHOOKRELAY_PGO= >/dev/null
  else
    # The arguments of `make release`, whose tree this is: its profile is reused, not made again.
    "$root/scripts/pgo-build.sh" "$root/build/release" -DHOOKRELAY_BUILD_TESTS=OFF \
      -DHOOKRELAY_BUILD_BENCH=ON >/dev/null
  fi
  cmake --build "$root/build/release" --target "$@" >/dev/null
}

# bench_relay: sets $relay, the hookrelay to measure: $HOOKRELAY, or else the release build
# (installing the benchmark packages and building it first).
bench_relay() {
  relay=${HOOKRELAY:-}
  if [[ -z "$relay" ]]; then
    "$root/scripts/install-deps.sh" --bench >/dev/null
    build_release hookrelay
    relay="$root/build/release/hookrelay"
  fi
}

# bench_cleanup: the EXIT trap of a benchmark that keeps what it started in $pids, its
# PostgreSQL server's state in $pg_state ("" for none) and its files in $work: stops them and
# removes $work (KEEP=1 keeps it and says where). A second Ctrl-C does not cut it short: the
# server lives outside $work and would be left running.
# shellcheck disable=SC2154  # pids, pg_state, work: set by the script that sources this
bench_cleanup() {
  trap '' INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n "$pg_state" ]]; then "$root/tests/support/pg_server.sh" stop "$pg_state" || true; fi
  if [[ -n "${KEEP:-}" ]]; then echo "files kept in $work"; else rm -rf "$work"; fi
}

# bench_start NAME: the state bench_cleanup works on (a fresh $work in /tmp/hookrelay-NAME.*,
# no $pids, no $pg_state) with it as the EXIT trap, and the load's payload: $body, the GitHub
# push fixture, and $signature, its X-Hub-Signature-256 under $SECRET.
# shellcheck disable=SC2034  # work, pids, pg_state, body, signature: read by the caller
bench_start() {
  work=$(mktemp -d "/tmp/hookrelay-$1.XXXXXX")
  pids=()
  pg_state=""
  trap bench_cleanup EXIT
  body="$root/tests/data/github/push-branch-update.json"
  signature="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$body" | cut -d' ' -f1)"
}

# bench_pg_database STATE NAME: starts a throwaway PostgreSQL server in STATE
# (tests/support/pg_server.sh, fsync on, its output in STATE.log) and creates the empty database
# NAME in it; prints a libpq connection string to that database.
# Returns non-zero when either fails (set -e does not reach into a command substitution).
bench_pg_database() {
  HOOKRELAY_PG_DURABLE=1 "$root/tests/support/pg_server.sh" start "$1" >"$1.log" || return 1
  psql "$(cat "$1/conninfo")" -Xqc "CREATE DATABASE $2" || return 1
  echo "$(cat "$1/conninfo") dbname=$2"
}

# wait_port PORT: returns once something accepts connections on 127.0.0.1:PORT (10 s at most).
wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  return 1
}

# jenkins_nginx_conf DIR PORT [SERVER_BLOCKS]: writes DIR/nginx.conf, an nginx that stands in for a
# Jenkins accepting every build at once: 201 with a queue item's Location on 127.0.0.1:PORT, each
# request logged to DIR/access.log with its arrival time ($msec) first. SERVER_BLOCKS, if given,
# are more server blocks for its http block. With JENKINS_FOLLOW=1 every build request gets a queue
# item of its own (the connection's serial number, 0000, the request's number on the connection:
# unique while nginx has made fewer than 10,000 connections), whose read shows it started as the
# build of that number, and every build's read shows it finished (SUCCESS): a Jenkins hookrelay
# can follow to the result with two reads per trigger.
jenkins_nginx_conf() {
  local dir=$1 port=$2 more=${3:-} follow="" queue_item=1
  if [[ -n "${JENKINS_FOLLOW:-}" ]]; then
    # shellcheck disable=SC2016  # nginx's variables, not the shell's
    queue_item='${connection}0000${connection_requests}'
    follow="
    location ~ \"^/queue/item/([0-9]+)/api/json\$\" {
      default_type application/json;
      return 200 '{\"id\":\$1,\"why\":null,\"blocked\":false,\"stuck\":false,\"cancelled\":false,\"executable\":{\"number\":\$1,\"url\":\"http://127.0.0.1:$port/job/b/\$1/\"}}';
    }
    location ~ \"^/job/.*/([0-9]+)/api/json\$\" {
      default_type application/json;
      return 200 '{\"number\":\$1,\"url\":\"http://127.0.0.1:$port/job/b/\$1/\",\"building\":false,\"result\":\"SUCCESS\",\"duration\":1,\"timestamp\":1700000000000,\"queueId\":\$1}';
    }"
  fi
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  log_format timed '\$msec "\$request" \$status';
  access_log $dir/access.log timed;
  client_body_temp_path $dir;
  proxy_temp_path $dir; fastcgi_temp_path $dir;
  uwsgi_temp_path $dir; scgi_temp_path $dir;
  server {
    listen 127.0.0.1:$port;
$follow
    location / {
      add_header Location "http://127.0.0.1:$port/queue/item/$queue_item/" always;
      return 201;
    }
  }
$more
}
NGINX
}

# wait_build_requests LOG N SECONDS [TEXT]: waits until LOG (a jenkins_nginx_conf access log) holds
# N build requests (N lines holding TEXT, default "POST /job/"), or SECONDS pass, and prints how
# many it holds. One perl process (perl-base is
# in every Debian) reads what the log gained every 0.1 s and starts nothing else. Grepping the
# whole log ten times a second, with `date` and `sleep` started each time, cost the drain ~10 % of
# its rate on a 2-core guest, where starting a process costs milliseconds of CPU.
wait_build_requests() {
  perl -e '
    my ($log, $want, $seconds, $text) = @ARGV;
    my ($deadline, $n, $part, $fh) = (time + $seconds, 0, "");
    while (1) {
      undef $fh unless $fh || open($fh, "<", $log);  # nginx may not have made it yet
      if ($fh) {
        seek($fh, 0, 1);  # clears end-of-file: reads on from where the last look stopped
        while (defined(my $line = <$fh>)) {
          if ($line !~ /\n\z/) { $part .= $line; last }  # a line still being written
          $n++ if index($part . $line, $text) >= 0;
          $part = "";
        }
      }
      last if $n >= $want || time >= $deadline;
      select(undef, undef, undef, 0.1);
    }
    print "$n\n";' "$1" "$2" "$3" "${4:-POST /job/}"
}

# drain_after LOG T: the build requests in LOG (a jenkins_nginx_conf access log) that arrived after
# time T (seconds since the epoch), as "RATE COUNT": their number over the time from T to the last
# of them. Prints nothing for fewer than 100.
drain_after() {
  awk -v t="$2" '$1 > t && $0 ~ /POST \/job\// {n++; last = $1}
    END {if (n >= 100 && last > t) printf "%.0f %d\n", n / (last - t), n}' "$1"
}

# bench_rules_yaml: the `rules:` of every benchmark config: one rule matching the push fixture
# (tests/data/github/push-branch-update.json), one trigger per delivery, to Jenkins `ci`. With
# RULES=N (N > 1), N - 1 more rules first that match nothing the benchmarks send, as a large
# config has them: for other repositories, half of them branch builds, a quarter path-filtered,
# a quarter for pull requests. Each delivery then records N - 1 reasons.
bench_rules_yaml() {
  echo "rules:"
  local i
  for ((i = 0; i < ${RULES:-1} - 1; i++)); do
    case $((i % 4)) in
      0 | 1) echo "  - {name: rule-$i, when: {event: push, repository: org$((i % 40))/svc$i, branch: [main, \"release/*\"]}, trigger: {jenkins: ci, job: \"svc$i/{{ branch }}\"}}" ;;
      2) echo "  - {name: rule-$i, when: {repository: org$((i % 40))/svc$i, event: push, branch: [develop, main], paths: [\"src/**\"]}, trigger: {jenkins: ci, job: \"svc$i/{{ branch }}\"}}" ;;
      3) echo "  - {name: rule-$i, when: {event: pull_request, action: [opened, synchronize], repository: org$((i % 40))/svc$i}, trigger: {jenkins: ci, job: \"pr/svc$i\"}}" ;;
    esac
  done
  cat <<'YAML'
  - name: branches
    when: {event: push, branch: main}
    trigger:
      jenkins: ci
      job: "{{ repository.namespace }}/{{ repository.name }}/{{ branch }}"
      parameters: {GIT_COMMIT: "{{ commit }}"}
YAML
}

# The fields of /proc/PID/stat after "pid (comm) ": utime, stime, cutime, cstime are $12..$15.
stat_fields() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null || true; }

# CPU ticks of the PostgreSQL server so far: the postmaster (its own, and its reaped children's),
# and every process it runs now (backends, walwriter, checkpointer, autovacuum …).
pg_cpu_ticks() {
  local pm=$1 ticks child
  ticks=$(stat_fields "$pm" | awk '{s = $12 + $13 + $14 + $15} END {print s + 0}')
  for child in $(pgrep -P "$pm"); do
    ticks=$((ticks + $(stat_fields "$child" | awk '{s = $12 + $13} END {print s + 0}')))
  done
  echo "$ticks"
}
