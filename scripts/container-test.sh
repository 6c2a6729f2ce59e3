#!/usr/bin/env bash
# Builds hookrelay's container image with podman and checks it against the running container:
#   - it runs as a non-root user (uid 10001), and the HEALTHCHECK survived the build and passes;
#   - a signed GitHub push gets 202 and its build reaches a test Jenkins on the host;
#   - `hookrelay status` inside the container finds the daemon with no options;
#   - the state volume survives a restart (the same delivery is then a duplicate);
#   - `stop` exits 0 within the grace period;
#   - compose.yaml renders and its service definition runs (podman-compose);
#   - compose.postgres.yaml renders, and its two hookrelay services run as a cluster on one
#     PostgreSQL database (a delivery accepted by one is a duplicate at the other).
#
#   scripts/container-test.sh [path/to/hookrelay_fake_jenkins]
#
# Idempotent: it reuses the base images (debian:bookworm, debian:bookworm-slim, built with
# debootstrap from this machine's apt mirror when missing) and podman's layer and ccache caches,
# and removes every container and volume it started, also on failure. Everything listens on
# 127.0.0.1 only (the container shares the host's network namespace). Every wait has a deadline.
#
# Why these podman flags (this machine, and any CI sandbox like it):
#   --runtime runc      crun cannot start containers under cgroups v1/hybrid here;
#   --ulimit ...        podman's defaults exceed the sandbox's hard limits (no CAP_SYS_RESOURCE);
#   --format docker     OCI image config has no HEALTHCHECK: it would be silently dropped;
#   --network host      no registry and no port mapping needed: the test Jenkins is on the host's
#                       loopback, and so are the container's listeners;
#   healthcheck run     no systemd here to schedule health checks: the script runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly image=localhost/hookrelay:test
readonly name=hookrelay-ct
readonly volume=hookrelay-ct-state
readonly base=localhost/debian
# Deadlines, in seconds.
readonly k_build_deadline=1800
readonly k_start_deadline=30
readonly k_delivery_deadline=20
readonly k_stop_grace=15 # docker's --stop-timeout in docs/deployment.md; the daemon's grace is 8 s

log() { printf 'container-test: %s\n' "$*" >&2; }
fail() {
  log "FAILED: $*"
  if podman container exists "$name" 2>/dev/null; then
    log "container log:"
    podman logs --tail 40 "$name" >&2 || true
  fi
  exit 1
}

# Polls `cmd` until it succeeds or `seconds` pass. Returns 1 on timeout.
wait_until() {
  local seconds=$1
  shift
  local until=$((SECONDS + seconds))
  while ! "$@" >/dev/null 2>&1; do
    ((SECONDS < until)) || return 1
    sleep 0.2
  done
}

for tool in podman runc debootstrap curl openssl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed: run scripts/install-deps.sh --ci"
done

started=$SECONDS
work=$(mktemp -d)
fake_pid=""
cleanup() {
  podman rm -f -v -t 0 "$name" >/dev/null 2>&1 || true
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  podman rm -f -v -t 0 hookrelay-ct_hookrelay_1 >/dev/null 2>&1 || true
  podman volume rm -f hookrelay-ct_hookrelay-state >/dev/null 2>&1 || true
  podman rm -f -v -t 0 hookrelay-ctpg_hookrelay-1_1 hookrelay-ctpg_hookrelay-2_1 >/dev/null 2>&1 || true
  if [[ -f "$work/pg/server" ]]; then tests/support/pg_server.sh stop "$work/pg" >/dev/null 2>&1 || true; fi
  if [[ -n "$fake_pid" ]]; then kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# podman's settings for every podman command this script runs, podman-compose's included.
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
[[ "$nofile" == unlimited || "$nofile" -gt 65536 ]] && nofile=65536
[[ "$nproc" == unlimited || "$nproc" -gt 32768 ]] && nproc=32768
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$work/containers.conf"
podman_run_flags=(--runtime runc --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")

# --- base images ---------------------------------------------------------------------------------
# The Debian mirror this machine's apt uses: the first URI of a deb source for suite bookworm
# (deb822 .sources or one-line .list files).
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; uris = ""; suites = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/) types = $i
          if ($i ~ /^URIs:/) uris = $i
          if ($i ~ /^Suites:/) suites = $i
        }
        if (types ~ /[ \t]deb([ \t]|$)/ && suites ~ /[ \t]bookworm([ \t]|$)/) {
          sub(/^URIs:[ \t]*/, "", uris); split(uris, u, /[ \t]+/); print u[1]; exit
        }
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                       if ($(i + 1) == "bookworm") { print $i; exit } }' "$f"
  done
}

build_base_images() {
  local mirror
  mirror=$(apt_mirror | head -1)
  [[ -n "$mirror" ]] || fail "no Debian bookworm mirror in /etc/apt/sources.list*"
  log "building $base:bookworm and $base:bookworm-slim with debootstrap from $mirror"
  local root="$work/rootfs"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
  # The image's apt reads the same Debian sources as this machine (mirror and suites).
  rm -f "$root/etc/apt/sources.list"
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] && grep -q bookworm "$f" && cp "$f" "$root/etc/apt/${f#/etc/apt/}"
  done
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | podman import - "$base:bookworm" >"$work/import.log" 2>&1 ||
    { cat "$work/import.log" >&2; fail "podman import"; }
  # slim, as Debian's own: no documentation, manuals or locales, now or from later installs.
  mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/locale/*' >"$root/etc/dpkg/dpkg.cfg.d/slim"
  find "$root/usr/share/doc" -type f ! -name copyright -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
  tar -C "$root" -c . | podman import - "$base:bookworm-slim" >"$work/import.log" 2>&1 ||
    { cat "$work/import.log" >&2; fail "podman import"; }
  rm -rf "$root"
}

t0=$SECONDS
if podman image exists "$base:bookworm" && podman image exists "$base:bookworm-slim"; then
  log "reusing $base:bookworm and $base:bookworm-slim"
else
  build_base_images
fi
base_seconds=$((SECONDS - t0))

# --- the image -----------------------------------------------------------------------------------
t0=$SECONDS
log "building $image"
timeout "$k_build_deadline" podman build --format docker --network host --pull=never \
  -t "$image" . >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; fail "podman build"; }
build_seconds=$((SECONDS - t0))
podman image inspect "$image" | tr -d ' \n' |
  grep -q '"Healthcheck":{"Test":\["CMD","/usr/local/bin/hookrelay","health"\]' ||
  fail "the image has no HEALTHCHECK (built without --format docker?)"
size=$(podman image inspect --format '{{.Size}}' "$image")
log "image built in ${build_seconds}s, $((size / 1000000)) MB"

# --- the test Jenkins on the host ----------------------------------------------------------------
fake=${1:-build/dev/tests/hookrelay_fake_jenkins}
[[ -x "$fake" ]] || fail "no test Jenkins at $fake (cmake --build build/dev --target hookrelay_fake_jenkins)"
"$fake" --port-file "$work/jenkins.port" --requests-file "$work/jenkins.log" \
  --user hookrelay --api-token ct-jenkins-token \
  --job "woodpecker-ci/woodpecker/main:GIT_COMMIT,BRANCH" >"$work/jenkins.out" 2>&1 &
fake_pid=$!
wait_until 10 test -s "$work/jenkins.port" || fail "the test Jenkins did not start"
jenkins_port=$(cat "$work/jenkins.port")

# Two free ports on the host's loopback for the container's listeners.
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  fail "no free port"
}
http_port=$(free_port)
admin_port=$(free_port)
[[ "$http_port" != "$admin_port" ]] || admin_port=$(free_port)

# The shipped container config, with the listeners and Jenkins of this test. The greps fail the
# test when the example changes shape and a substitution no longer applies.
mkdir -p "$work/etc"
sed -e "s#^listen: 0\.0\.0\.0:8080 #listen: 127.0.0.1:$http_port #" \
  -e "s#^  listen: 127\.0\.0\.1:9090\$#  listen: 127.0.0.1:$admin_port#" \
  -e "s#url: \"https://jenkins\.example\.internal/\"#url: \"http://127.0.0.1:$jenkins_port/\"#" \
  config/container/hookrelay.yaml >"$work/etc/hookrelay.yaml"
grep -q "^listen: 127.0.0.1:$http_port " "$work/etc/hookrelay.yaml" || fail "listen not substituted"
grep -q "^  listen: 127.0.0.1:$admin_port\$" "$work/etc/hookrelay.yaml" || fail "admin.listen not substituted"
grep -q "127.0.0.1:$jenkins_port/" "$work/etc/hookrelay.yaml" || fail "jenkins url not substituted"
chmod 0755 "$work/etc" && chmod 0644 "$work/etc/hookrelay.yaml"
secret=ct-github-secret
cat >"$work/hookrelay.env" <<EOF
GITHUB_WEBHOOK_SECRET=$secret
GITLAB_WEBHOOK_TOKEN=ct-gitlab-token
JENKINS_API_TOKEN=ct-jenkins-token
HOOKRELAY_ADMIN_TOKEN=ct-admin-token
EOF

# --- run it --------------------------------------------------------------------------------------
podman rm -f -v -t 0 "$name" >/dev/null 2>&1 || true
podman volume rm -f "$volume" >/dev/null 2>&1 || true
t0=$SECONDS
# No systemd here to run the health check on a timer: this script runs it (healthcheck run).
# podman's complaints about the missing systemd timers go to podman.log.
podman run -d --name "$name" "${podman_run_flags[@]}" --network host \
  -v "$volume:/var/lib/hookrelay" -v "$work/etc:/etc/hookrelay:ro" \
  --env-file "$work/hookrelay.env" "$image" >>"$work/podman.log" 2>&1 || fail "podman run: $(cat "$work/podman.log")"
healthy() { podman healthcheck run "$name"; }
wait_until "$k_start_deadline" healthy || fail "the health check did not pass within ${k_start_deadline}s"
log "healthy after $((SECONDS - t0))s"

uid=$(podman exec "$name" awk '/^Uid:/ { print $2 }' /proc/1/status)
[[ "$uid" == 10001 ]] || fail "hookrelay runs as uid $uid, not 10001"

post_push() { # delivery id -> prints "HTTP-status body"
  local body=tests/data/github/push-branch-update.json sig
  sig=$(openssl dgst -sha256 -hmac "$secret" -r <"$body" | cut -d' ' -f1)
  curl -s --max-time 10 -w '\n%{http_code}' "http://127.0.0.1:$http_port/hooks/github" \
    -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: $1" \
    -H "X-Hub-Signature-256: sha256=$sig" --data-binary "@$body"
}
answer=$(post_push ct-delivery-1)
[[ "$(tail -1 <<<"$answer")" == 202 ]] || fail "push answered: $answer"
build_reached() { grep -q '^201 POST /job/woodpecker-ci/job/woodpecker/job/main/buildWithParameters' "$work/jenkins.log"; }
wait_until "$k_delivery_deadline" build_reached || fail "the build never reached the test Jenkins: $(cat "$work/jenkins.log")"
log "push accepted (202) and delivered to the test Jenkins"

status=$(podman exec "$name" hookrelay status) || fail "hookrelay status inside the container: $status"
grep -q '^ci  *up ' <<<"$status" || fail "status: $status"

# --- the state survives a restart; stop is graceful ----------------------------------------------
stop_checked() {
  local t=$SECONDS code
  podman stop -t "$k_stop_grace" "$name" >>"$work/podman.log" 2>&1
  local took=$((SECONDS - t))
  code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
  [[ "$code" == 0 ]] || fail "stop: exit code $code"
  ((took < k_stop_grace)) || fail "stop took ${took}s (grace ${k_stop_grace}s): it was killed"
  log "stopped in ${took}s with exit code 0"
}
stop_checked
podman start "$name" >>"$work/podman.log" 2>&1
wait_until "$k_start_deadline" healthy || fail "not healthy after the restart"
answer=$(post_push ct-delivery-1)
[[ "$(tail -1 <<<"$answer")" == 200 && "$answer" == *'"status":"duplicate"'* ]] ||
  fail "after a restart the delivery was not remembered: $answer"
log "the state volume survived a restart (the delivery is a duplicate)"
stop_checked
podman rm -f -v -t 0 "$name" >>"$work/podman.log" 2>&1
podman volume rm -f "$volume" >/dev/null

# --- compose.yaml --------------------------------------------------------------------------------
# Rendered by podman-compose as shipped (its volume, config mount, env file, restart policy and
# published port), then the `podman run` it renders is run on the image built above, on the host's
# network like the rest of this script (127.0.0.1 only; podman-compose 1.0.3 cannot combine
# network_mode: host with its project network, so the script runs the rendered command itself).
command -v podman-compose >/dev/null || fail "podman-compose is not installed: run scripts/install-deps.sh --ci"
mkdir -p "$work/compose/config"
cp compose.yaml "$work/compose/"
cp -r "$work/etc" "$work/compose/config/container"
cp "$work/hookrelay.env" "$work/compose/hookrelay.env"
compose_port=$(free_port)
sed -i -e "s#^listen: 127.0.0.1:$http_port #listen: 127.0.0.1:$compose_port #" \
  "$work/compose/config/container/hookrelay.yaml"
(
  cd "$work/compose"
  # Our image, not a second build.
  sed -i -e "s#^    build: \.\$#    image: $image#" -e '/^    image: hookrelay:latest$/d' compose.yaml
  HOOKRELAY_PORT="127.0.0.1:$compose_port" podman-compose -p hookrelay-ct --dry-run up -d \
    >"$work/compose.rendered" 2>&1
) || { cat "$work/compose.rendered" >&2; fail "podman-compose"; }
for want in "hookrelay-ct_hookrelay-state:/var/lib/hookrelay" "config/container:/etc/hookrelay:ro" \
  "-p 127.0.0.1:$compose_port:8080" "--env-file" "--restart unless-stopped" "$image"; do
  grep -qF -- "$want" "$work/compose.rendered" ||
    fail "compose.yaml rendered without $want: $(cat "$work/compose.rendered")"
done
compose_run=$(grep -m1 '^podman run ' "$work/compose.rendered" |
  sed -e 's/ --net [^ ]*//' -e 's/ --network-alias [^ ]*//' -e 's/ -p [^ ]*//' \
    -e 's/^podman run /podman run --network host /')
(cd "$work/compose" && eval "$compose_run") >>"$work/podman.log" 2>&1 ||
  fail "the rendered compose service did not start: $compose_run"
compose_answers() {
  curl -s --max-time 2 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --data '{}' "http://127.0.0.1:$compose_port/hooks/github" | grep -q '^401$'
}
wait_until "$k_start_deadline" compose_answers ||
  fail "the compose service did not answer on 127.0.0.1:$compose_port"
podman rm -f -v -t 0 hookrelay-ct_hookrelay_1 >>"$work/podman.log" 2>&1
podman volume rm -f hookrelay-ct_hookrelay-state >/dev/null
log "compose.yaml: rendered as shipped; its service answered an unsigned push with 401"

# --- compose.postgres.yaml -----------------------------------------------------------------------
# The cluster example, rendered by podman-compose as shipped; then its two hookrelay services run
# on the image built above as for compose.yaml, against a throwaway PostgreSQL server on the host
# instead of the `postgres` service (no registry here for its image): they reach the server
# through its socket directory, mounted at the same path. Each instance gets its own copy of the
# shipped config with its own ports (they share the host's network here).
mkdir -p "$work/compose-pg/config"
cp compose.postgres.yaml "$work/compose-pg/"
cp "$work/hookrelay.env" "$work/compose-pg/hookrelay.env"
echo "POSTGRES_PASSWORD=ct-unused" >"$work/compose-pg/postgres.env"
(
  cd "$work/compose-pg"
  sed -i -e "s#^    build: \.\$#    image: $image#" -e '/^    image: hookrelay:latest$/d' compose.postgres.yaml
  podman-compose -f compose.postgres.yaml -p hookrelay-ctpg --dry-run up -d >"$work/compose-pg.rendered" 2>&1
) || { cat "$work/compose-pg.rendered" >&2; fail "podman-compose -f compose.postgres.yaml"; }
for want in "docker.io/library/postgres:15" "hookrelay-ctpg_hookrelay-db:/var/lib/postgresql/data" \
  "config/container-postgres:/etc/hookrelay:ro" "-p 8081:8080" "-p 8082:8080" "--env-file"; do
  grep -qF -- "$want" "$work/compose-pg.rendered" ||
    fail "compose.postgres.yaml rendered without $want: $(cat "$work/compose-pg.rendered")"
done
tests/support/pg_server.sh start "$work/pg" >"$work/pg.log" 2>&1 || fail "PostgreSQL: $(cat "$work/pg.log")"
pg_dir=$(cat "$work/pg/server")
echo "HOOKRELAY_DATABASE_URL=$(cat "$work/pg/conninfo")" >>"$work/compose-pg/hookrelay.env"
pg_ports=()
for i in 1 2; do
  port=$(free_port)
  aport=$(free_port)
  pg_ports+=("$port")
  mkdir -p "$work/compose-pg/config-$i"
  sed -e "s#^listen: 0\.0\.0\.0:8080 #listen: 127.0.0.1:$port #" \
    -e "s#^  listen: 127\.0\.0\.1:9090\$#  listen: 127.0.0.1:$aport#" \
    -e "s#url: \"https://jenkins\.example\.internal/\"#url: \"http://127.0.0.1:$jenkins_port/\"#" \
    config/container-postgres/hookrelay.yaml >"$work/compose-pg/config-$i/hookrelay.yaml"
  grep -q "^  backend: postgres" "$work/compose-pg/config-$i/hookrelay.yaml" || fail "no postgres store in config/container-postgres"
  chmod 0755 "$work/compose-pg/config-$i" && chmod 0644 "$work/compose-pg/config-$i/hookrelay.yaml"
  run=$(grep "^podman run .*--name=hookrelay-ctpg_hookrelay-${i}_1 " "$work/compose-pg.rendered" |
    sed -e 's/ --net [^ ]*//' -e 's/ --network-alias [^ ]*//' -e 's/ -p [^ ]*//' \
      -e "s# [^ ]*/config/container-postgres:/etc/hookrelay:ro# $work/compose-pg/config-$i:/etc/hookrelay:ro#" \
      -e "s#^podman run #podman run --network host -v $pg_dir:$pg_dir #")
  [[ -n "$run" ]] || fail "compose.postgres.yaml rendered no hookrelay-$i: $(cat "$work/compose-pg.rendered")"
  (cd "$work/compose-pg" && eval "$run") >>"$work/podman.log" 2>&1 || fail "hookrelay-$i did not start: $run"
done
pg_post() { # port delivery-id -> prints "HTTP-status body"
  local body=tests/data/github/push-branch-update.json sig
  sig=$(openssl dgst -sha256 -hmac "$secret" -r <"$body" | cut -d' ' -f1)
  curl -s --max-time 10 -w '\n%{http_code}' "http://127.0.0.1:$1/hooks/github" \
    -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: $2" \
    -H "X-Hub-Signature-256: sha256=$sig" --data-binary "@$body"
}
pg_answers() { [[ "$(pg_post "$1" ct-pg-probe | tail -1)" =~ ^20[02]$ ]]; }
for port in "${pg_ports[@]}"; do
  wait_until "$k_start_deadline" pg_answers "$port" || fail "hookrelay on 127.0.0.1:$port (PostgreSQL) did not answer: $(podman logs --tail 20 hookrelay-ctpg_hookrelay-1_1 2>&1; podman logs --tail 20 hookrelay-ctpg_hookrelay-2_1 2>&1)"
done
answer=$(pg_post "${pg_ports[0]}" ct-pg-delivery)
[[ "$(tail -1 <<<"$answer")" == 202 ]] || fail "the first instance answered: $answer"
answer=$(pg_post "${pg_ports[1]}" ct-pg-delivery)
[[ "$(tail -1 <<<"$answer")" == 200 && "$answer" == *'"status":"duplicate"'* ]] ||
  fail "the second instance did not see the first one's delivery: $answer"
for i in 1 2; do
  podman rm -f -v -t 0 "hookrelay-ctpg_hookrelay-${i}_1" >>"$work/podman.log" 2>&1
done
tests/support/pg_server.sh stop "$work/pg" >/dev/null 2>&1
log "compose.postgres.yaml: rendered as shipped; its two instances share one database (202 at one, duplicate at the other)"

log "passed in $((SECONDS - started))s (base images ${base_seconds}s, image build ${build_seconds}s)"
