#!/usr/bin/env python3
"""Writes a copy of deploy/prometheus/alerts.yml for your deployment (stdlib only).

  scripts/render-alerts.py --runbook-base URL [--job NAME] [--container NAME] [-o FILE]

--runbook-base  where docs/operations.md is served, e.g.
                https://git.example.com/acme/mcm-bridge/blob/v0.1.0/docs/operations.md
                (each alert's runbook_url becomes URL#<alert name in lower case>)
--job           the Prometheus job that scrapes mcm-bridge, if not "mcm-bridge"
--container     the container name kube-state-metrics reports (McmBridgeRestarting), if not
                "mcm-bridge"

The rules file is edited as text, so its comments survive; the result is what
`promtool check rules` checks (scripts/check-monitoring.sh renders a copy and checks it). The
shipped file's base (SHIPPED_BASE) is a placeholder under the reserved .example domain.
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALERTS = os.path.join(ROOT, "deploy", "prometheus", "alerts.yml")
SHIPPED_BASE = "https://docs.mcm-bridge.example/operations.md"


def render(text, runbook_base=None, job=None, container=None):
    if runbook_base:
        if not re.match(r"^https?://\S+$", runbook_base) or "#" in runbook_base:
            raise ValueError("--runbook-base must be an http(s) URL without a #fragment")
        n = text.count(SHIPPED_BASE + "#")
        if n == 0:
            raise ValueError("no runbook_url with the shipped base %s in the rules" % SHIPPED_BASE)
        text = text.replace(SHIPPED_BASE + "#", runbook_base.rstrip("/") + "#")
    if job:
        if not re.match(r"^[^\"\\\n]+$", job):
            raise ValueError("--job: a plain label value, no quotes")
        text = text.replace('job="mcm-bridge"', 'job="%s"' % job)
    if container:
        if not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", container):
            raise ValueError("--container: a Kubernetes container name")
        text = text.replace('container="mcm-bridge"', 'container="%s"' % container)
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runbook-base", required=True)
    ap.add_argument("--job")
    ap.add_argument("--container")
    ap.add_argument("--alerts", default=ALERTS, help="the rules file to start from (default: the shipped one)")
    ap.add_argument("-o", "--output", help="write here instead of stdout")
    a = ap.parse_args()
    with open(a.alerts, encoding="utf-8") as f:
        text = f.read()
    try:
        out = render(text, a.runbook_base, a.job, a.container)
    except ValueError as e:
        print("render-alerts: %s" % e, file=sys.stderr)
        return 2
    if a.output:
        with open(a.output, "w", encoding="utf-8") as f:
            f.write(out)
    else:
        sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
