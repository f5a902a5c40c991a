#!/usr/bin/env bash
# mcm-bridge benchmark suite: one command, one run, ceilings + bridge + peers on the same broker
# (Apache Kafka from its Maven Central jars, one KRaft node, by default) and the same sink
# (mcm-bridge sandbox, plain HTTP and HTTPS), all on loopback.
# Appends a Markdown table to BENCHMARKS.md. See bench/README.md for what each number means.
#
#   bench/run.sh                                   # full size (quiet machine, ~15 min)
#   LABEL=smoke EVENTS_MULTI=5000 EVENTS_SINGLE=5000 EVENTS_PEER=2000 RSS_MINUTES=0.25 \
#     OUTAGE_MINUTES=0.25 WRK_DURATION=3s RESULTS=/tmp/bench-smoke.md bench/run.sh   # smoke
#
# Needs: cargo, curl, jq, wrk, python3 (free ports); Java 17+ and Maven for Apache Kafka and the
# Java peer; node+npm and python3-venv for the other peers.
set -euo pipefail
export LC_ALL=C # decimal points in awk, printf and `times`

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---- knobs -------------------------------------------------------------------------------------
EVENTS_MULTI=${EVENTS_MULTI:-500000}     # (3) bridge, PARTITIONS partitions, healthy sink (also 3h)
EVENTS_SINGLE=${EVENTS_SINGLE:-200000}   # (4) bridge, 1 partition, sink latency LATENCY (~20 s)
EVENTS_PEER=${EVENTS_PEER:-20000}        # (6) each peer, PARTITIONS partitions, healthy sink
EVENTS_V2=${EVENTS_V2:-$EVENTS_MULTI}    # (3v) bridge, shop-v2 messages and rules v2 (0 skips)
EVENTS_AVRO=${EVENTS_AVRO:-$EVENTS_MULTI}  # (3a) bridge, row 3's events as Avro via a registry (0 skips)
PARTITIONS=${PARTITIONS:-8}
LATENCY=${LATENCY:-50ms}                 # (4) sink latency; ms or s
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-512}      # bridge mcm.max_in_flight (all scenarios)
RSS_MINUTES=${RSS_MINUTES:-5}            # (5) healthy steady load; fractions allowed
OUTAGE_MINUTES=${OUTAGE_MINUTES:-2}      # (5) sink outage after the healthy part
STEADY_RATE=${STEADY_RATE:-2000}         # (5) produced events/s during the RSS test
WRK_DURATION=${WRK_DURATION:-10s}        # (2b, 2d) sandbox ceiling
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-64}
PEERS=${PEERS:-1}                        # 0 skips the peers
PEER_NAMES=${PEER_NAMES:-node python java}  # which peers (6) run, in this order
JAVA_PEER_OPTS=${JAVA_PEER_OPTS:-}       # JVM flags for the Java peer (default: the JVM's own)
HTTPS=${HTTPS:-auto}                     # 3h/4h rows: auto (when the sandbox can serve TLS), 1, 0
H2_MAX_STREAMS=${H2_MAX_STREAMS:-100}    # the HTTPS sandbox's HTTP/2 stream limit ('' = its default)
SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-1200}  # seconds any one wait may take
BROKER=${BROKER:-kafka}                  # kafka (Apache Kafka), tansu, or mock (librdkafka mock)
KAFKA_HEAP=${KAFKA_HEAP:-512m}           # the broker JVM's -Xms/-Xmx
KAFKA_SET=${KAFKA_SET:-}                 # extra broker properties, "k=v k=v"
# Messages per produced record batch. Apache Kafka: librdkafka's batching (up to 10,000 messages
# or 1 MB per batch), as any bulk producer writes. tansu/mock: 1, because with 10,000 the bridge
# stalled on tansu 0.6.0 short of the last few hundred events (a plain consumer read them all).
# Likely cause (not confirmed): tansu 0.6.0 cannot serve a fetch starting inside a batch.
if [[ "$BROKER" == kafka ]]; then PRODUCE_BATCH=${PRODUCE_BATCH:-10000}; else PRODUCE_BATCH=${PRODUCE_BATCH:-1}; fi
LOG_LEVEL=${LOG_LEVEL:-info}             # the bridge's observe.log_level
LABEL=${LABEL:-full}                     # shown in the results heading ("smoke", "medium"…)
BENCH_TARGET_DIR=${BENCH_TARGET_DIR:-$REPO/target}  # cargo target dir for the bridge build
RESULTS=${RESULTS:-$REPO/BENCHMARKS.md}
KEEP=${KEEP:-0}                          # 1 keeps the work dir (logs, RSS samples)
TANSU=${TANSU:-}
export MCM_API_KEY=bench-key             # sandbox + bridge + peers (env, not argv)
PLATFORM=BENCH_TEST

# ---- plumbing ----------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcm-bench.XXXXXX")
PIDS=()
KAFKA_DIR=
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
  # The broker's data is thrown away with the work dir: SIGKILL, no controlled shutdown to wait for.
  if [[ -n "$KAFKA_DIR" ]]; then "$REPO/scripts/kafka.sh" kill --dir "$KAFKA_DIR" 2>>"$WORK/kafka.log" || true; fi
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
f1() { printf '%.1f' "$1"; } # one decimal

case "$BROKER" in kafka | tansu | mock) ;; *) die "BROKER must be kafka, tansu or mock" ;; esac
case "$HTTPS" in auto | 0 | 1) ;; *) die "HTTPS must be auto, 0 or 1" ;; esac
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
for tool in cargo curl jq wrk python3; do
  command -v "$tool" >/dev/null || die "missing $tool"
done
if [[ "$BROKER" == kafka ]] || [[ "$PEERS" == 1 && " $PEER_NAMES " == *" java "* ]]; then
  for tool in java mvn; do
    command -v "$tool" >/dev/null || die "missing $tool (Apache Kafka and the Java peer need Java 17+ and Maven: apt-get install -y openjdk-17-jdk-headless maven)"
  done
fi

# ---- 1. build ----------------------------------------------------------------------------------
BIN=$WORK/bin
mkdir -p "$BIN"
log "building release bridge + bench examples into $BENCH_TARGET_DIR"
(cd "$REPO" && cargo build --release --locked --quiet --target-dir "$BENCH_TARGET_DIR" \
  --bin mcm-bridge --example produce --example consume_only --example registry)
# Copy at once: a shared target dir may be overwritten by other builds during the run.
cp "$BENCH_TARGET_DIR/release/mcm-bridge" "$BIN/"
cp "$BENCH_TARGET_DIR/release/examples/produce" "$BENCH_TARGET_DIR/release/examples/consume_only" \
  "$BENCH_TARGET_DIR/release/examples/registry" "$BIN/"

if [[ "$BROKER" == tansu && -z "$TANSU" ]]; then
  TANSU=$(command -v tansu || echo "$HOME/.cargo/bin/tansu")
fi
if [[ "$BROKER" == tansu && ! -x "$TANSU" ]]; then
  log "installing tansu 0.6.0 (memory storage needs dynostore; ~8 min, cached in ~/.cargo/bin)"
  cargo install tansu --version 0.6.0 --locked --features dynostore,libsql --quiet
  TANSU=$HOME/.cargo/bin/tansu
fi

has_peer() { [[ "$PEERS" == 1 && " $PEER_NAMES " == *" $1 "* ]]; }
for name in $PEER_NAMES; do
  case "$name" in node | python | java) ;; *) die "PEER_NAMES: unknown peer $name (node, python, java)" ;; esac
done
if has_peer node; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then die "the Node.js peer needs node and npm"; fi
  if [[ ! -d "$REPO/bench/peers/node/node_modules" ]]; then
    log "npm ci (bench/peers/node)"
    (cd "$REPO/bench/peers/node" && npm ci --no-audit --no-fund --silent)
  fi
fi
if has_peer python; then
  VENV=$REPO/bench/.venv
  if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import confluent_kafka, requests' 2>/dev/null; then
    log "creating $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet -r "$REPO/bench/peers/python/requirements.txt"
  fi
fi
JAVA_PEER=$REPO/bench/peers/java
if has_peer java; then
  # Rebuilt only when missing or older than its sources; the first build downloads kafka-clients,
  # Jackson and Maven's plugins from Maven Central into ~/.m2.
  if [[ ! -f "$JAVA_PEER/target/peer.jar" ]] ||
    [[ -n "$(find "$JAVA_PEER/pom.xml" "$JAVA_PEER/src" -newer "$JAVA_PEER/target/peer.jar" -print -quit)" ]]; then
    log "mvn package (bench/peers/java)"
    mvn -B -q -f "$JAVA_PEER/pom.xml" package >"$WORK/mvn-java-peer.log" 2>&1 ||
      { tail -40 "$WORK/mvn-java-peer.log" >&2; die "building the Java peer"; }
  fi
fi

# HTTPS rows need `mcm-bridge sandbox --tls-self-signed DIR` (and the bridge's mcm.tls.ca_file),
# which arrive with the `https` branch. Before that, the rows are skipped with a note.
SANDBOX_HELP=$("$BIN/mcm-bridge" sandbox --help 2>&1 || true)
HTTPS_NOTE=
if [[ "$HTTPS" == 0 ]]; then
  HTTPS_NOTE="HTTPS rows not run (HTTPS=0)."
elif ! grep -q -- '--tls-self-signed' <<<"$SANDBOX_HELP"; then
  [[ "$HTTPS" == auto ]] || die "HTTPS=1 but this mcm-bridge's sandbox has no --tls-self-signed"
  HTTPS_NOTE="HTTPS rows not run: this build's \`mcm-bridge sandbox\` has no \`--tls-self-signed\` (branch \`https\` not merged)."
  HTTPS=0
else
  HTTPS=1
fi
[[ -z "$HTTPS_NOTE" ]] || log "$HTTPS_NOTE"
H2_FLAGS=()
if [[ "$HTTPS" == 1 && -n "$H2_MAX_STREAMS" ]]; then
  grep -q -- '--h2-max-streams' <<<"$SANDBOX_HELP" || die "H2_MAX_STREAMS=$H2_MAX_STREAMS but the sandbox has no --h2-max-streams (H2_MAX_STREAMS= uses its default)"
  H2_FLAGS=(--h2-max-streams "$H2_MAX_STREAMS")
fi

# ---- broker ------------------------------------------------------------------------------------
T_MULTI=bench.multi; T_SINGLE=bench.single; T_PEER=bench.peer; T_STEADY=bench.steady; T_V2=bench.v2
T_AVRO=bench.avro
RUN_ID=r$(date +%s)
# Starts a broker holding the given topics (name:partitions…) and sets BOOTSTRAP, BROKER_PID (the
# process whose CPU is the broker's: the JVM for Apache Kafka) and BROKER_DESC.
# tansu and mock: called twice, once for rows 2–4 and 6 and again (a fresh one) for row 5, because
# tansu's memory storage slows down as it fills: with the 620k messages of the earlier rows in it,
# it could no longer take 2,000 events/s, and the bridge's prefetch then filled while waiting for
# it (the 24 Nov 20:52 run), which measured the broker rather than the bridge. Apache Kafka keeps
# its log on disk and does not slow down: one broker serves every row, row 5's topic included.
start_broker() { # name:partitions…
  local spec
  if [[ "$BROKER" == kafka ]]; then
    local out sets=() kv pids=() pid
    for kv in $KAFKA_SET; do sets+=(--set "$kv"); done
    KAFKA_DIR=$WORK/kafka
    log "starting Apache Kafka (1 KRaft node, heap $KAFKA_HEAP${KAFKA_SET:+, $KAFKA_SET}; scripts/kafka.sh)"
    # --watch-pid: the broker is SIGKILLed if this script dies without running its cleanup.
    out=$("$REPO/scripts/kafka.sh" start --dir "$KAFKA_DIR" --heap "$KAFKA_HEAP" --watch-pid $$ \
      "${sets[@]}" 2>>"$WORK/kafka.log") || { tail -40 "$WORK/kafka.log" >&2; die "Apache Kafka did not start"; }
    BOOTSTRAP=$(jq -r .bootstrap <<<"$out")
    BROKER_PID=$(jq -r '.nodes[0].pid' <<<"$out")
    BROKER_DESC="Apache Kafka $(jq -r .version <<<"$out") (1 KRaft node, JVM heap $KAFKA_HEAP${KAFKA_SET:+, $KAFKA_SET})"
    log "  $BOOTSTRAP, JVM pid $BROKER_PID"
    for spec in "$@"; do # one JVM each: in parallel
      "$REPO/scripts/kafka.sh" tool --dir "$KAFKA_DIR" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$BOOTSTRAP" --create --topic "${spec%:*}" --partitions "${spec##*:}" \
        --replication-factor 1 >>"$WORK/topics.log" 2>&1 &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || { cat "$WORK/topics.log" >&2; die "creating topics"; }; done
  elif [[ "$BROKER" == mock ]]; then
    # Fallback when neither Java nor tansu is available: librdkafka's mock cluster in its own process.
    log "starting mcm-bridge dev-broker (librdkafka mock cluster) — NOT Apache Kafka"
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
    BROKER_DESC="librdkafka mock cluster (mcm-bridge dev-broker), NOT Apache Kafka"
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
    BROKER_DESC="tansu 0.6.0, memory storage, NOT Apache Kafka"
  fi
}
if [[ "$BROKER" == kafka ]]; then
  start_broker "$T_MULTI:$PARTITIONS" "$T_SINGLE:1" "$T_PEER:$PARTITIONS" "$T_STEADY:$PARTITIONS" "$T_V2:$PARTITIONS" "$T_AVRO:$PARTITIONS"
else
  start_broker "$T_MULTI:$PARTITIONS" "$T_SINGLE:1" "$T_PEER:$PARTITIONS" "$T_V2:$PARTITIONS" "$T_AVRO:$PARTITIONS"
fi

load() { # topic count [shape] → prints the producer's JSON line
  timeout "$SCENARIO_TIMEOUT" "$BIN/produce" --brokers "$BOOTSTRAP" --topic "$1" --count "$2" \
    --run "$RUN_ID-$1" --batch "$PRODUCE_BATCH" --shape "${3:-shop}"
}
log "loading $EVENTS_MULTI messages into $T_MULTI ($PARTITIONS partitions)"
LOAD_MULTI=$(load "$T_MULTI" "$EVENTS_MULTI")
log "  $LOAD_MULTI"
log "loading $EVENTS_SINGLE messages into $T_SINGLE (1 partition)"
log "  $(load "$T_SINGLE" "$EVENTS_SINGLE")"
if ((EVENTS_V2 > 0)); then
  log "loading $EVENTS_V2 shop-v2 messages into $T_V2 ($PARTITIONS partitions)"
  log "  $(load "$T_V2" "$EVENTS_V2" shop-v2)"
fi
if ((EVENTS_AVRO > 0)); then
  # The in-memory schema registry (the sandbox's, Confluent-compatible) with the shop schema
  # registered under the topic's subject, as Confluent's serializers would; the loader writes
  # row 3's events in its framing with that id.
  REGISTRY_ADDR=127.0.0.1:$(free_port)
  "$BIN/registry" --listen "$REGISTRY_ADDR" --register "$T_AVRO-value=$REPO/bench/shop.avsc" \
    >"$WORK/registry.out" 2>>"$WORK/registry.log" &
  REGISTRY_PID=$!
  PIDS+=("$REGISTRY_PID")
  for _ in $(seq 1 100); do [[ -s "$WORK/registry.out" ]] && break; sleep 0.1; done
  REGISTRY_URL=$(jq -r .url "$WORK/registry.out")
  AVRO_SCHEMA_ID=$(jq -r ".ids[\"$T_AVRO-value\"]" "$WORK/registry.out")
  [[ -n "$AVRO_SCHEMA_ID" && "$AVRO_SCHEMA_ID" != null ]] || die "the bench registry did not start: $(cat "$WORK/registry.log")"
  log "loading $EVENTS_AVRO messages into $T_AVRO as Avro (schema id $AVRO_SCHEMA_ID at $REGISTRY_URL)"
  log "  $(timeout "$SCENARIO_TIMEOUT" "$BIN/produce" --brokers "$BOOTSTRAP" --topic "$T_AVRO" --count "$EVENTS_AVRO" \
    --run "$RUN_ID-$T_AVRO" --batch "$PRODUCE_BATCH" --avro-schema "$REPO/bench/shop.avsc" --schema-id "$AVRO_SCHEMA_ID")"
  # Row 3's template with `format: avro` on its block and the registry: the same rules.
  sed -e 's|^    on_no_match: skip|    format: avro\n    on_no_match: skip|' "$REPO/bench/bridge.yaml.tmpl" >"$WORK/bridge-avro.yaml.tmpl"
  printf 'schema_registry:\n  url: "%s"\n' "$REGISTRY_URL" >>"$WORK/bridge-avro.yaml.tmpl"
fi
if [[ "$PEERS" == 1 ]]; then
  log "loading $EVENTS_PEER messages into $T_PEER ($PARTITIONS partitions)"
  log "  $(load "$T_PEER" "$EVENTS_PEER")"
fi

# CPU seconds (user + system) a live process has used.
cpu_secs() {
  local ticks
  ticks=$(awk '{print $14 + $15}' "/proc/$1/stat")
  calc "$ticks / $(getconf CLK_TCK)"
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# CPU µs per event a live process used since a cpu_secs reading: cpu_us_since PID CPU0 EVENTS.
cpu_us_since() { calc "($(cpu_secs "$1") - $2) * 1000000 / ($3 > 0 ? $3 : 1)"; }

# ---- sandbox -----------------------------------------------------------------------------------
SANDBOX_PID=
SANDBOX_URL=
SANDBOX_CA=   # the CA file of a TLS sandbox (curl and the bridge trust it), empty for plain HTTP
start_sandbox() { # [extra sandbox flags…]
  local out=$WORK/sandbox.$RANDOM.out
  : >"$out" # exists before the child opens it, so the first sed below cannot fail
  "$BIN/mcm-bridge" sandbox --listen 127.0.0.1:0 --platform-id "$PLATFORM" "$@" \
    >"$out" 2>>"$WORK/sandbox.err" &
  SANDBOX_PID=$!
  PIDS+=("$SANDBOX_PID")
  SANDBOX_URL=
  SANDBOX_CA=
  for _ in $(seq 300); do
    SANDBOX_URL=$(sed -n 's/^sandbox listening on \(https\{0,1\}:\/\/[^ ]*\).*/\1/p' "$out")
    [[ -n "$SANDBOX_URL" ]] && return 0
    kill -0 "$SANDBOX_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/sandbox.err" >&2
  die "sandbox did not start"
}
# The same over TLS: a certificate the sandbox generates (`--tls-self-signed DIR` writes the CA
# that signed it to DIR/ca.pem), HTTP/1.1 and HTTP/2 offered by ALPN.
start_sandbox_tls() { # [extra sandbox flags…]
  local dir=$WORK/tls.$RANDOM
  mkdir -p "$dir"
  start_sandbox --tls-self-signed "$dir" "${H2_FLAGS[@]}" "$@"
  [[ "$SANDBOX_URL" == https://* ]] || die "sandbox with --tls-self-signed did not announce an https:// URL: $SANDBOX_URL"
  [[ -s "$dir/ca.pem" ]] || die "sandbox --tls-self-signed $dir wrote no ca.pem"
  SANDBOX_CA=$dir/ca.pem
}
stop_sandbox() { stop_pid "$SANDBOX_PID"; }
sandbox_curl() { curl -fsS ${SANDBOX_CA:+--cacert "$SANDBOX_CA"} "$@"; }
stats() { sandbox_curl --max-time 5 "$SANDBOX_URL/_sandbox/stats"; }

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
    s=$(sandbox_curl --max-time 10 "$SANDBOX_URL/_sandbox/wait?answered=$expected&timeout_ms=2000") ||
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

# ---- bridge ------------------------------------------------------------------------------------
BRIDGE_PID=
# The bridge's mcm.http_version and, against a TLS sandbox, mcm.tls.ca_file.
BRIDGE_HTTP_VERSION=auto
# The bridge's configuration template (row 3v maps shop-v2 messages with bench/bridge-v2.yaml.tmpl).
BRIDGE_TMPL=$REPO/bench/bridge.yaml.tmpl
start_bridge() { # scenario topic group
  local cfg=$WORK/bridge-$1.yaml tls="# plain http: no tls block"
  [[ -z "$SANDBOX_CA" ]] || tls="tls: {ca_file: \"$SANDBOX_CA\"}"
  OBSERVE_ADDR=127.0.0.1:$(free_port)
  sed -e "s|@BOOTSTRAP@|$BOOTSTRAP|" -e "s|@GROUP@|$3|" -e "s|@BASE_URL@|$SANDBOX_URL|" \
    -e "s|@MAX_IN_FLIGHT@|$MAX_IN_FLIGHT|" -e "s|@OBSERVE@|$OBSERVE_ADDR|" \
    -e "s|@HTTP_VERSION@|$BRIDGE_HTTP_VERSION|" -e "s|@TLS@|$tls|" \
    -e "s|@LOG_LEVEL@|$LOG_LEVEL|" -e "s|@TOPIC@|$2|" "$BRIDGE_TMPL" >"$cfg"
  "$BIN/mcm-bridge" run --config "$cfg" >>"$WORK/bridge-$1.log" 2>&1 &
  BRIDGE_PID=$!
  PIDS+=("$BRIDGE_PID")
}

# Runs the bridge over a loaded topic with a fresh group; sets RATE, SECS, WARM, FIRST_SECS,
# CPU_US (the bridge's CPU µs per event, process start to the last answer) and, to explain the
# rate, SINK_CPU_US and BROKER_CPU_US (CPU µs per event the sandbox and the broker used
# meanwhile: all three share the machine's cores) and MEAN_REQUEST_MS (the bridge's mean HTTP
# request time, from its own histogram: what Little's law sees in row 4).
bench_bridge() { # scenario topic count
  local t0 cpu sink0 broker0
  t0=$(now)
  sink0=$(cpu_secs "$SANDBOX_PID")
  broker0=$(cpu_secs "$BROKER_PID")
  start_bridge "$1" "$2" "bench-$RUN_ID-$1"
  wait_for_events "$3" "$BRIDGE_PID" "bridge ($1)"
  cpu=$(cpu_secs "$BRIDGE_PID")
  SINK_CPU_US=$(cpu_us_since "$SANDBOX_PID" "$sink0" "$3")
  BROKER_CPU_US=$(cpu_us_since "$BROKER_PID" "$broker0" "$3")
  MEAN_REQUEST_MS=$(curl -fsS --max-time 5 "http://$OBSERVE_ADDR/metrics" | awk '
    /^mcm_bridge_http_request_duration_seconds_sum / { s = $2 }
    /^mcm_bridge_http_request_duration_seconds_count / { c = $2 }
    END { if (c > 0) printf "%.1f", s / c * 1000; else print "-" }') || MEAN_REQUEST_MS=-
  stop_pid "$BRIDGE_PID"
  SECS=$(calc "$DONE_AT - $t0")
  RATE=$(calc "$3 / $SECS")
  WARM=$(warm_rate "$3")
  FIRST_SECS=$(calc "$FIRST_AT - $t0")
  CPU_US=$(calc "$cpu * 1000000 / $3")
  log "  $(fmt_int "$RATE") events/s in $(f1 "$SECS") s ($(fmt_int "$WARM")/s after the first event, first after $(f1 "$FIRST_SECS") s); CPU µs/event: bridge $(f1 "$CPU_US"), sandbox $(f1 "$SINK_CPU_US"), broker $(f1 "$BROKER_CPU_US"); mean request $MEAN_REQUEST_MS ms"
}

# ---- 2. ceilings -------------------------------------------------------------------------------
# A plain consumer over a loaded topic; sets C_JSON, C_RATE, C_WARM, C_CPU_US (the consumer's CPU
# µs per message, from bash's `times` for the subshell's children) and C_BROKER_CPU_US.
consume_only() { # topic count group
  local broker0
  broker0=$(cpu_secs "$BROKER_PID")
  C_JSON=$( (timeout "$SCENARIO_TIMEOUT" "$BIN/consume_only" --brokers "$BOOTSTRAP" --topic "$1" \
    --count "$2" --group "$3" --timeout "$SCENARIO_TIMEOUT" || exit
    times >"$WORK/times.out")) || die "consume-only on $1 failed"
  C_BROKER_CPU_US=$(cpu_us_since "$BROKER_PID" "$broker0" "$2")
  # `times`: line 2 is the children's "user system", e.g. "0m1.234s 0m0.056s".
  C_CPU_US=$(awk -v n="$2" 'NR == 2 { t = 0
      for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
      printf "%.6f", t * 1000000 / n }' "$WORK/times.out")
  C_RATE=$(jq -r .rate <<<"$C_JSON")
  C_WARM=$(jq -r .rate_from_first <<<"$C_JSON")
  log "  $C_JSON; CPU µs/message: consumer $(f1 "$C_CPU_US"), broker $(f1 "$C_BROKER_CPU_US")"
}
# Apache Kafka: the first group anyone joins creates __consumer_offsets (seconds), and the JVM's
# fetch path is still interpreted; a throwaway read of row 4's topic pays both before 2a's clock.
if [[ "$BROKER" == kafka ]]; then
  log "warm-up: a throwaway group reads $T_SINGLE (creates __consumer_offsets, JIT-compiles fetches)"
  consume_only "$T_SINGLE" "$EVENTS_SINGLE" "warm-up-$RUN_ID"
fi
log "ceiling: consume-only, $EVENTS_MULTI messages from $T_MULTI"
consume_only "$T_MULTI" "$EVENTS_MULTI" "consume-only-$RUN_ID"
CONSUME_RATE=$C_RATE CONSUME_WARM=$C_WARM CONSUME_CPU_US=$C_CPU_US CONSUME_BROKER_CPU_US=$C_BROKER_CPU_US
# Row 4 reads one partition: what the broker serves from one partition alone is its own ceiling
# (on tansu 0.6.0 every fetch lists all stored batches of the partition, so a long single
# partition is served much slower than eight short ones). Compared with row 4 in the table.
log "ceiling: consume-only, $EVENTS_SINGLE messages from $T_SINGLE (1 partition)"
consume_only "$T_SINGLE" "$EVENTS_SINGLE" "consume-only-1-$RUN_ID"
CONSUME1_RATE=$C_RATE CONSUME1_WARM=$C_WARM CONSUME1_CPU_US=$C_CPU_US CONSUME1_BROKER_CPU_US=$C_BROKER_CPU_US

POST_TS=$(($(date +%s%3N) - 60000)) # read by bench/post.lua
export POST_TS
# wrk against the running sandbox; sets WRK_RATE and WRK_SINK_CPU_US (the sandbox's CPU µs per
# request). wrk does not verify certificates and offers no ALPN, so over TLS it speaks HTTP/1.1.
wrk_ceiling() { # name
  local sink0 answered
  sink0=$(cpu_secs "$SANDBOX_PID")
  wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" -s "$REPO/bench/post.lua" \
    "$SANDBOX_URL/rmp/event/v1/platforms/$PLATFORM/userevents" >"$WORK/wrk-$1.out" 2>&1 ||
    { cat "$WORK/wrk-$1.out" >&2; die "wrk ($1)"; }
  WRK_RATE=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk-$1.out")
  [[ -n "$WRK_RATE" ]] || { cat "$WORK/wrk-$1.out" >&2; die "no rate in wrk output ($1)"; }
  if grep -q 'Non-2xx' "$WORK/wrk-$1.out"; then
    die "wrk saw non-2xx answers ($1): $(grep 'Non-2xx' "$WORK/wrk-$1.out")"
  fi
  answered=$(stats | jq -r '.accepted_total + .rejected_total')
  WRK_SINK_CPU_US=$(cpu_us_since "$SANDBOX_PID" "$sink0" "$answered")
  log "  sandbox: $WRK_RATE req/s ($(stats | jq -c '{accepted_total, rejected_total}')), sandbox CPU $(f1 "$WRK_SINK_CPU_US") µs/request"
}
log "ceiling: sandbox POST rate, wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION"
start_sandbox
wrk_ceiling http
stop_sandbox
SINK_RATE=$WRK_RATE SINK_WRK_CPU_US=$WRK_SINK_CPU_US
if [[ "$HTTPS" == 1 ]]; then
  log "ceiling: sandbox POST rate over HTTPS/1.1, wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION"
  start_sandbox_tls
  wrk_ceiling https
  stop_sandbox
  TLS_SINK_RATE=$WRK_RATE TLS_SINK_WRK_CPU_US=$WRK_SINK_CPU_US
fi
lower() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b ? a : b) }'; }
lower_name() { awk -v a="$1" -v b="$2" -v x="$3" -v y="$4" 'BEGIN { print (a < b ? x : y) }'; }
LOWER_CEILING=$(lower "$CONSUME_RATE" "$SINK_RATE")
LOWER_NAME=$(lower_name "$CONSUME_RATE" "$SINK_RATE" "2a, consume-only" "2b, sandbox POST")

# ---- 3. bridge, PARTITIONS partitions, healthy sink --------------------------------------------
log "bridge: $EVENTS_MULTI events, $PARTITIONS partitions, healthy sink"
start_sandbox
bench_bridge multi "$T_MULTI" "$EVENTS_MULTI"
stop_sandbox
MULTI_RATE=$RATE MULTI_SECS=$SECS MULTI_CPU_US=$CPU_US MULTI_WARM=$WARM
MULTI_SINK_CPU_US=$SINK_CPU_US MULTI_BROKER_CPU_US=$BROKER_CPU_US

# ---- 3v. the same, shop-v2 messages mapped with rules v2 (issue 17: within 10 % of row 3) ------
if ((EVENTS_V2 > 0)); then
  log "bridge: $EVENTS_V2 shop-v2 events (rules v2), $PARTITIONS partitions, healthy sink"
  start_sandbox
  BRIDGE_TMPL=$REPO/bench/bridge-v2.yaml.tmpl bench_bridge v2 "$T_V2" "$EVENTS_V2"
  stop_sandbox
  V2_RATE=$RATE V2_SECS=$SECS V2_CPU_US=$CPU_US V2_WARM=$WARM
  V2_SINK_CPU_US=$SINK_CPU_US V2_BROKER_CPU_US=$BROKER_CPU_US
fi

# ---- 3a. the same events as Avro through a schema registry (issue 19: decoding ≤ ~5 µs/event) ---
if ((EVENTS_AVRO > 0)); then
  log "bridge: $EVENTS_AVRO Avro events (format: avro, same rules), $PARTITIONS partitions, healthy sink"
  start_sandbox
  BRIDGE_TMPL=$WORK/bridge-avro.yaml.tmpl bench_bridge avro "$T_AVRO" "$EVENTS_AVRO"
  stop_sandbox
  AVRO_RATE=$RATE AVRO_SECS=$SECS AVRO_CPU_US=$CPU_US AVRO_WARM=$WARM
  AVRO_SINK_CPU_US=$SINK_CPU_US AVRO_BROKER_CPU_US=$BROKER_CPU_US
fi

# ---- 3h. the same over HTTPS: HTTP/1.1 (what `auto` uses: it measured cheaper per event) and HTTP/2 -
# Same topic, fresh group per row. Real MCM is HTTPS only; the sandbox offers h2 and http/1.1 and
# caps HTTP/2 streams per connection at H2_MAX_STREAMS, as cloud front ends do.
if [[ "$HTTPS" == 1 ]]; then
  for v in http1 http2; do
    log "bridge over HTTPS (http_version: $v): $EVENTS_MULTI events, $PARTITIONS partitions, healthy sink"
    start_sandbox_tls
    BRIDGE_HTTP_VERSION=$v bench_bridge "multi-https-$v" "$T_MULTI" "$EVENTS_MULTI"
    stop_sandbox
    printf -v "TLS_${v^^}_RATE" '%s' "$RATE"
    printf -v "TLS_${v^^}_WARM" '%s' "$WARM"
    printf -v "TLS_${v^^}_SECS" '%s' "$SECS"
    printf -v "TLS_${v^^}_CPU_US" '%s' "$CPU_US"
    printf -v "TLS_${v^^}_SINK_CPU_US" '%s' "$SINK_CPU_US"
    printf -v "TLS_${v^^}_BROKER_CPU_US" '%s' "$BROKER_CPU_US"
  done
  TLS_LOWER_CEILING=$(lower "$CONSUME_RATE" "$TLS_SINK_RATE")
  TLS_LOWER_NAME=$(lower_name "$CONSUME_RATE" "$TLS_SINK_RATE" "2a, consume-only" "2d, HTTPS/1.1 sandbox POST")
fi

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
bench_bridge single "$T_SINGLE" "$EVENTS_SINGLE"
stop_sandbox
SINGLE_RATE=$RATE SINGLE_SECS=$SECS SINGLE_WARM=$WARM SINGLE_FIRST_SECS=$FIRST_SECS
SINGLE_CPU_US=$CPU_US SINGLE_SINK_CPU_US=$SINK_CPU_US SINGLE_BROKER_CPU_US=$BROKER_CPU_US
SINGLE_MEAN_REQUEST_MS=$MEAN_REQUEST_MS
log "  Little's-law bound $(fmt_int "$LITTLE")/s"

# ---- 4h. the same over HTTPS with `http2`: where one HTTP/2 connection's stream limit would cap
# requests in flight below max_in_flight (H2_MAX_STREAMS / LATENCY), unless the bridge opens more.
if [[ "$HTTPS" == 1 ]]; then
  log "bridge over HTTPS (http_version: http2): $EVENTS_SINGLE events, 1 partition, sink latency $LATENCY, h2 streams ${H2_MAX_STREAMS:-default}"
  start_sandbox_tls --latency "$LATENCY"
  BRIDGE_HTTP_VERSION=http2 bench_bridge single-https-http2 "$T_SINGLE" "$EVENTS_SINGLE"
  stop_sandbox
  TLS_SINGLE_RATE=$RATE TLS_SINGLE_SECS=$SECS TLS_SINGLE_WARM=$WARM TLS_SINGLE_FIRST_SECS=$FIRST_SECS
  TLS_SINGLE_CPU_US=$CPU_US TLS_SINGLE_SINK_CPU_US=$SINK_CPU_US TLS_SINGLE_BROKER_CPU_US=$BROKER_CPU_US
  TLS_SINGLE_MEAN_REQUEST_MS=$MEAN_REQUEST_MS
fi

# ---- 6. peers ----------------------------------------------------------------------------------
bench_peer() { # name command… ; sets RATE, WARM, CPU_US, BROKER_CPU_US
  local name=$1 t0 cpu pid broker0
  shift
  start_sandbox
  t0=$(now)
  broker0=$(cpu_secs "$BROKER_PID")
  BROKERS=$BOOTSTRAP TOPIC=$T_PEER GROUP="peer-$name-$RUN_ID" MCM_BASE_URL=$SANDBOX_URL \
    MCM_PLATFORM_ID=$PLATFORM "$@" >>"$WORK/peer-$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_for_events "$EVENTS_PEER" "$pid" "peer $name"
  cpu=$(cpu_secs "$pid")
  BROKER_CPU_US=$(cpu_us_since "$BROKER_PID" "$broker0" "$EVENTS_PEER")
  stop_pid "$pid"
  stop_sandbox
  SECS=$(calc "$DONE_AT - $t0")
  RATE=$(calc "$EVENTS_PEER / $SECS")
  WARM=$(warm_rate "$EVENTS_PEER")
  CPU_US=$(calc "$cpu * 1000000 / $EVENTS_PEER")
  log "  $name: $(fmt_int "$RATE") events/s in $(f1 "$SECS") s ($(fmt_int "$WARM")/s after the first event); CPU µs/event: peer $(f1 "$CPU_US"), broker $(f1 "$BROKER_CPU_US")"
}
declare -A PEER_RATE PEER_WARM PEER_CPU_US PEER_BROKER_CPU_US
if [[ "$PEERS" == 1 ]]; then
  log "peers ($PEER_NAMES): $EVENTS_PEER events each, $PARTITIONS partitions, healthy sink"
  for name in $PEER_NAMES; do
    case "$name" in
      node) bench_peer node node "$REPO/bench/peers/node/peer.js" ;;
      python) bench_peer python "$VENV/bin/python" "$REPO/bench/peers/python/peer.py" ;;
      java) # shellcheck disable=SC2086 # JAVA_PEER_OPTS is deliberately word-split
        bench_peer java java $JAVA_PEER_OPTS -cp "$JAVA_PEER/target/peer.jar:$JAVA_PEER/target/lib/*" peer.Peer ;;
    esac
    PEER_RATE[$name]=$RATE PEER_WARM[$name]=$WARM PEER_CPU_US[$name]=$CPU_US PEER_BROKER_CPU_US[$name]=$BROKER_CPU_US
  done
fi

# ---- 5. RSS: steady load, then a sink outage ---------------------------------------------------
RSS_SECS=$(awk -v m="$RSS_MINUTES" 'BEGIN { printf "%d", m * 60 }')
OUTAGE_SECS=$(awk -v m="$OUTAGE_MINUTES" 'BEGIN { printf "%d", m * 60 }')
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
# Growth within the steady phase: mean of its last third − mean of its middle third (the first
# third is warm-up: prefetch and allocator pools filling), in MiB; "-" with fewer than 3 samples.
rss_trend() {
  awk -F, '$1 == "steady" { v[n++] = $2 / 1024 }
    END { if (n < 3) { print "-"; exit }
      a = int(n / 3); b = int(2 * n / 3)
      for (i = a; i < b; i++) m += v[i]; for (i = b; i < n; i++) l += v[i]
      printf "%+.1f", l / (n - b) - m / (b - a) }' "$WORK/rss.csv"
}
: >"$WORK/rss.csv"
STEADY_ACCEPT_RATE=0 STEADY_CPU_US=- STEADY_BROKER_CPU_US=- OUTAGE_CPU_PCT=-
if ((RSS_SECS + OUTAGE_SECS > 0)); then
  if [[ "$BROKER" == kafka ]]; then
    log "RSS: ${RSS_SECS}s at $STEADY_RATE events/s, then a ${OUTAGE_SECS}s sink outage"
  else
    log "RSS: ${RSS_SECS}s at $STEADY_RATE events/s, then a ${OUTAGE_SECS}s sink outage (fresh broker)"
    stop_pid "$BROKER_PID"
    start_broker "$T_STEADY:$PARTITIONS"
  fi
  start_sandbox
  start_bridge steady "$T_STEADY" "bench-$RUN_ID-steady"
  timeout "$SCENARIO_TIMEOUT" "$BIN/produce" --brokers "$BOOTSTRAP" --topic "$T_STEADY" \
    --rate "$STEADY_RATE" --seconds "$((RSS_SECS + OUTAGE_SECS + 10))" --run "$RUN_ID-steady" --batch "$PRODUCE_BATCH" \
    >"$WORK/steady-producer.log" 2>&1 &
  PRODUCER_PID=$!
  PIDS+=("$PRODUCER_PID")
  a0=$(stats | jq -r .accepted_total)
  c0=$(cpu_secs "$BRIDGE_PID")
  b0=$(cpu_secs "$BROKER_PID")
  sample_rss "$RSS_SECS" steady
  a1=$(stats | jq -r .accepted_total)
  STEADY_ACCEPT_RATE=$(calc "($a1 - $a0) / ($RSS_SECS > 0 ? $RSS_SECS : 1)")
  if ((a1 > a0)); then
    STEADY_CPU_US=$(f1 "$(cpu_us_since "$BRIDGE_PID" "$c0" "$((a1 - a0))")")
    STEADY_BROKER_CPU_US=$(f1 "$(cpu_us_since "$BROKER_PID" "$b0" "$((a1 - a0))")")
  fi
  if ((OUTAGE_SECS > 0)); then
    # The outage outlasts the sampling by 10 s: when it ended within the window, the last samples
    # caught the catch-up of the backlog at full speed (fetch buffers, ~+30 MiB for a moment) and
    # reported it as growth during the outage (seen on 6 Dec: 79 MiB "during the outage" in one
    # run, 49.7 in the run before, same commit).
    sandbox_curl --max-time 5 -X PUT -H 'Content-Type: application/json' \
      -d "{\"outage_after\":0,\"outage_for\":\"$((OUTAGE_SECS + 10))s\"}" "$SANDBOX_URL/_sandbox/faults" >/dev/null
    c1=$(cpu_secs "$BRIDGE_PID")
    sample_rss "$OUTAGE_SECS" outage
    OUTAGE_CPU_PCT=$(f1 "$(calc "($(cpu_secs "$BRIDGE_PID") - $c1) * 100 / $OUTAGE_SECS")")
  fi
  stop_pid "$PRODUCER_PID"
  stop_pid "$BRIDGE_PID"
  stop_sandbox
fi
read -r RSS_S_MIN RSS_S_MAX RSS_S_LAST <<<"$(rss_summary steady)"
read -r RSS_O_MIN RSS_O_MAX RSS_O_LAST <<<"$(rss_summary outage)"
RSS_TREND=$(rss_trend)
if ((RSS_SECS + OUTAGE_SECS > 0)); then
  log "  steady: RSS min/max/last $RSS_S_MIN/$RSS_S_MAX/$RSS_S_LAST MiB (trend $RSS_TREND MiB), accepted $(fmt_int "$STEADY_ACCEPT_RATE")/s, CPU µs/event: bridge $STEADY_CPU_US, broker $STEADY_BROKER_CPU_US"
  log "  outage: RSS min/max/last $RSS_O_MIN/$RSS_O_MAX/$RSS_O_LAST MiB, bridge CPU $OUTAGE_CPU_PCT % of a core"
fi

# ---- 7. results --------------------------------------------------------------------------------
COMMIT=$(git -C "$REPO" rev-parse --short HEAD)
git -C "$REPO" diff --quiet HEAD -- src Cargo.toml Cargo.lock bench examples scripts || COMMIT="$COMMIT+dirty"
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM_GIB=$(awk '/^MemTotal:/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
ratio() { calc "$1 / $2" | awk '{printf "%.2f", $1}'; }
rate() { printf '%s events/s' "$(fmt_int "$1")"; }
yes_no() { awk "BEGIN { print ($1) ? \"yes\" : \"**no**\" }"; }
declare -A PEER_LABEL=(
  [node]="Peer: Node.js, Moloco reference-connector style (kafkajs eachMessage, 1 awaited POST)"
  [python]="Peer: Python confluent-kafka + requests loop"
  [java]="Peer: Java kafka-clients $(sed -n 's|.*<kafka.version>\(.*\)</kafka.version>.*|\1|p' "$JAVA_PEER/pom.xml") + java.net.http (1 synchronous POST, commitSync per poll)"
)
peer_row() { # name
  if [[ -n "${PEER_RATE[$1]:-}" ]]; then
    printf '| 6 | %s, %s events, %s partitions, healthy sink | %s (%s/s after the first event) | %.0f (peer) | %.1f | bridge (3) ÷ peer | **%s×** |\n' \
      "${PEER_LABEL[$1]}" "$EVENTS_PEER" "$PARTITIONS" "$(rate "${PEER_RATE[$1]}")" "$(fmt_int "${PEER_WARM[$1]}")" \
      "${PEER_CPU_US[$1]}" "${PEER_BROKER_CPU_US[$1]}" "$(ratio "$MULTI_RATE" "${PEER_RATE[$1]}")"
  else
    printf '| 6 | %s | not run (PEERS=%s, PEER_NAMES=%s) | | | | |\n' "${PEER_LABEL[$1]}" "$PEERS" "$PEER_NAMES"
  fi
}
# shellcheck disable=SC2016 # the backticks are Markdown code spans, not command substitutions
tls_row() { # version label
  local V=${1^^} r w s c k b
  r=TLS_${V}_RATE w=TLS_${V}_WARM s=TLS_${V}_SECS c=TLS_${V}_CPU_US k=TLS_${V}_SINK_CPU_US b=TLS_${V}_BROKER_CPU_US
  printf '| 3h | Bridge over HTTPS, `http_version: %s` (%s), %s partitions, %s events, healthy sink | %s (%.1f s; %s/s after the first event); sandbox %.1f µs/event | %.1f | %.1f | lower HTTPS ceiling (%s, %s/s); plain HTTP (3) | **%s**; %s of (3) |\n' \
    "$1" "$2" "$PARTITIONS" "$EVENTS_MULTI" "$(rate "${!r}")" "${!s}" "$(fmt_int "${!w}")" "${!k}" "${!c}" "${!b}" \
    "$TLS_LOWER_NAME" "$(fmt_int "$TLS_LOWER_CEILING")" "$(ratio "${!r}" "$TLS_LOWER_CEILING")" "$(ratio "${!r}" "$MULTI_RATE")"
}
# shellcheck disable=SC2016 # the backticks are Markdown code spans, not command substitutions
{
  [[ -s "$RESULTS" ]] || printf '# Benchmarks\n\nResults appended by `bench/run.sh` (see bench/README.md). Newest last.\n'
  printf '\n## %s — %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$LABEL"
  printf 'Machine: %s cores (`nproc`), %s GiB RAM, %s; load average at start %s. Commit `%s`. ' \
    "$(nproc)" "$MEM_GIB" "$CPU_MODEL" "$LOAD_AT_START" "$COMMIT"
  printf 'Broker: %s, loopback. Sink: `mcm-bridge sandbox`%s. ' "$BROKER_DESC" \
    "$([[ "$HTTPS" == 1 ]] && printf ' over plain HTTP, and over HTTPS in 2d, 3h and 4h (a certificate it generates; HTTP/2 streams per connection: %s)' "${H2_MAX_STREAMS:-sandbox default}")"
  printf 'Knobs: EVENTS_MULTI=%s EVENTS_SINGLE=%s EVENTS_PEER=%s PARTITIONS=%s LATENCY=%s MAX_IN_FLIGHT=%s RSS_MINUTES=%s OUTAGE_MINUTES=%s STEADY_RATE=%s WRK=-t%s/-c%s/%s PRODUCE_BATCH=%s.\n\n' \
    "$EVENTS_MULTI" "$EVENTS_SINGLE" "$EVENTS_PEER" "$PARTITIONS" "$LATENCY" "$MAX_IN_FLIGHT" \
    "$RSS_MINUTES" "$OUTAGE_MINUTES" "$STEADY_RATE" "$WRK_THREADS" "$WRK_CONNECTIONS" "$WRK_DURATION" "$PRODUCE_BATCH"
  printf 'CPU columns: user + system CPU µs per event over the row'"'"'s measured interval, from `/proc/PID/stat`: the process under test (the bridge, or the row'"'"'s consumer or peer), and the broker (%s) meanwhile.\n\n' \
    "$([[ "$BROKER" == kafka ]] && echo 'the JVM' || echo 'its process')"
  printf '| # | Measurement | Result | CPU µs/event | Broker CPU µs/event | Compared with | Ratio |\n|---|---|---|---|---|---|---|\n'
  printf '| 2a | Ceiling: consume-only (plain rdkafka consumer, %s partitions, %s messages) | %s (%s/s after the first message) | %.1f (consumer) | %.1f | | |\n' \
    "$PARTITIONS" "$EVENTS_MULTI" "$(rate "$CONSUME_RATE")" "$(fmt_int "$CONSUME_WARM")" "$CONSUME_CPU_US" "$CONSUME_BROKER_CPU_US"
  printf '| 2b | Ceiling: sandbox POST rate (wrk -t%s -c%s, %s) | %s requests/s; sandbox %.1f µs/request | | | | |\n' \
    "$WRK_THREADS" "$WRK_CONNECTIONS" "$WRK_DURATION" "$(fmt_int "$SINK_RATE")" "$SINK_WRK_CPU_US"
  printf '| 2c | Ceiling: consume-only, 1 partition, %s messages (what row 4 can at most read) | %s (%s/s after the first message) | %.1f (consumer) | %.1f | | |\n' \
    "$EVENTS_SINGLE" "$(rate "$CONSUME1_RATE")" "$(fmt_int "$CONSUME1_WARM")" "$CONSUME1_CPU_US" "$CONSUME1_BROKER_CPU_US"
  if [[ "$HTTPS" == 1 ]]; then
    printf '| 2d | Ceiling: sandbox POST rate over HTTPS/1.1 (wrk -t%s -c%s, %s) | %s requests/s; sandbox %.1f µs/request | | | | |\n' \
      "$WRK_THREADS" "$WRK_CONNECTIONS" "$WRK_DURATION" "$(fmt_int "$TLS_SINK_RATE")" "$TLS_SINK_WRK_CPU_US"
  fi
  printf '| 3 | Bridge end to end, %s partitions, %s events, healthy sink | %s (%.1f s; %s/s after the first event); sandbox %.1f µs/event | %.1f | %.1f | lower ceiling (%s, %s/s) | **%s** |\n' \
    "$PARTITIONS" "$EVENTS_MULTI" "$(rate "$MULTI_RATE")" "$MULTI_SECS" "$(fmt_int "$MULTI_WARM")" "$MULTI_SINK_CPU_US" "$MULTI_CPU_US" "$MULTI_BROKER_CPU_US" \
    "$LOWER_NAME" "$(fmt_int "$LOWER_CEILING")" "$(ratio "$MULTI_RATE" "$LOWER_CEILING")"
  if ((EVENTS_V2 > 0)); then
    printf '| 3v | Row 3 with shop-v2 messages (typed id list, locale, page URLs) mapped with rules v2 (predicates, `if`/`when`, `url`, `language`, `truncate`), %s events | %s (%.1f s; %s/s after the first event); sandbox %.1f µs/event | %.1f | %.1f | row 3'"'"'s bridge CPU %.1f µs/event (target ≤ 1.10) | **%s** |\n' \
      "$EVENTS_V2" "$(rate "$V2_RATE")" "$V2_SECS" "$(fmt_int "$V2_WARM")" "$V2_SINK_CPU_US" "$V2_CPU_US" "$V2_BROKER_CPU_US" \
      "$MULTI_CPU_US" "$(ratio "$V2_CPU_US" "$MULTI_CPU_US")"
  fi
  if ((EVENTS_AVRO > 0)); then
    printf '| 3a | Row 3'"'"'s events as Avro in the schema registry framing (`format: avro`, schema fetched once from the in-memory registry), same rules, %s events | %s (%.1f s; %s/s after the first event); sandbox %.1f µs/event | %.1f | %.1f | row 3'"'"'s bridge CPU %.1f µs/event: Avro costs %+.1f µs/event (target ≤ ~5) | **%s** |\n' \
      "$EVENTS_AVRO" "$(rate "$AVRO_RATE")" "$AVRO_SECS" "$(fmt_int "$AVRO_WARM")" "$AVRO_SINK_CPU_US" "$AVRO_CPU_US" "$AVRO_BROKER_CPU_US" \
      "$MULTI_CPU_US" "$(calc "$AVRO_CPU_US - $MULTI_CPU_US")" "$(ratio "$AVRO_CPU_US" "$MULTI_CPU_US")"
  fi
  if [[ "$HTTPS" == 1 ]]; then
    tls_row http1 "HTTP/1.1 connection pool"
    tls_row http2 "HTTP/2, as many connections as the stream limit needs"
  fi
  # Little's law bounds the steady rate, so the ratio uses the rate after the first event; the
  # overall rate and the time to the first event are shown next to it (bench/README.md, row 4).
  printf '| 4 | Bridge, 1 partition, %s events, sink latency %s, max_in_flight %s | %s/s after the first event (first event after %.1f s; overall %s, %.1f s); mean request %s ms; sandbox %.1f µs/event | %.1f | %.1f | Little'"'"'s law %s/%s = %s/s (target ≥ 0.90); 1-partition ceiling (2c) %s/s after the first message: %s | **%s** (overall %s) |\n' \
    "$EVENTS_SINGLE" "$LATENCY" "$MAX_IN_FLIGHT" "$(fmt_int "$SINGLE_WARM")" "$SINGLE_FIRST_SECS" "$(rate "$SINGLE_RATE")" "$SINGLE_SECS" \
    "$SINGLE_MEAN_REQUEST_MS" "$SINGLE_SINK_CPU_US" "$SINGLE_CPU_US" "$SINGLE_BROKER_CPU_US" "$MAX_IN_FLIGHT" \
    "$LATENCY" "$(fmt_int "$LITTLE")" "$(fmt_int "$CONSUME1_WARM")" "$(ratio "$SINGLE_WARM" "$CONSUME1_WARM")" "$(ratio "$SINGLE_WARM" "$LITTLE")" "$(ratio "$SINGLE_RATE" "$LITTLE")"
  if [[ "$HTTPS" == 1 ]]; then
    printf '| 4h | Bridge over HTTPS, `http_version: http2`, 1 partition, %s events, sink latency %s, max_in_flight %s, HTTP/2 streams per connection %s | %s/s after the first event (first event after %.1f s; overall %s, %.1f s); mean request %s ms; sandbox %.1f µs/event | %.1f | %.1f | Little'"'"'s law %s/s; one HTTP/2 connection alone: %s/%s = %s/s | **%s** (overall %s) |\n' \
      "$EVENTS_SINGLE" "$LATENCY" "$MAX_IN_FLIGHT" "${H2_MAX_STREAMS:-(sandbox default)}" "$(fmt_int "$TLS_SINGLE_WARM")" "$TLS_SINGLE_FIRST_SECS" "$(rate "$TLS_SINGLE_RATE")" "$TLS_SINGLE_SECS" \
      "$TLS_SINGLE_MEAN_REQUEST_MS" "$TLS_SINGLE_SINK_CPU_US" "$TLS_SINGLE_CPU_US" "$TLS_SINGLE_BROKER_CPU_US" "$(fmt_int "$LITTLE")" \
      "${H2_MAX_STREAMS:-?}" "$LATENCY" "$([[ -n "$H2_MAX_STREAMS" ]] && fmt_int "$(calc "$H2_MAX_STREAMS / $LAT_S")" || echo ?)" "$(ratio "$TLS_SINGLE_WARM" "$LITTLE")" "$(ratio "$TLS_SINGLE_RATE" "$LITTLE")"
  fi
  if ((RSS_SECS + OUTAGE_SECS > 0)); then
    printf '| 5a | Bridge RSS, %s s at %s events/s (accepted %s/s) | min %s / max %s / last %s MiB; trend %s MiB | %s | %s (incl. the producer'"'"'s writes) | target ≤ 64 MiB, flat | |\n' \
      "$RSS_SECS" "$STEADY_RATE" "$(fmt_int "$STEADY_ACCEPT_RATE")" "$RSS_S_MIN" "$RSS_S_MAX" "$RSS_S_LAST" "$RSS_TREND" "$STEADY_CPU_US" "$STEADY_BROKER_CPU_US"
    printf '| 5b | Bridge RSS during a %s s sink outage (503s), load continuing | min %s / max %s / last %s MiB | %s %% of a core (nothing delivered) | | target ≤ 64 MiB, flat | |\n' \
      "$OUTAGE_SECS" "$RSS_O_MIN" "$RSS_O_MAX" "$RSS_O_LAST" "$OUTAGE_CPU_PCT"
  else
    printf '| 5a | Bridge RSS at steady load | not run (RSS_MINUTES=%s) | | | | |\n| 5b | Bridge RSS during a sink outage | not run (OUTAGE_MINUTES=%s) | | | | |\n' "$RSS_MINUTES" "$OUTAGE_MINUTES"
  fi
  for name in node python java; do peer_row "$name"; done
  [[ -z "$HTTPS_NOTE" ]] || printf '\n%s\n' "$HTTPS_NOTE"

  # Targets of issue 22, side by side from this one run.
  printf '\n| Target | This run | Met |\n|---|---|---|\n'
  printf '| Bridge ≥ 0.8× the lower ceiling (3 ÷ min(2a, 2b)) | %s | %s |\n' \
    "$(ratio "$MULTI_RATE" "$LOWER_CEILING")" "$(yes_no "$MULTI_RATE / $LOWER_CEILING >= 0.8")"
  peers_txt='' peers_ok=1
  for name in node python java; do
    [[ -n "${PEER_RATE[$name]:-}" ]] || continue
    peers_txt+="${peers_txt:+, }$name $(ratio "$MULTI_RATE" "${PEER_RATE[$name]}")×"
    awk "BEGIN { exit !($MULTI_RATE / ${PEER_RATE[$name]} >= 10) }" || peers_ok=0
  done
  if [[ -n "$peers_txt" ]]; then
    printf '| Bridge ≥ 10× every peer (3 ÷ 6) | %s | %s |\n' "$peers_txt" "$(yes_no "$peers_ok")"
  else
    printf '| Bridge ≥ 10× every peer (3 ÷ 6) | not run | |\n'
  fi
  printf '| 1 partition, %s sink: ≥ 0.9 × %s/%s after the first event (4) | %s | %s |\n' \
    "$LATENCY" "$MAX_IN_FLIGHT" "$LATENCY" "$(ratio "$SINGLE_WARM" "$LITTLE")" "$(yes_no "$SINGLE_WARM / $LITTLE >= 0.9")"
  if [[ "$RSS_S_MAX" != - ]]; then
    rss_max=$(awk -v a="$RSS_S_MAX" -v b="$RSS_O_MAX" 'BEGIN { print (b != "-" && b > a) ? b : a }')
    out_growth=$(awk -v a="$RSS_S_MAX" -v b="$RSS_O_MAX" 'BEGIN { if (b == "-") print 0; else printf "%.1f", b - a }')
    trend=$RSS_TREND
    [[ "$trend" != - ]] || trend=0
    printf '| RSS ≤ 64 MiB and flat (5a, 5b; flat: trend ≤ 2 MiB, outage max ≤ steady max + 2 MiB) | max %s MiB = %s of 64; trend %s MiB; outage max − steady max %+.1f MiB | %s |\n' \
      "$rss_max" "$(ratio "$rss_max" 64)" "$RSS_TREND" "$out_growth" \
      "$(yes_no "$rss_max <= 64 && $trend <= 2 && $out_growth <= 2")"
  else
    printf '| RSS ≤ 64 MiB and flat (5a, 5b) | not run (RSS_MINUTES=0) | |\n'
  fi
  printf '| Bridge CPU ≤ 20 µs/event over plain HTTP (3) | %.1f µs = %s of the budget (row 4: %.1f µs) | %s |\n' \
    "$MULTI_CPU_US" "$(ratio "$MULTI_CPU_US" 20)" "$SINGLE_CPU_US" "$(yes_no "$MULTI_CPU_US <= 20")"
  if ((EVENTS_V2 > 0)); then
    printf '| Rules v2 cost: bridge CPU per event within 10 %% of the shop mapping (3v ÷ 3) | %.1f ÷ %.1f µs = %s | %s |\n' \
      "$V2_CPU_US" "$MULTI_CPU_US" "$(ratio "$V2_CPU_US" "$MULTI_CPU_US")" "$(yes_no "$V2_CPU_US <= 1.10 * $MULTI_CPU_US")"
  fi
  if [[ "$HTTPS" == 1 ]]; then
    printf '| Bridge CPU ≤ 25 µs/event over HTTPS (3h) | http1 (= auto) %.1f µs = %s, http2 %.1f µs = %s of the budget | %s |\n' \
      "$TLS_HTTP1_CPU_US" "$(ratio "$TLS_HTTP1_CPU_US" 25)" "$TLS_HTTP2_CPU_US" "$(ratio "$TLS_HTTP2_CPU_US" 25)" \
      "$(yes_no "$TLS_HTTP1_CPU_US <= 25 && $TLS_HTTP2_CPU_US <= 25")"
  else
    printf '| Bridge CPU ≤ 25 µs/event over HTTPS (3h) | not run | |\n'
  fi
} >"$WORK/results.md"
cat "$WORK/results.md" >>"$RESULTS"
cat "$WORK/results.md"
log "appended to $RESULTS"
