#!/usr/bin/env bash
# A/B of the bridge end to end: runs bench/run.sh of two or more checkouts in alternation
# (A B A B …), short except for row 3 (500k events, 8 partitions, healthy sink), and prints each
# run's row-3 throughput and bridge CPU per delivered event, then the mean per checkout.
#
#   bench/ab.sh ROUNDS LABEL=DIR [LABEL=DIR …]
#   e.g. git worktree add /tmp/before 76b62ed && bench/ab.sh 3 before=/tmp/before after=.
#
# Alternation spreads drift of a shared machine (other tenants, thermal) over every checkout.
# Each DIR is built by its own bench/run.sh into DIR/target. Run it on a quiet machine.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 ROUNDS LABEL=DIR LABEL=DIR [...]" >&2; exit 2; }
rounds=$1
shift
out=${AB_OUT:-$(mktemp -d /tmp/bench-ab.XXXX)}
mkdir -p "$out"
echo "results in $out"
for round in $(seq 1 "$rounds"); do
  for pair in "$@"; do
    label=${pair%%=*}
    dir=$(cd "${pair#*=}" && pwd)
    results="$out/$label-$round.md"
    echo "== round $round: $label ($(git -C "$dir" rev-parse --short HEAD)$(git -C "$dir" diff --quiet || echo +dirty)) $(date +%T)"
    LABEL="ab-$label-$round" PEERS=0 HTTPS=0 RSS_MINUTES=0.25 OUTAGE_MINUTES=0.25 \
      EVENTS_SINGLE=20000 WRK_DURATION=3s RESULTS="$results" BENCH_TARGET_DIR="$dir/target" \
      "$dir/bench/run.sh" >"$out/$label-$round.log" 2>&1
    grep '^| 3 |' "$results" | tail -1
  done
done
echo
echo "row 3 per checkout (events/s, bridge µs/event), mean of $rounds:"
for pair in "$@"; do
  label=${pair%%=*}
  for round in $(seq 1 "$rounds"); do
    grep '^| 3 |' "$out/$label-$round.md" | tail -1
  done | awk -F'|' -v label="$label" '
    { gsub(/,/, "", $4); split($4, a, " "); rate += a[1]; cpu += $5; n++ }
    END { if (n) printf "%-10s %8.0f events/s  %5.2f µs/event  (n=%d)\n", label, rate / n, cpu / n, n }'
done
