#!/usr/bin/env bash
# Installs hookrelay's dependencies from Debian 12 (bookworm) packages.
# Idempotent: packages already installed are skipped, and apt is not touched at all when
# nothing is missing. Used by the README (make run / make test), .ci/run and the Dockerfile.
#
#   scripts/install-deps.sh            build + test dependencies (make run, make test)
#   scripts/install-deps.sh --build    only what compiling the daemon needs (the image's build stage)
#   scripts/install-deps.sh --runtime  only the shared libraries the daemon needs at run time
#   scripts/install-deps.sh --bench    build + test, and the whole-daemon load benchmark's tools
#   scripts/install-deps.sh --deb      build, and what `make deb` needs (dpkg-dev, file)
#   scripts/install-deps.sh --ci       build + test + deb, and what CI's packaging checks use:
#                                      podman, runc, debootstrap and podman-compose
#                                      (scripts/container-test.sh), promtool (contrib/ checks)
#
# ccache is part of the build set: CMakeLists.txt compiles through it when it is installed, so a
# second tree or a rebuild after `make clean` reuses earlier work (~/.cache/ccache).
set -euo pipefail

compile_pkgs=(
  build-essential cmake make ninja-build pkg-config ccache
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libyaml-cpp-dev libspdlog-dev libfmt-dev libssl-dev libre2-dev libcli11-dev
  libsqlite3-dev liblz4-dev libpq-dev libjemalloc-dev libsystemd-dev prometheus-cpp-dev
)
# postgresql: the throwaway servers of the PostgreSQL store's tests (tests/support/pg_server.sh).
test_pkgs=(
  git libgtest-dev libgmock-dev googletest libbenchmark-dev
  openssl ca-certificates systemd curl postgresql
  # The fuzz preset (scripts/fuzz.sh): clang with libFuzzer and the sanitizer runtimes; the corpus
  # regression tests of the normal build read FuzzedDataProvider.h from libclang-rt-14-dev.
  clang-14 libclang-rt-14-dev
)
runtime_pkgs=(
  libboost-json1.81.0 libboost-url1.81.0 libyaml-cpp0.7 libspdlog1.10 libfmt9 libssl3 libre2-9
  libsqlite3-0 liblz4-1 libpq5 libjemalloc2 libsystemd0 libprometheus-cpp-core1.0 ca-certificates
)
bench_pkgs=(wrk nginx-light webhook procps curl openssl)
deb_pkgs=(dpkg-dev file)
ci_pkgs=(podman runc debootstrap podman-compose prometheus)

case "${1:-}" in
  "") pkgs=("${compile_pkgs[@]}" "${test_pkgs[@]}") ;;
  --build) pkgs=("${compile_pkgs[@]}") ;;
  --runtime) pkgs=("${runtime_pkgs[@]}") ;;
  --bench) pkgs=("${compile_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  --deb) pkgs=("${compile_pkgs[@]}" "${deb_pkgs[@]}") ;;
  --ci) pkgs=("${compile_pkgs[@]}" "${test_pkgs[@]}" "${deb_pkgs[@]}" "${ci_pkgs[@]}") ;;
  *)
    echo "usage: $0 [--build|--runtime|--bench|--deb|--ci]" >&2
    exit 2
    ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

# The tests start throwaway PostgreSQL servers of their own (tests/support/pg_server.sh). The
# package creates and may start a system cluster ("main" on port 5432): stop the clusters this
# run created and keep them from starting at boot, so nothing can use one by accident. Clusters
# that existed before are left alone.
if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v pg_lsclusters >/dev/null; then
  while read -r version cluster _; do
    $sudo pg_ctlcluster "$version" "$cluster" stop 2>/dev/null || true
    echo manual | $sudo tee "/etc/postgresql/$version/$cluster/start.conf" >/dev/null
    echo "install-deps: PostgreSQL cluster $version/$cluster stopped and set to start manually"
  done < <(pg_lsclusters -h)
fi
