#!/usr/bin/env python3
"""Tests deploy/prometheus/alertmanager.yml's inhibit rules against a real Alertmanager.

  scripts/alertmanager_check.py --config deploy/prometheus/alertmanager.yml \\
      --cases deploy/prometheus/alertmanager_test.yml [--binary PATH] [--timeout S]

promtool tests alert expressions, not inhibition. This starts Alertmanager (`alertmanager` or
Debian's `prometheus-alertmanager`) on 127.0.0.1:<free port> with the shipped configuration
(clustering off, storage in a temporary directory), posts every case's alerts through
/api/v2/alerts, and checks through the same API which alerts it holds back (status.inhibitedBy)
and which stay active. Each case gets a namespace of its own (case-1, …), so cases cannot
inhibit each other. Exit 0 when every alert is as expected, 1 otherwise. Needs PyYAML.
"""

import argparse
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def load_cases(path):
    try:
        import yaml  # noqa: PLC0415 (optional dependency)
    except ImportError:
        raise SystemExit("PyYAML is needed (Debian: apt-get install python3-yaml)")
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    defaults = doc.get("defaults") or {}
    cases = []
    for n, case in enumerate(doc.get("cases") or [], 1):
        alerts = []
        for a in case.get("alerts") or []:
            labels = dict(defaults)
            labels.update(a.get("labels") or {})
            labels["namespace"] = "case-%d" % n
            labels = {k: str(v) for k, v in labels.items() if v is not None}
            count = a.get("partitions")
            for p in range(count) if count else [None]:
                one = dict(labels)
                if p is not None:
                    one["partition"] = str(p)
                alerts.append((one, bool(a.get("inhibited"))))
        cases.append((case.get("name", "case %d" % n), alerts))
    if not cases:
        raise SystemExit("%s: no cases" % path)
    return cases


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(method, url, body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def key(labels):
    return tuple(sorted(labels.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--binary", help="the Alertmanager binary (default: alertmanager or prometheus-alertmanager on PATH)")
    ap.add_argument("--timeout", type=float, default=20, help="seconds to wait for Alertmanager to settle")
    a = ap.parse_args()

    binary = a.binary or shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
    if not binary:
        print("no alertmanager binary (Debian: apt-get install prometheus-alertmanager)", file=sys.stderr)
        return 1
    cases = load_cases(a.cases)
    tmp = tempfile.mkdtemp(prefix="alertmanager-check.")
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    log = open(os.path.join(tmp, "alertmanager.log"), "w")
    proc = subprocess.Popen(
        [binary, "--config.file=" + os.path.abspath(a.config), "--storage.path=" + tmp,
         "--web.listen-address=127.0.0.1:%d" % port, "--cluster.listen-address="],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        return run(base, cases, proc, a.timeout, os.path.join(tmp, "alertmanager.log"))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def run(base, cases, proc, timeout, log_path):
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            print("alertmanager exited (%s):\n%s" % (proc.returncode, open(log_path).read()[-2000:]), file=sys.stderr)
            return 1
        try:
            with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            print("alertmanager not ready after %ss" % timeout, file=sys.stderr)
            return 1
        time.sleep(0.2)

    now = datetime.datetime.now(datetime.timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%S.000Z"
    posted = [
        {"labels": labels, "startsAt": now.strftime(fmt), "endsAt": (now + datetime.timedelta(hours=1)).strftime(fmt)}
        for _, alerts in cases for labels, _ in alerts
    ]
    http("POST", base + "/api/v2/alerts", posted)
    want = {key(labels): (name, inhibited) for name, alerts in cases for labels, inhibited in alerts}

    # Inhibition is evaluated against the alerts Alertmanager holds: poll until it agrees or the
    # time is up, then report what differs.
    while True:
        got = {key(x["labels"]): bool(x["status"]["inhibitedBy"]) for x in http("GET", base + "/api/v2/alerts")}
        wrong = [(k, w) for k, w in want.items() if got.get(k) != w[1]]
        if not wrong or time.monotonic() > deadline:
            break
        time.sleep(0.3)

    failed = 0
    for name, alerts in cases:
        bad = [(labels, inhibited) for labels, inhibited in alerts if got.get(key(labels)) != inhibited]
        held = sum(1 for labels, _ in alerts if got.get(key(labels)))
        if bad:
            failed += 1
            print("FAIL %s" % name)
            for labels, inhibited in bad:
                state = {True: "inhibited", False: "active", None: "missing"}[got.get(key(labels))]
                print("     %s: want %s, got %s" % (json.dumps(labels, sort_keys=True), "inhibited" if inhibited else "active", state))
        else:
            print("ok   %s (%d alerts, %d held back)" % (name, len(alerts), held))
    print("alertmanager inhibition: %d cases, %d failed" % (len(cases), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
