#!/usr/bin/env bash
# Coverage-guided fuzzing of mcm-bridge with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      # default: 600 s each, targets process_message load_config
#   FUZZ_JOBS=2 scripts/fuzz.sh 3600           # run the targets in parallel
#
# The machine has only stable Rust; cargo-fuzz needs nightly flags, which RUSTC_BOOTSTRAP=1
# unlocks on stable. AddressSanitizer is off (`-s none`): the C dependencies (librdkafka, zstd)
# do not link against it, and the fuzzed code is safe Rust, where the findings are panics,
# aborts, timeouts and out-of-memory. Debug assertions are on (`-a`): integer overflow panics.
#
# Each run starts from fuzz/seeds/<target> (regenerate with scripts/fuzz_seeds.py) plus the
# corpus kept from earlier runs in fuzz/corpus/<target>; crashing inputs land in
# fuzz/artifacts/<target>/. Copy each one to tests/fuzz-regressions/<target>/ with a descriptive
# name: `cargo test --test fuzz_props` replays them forever after. A summary line per target
# (executions, coverage, crashes) is printed at the end and the full log kept in fuzz/logs/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(process_message load_config)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (crates.io)…" >&2
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  cargo fuzz build -O -a -s none "$t" >/dev/null
done

mkdir -p logs
run() {
  local t="$1"
  mkdir -p "corpus/$t" "artifacts/$t"
  local dict=()
  [ "$t" = process_message ] && dict=(-dict=json.dict)
  # -rss_limit_mb: a single 10 MB message must fit; -timeout: any input over 10 s is a finding.
  cargo fuzz run -O -a -s none "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict[@]}" >"logs/$t.log" 2>&1 || true
}

summary() {
  local t="$1" log="logs/$1.log"
  local execs cov crashes
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  crashes=$(find "artifacts/$t" -type f | wc -l)
  echo "$t: ${secs}s, ${execs} execs, cov ${cov} edges, corpus $(find "corpus/$t" -type f | wc -l), artifacts ${crashes}"
}

if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then
  pids=()
  for t in "${targets[@]}"; do run "$t" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
else
  for t in "${targets[@]}"; do run "$t"; done
fi

status=0
for t in "${targets[@]}"; do
  summary "$t"
  if grep -q "^==[0-9]*== ERROR: libFuzzer\|panicked at\|SUMMARY: libFuzzer" "logs/$t.log"; then
    echo "  finding in $t: see fuzz/logs/$t.log and fuzz/artifacts/$t/" >&2
    status=1
  fi
done
exit $status
