#!/usr/bin/env bash
# mcm-bridge benchmark suite: one command, one run, ceilings + bridge + peers on the same broker
# (tansu 0.6.0, memory storage) and the same sink (mcm-bridge sandbox), all on loopback.
# Appends a Markdown table to BENCHMARKS.md. See bench/README.md for what each number means.
#
#   bench/run.sh                                   # full size (quiet machine, ~20 min)
#   LABEL=smoke EVENTS_MULTI=5000 EVENTS_SINGLE=5000 EVENTS_PEER=2000 RSS_MINUTES=0.25 \
#     OUTAGE_MINUTES=0.25 WRK_DURATION=3s bench/run.sh   # smoke
#
# Needs: cargo, curl, jq, wrk, python3 (free ports), node+npm and python3-venv for the peers.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---- knobs -------------------------------------------------------------------------------------
EVENTS_MULTI=${EVENTS_MULTI:-500000}     # (3) bridge, PARTITIONS partitions, healthy sink
EVENTS_SINGLE=${EVENTS_SINGLE:-200000}   # (4) bridge, 1 partition, sink latency LATENCY (~20 s)
EVENTS_PEER=${EVENTS_PEER:-20000}        # (6) each peer, PARTITIONS partitions, healthy sink
PARTITIONS=${PARTITIONS:-8}
LATENCY=${LATENCY:-50ms}                 # (4) sink latency; ms or s
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-512}      # bridge mcm.max_in_flight (all scenarios)
RSS_MINUTES=${RSS_MINUTES:-5}            # (5) healthy steady load; fractions allowed
OUTAGE_MINUTES=${OUTAGE_MINUTES:-2}      # (5) sink outage after the healthy part
STEADY_RATE=${STEADY_RATE:-2000}         # (5) produced events/s during the RSS test
WRK_DURATION=${WRK_DURATION:-10s}        # (2) sandbox ceiling
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-64}
PEERS=${PEERS:-1}                        # 0 skips the Node.js and Python peers
SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-1200}  # seconds any one wait may take
# Messages per produced record batch. With 10,000 the bridge stalled on tansu 0.6.0 short of the
# last few hundred events (a plain consumer read them all); with 1 it completes. Likely cause (not
# confirmed): tansu 0.6.0 cannot serve a fetch starting inside a batch (fixed upstream later).
PRODUCE_BATCH=${PRODUCE_BATCH:-1}
LOG_LEVEL=${LOG_LEVEL:-info}             # the bridge's observe.log_level
LABEL=${LABEL:-full}                     # shown in the results heading ("smoke", "medium"…)
BENCH_TARGET_DIR=${BENCH_TARGET_DIR:-$REPO/target}  # cargo target dir for the bridge build
RESULTS=${RESULTS:-$REPO/BENCHMARKS.md}
KEEP=${KEEP:-0}                          # 1 keeps the work dir (logs, RSS samples)
TANSU=${TANSU:-}
BROKER=${BROKER:-tansu}                  # tansu, or mock (librdkafka mock cluster; fallback only)
export MCM_API_KEY=bench-key             # sandbox + bridge + peers (env, not argv)
PLATFORM=BENCH_TEST

# ---- plumbing ----------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcm-bench.XXXXXX")
PIDS=()
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# Stops one process we started: TERM, up to 10 s grace, then KILL.
stop_pid() {
  local pid=$1 _
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  if [[ "$KEEP" == 1 || $rc -ne 0 ]]; then
    log "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

now() { date +%s.%N; }

# Float arithmetic helper: calc 'a / b' → stdout.
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
# Integer with thousands separators: fmt_int 12345.6 → 12,346.
fmt_int() {
  awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); o = ""
    while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
    print s o }'
}

[[ "$BROKER" == tansu || "$BROKER" == mock ]] || die "BROKER must be tansu or mock"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
for tool in cargo curl jq wrk python3; do
  command -v "$tool" >/dev/null || die "missing $tool"
done

# ---- 1. build ----------------------------------------------------------------------------------
BIN=$WORK/bin
mkdir -p "$BIN"
log "building release bridge + bench examples into $BENCH_TARGET_DIR"
(cd "$REPO" && cargo build --release --locked --quiet --target-dir "$BENCH_TARGET_DIR" \
  --bin mcm-bridge --example produce --example consume_only)
# Copy at once: a shared target dir may be overwritten by other builds during the run.
cp "$BENCH_TARGET_DIR/release/mcm-bridge" "$BIN/"
cp "$BENCH_TARGET_DIR/release/examples/produce" "$BENCH_TARGET_DIR/release/examples/consume_only" "$BIN/"

if [[ "$BROKER" == tansu && -z "$TANSU" ]]; then
  TANSU=$(command -v tansu || echo "$HOME/.cargo/bin/tansu")
fi
if [[ "$BROKER" == tansu && ! -x "$TANSU" ]]; then
  log "installing tansu 0.6.0 (memory storage needs dynostore; ~8 min, cached in ~/.cargo/bin)"
  cargo install tansu --version 0.6.0 --locked --features dynostore,libsql --quiet
  TANSU=$HOME/.cargo/bin/tansu
fi

if [[ "$PEERS" == 1 ]]; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then die "PEERS=1 needs node and npm"; fi
  if [[ ! -d "$REPO/bench/peers/node/node_modules" ]]; then
    log "npm ci (bench/peers/node)"
    (cd "$REPO/bench/peers/node" && npm ci --no-audit --no-fund --silent)
  fi
  VENV=$REPO/bench/.venv
  if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import confluent_kafka, requests' 2>/dev/null; then
    log "creating $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet -r "$REPO/bench/peers/python/requirements.txt"
  fi
fi

# ---- broker ------------------------------------------------------------------------------------
T_MULTI=bench.multi; T_SINGLE=bench.single; T_PEER=bench.peer; T_STEADY=bench.steady
RUN_ID=r$(date +%s)
# Starts a broker holding the given topics (name:partitions…) and sets BOOTSTRAP, BROKER_PID and
# BROKER_DESC. Called twice: once for rows 2–4 and 6, and again (a fresh one) for row 5, because
# tansu's memory storage slows down as it fills: with the 620k messages of the earlier rows in it,
# it could no longer take 2,000 events/s, and the bridge's prefetch then filled while waiting for
# it (the 20:52 run), which measured the broker rather than the bridge.
start_broker() { # name:partitions…
  local spec
  if [[ "$BROKER" == mock ]]; then
    # Fallback when tansu is not available: librdkafka's mock cluster in its own process.
    log "starting mcm-bridge dev-broker (librdkafka mock cluster) — NOT tansu"
    local args=()
    for spec in "$@"; do args+=(--topic "$spec"); done
    "$BIN/mcm-bridge" dev-broker "${args[@]}" </dev/null >"$WORK/broker.log" 2>&1 &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
    BOOTSTRAP=
    for _ in $(seq 100); do
      BOOTSTRAP=$(sed -n 's/^bootstrap.servers=//p' "$WORK/broker.log")
      [[ -n "$BOOTSTRAP" ]] && break
      kill -0 "$BROKER_PID" 2>/dev/null || break
      sleep 0.1
    done
    [[ -n "$BOOTSTRAP" ]] || { cat "$WORK/broker.log" >&2; die "dev-broker did not start"; }
    BROKER_DESC="librdkafka mock cluster (mcm-bridge dev-broker), NOT tansu"
  else
    local kport
    kport=$(free_port)
    BOOTSTRAP=127.0.0.1:$kport
    log "starting tansu on $BOOTSTRAP (memory storage)"
    # Own working directory: tansu loads a .env from its cwd.
    (cd "$WORK" && exec "$TANSU" broker --listener-url "tcp://$BOOTSTRAP" \
      --advertised-listener-url "tcp://$BOOTSTRAP" --storage-engine memory://tansu/ \
      >>"$WORK/broker.log" 2>&1) &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
    for _ in $(seq 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$kport") 2>/dev/null && break
      kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/broker.log" >&2; die "tansu exited"; }
      sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$kport") 2>/dev/null || die "tansu did not listen on $BOOTSTRAP"
    for spec in "$@"; do
      (cd "$WORK" && timeout 60 "$TANSU" topic create "${spec%:*}" --partitions "${spec##*:}" \
        --broker "tcp://$BOOTSTRAP" >>"$WORK/topics.log" 2>&1) ||
        { cat "$WORK/topics.log" >&2; die "topic create ${spec%:*}"; }
    done
    BROKER_DESC="tansu 0.6.0, memory storage"
  fi
}
start_broker "$T_MULTI:$PARTITIONS" "$T_SINGLE:1" "$T_PEER:$PARTITIONS"

load() { # topic count → prints the producer's JSON line
  timeout "$SCENARIO_TIMEOUT" "$BIN/produce" --brokers "$BOOTSTRAP" --topic "$1" --count "$2" \
    --run "$RUN_ID-$1" --batch "$PRODUCE_BATCH"
}
log "loading $EVENTS_MULTI messages into $T_MULTI ($PARTITIONS partitions)"
LOAD_MULTI=$(load "$T_MULTI" "$EVENTS_MULTI")
log "  $LOAD_MULTI"
log "loading $EVENTS_SINGLE messages into $T_SINGLE (1 partition)"
log "  $(load "$T_SINGLE" "$EVENTS_SINGLE")"
if [[ "$PEERS" == 1 ]]; then
  log "loading $EVENTS_PEER messages into $T_PEER ($PARTITIONS partitions)"
  log "  $(load "$T_PEER" "$EVENTS_PEER")"
fi

# ---- sandbox -----------------------------------------------------------------------------------
SANDBOX_PID=
SANDBOX_URL=
start_sandbox() { # [extra sandbox flags…]
  local out=$WORK/sandbox.$RANDOM.out
  : >"$out" # exists before the child opens it, so the first sed below cannot fail
  "$BIN/mcm-bridge" sandbox --listen 127.0.0.1:0 --platform-id "$PLATFORM" "$@" \
    >"$out" 2>>"$WORK/sandbox.err" &
  SANDBOX_PID=$!
  PIDS+=("$SANDBOX_PID")
  SANDBOX_URL=
  for _ in $(seq 100); do
    SANDBOX_URL=$(sed -n 's/^sandbox listening on \(http:\/\/[^ ]*\).*/\1/p' "$out")
    [[ -n "$SANDBOX_URL" ]] && return 0
    kill -0 "$SANDBOX_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/sandbox.err" >&2
  die "sandbox did not start"
}
stop_sandbox() { stop_pid "$SANDBOX_PID"; }
stats() { curl -fsS --max-time 5 "$SANDBOX_URL/_sandbox/stats"; }

# Waits until the sandbox has answered `expected` events (accepted + rejected) or `pid` died or the
# timeout passed. Sets ACCEPTED/REJECTED, DONE_AT (epoch seconds, fractional: when the sandbox
# answered the last event) and FIRST_AT (when it answered the first one).
# The sandbox holds each `GET /_sandbox/wait` until the count is reached or 2 s passed, so this
# loop runs curl and jq about once per 2 s: polling `stats` 10 times a second from the shell used
# about a tenth of this 2-core machine, taken from the processes being measured. The timestamps
# come from the sandbox itself (ms resolution), not from when a poll happened to look.
wait_for_events() { # expected pid what
  local expected=$1 pid=$2 what=$3 deadline s first_ms last_ms
  deadline=$(($(date +%s) + SCENARIO_TIMEOUT))
  while :; do
    s=$(curl -fsS --max-time 10 "$SANDBOX_URL/_sandbox/wait?answered=$expected&timeout_ms=2000") ||
      die "sandbox stats unavailable"
    read -r ACCEPTED REJECTED first_ms last_ms < <(jq -r \
      '"\(.accepted_total) \(.rejected_total) \(.first_answer_unix_ms // 0) \(.last_answer_unix_ms // 0)"' <<<"$s")
    ((ACCEPTED + REJECTED >= expected)) && break
    kill -0 "$pid" 2>/dev/null || die "$what exited early (accepted $ACCEPTED of $expected)"
    (($(date +%s) < deadline)) || die "$what: timed out at $ACCEPTED of $expected accepted"
  done
  FIRST_AT=$(calc "$first_ms / 1000")
  DONE_AT=$(calc "$last_ms / 1000")
  ((REJECTED == 0)) || die "$what: the sandbox rejected $REJECTED events: $(stats | jq -c .rejected_by_reason)"
}

# Rate after the first accepted event (start-up and group join excluded).
warm_rate() { # expected
  if (($1 > 1)); then
    calc "($1 - 1) / ($DONE_AT - $FIRST_AT + 0.001)"
  else
    echo 0
  fi
}

# CPU seconds (user + system) a live process has used.
cpu_secs() {
  local ticks
  ticks=$(awk '{print $14 + $15}' "/proc/$1/stat")
  calc "$ticks / $(getconf CLK_TCK)"
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# ---- bridge ------------------------------------------------------------------------------------
BRIDGE_PID=
start_bridge() { # topic group
  local cfg=$WORK/bridge-$1.yaml
  OBSERVE_ADDR=127.0.0.1:$(free_port)
  sed -e "s|@BOOTSTRAP@|$BOOTSTRAP|" -e "s|@GROUP@|$2|" -e "s|@BASE_URL@|$SANDBOX_URL|" \
    -e "s|@MAX_IN_FLIGHT@|$MAX_IN_FLIGHT|" -e "s|@OBSERVE@|$OBSERVE_ADDR|" \
    -e "s|@LOG_LEVEL@|$LOG_LEVEL|" -e "s|@TOPIC@|$1|" "$REPO/bench/bridge.yaml.tmpl" >"$cfg"
  "$BIN/mcm-bridge" run --config "$cfg" >>"$WORK/bridge-$1.log" 2>&1 &
  BRIDGE_PID=$!
  PIDS+=("$BRIDGE_PID")
}

# Runs the bridge over a loaded topic; sets RATE, SECS, CPU_US (CPU µs per event), and, to
# explain the rate, SINK_CPU_US and BROKER_CPU_US (CPU µs per event the sandbox and the broker
# used meanwhile: all three share the machine's cores) and MEAN_REQUEST_MS (the bridge's mean
# HTTP request time, from its own histogram: what Little's law sees in row 4).
bench_bridge() { # topic count
  local t0 cpu sink0 broker0
  t0=$(now)
  sink0=$(cpu_secs "$SANDBOX_PID")
  broker0=$(cpu_secs "$BROKER_PID")
  start_bridge "$1" "bench-$RUN_ID-$1"
  wait_for_events "$2" "$BRIDGE_PID" "bridge on $1"
  cpu=$(cpu_secs "$BRIDGE_PID")
  MEAN_REQUEST_MS=$(curl -fsS --max-time 5 "http://$OBSERVE_ADDR/metrics" | awk '
    /^mcm_bridge_http_request_duration_seconds_sum / { s = $2 }
    /^mcm_bridge_http_request_duration_seconds_count / { c = $2 }
    END { if (c > 0) printf "%.1f", s / c * 1000; else print "-" }') || MEAN_REQUEST_MS=-
  SINK_CPU_US=$(calc "($(cpu_secs "$SANDBOX_PID") - $sink0) * 1000000 / $2")
  BROKER_CPU_US=$(calc "($(cpu_secs "$BROKER_PID") - $broker0) * 1000000 / $2")
  stop_pid "$BRIDGE_PID"
  SECS=$(calc "$DONE_AT - $t0")
  RATE=$(calc "$2 / $SECS")
  WARM=$(warm_rate "$2")
  FIRST_SECS=$(calc "$FIRST_AT - $t0")
  CPU_US=$(calc "$cpu * 1000000 / $2")
}

# ---- 2. ceilings -------------------------------------------------------------------------------
log "ceiling: consume-only, $EVENTS_MULTI messages from $T_MULTI"
CONSUME_JSON=$(timeout "$SCENARIO_TIMEOUT" "$BIN/consume_only" --brokers "$BOOTSTRAP" --topic "$T_MULTI" \
  --count "$EVENTS_MULTI" --group "consume-only-$RUN_ID" --timeout "$SCENARIO_TIMEOUT")
log "  $CONSUME_JSON"
CONSUME_RATE=$(jq -r .rate <<<"$CONSUME_JSON")
# Row 4 reads one partition: what the broker serves from one partition alone is its own ceiling
# (on tansu 0.6.0 every fetch lists all stored batches of the partition, so a long single
# partition is served much slower than eight short ones). Compared with row 4 in the table.
log "ceiling: consume-only, $EVENTS_SINGLE messages from $T_SINGLE (1 partition)"
CONSUME1_JSON=$(timeout "$SCENARIO_TIMEOUT" "$BIN/consume_only" --brokers "$BOOTSTRAP" --topic "$T_SINGLE" \
  --count "$EVENTS_SINGLE" --group "consume-only-1-$RUN_ID" --timeout "$SCENARIO_TIMEOUT")
log "  $CONSUME1_JSON"
CONSUME1_RATE=$(jq -r .rate <<<"$CONSUME1_JSON")
CONSUME1_WARM=$(jq -r .rate_from_first <<<"$CONSUME1_JSON")

log "ceiling: sandbox POST rate, wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION"
start_sandbox
POST_TS=$(($(date +%s%3N) - 60000)) # read by bench/post.lua
export POST_TS
wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" -s "$REPO/bench/post.lua" \
  "$SANDBOX_URL/rmp/event/v1/platforms/$PLATFORM/userevents" >"$WORK/wrk.out" 2>&1 ||
  { cat "$WORK/wrk.out" >&2; die "wrk"; }
SINK_RATE=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.out")
[[ -n "$SINK_RATE" ]] || { cat "$WORK/wrk.out" >&2; die "no rate in wrk output"; }
if grep -q 'Non-2xx' "$WORK/wrk.out"; then
  die "wrk saw non-2xx answers: $(grep 'Non-2xx' "$WORK/wrk.out")"
fi
log "  sandbox: $SINK_RATE req/s ($(stats | jq -c '{accepted_total, rejected_total}'))"
stop_sandbox
LOWER_CEILING=$(awk -v a="$CONSUME_RATE" -v b="$SINK_RATE" 'BEGIN { print (a < b ? a : b) }')
LOWER_NAME=$(awk -v a="$CONSUME_RATE" -v b="$SINK_RATE" 'BEGIN { print (a < b ? "consume-only" : "sandbox POST") }')

# ---- 3. bridge, PARTITIONS partitions, healthy sink --------------------------------------------
log "bridge: $EVENTS_MULTI events, $PARTITIONS partitions, healthy sink"
start_sandbox
bench_bridge "$T_MULTI" "$EVENTS_MULTI"
stop_sandbox
MULTI_RATE=$RATE MULTI_SECS=$SECS MULTI_CPU_US=$CPU_US MULTI_WARM=$WARM
MULTI_SINK_CPU_US=$SINK_CPU_US MULTI_BROKER_CPU_US=$BROKER_CPU_US
log "  $(fmt_int "$MULTI_RATE") events/s in ${MULTI_SECS}s ($(fmt_int "$WARM")/s after the first event), CPU $(printf '%.1f' "$MULTI_CPU_US") µs/event (sandbox $(printf '%.1f' "$SINK_CPU_US"), broker $(printf '%.1f' "$BROKER_CPU_US"))"

# ---- 4. bridge, 1 partition, slow sink ---------------------------------------------------------
if [[ "$LATENCY" =~ ^([0-9.]+)ms$ ]]; then
  LAT_S=$(calc "${BASH_REMATCH[1]} / 1000")
elif [[ "$LATENCY" =~ ^([0-9.]+)s$ ]]; then
  LAT_S=${BASH_REMATCH[1]}
else
  die "LATENCY must look like 50ms or 0.05s"
fi
LITTLE=$(calc "$MAX_IN_FLIGHT / $LAT_S")
log "bridge: $EVENTS_SINGLE events, 1 partition, sink latency $LATENCY, max_in_flight $MAX_IN_FLIGHT"
start_sandbox --latency "$LATENCY"
bench_bridge "$T_SINGLE" "$EVENTS_SINGLE"
stop_sandbox
SINGLE_RATE=$RATE SINGLE_SECS=$SECS SINGLE_WARM=$WARM SINGLE_FIRST_SECS=$FIRST_SECS
SINGLE_CPU_US=$CPU_US SINGLE_SINK_CPU_US=$SINK_CPU_US SINGLE_BROKER_CPU_US=$BROKER_CPU_US
SINGLE_MEAN_REQUEST_MS=$MEAN_REQUEST_MS
log "  $(fmt_int "$SINGLE_RATE") events/s in ${SINGLE_SECS}s ($(fmt_int "$WARM")/s after the first event; Little's-law bound $(fmt_int "$LITTLE")/s; mean request $MEAN_REQUEST_MS ms)"

# ---- 6. peers ----------------------------------------------------------------------------------
NODE_RATE='' NODE_CPU_US='' NODE_WARM='' PY_RATE='' PY_CPU_US='' PY_WARM=''
bench_peer() { # name command… ; sets RATE, CPU_US
  local name=$1 t0 cpu pid
  shift
  start_sandbox
  t0=$(now)
  BROKERS=$BOOTSTRAP TOPIC=$T_PEER GROUP="peer-$name-$RUN_ID" MCM_BASE_URL=$SANDBOX_URL \
    MCM_PLATFORM_ID=$PLATFORM "$@" >>"$WORK/peer-$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_for_events "$EVENTS_PEER" "$pid" "peer $name"
  cpu=$(cpu_secs "$pid")
  stop_pid "$pid"
  stop_sandbox
  SECS=$(calc "$DONE_AT - $t0")
  RATE=$(calc "$EVENTS_PEER / $SECS")
  WARM=$(warm_rate "$EVENTS_PEER")
  CPU_US=$(calc "$cpu * 1000000 / $EVENTS_PEER")
  log "  $name: $(fmt_int "$RATE") events/s in ${SECS}s ($(fmt_int "$WARM")/s after the first event), CPU $(printf '%.1f' "$CPU_US") µs/event"
}
if [[ "$PEERS" == 1 ]]; then
  log "peers: $EVENTS_PEER events each, $PARTITIONS partitions, healthy sink"
  bench_peer node node "$REPO/bench/peers/node/peer.js"
  NODE_RATE=$RATE NODE_CPU_US=$CPU_US NODE_WARM=$WARM
  bench_peer python "$VENV/bin/python" "$REPO/bench/peers/python/peer.py"
  PY_RATE=$RATE PY_CPU_US=$CPU_US PY_WARM=$WARM
fi

# ---- 5. RSS: steady load, then a sink outage ---------------------------------------------------
RSS_SECS=$(awk -v m="$RSS_MINUTES" 'BEGIN { printf "%d", m * 60 }')
OUTAGE_SECS=$(awk -v m="$OUTAGE_MINUTES" 'BEGIN { printf "%d", m * 60 }')
log "RSS: ${RSS_SECS}s at $STEADY_RATE events/s, then a ${OUTAGE_SECS}s sink outage (fresh broker)"
stop_pid "$BROKER_PID"
start_broker "$T_STEADY:$PARTITIONS"
start_sandbox
start_bridge "$T_STEADY" "bench-$RUN_ID-steady"
timeout "$SCENARIO_TIMEOUT" "$BIN/produce" --brokers "$BOOTSTRAP" --topic "$T_STEADY" \
  --rate "$STEADY_RATE" --seconds "$((RSS_SECS + OUTAGE_SECS + 10))" --run "$RUN_ID-steady" --batch "$PRODUCE_BATCH" \
  >"$WORK/steady-producer.log" 2>&1 &
PRODUCER_PID=$!
PIDS+=("$PRODUCER_PID")
: >"$WORK/rss.csv"
sample_rss() { # seconds phase
  local i
  for ((i = 0; i < $1; i++)); do
    sleep 1
    kill -0 "$BRIDGE_PID" 2>/dev/null || die "bridge died during the RSS test"
    echo "$2,$(rss_kib "$BRIDGE_PID")" >>"$WORK/rss.csv"
  done
}
rss_summary() { # phase → "min max last" in MiB
  awk -F, -v p="$1" '$1 == p { v = $2 / 1024; if (n == 0 || v < mn) mn = v; if (v > mx) mx = v; last = v; n++ }
    END { if (n) printf "%.1f %.1f %.1f", mn, mx, last; else print "- - -" }' "$WORK/rss.csv"
}
a0=$(stats | jq -r .accepted_total)
sample_rss "$RSS_SECS" steady
a1=$(stats | jq -r .accepted_total)
STEADY_ACCEPT_RATE=$(calc "($a1 - $a0) / ($RSS_SECS > 0 ? $RSS_SECS : 1)")
if ((OUTAGE_SECS > 0)); then
  curl -fsS --max-time 5 -X PUT -H 'Content-Type: application/json' \
    -d "{\"outage_after\":0,\"outage_for\":\"${OUTAGE_SECS}s\"}" "$SANDBOX_URL/_sandbox/faults" >/dev/null
  sample_rss "$OUTAGE_SECS" outage
fi
read -r RSS_S_MIN RSS_S_MAX RSS_S_LAST <<<"$(rss_summary steady)"
read -r RSS_O_MIN RSS_O_MAX RSS_O_LAST <<<"$(rss_summary outage)"
stop_pid "$PRODUCER_PID"
stop_pid "$BRIDGE_PID"
stop_sandbox
log "  steady: RSS min/max/last $RSS_S_MIN/$RSS_S_MAX/$RSS_S_LAST MiB, accepted $(fmt_int "$STEADY_ACCEPT_RATE")/s"
log "  outage: RSS min/max/last $RSS_O_MIN/$RSS_O_MAX/$RSS_O_LAST MiB"

# ---- 7. results --------------------------------------------------------------------------------
COMMIT=$(git -C "$REPO" rev-parse --short HEAD)
git -C "$REPO" diff --quiet HEAD -- src Cargo.toml Cargo.lock bench examples || COMMIT="$COMMIT+dirty"
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM_GIB=$(awk '/^MemTotal:/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
ratio() { calc "$1 / $2" | awk '{printf "%.2f", $1}'; }
rate() { printf '%s events/s' "$(fmt_int "$1")"; }
peer_row() { # label rate cpu warm
  if [[ -n "$2" ]]; then
    printf '| 6 | %s, %s events, %s partitions, healthy sink | %s (%s/s after the first event); CPU %.0f µs/event | bridge (3) ÷ peer | **%s×** |\n' \
      "$1" "$EVENTS_PEER" "$PARTITIONS" "$(rate "$2")" "$(fmt_int "$4")" "$3" "$(ratio "$MULTI_RATE" "$2")"
  else
    printf '| 6 | %s | not run (PEERS=0) | | |\n' "$1"
  fi
}
# shellcheck disable=SC2016 # the backticks are Markdown code spans, not command substitutions
{
  [[ -s "$RESULTS" ]] || printf '# Benchmarks\n\nResults appended by `bench/run.sh` (see bench/README.md). Newest last.\n'
  printf '\n## %s — %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$LABEL"
  printf 'Machine: %s cores (`nproc`), %s GiB RAM, %s; load average at start %s. Commit `%s`. ' \
    "$(nproc)" "$MEM_GIB" "$CPU_MODEL" "$LOAD_AT_START" "$COMMIT"
  printf 'Broker: %s, loopback. Sink: `mcm-bridge sandbox`. ' "$BROKER_DESC"
  printf 'Knobs: EVENTS_MULTI=%s EVENTS_SINGLE=%s EVENTS_PEER=%s PARTITIONS=%s LATENCY=%s MAX_IN_FLIGHT=%s RSS_MINUTES=%s OUTAGE_MINUTES=%s STEADY_RATE=%s WRK=-t%s/-c%s/%s.\n\n' \
    "$EVENTS_MULTI" "$EVENTS_SINGLE" "$EVENTS_PEER" "$PARTITIONS" "$LATENCY" "$MAX_IN_FLIGHT" \
    "$RSS_MINUTES" "$OUTAGE_MINUTES" "$STEADY_RATE" "$WRK_THREADS" "$WRK_CONNECTIONS" "$WRK_DURATION"
  printf '| # | Measurement | Result | Compared with | Ratio |\n|---|---|---|---|---|\n'
  printf '| 2a | Ceiling: consume-only (plain rdkafka consumer, %s partitions, %s messages) | %s | | |\n' \
    "$PARTITIONS" "$EVENTS_MULTI" "$(rate "$CONSUME_RATE")"
  printf '| 2b | Ceiling: sandbox POST rate (wrk -t%s -c%s, %s) | %s requests/s | | |\n' \
    "$WRK_THREADS" "$WRK_CONNECTIONS" "$WRK_DURATION" "$(fmt_int "$SINK_RATE")"
  printf '| 2c | Ceiling: consume-only, 1 partition, %s messages (what row 4 can at most read) | %s (%s/s after the first message) | | |\n' \
    "$EVENTS_SINGLE" "$(rate "$CONSUME1_RATE")" "$(fmt_int "$CONSUME1_WARM")"
  printf '| 3 | Bridge end to end, %s partitions, %s events, healthy sink | %s (%.1f s; %s/s after the first event); CPU %.1f µs/event (meanwhile sandbox %.1f, broker %.1f µs/event) | lower ceiling (%s, %s/s) | **%s** |\n' \
    "$PARTITIONS" "$EVENTS_MULTI" "$(rate "$MULTI_RATE")" "$MULTI_SECS" "$(fmt_int "$MULTI_WARM")" "$MULTI_CPU_US" "$MULTI_SINK_CPU_US" "$MULTI_BROKER_CPU_US" "$LOWER_NAME" \
    "$(fmt_int "$LOWER_CEILING")" "$(ratio "$MULTI_RATE" "$LOWER_CEILING")"
  # Little's law bounds the steady rate, so the ratio uses the rate after the first event; the
  # overall rate and the time to the first event are shown next to it (bench/README.md, row 4).
  printf '| 4 | Bridge, 1 partition, %s events, sink latency %s, max_in_flight %s | %s/s after the first event (first event after %.1f s; overall %s, %.1f s); mean request %s ms; CPU %.1f µs/event (meanwhile sandbox %.1f, broker %.1f µs/event) | Little'"'"'s law %s/%s = %s/s (target ≥ 0.90); 1-partition ceiling (2c) %s/s after the first message: %s | **%s** (overall %s) |\n' \
    "$EVENTS_SINGLE" "$LATENCY" "$MAX_IN_FLIGHT" "$(fmt_int "$SINGLE_WARM")" "$SINGLE_FIRST_SECS" "$(rate "$SINGLE_RATE")" "$SINGLE_SECS" \
    "$SINGLE_MEAN_REQUEST_MS" "$SINGLE_CPU_US" "$SINGLE_SINK_CPU_US" "$SINGLE_BROKER_CPU_US" "$MAX_IN_FLIGHT" \
    "$LATENCY" "$(fmt_int "$LITTLE")" "$(fmt_int "$CONSUME1_WARM")" "$(ratio "$SINGLE_WARM" "$CONSUME1_WARM")" "$(ratio "$SINGLE_WARM" "$LITTLE")" "$(ratio "$SINGLE_RATE" "$LITTLE")"
  printf '| 5a | Bridge RSS, %s s at %s events/s (accepted %s/s) | min %s / max %s / last %s MiB | target ≤ 64 MiB, flat | |\n' \
    "$RSS_SECS" "$STEADY_RATE" "$(fmt_int "$STEADY_ACCEPT_RATE")" "$RSS_S_MIN" "$RSS_S_MAX" "$RSS_S_LAST"
  printf '| 5b | Bridge RSS during a %s s sink outage (503s), load continuing | min %s / max %s / last %s MiB | target ≤ 64 MiB, flat | |\n' \
    "$OUTAGE_SECS" "$RSS_O_MIN" "$RSS_O_MAX" "$RSS_O_LAST"
  peer_row "Peer: Node.js, Moloco reference-connector style (kafkajs eachMessage, 1 awaited POST)" "$NODE_RATE" "$NODE_CPU_US" "$NODE_WARM"
  peer_row "Peer: Python confluent-kafka + requests loop" "$PY_RATE" "$PY_CPU_US" "$PY_WARM"
} >"$WORK/results.md"
cat "$WORK/results.md" >>"$RESULTS"
cat "$WORK/results.md"
log "appended to $RESULTS"
