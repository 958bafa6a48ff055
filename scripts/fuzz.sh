#!/usr/bin/env bash
# Fuzzes every reader of files and replies (fuzz/fuzz_targets, docs/fuzzing.md) for SECONDS
# each (default 60), one target at a time, with cargo-fuzz on the nightly toolchain, and
# prints per target its executions, new corpus entries and crashes. Exits non-zero when a
# target crashed, hung or ran out of memory; the input is under fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs `rustup toolchain install nightly` and `cargo install cargo-fuzz`. The corpora grow
# in fuzz/corpus/TARGET (not committed); the committed seeds are in fuzz/seeds/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
# No sanitizer: the readers are safe Rust, and on a small machine ASan would halve the
# executions; the harness's allocator (fuzz/src/lib.rs) bounds single allocations instead.
# -a: debug assertions and overflow checks, as in the test profile.
flags=(--sanitizer none --debug-assertions)

cd fuzz
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build "${flags[@]}"
bin="target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

# Scratch files of the path-taking targets go here, and go away with it.
scratch=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT

failed=0
printf '%-16s %12s %8s %8s  %s\n' target executions seconds corpus result
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="$scratch/$t.log"
  start=$(date +%s)
  result=ok
  # The binary itself, not `cargo fuzz run`, which would rebuild first if a source changed.
  TMPDIR="$scratch" "$bin/$t" "corpus/$t" "seeds/$t" \
    -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1 || result=CRASH
  elapsed=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corpus=$(find "corpus/$t" -type f | wc -l)
  if [ "$result" != ok ]; then
    failed=1
    artifact=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
    result="CRASH ${artifact:-(see below)}"
  fi
  printf '%-16s %12s %8s %8s  %s\n' "$t" "${execs:-?}" "$elapsed" "$corpus" "$result"
  if [ "$result" != ok ]; then
    { grep -E -A1 'panicked at|ERROR: libFuzzer|gpo-fuzz:' "$log" || tail -5 "$log"; } |
      head -6 | sed 's/^/    /'
  fi
done
exit "$failed"
