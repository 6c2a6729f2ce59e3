#!/usr/bin/env bash
# A profile-guided build of hookrelay (GCC): builds it instrumented in BUILD_DIR, runs the
# training (tools/pgo_train.cpp: the daemon on loopback, 60,000 signed webhooks of every forge
# from tests/data delivered to a Jenkins of its own, ~15 s here), then builds it again in the
# same directory optimized with the profile that run left there, with link-time optimization.
# The load benchmark accepts ~11 % more with it, for ~12 % less CPU per webhook
# (docs/performance.md, "Profile-guided builds").
#
#   scripts/pgo-build.sh BUILD_DIR [CMAKE_ARGS...]   # then build other targets in BUILD_DIR as usual
#
# Takes about twice a plain build. Used by `make release`, `make deb` and the image's build stage
# (`make release PGO=0` and `make deb PGO=0` build without it). Loopback only; the training stops
# what it started and fails the build when a webhook was not accepted or a trigger not delivered.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: scripts/pgo-build.sh BUILD_DIR [CMAKE_ARGS...]}
shift
jobs=${JOBS:-$(nproc)}

# What the profile was made from: the sources and these arguments. When BUILD_DIR already holds a
# profile-guided build of exactly them, it is only brought up to date (a benchmark run again).
stamp=$({ echo "$*"; find CMakeLists.txt cmake include src tools -type f | LC_ALL=C sort | xargs cat; } |
  sha256sum | cut -d' ' -f1)
if [[ -f "$dir/pgo.stamp" && "$(cat "$dir/pgo.stamp")" == "$stamp" ]] &&
  grep -qx 'HOOKRELAY_PGO:STRING=use' "$dir/CMakeCache.txt" 2>/dev/null; then
  cmake --build "$dir" -j "$jobs" --target hookrelay
  exit 0
fi
rm -f "$dir/pgo.stamp"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" -DHOOKRELAY_PGO=generate >/dev/null
# Counts from an earlier training would add up with this one's.
find "$dir" -name '*.gcda' -delete
cmake --build "$dir" -j "$jobs" --target hookrelay hookrelay_pgo_train
"$dir/hookrelay_pgo_train" "$dir/hookrelay" tests/data
cmake -S . -B "$dir" -DHOOKRELAY_PGO=use >/dev/null
cmake --build "$dir" -j "$jobs" --target hookrelay
echo "$stamp" >"$dir/pgo.stamp"
