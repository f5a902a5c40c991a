#!/usr/bin/env bash
# Chaos harness with exact accounting (docs/chaos.md): builds the bridge and the harness's Kafka
# tool (examples/chaos_kafka.rs) in release mode, then runs chaos/chaos.py.
#
#   scripts/chaos.sh                       # small (CI): 50k events, 7 faults, < 5 min
#   scripts/chaos.sh --profile large       # 1M events, 24 faults
#   scripts/chaos.sh --seed 42 --events 200000 --faults 12 --workdir /tmp/chaos-42
#   scripts/chaos.sh --broker kafka [--group-protocol consumer] [--profile large]
#                                          # Apache Kafka, 3 brokers, broker + network faults
#                                          # (root: network namespace; Java 17+ and Maven)
#
# All arguments go to chaos/chaos.py (--help lists them). Exit 0 = every produced id delivered
# or dead-lettered as expected and every bridge exited 0 after SIGTERM; 1 = accounting failure;
# 2 = harness error. Honours CARGO_TARGET_DIR.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

if [[ ${CHAOS_SKIP_BUILD:-0} != 1 ]]; then
    cargo build --release --locked --bin mcm-bridge --example chaos_kafka
fi
exec python3 "$ROOT/chaos/chaos.py" \
    --bin "$TARGET/release/mcm-bridge" \
    --kafka-tool "$TARGET/release/examples/chaos_kafka" \
    "$@"
