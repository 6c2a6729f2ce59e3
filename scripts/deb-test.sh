#!/usr/bin/env bash
# Builds the Debian package (make deb), installs it on this machine with apt, checks what a user
# gets, and purges it again:
#   - hookrelay --version, and the man page and bash completion it ships;
#   - `hookrelay check` on the installed /etc/hookrelay/hookrelay.yaml (found without --config),
#     with its systemd credentials supplied as the service would get them;
#   - systemd-analyze verify on the installed units (ExecStart= names the installed binary);
#   - the config is a conffile; Depends: names the shared libraries;
#   - apt-get purge leaves nothing behind.
# Needs root (apt). It refuses to touch a hookrelay package that was installed before it ran.
#
#   scripts/deb-test.sh [path/to/hookrelay_<version>_<arch>.deb]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'deb-test: %s\n' "$*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}

[[ $(id -u) -eq 0 ]] || fail "run as root (it installs and purges a package)"
if dpkg-query -W -f='${Status}' hookrelay 2>/dev/null | grep -q "ok installed"; then
  fail "a hookrelay package is installed already; this test would purge it: remove it first"
fi

started=$SECONDS
deb=${1:-}
if [[ -z "$deb" ]]; then
  make deb >/tmp/hookrelay-deb-build.log 2>&1 || { tail -30 /tmp/hookrelay-deb-build.log >&2; fail "make deb"; }
  deb=$(ls build/deb/hookrelay_*_*.deb | head -1)
fi
build_seconds=$((SECONDS - started))
version=$(sed -n 's/^project(hookrelay VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
[[ "$(basename "$deb")" == "hookrelay_${version}_$(dpkg --print-architecture).deb" ]] ||
  fail "unexpected package name $(basename "$deb")"

work=$(mktemp -d)
cleanup() {
  if dpkg-query -W -f='${Status}' hookrelay 2>/dev/null | grep -q "installed"; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq hookrelay >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

depends=$(dpkg-deb -f "$deb" Depends)
for lib in libsqlite3-0 liblz4-1 libpq5 libssl3 libyaml-cpp0.7 libre2-9 libsystemd0 libprometheus-cpp-core1.0; do
  [[ "$depends" == *"$lib"* ]] || fail "Depends: lacks $lib: $depends"
done

DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$(realpath "$deb")" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; fail "apt-get install"; }
log "installed $(basename "$deb")"

[[ "$(command -v hookrelay)" == /usr/bin/hookrelay ]] || fail "hookrelay is not /usr/bin/hookrelay"
[[ "$(hookrelay --version)" == "hookrelay $version" ]] || fail "--version: $(hookrelay --version)"

[[ "$(dpkg-query -W -f='${Conffiles}' hookrelay)" == *"/etc/hookrelay/hookrelay.yaml "* ]] ||
  fail "/etc/hookrelay/hookrelay.yaml is not a conffile"

# The installed config reads its secrets as systemd credentials; give it some, as the unit's
# LoadCredential= lines would.
mkdir -p "$work/credentials"
for name in admin_token github_webhook_secret gitlab_webhook_token jenkins_token; do
  printf 'deb-test-%s' "$name" >"$work/credentials/$name"
done
out=$(cd / && env -u HOOKRELAY_CONFIG CREDENTIALS_DIRECTORY="$work/credentials" hookrelay check 2>&1) ||
  fail "hookrelay check on the installed config: $out"
[[ "$out" == "/etc/hookrelay/hookrelay.yaml: OK"* ]] || fail "check: $out"
log "$out"

units=(/usr/lib/systemd/system/hookrelay.service /usr/lib/systemd/system/hookrelay.socket)
for unit in "${units[@]}"; do [[ -f "$unit" ]] || fail "$unit is not installed"; done
grep -q '^ExecStart=/usr/bin/hookrelay run ' "${units[0]}" || fail "ExecStart= does not name /usr/bin/hookrelay"
if grep -n '/usr/local' "${units[@]}"; then fail "an installed unit names /usr/local"; fi
verify=$(systemd-analyze verify "${units[@]}" 2>&1) || fail "systemd-analyze verify: $verify"
if grep -i hookrelay <<<"$verify"; then fail "systemd-analyze verify reported the lines above"; fi
log "systemd-analyze verify: the installed units are clean"

zcat /usr/share/man/man1/hookrelay.1.gz | grep -q '^\.TH HOOKRELAY 1' || fail "no man page"
if command -v man >/dev/null; then
  man_warnings=$(MANWIDTH=100 man --warnings=w -l /usr/share/man/man1/hookrelay.1.gz 2>&1 >/dev/null)
  [[ -z "$man_warnings" ]] || fail "the man page renders with warnings: $man_warnings"
fi
completion=$(bash -c '. /usr/share/bash-completion/completions/hookrelay
  COMP_WORDS=(hookrelay deliveries re); COMP_CWORD=2; _hookrelay; echo "${COMPREPLY[*]}"')
[[ "$completion" == "replay redeliver" ]] || fail "bash completion of 'deliveries re': '$completion'"
[[ -f /usr/share/doc/hookrelay/copyright && -f /usr/share/doc/hookrelay/contrib/grafana/hookrelay.json ]] ||
  fail "docs missing"
# The installed README links to the docs beside it (docs/x.md in a clone), not to a docs/ there is
# not; links into a clone's tests/ and fuzz/ are for developers and are not installed.
readme=/usr/share/doc/hookrelay/README.md
grep -q '^> Installed from the Debian package' "$readme" || fail "the installed README does not say it is installed"
checked=0
for link in $(grep -o '](\([^)#]*\.md\)' "$readme" | sed 's/^](//' | grep -v '://' | sort -u); do
  case "$link" in tests/* | fuzz/*) continue ;; esac
  [[ -f "/usr/share/doc/hookrelay/$link" ]] || fail "the installed README links to $link, which is not installed"
  checked=$((checked + 1))
done
((checked >= 5)) || fail "the installed README links to $checked of the docs; expected all five"
log "man page, bash completion and docs installed; the README's links to them resolve"

DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq hookrelay >"$work/purge.log" 2>&1 ||
  { cat "$work/purge.log" >&2; fail "apt-get purge"; }
if dpkg-query -W -f='${Status}' hookrelay 2>/dev/null | grep -q "installed"; then fail "still installed"; fi
for path in /usr/bin/hookrelay /etc/hookrelay/hookrelay.yaml "${units[@]}" /usr/share/doc/hookrelay; do
  [[ ! -e "$path" ]] || fail "$path is left after purge"
done
log "purged cleanly"
log "passed in $((SECONDS - started))s (make deb ${build_seconds}s)"
