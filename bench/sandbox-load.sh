#!/usr/bin/env bash
# Load-test the local MCM sandbox: build release, start it on a free loopback port, drive it with
# wrk for DURATION with valid PURCHASE events (a unique id per request, so the duplicate-id set is
# exercised), then print wrk's figures and the sandbox's own counters.
#
# Needs wrk (Debian: apt-get install -y wrk), curl and jq.
# Knobs (environment): DURATION (10s), THREADS (2), CONNECTIONS (64), RECORD=1 to also record every
# accepted event to a temp file, SANDBOX_FLAGS for extra flags (e.g. "--latency 5ms").
# Note: wrk and the sandbox share the machine; on a 2-core box the figure is a floor, not a ceiling.
set -euo pipefail

DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
PLATFORM=BENCH_TEST
export MCM_API_KEY=bench-key   # via the environment, as recommended (keeps it out of ps)

cd "$(dirname "$0")/.."
for tool in wrk curl jq; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y $tool)" >&2; exit 1; }
done

cargo build --release --quiet --bin mcm-bridge
BIN=${CARGO_TARGET_DIR:-target}/release/mcm-bridge

work=$(mktemp -d)
sandbox_pid=
cleanup() {
  if [[ -n "$sandbox_pid" ]]; then kill "$sandbox_pid" 2>/dev/null || true; wait "$sandbox_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

record_flags=()
[[ "${RECORD:-0}" == 1 ]] && record_flags=(--record "$work/accepted.jsonl")

# shellcheck disable=SC2086 # SANDBOX_FLAGS is deliberately word-split
"$BIN" sandbox --listen 127.0.0.1:0 --platform-id "$PLATFORM" "${record_flags[@]}" ${SANDBOX_FLAGS:-} \
  >"$work/sandbox.out" 2>"$work/sandbox.err" &
sandbox_pid=$!

# Wait for the start-up line, which carries the real port.
base=
for _ in $(seq 100); do
  base=$(sed -n 's/^sandbox listening on \(http:\/\/[^ ]*\).*/\1/p' "$work/sandbox.out")
  [[ -n "$base" ]] && break
  kill -0 "$sandbox_pid" 2>/dev/null || { cat "$work/sandbox.err" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$base" ]] || { echo "sandbox did not start" >&2; exit 1; }

# A timestamp one minute in the past stays valid (not future, milliseconds) for the whole run.
POST_TS=$(($(date +%s%3N) - 60000)) # read by bench/post.lua
export POST_TS

echo "sandbox at $base; wrk -t$THREADS -c$CONNECTIONS -d$DURATION${RECORD:+ (recording)}"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/post.lua \
  "$base/rmp/event/v1/platforms/$PLATFORM/userevents"

echo
echo "sandbox counters:"
curl -fsS "$base/_sandbox/stats" | jq -c '{requests_total, accepted_total, rejected_total, unique_ids, duplicate_ids, rejected_by_reason, record_errors}'
if [[ "${RECORD:-0}" == 1 ]]; then
  echo "recorded lines: $(wc -l <"$work/accepted.jsonl")"
fi
