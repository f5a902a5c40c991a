#!/usr/bin/env bash
# Checks the shipped monitoring (deploy/grafana, deploy/prometheus) against a real Prometheus
# scraping a running mcm-bridge.
#
#   scripts/check-monitoring.sh <bridge-metrics-host:port>   full check (needs a bridge, e.g. 127.0.0.1:9464)
#   scripts/check-monitoring.sh --static                     promtool + offline lint only
#
# 1. installs prometheus/promtool, prometheus-alertmanager/amtool, python3 and python3-yaml with
#    apt-get if missing (Debian, as root);
# 2. promtool check rules + promtool test rules (every alert, the cause gating, the incident
#    scenarios), a copy rendered with another runbook base and job checked too; amtool
#    check-config + the inhibit rules tested against a real Alertmanager
#    (scripts/alertmanager_check.py); offline lint: metric names vs src/observe/metrics.rs, every
#    metric documented, runbook links, test coverage per alert;
# 3. starts Prometheus on 127.0.0.1:<free port> (temp dir, 1 s scrape interval, alert rules loaded)
#    scraping the target as job "mcm-bridge", waits for a few successful scrapes;
# 4. evaluates every dashboard and alert expression through /api/v1/query (scripts/promql_check.py).
# Environment: CHECK_TIMEOUT (seconds to wait for the target, default 60), METRICS_PATH (/metrics),
# KEEP_TMP=1 keeps the temp dir (Prometheus log) for debugging.
set -euo pipefail

usage() {
    echo "usage: $0 <bridge-metrics-host:port> | --static" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage
TARGET=$1
STATIC=0
if [[ $TARGET == --static ]]; then
    STATIC=1
elif [[ ! $TARGET =~ ^[A-Za-z0-9._-]+:[0-9]+$ && ! $TARGET =~ ^\[[0-9A-Fa-f:]+\]:[0-9]+$ ]]; then
    usage
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DASHBOARD=$ROOT/deploy/grafana/mcm-bridge.json
ALERTS=$ROOT/deploy/prometheus/alerts.yml
ALERT_TESTS=$ROOT/deploy/prometheus/alerts_test.yml
ALERTMANAGER=$ROOT/deploy/prometheus/alertmanager.yml
ALERTMANAGER_TESTS=$ROOT/deploy/prometheus/alertmanager_test.yml
MAY_BE_EMPTY=$ROOT/deploy/prometheus/may-be-empty.txt
METRICS_RS=$ROOT/src/observe/metrics.rs
CHECK=$ROOT/scripts/promql_check.py
TIMEOUT=${CHECK_TIMEOUT:-60}
METRICS_PATH=${METRICS_PATH:-/metrics}

log() { echo "==> $*"; }

install_tools() {
    local missing=()
    command -v promtool >/dev/null || missing+=(prometheus)
    [[ $STATIC -eq 1 ]] || command -v prometheus >/dev/null || missing+=(prometheus)
    command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
    command -v python3 >/dev/null || missing+=(python3)
    python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
    [[ ${#missing[@]} -gt 0 ]] || return 0
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "missing ${missing[*]}: install them (Debian: apt-get install prometheus python3)" >&2
        exit 1
    fi
    log "installing ${missing[*]} with apt-get"
    # Keep apt from starting the packaged prometheus service (it would listen on :9090 on all
    # interfaces): policy-rc.d returning 101 forbids service starts during the install.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created_policy=1
    fi
    local rc=0
    timeout 600 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 900 \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    [[ $created_policy -eq 0 ]] || rm -f "$policy"
    [[ $rc -eq 0 ]] || { echo "apt-get install ${missing[*]} failed ($rc)" >&2; exit 1; }
}

install_tools

log "promtool check rules"
promtool check rules "$ALERTS"
log "promtool test rules"
promtool test rules "$ALERT_TESTS"
log "rules rendered with another runbook base and job (scripts/render-alerts.py)"
RENDERED=$(mktemp "${TMPDIR:-/tmp}/alerts-rendered.XXXXXX.yml")
python3 "$ROOT/scripts/render-alerts.py" --runbook-base https://runbooks.invalid/mcm-bridge/operations.md \
    --job bridge-check -o "$RENDERED"
promtool check rules "$RENDERED" >/dev/null
grep -q 'runbook_url: "https://runbooks.invalid/mcm-bridge/operations.md#mcmbridgehalted"' "$RENDERED"
grep -q 'up{job="bridge-check"}' "$RENDERED"
rm -f "$RENDERED"
log "alertmanager: amtool check-config, inhibit rules against a real Alertmanager"
amtool check-config "$ALERTMANAGER" >/dev/null
python3 "$ROOT/scripts/alertmanager_check.py" --config "$ALERTMANAGER" --cases "$ALERTMANAGER_TESTS"
log "dashboard JSON, metric names, documented metrics, runbook links, test coverage"
python3 -m json.tool "$DASHBOARD" >/dev/null
LINT_OK=1
python3 "$CHECK" lint --dashboard "$DASHBOARD" --alerts "$ALERTS" --metrics-rs "$METRICS_RS" \
    --runbook "$ROOT/docs/operations.md" --alert-tests "$ALERT_TESTS" \
    --alertmanager "$ALERTMANAGER" || LINT_OK=0

if [[ $STATIC -eq 1 ]]; then
    [[ $LINT_OK -eq 1 ]] || { echo "static checks FAILED (see above)" >&2; exit 1; }
    log "static checks passed"
    exit 0
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/check-monitoring.XXXXXX")
PROM_PID=
cleanup() {
    local rc=$?
    if [[ -n $PROM_PID ]] && kill -0 "$PROM_PID" 2>/dev/null; then
        kill "$PROM_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$PROM_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$PROM_PID" 2>/dev/null || true
        wait "$PROM_PID" 2>/dev/null || true
    fi
    if [[ $rc -ne 0 && -s $TMP/prometheus.log ]]; then
        echo "--- last lines of the Prometheus log ---" >&2
        tail -n 20 "$TMP/prometheus.log" >&2
    fi
    if [[ ${KEEP_TMP:-0} == 1 ]]; then
        echo "kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
PROM=http://127.0.0.1:$PORT

cat >"$TMP/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - "$ALERTS"
scrape_configs:
  - job_name: mcm-bridge
    metrics_path: "$METRICS_PATH"
    static_configs:
      - targets: ["$TARGET"]
YAML
promtool check config "$TMP/prometheus.yml" >/dev/null

log "starting Prometheus on 127.0.0.1:$PORT scraping $TARGET"
prometheus \
    --config.file="$TMP/prometheus.yml" \
    --storage.tsdb.path="$TMP/data" \
    --web.listen-address="127.0.0.1:$PORT" \
    --log.level=warn \
    >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!

log "waiting (up to ${TIMEOUT}s) for 5 successful scrapes"
python3 "$CHECK" wait --prom "$PROM" --job mcm-bridge --min-scrapes 5 --timeout "$TIMEOUT"

log "evaluating dashboard and alert expressions"
LIVE_OK=1
python3 "$CHECK" check --prom "$PROM" --dashboard "$DASHBOARD" --alerts "$ALERTS" \
    --may-be-empty "$MAY_BE_EMPTY" || LIVE_OK=0
if [[ $LINT_OK -eq 0 || $LIVE_OK -eq 0 ]]; then
    echo "monitoring check FAILED (lint: $([[ $LINT_OK -eq 1 ]] && echo ok || echo failed), live: $([[ $LIVE_OK -eq 1 ]] && echo ok || echo failed))" >&2
    exit 1
fi
log "monitoring check passed"
