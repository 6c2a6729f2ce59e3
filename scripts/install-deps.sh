#!/usr/bin/env bash
# Installs hookrelay's build and test dependencies from Debian 12 (bookworm) packages.
# Idempotent: packages already installed are skipped, and apt is not touched at all when
# nothing is missing. Used by the README (make run / make test), .ci/run and the Dockerfile.
#
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --runtime  only the shared libraries the daemon needs at run time
#   scripts/install-deps.sh --bench    the whole-daemon load benchmark's tools (bench/load/run.sh)
set -euo pipefail

build_pkgs=(
  build-essential cmake make ninja-build pkg-config ccache git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libyaml-cpp-dev libspdlog-dev libfmt-dev libssl-dev libre2-dev libcli11-dev
  libsqlite3-dev libjemalloc-dev libsystemd-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  # The fuzz preset (scripts/fuzz.sh): clang with libFuzzer and the sanitizer runtimes; the corpus
  # regression tests of the normal build read FuzzedDataProvider.h from libclang-rt-14-dev.
  clang-14 libclang-rt-14-dev
  openssl ca-certificates systemd
)
runtime_pkgs=(
  libboost-json1.81.0 libboost-url1.81.0 libyaml-cpp0.7 libspdlog1.10 libfmt9 libssl3 libre2-9
  libsqlite3-0 libjemalloc2 libsystemd0 libprometheus-cpp-core1.0 ca-certificates
)

bench_pkgs=(wrk nginx-light webhook procps curl openssl)

pkgs=("${build_pkgs[@]}")
if [[ "${1:-}" == "--runtime" ]]; then pkgs=("${runtime_pkgs[@]}"); fi
if [[ "${1:-}" == "--bench" ]]; then pkgs=("${build_pkgs[@]}" "${bench_pkgs[@]}"); fi

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
