#!/usr/bin/env bash
# Fuzzes every parser of untrusted input with libFuzzer (cargo-fuzz), a
# bounded number of runs per target, and writes the counts to results/fuzz/.
#
# usage: scripts/fuzz.sh [RUNS] [TARGET ...]     (default: 1000000 runs, every target)
#
# Each target starts from its seed corpus (fuzz/corpus/TARGET, committed) and
# grows a working corpus in fuzz/work/TARGET (not committed). A run fails on a
# panic, an abort, an input that takes over 10 s, a process over 2 GiB, or
# one allocation over 2 GiB (the targets' global allocator aborts on it);
# libFuzzer then writes the input to fuzz/artifacts/TARGET/: add it to
# fuzz/corpus/TARGET with its fix, so that `cargo test` (tests/fuzz_corpus.rs)
# replays it from then on. Needs a nightly toolchain and cargo-fuzz, which
# this script installs when they are missing. The targets are fuzz/targets.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${1:-1000000}"
shift || true
ALL=(prototxt caffemodel deep_compression torch_pickle safetensors_model label_file csv_dataset experiment_toml image)
TARGETS=("${@:-${ALL[@]}}")

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

mkdir -p results/fuzz fuzz/work
summary=results/fuzz/fuzz.md
{
  echo "# Fuzzing ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, commit $(git rev-parse --short HEAD))"
  echo
  echo "\`scripts/fuzz.sh $RUNS ${TARGETS[*]}\`: libFuzzer through cargo-fuzz, no sanitizer, \`-rss_limit_mb=2048 -timeout=10\`, and a global allocator that aborts on any single allocation over 2 GiB (fuzz/targets.rs)."
  echo
  echo "| target | runs | seconds | corpus after | result |"
  echo "|---|---|---|---|---|"
} > "$summary"
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/work/$t"
  log="fuzz/work/$t.log"
  set +e
  cargo +nightly fuzz run -s none "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
    -runs="$RUNS" -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1 >"$log" 2>&1
  status=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' | tail -1)
  corpus=$(ls "fuzz/work/$t" | wc -l)
  result=$([ "$status" -eq 0 ] && echo "no failure" || echo "**failed** (exit $status, see $log and fuzz/artifacts/$t/)")
  echo "| $t | ${runs:-?} | ${secs:-?} | $corpus | $result |" | tee -a "$summary"
done
echo "written $summary"
