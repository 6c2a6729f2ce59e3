#!/usr/bin/env bash
# Builds the `fuzz` preset (clang, libFuzzer, ASan + UBSan) and runs every fuzz target for a
# bounded time on its committed corpus (fuzz/corpus/<target>/). New inputs go to a scratch
# directory and are thrown away unless --merge is given. Fails (exit 1) when any target crashes,
# leaks, runs out of memory or times out, printing the reproducer and how to replay it.
#
#   scripts/fuzz.sh [options] [seconds-per-target] [target...]
#     seconds-per-target  default 60 (FUZZ_SECONDS); 0 only replays the corpus
#     target...           default: every target in build/fuzz/fuzzers/
#     --merge             fold the new inputs that reach new code (edges) into fuzz/corpus/<target>/
#     --seed DIR          merge DIR/<target>/ into the corpus first (see fuzz/make_seeds.py)
#     --runs N            stop each target after N executions as well (libFuzzer -runs)
#     --jobs N            targets run at once (default: the number of CPUs)
#   Environment: FUZZ_RSS_LIMIT_MB (default 2048), FUZZ_TIMEOUT (seconds per input, default 25:
#   inputs take milliseconds, but libFuzzer's clock is the wall clock, and a loaded CI machine
#   must not turn into a false "timeout").
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
rss_limit=${FUZZ_RSS_LIMIT_MB:-2048}
timeout=${FUZZ_TIMEOUT:-25}
build_dir=build/fuzz  # the fuzz preset's binaryDir
jobs=$(nproc)
merge=0
runs=""
seed_dir=""
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --merge) merge=1 ;;
    --seed) seed_dir=$(realpath "$2"); shift ;;
    --runs) runs=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *)
      if [[ ${#targets[@]} -eq 0 && "$1" =~ ^[0-9]+$ ]]; then seconds=$1; else targets+=("$1"); fi ;;
  esac
  shift
done

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"

fuzzers="$build_dir/fuzzers"
if [[ ${#targets[@]} -eq 0 ]]; then
  for env in "$fuzzers"/fuzz_*.env; do
    name=${env##*/fuzz_}
    targets+=("${name%.env}")
  done
fi

# LLVM 14's ASan maps shadow memory where high-entropy ASLR (vm.mmap_rnd_bits > 28, newer
# kernels) may already have put something, and crashes at random (reviews.llvm.org/D148280).
# Run without ASLR where the kernel lets us, else say how to fix it.
launcher=()
rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)
if [[ $rnd_bits -gt 28 ]]; then
  if setarch "$(uname -m)" -R true 2>/dev/null; then
    launcher=(setarch "$(uname -m)" -R)
  else
    echo "fuzz.sh: warning: vm.mmap_rnd_bits=$rnd_bits; if ASan crashes at start, run" \
      "'sysctl -w vm.mmap_rnd_bits=28'" >&2
  fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/hookrelay-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
artifacts="$build_dir/artifacts"
mkdir -p "$artifacts"

# One target: fuzz, then (with --merge) fold new inputs into the corpus. Writes $work/<t>.status.
run_target() {
  local target=$1 exe="$fuzzers/fuzz_$1" corpus="" args="" status=0
  # shellcheck disable=SC1090  # written by fuzz/CMakeLists.txt: corpus=..., args=...
  source "$fuzzers/fuzz_$target.env"
  local new="$work/$target.new" log="$work/$target.log" crashes="$artifacts/$target"
  mkdir -p "$new" "$crashes"
  local common=(-rss_limit_mb="$rss_limit" -timeout="$timeout" -artifact_prefix="$crashes/")
  # Merges keep an input only for new edges, not for new hit counts: the committed corpus stays
  # small, and every line of code any input ever reached stays reached.
  local merging=(-merge=1 -use_counters=0)
  # shellcheck disable=SC2086  # $args holds several options
  if [[ -n "$seed_dir" && -d "$seed_dir/$target" ]]; then
    "${launcher[@]}" "$exe" "${merging[@]}" "${common[@]}" $args "$corpus" "$seed_dir/$target" \
      >"$work/$target.seed.log" 2>&1 || status=$?
  fi
  if [[ $status -eq 0 ]]; then
    local limit=(-max_total_time="$seconds")
    [[ $seconds -eq 0 ]] && limit=(-runs=0)
    [[ -n "$runs" ]] && limit+=(-runs="$runs")
    # shellcheck disable=SC2086
    "${launcher[@]}" "$exe" "${limit[@]}" "${common[@]}" $args -print_final_stats=1 \
      "$new" "$corpus" >"$log" 2>&1 || status=$?
  fi
  if [[ $status -eq 0 && $merge -eq 1 ]]; then
    # shellcheck disable=SC2086
    "${launcher[@]}" "$exe" "${merging[@]}" "${common[@]}" $args "$corpus" "$new" \
      >"$work/$target.merge.log" 2>&1 || status=$?
  fi
  echo "$status" >"$work/$target.status"
}

for target in "${targets[@]}"; do
  if [[ ! -x "$fuzzers/fuzz_$target" ]]; then
    echo "fuzz.sh: no fuzz target '$target' in $fuzzers" >&2
    exit 2
  fi
  while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do wait -n || true; done
  echo "fuzz.sh: $target: ${seconds}s${runs:+ or $runs runs}"
  run_target "$target" &
done
wait

failed=0
for target in "${targets[@]}"; do
  log="$work/$target.log"
  status=$(cat "$work/$target.status" 2>/dev/null || echo 1)
  stat() { sed -n "s/^stat::$1: *//p" "$log" 2>/dev/null | tail -1; }
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" 2>/dev/null | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+)\/([0-9]+[a-zA-Z]*).*/cov \1, ft \2, corpus \3 files \/ \4/p' \
    <<<"$done_line")
  if [[ $status -eq 0 ]]; then
    echo "fuzz.sh: $target: ok: $(stat number_of_executed_units) execs," \
      "$(stat average_exec_per_sec) exec/s, $cov, peak rss $(stat peak_rss_mb) MB"
    if [[ $merge -eq 1 ]]; then
      grep -E 'MERGE-OUTER: [0-9]+ new files' "$work/$target.merge.log" | sed "s/^/fuzz.sh: $target: /" || true
    fi
    continue
  fi
  failed=1
  echo "fuzz.sh: $target: FAILED (exit $status)"
  for l in "$work/$target.seed.log" "$log" "$work/$target.merge.log"; do
    [[ -f "$l" ]] || continue
    # The sanitizer or libFuzzer report, without the run's progress lines.
    grep -vE '^#[0-9]+[[:space:]]' "$l" | grep -A60 -E '^==[0-9]+==|^(ERROR|SUMMARY|INFO: libFuzzer: )|deadly signal|-- timeout|out-of-memory' | head -80 || true
    while read -r unit; do
      echo "fuzz.sh: $target: reproducer: $unit"
      echo "fuzz.sh: $target: replay it with: $fuzzers/fuzz_$target $unit"
    done < <(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$l")
  done
done
exit $failed
