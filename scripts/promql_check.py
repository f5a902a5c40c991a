#!/usr/bin/env python3
"""Check every PromQL expression shipped with mcm-bridge against a real Prometheus.

Used by scripts/check-monitoring.sh; stdlib only (PyYAML is used when present, otherwise a small
parser reads the `expr:` fields of the rule file).

Subcommands:
  wait   --prom URL --job JOB [--min-scrapes N] [--timeout S]
         Wait until Prometheus is ready and has scraped JOB successfully at least N times.
  check  --prom URL --dashboard JSON --alerts YAML --may-be-empty TXT
         Evaluate every dashboard target expression, template-variable query and alert expression
         through /api/v1/query. Fails (exit 1) if any expression errors, if a dashboard expression
         returns no data, or if any metric selector (in a dashboard or alert expression) matches no
         series -- unless the metric or selector is listed in the may-be-empty file.
  lint   --dashboard JSON --alerts YAML --metrics-rs src/observe/metrics.rs [--runbook MD]
         [--alert-tests YAML] [--alertmanager YAML]
         Offline: every mcm_bridge_* name used must be defined in metrics.rs; with --runbook,
         every alert's `runbook` and `runbook_url` must point at a heading of the runbook (all
         `runbook_url`s on one absolute base), and every metric metrics.rs defines (and the
         process_* ones) must be named in it. With --alert-tests (needs PyYAML): every alert has
         a firing and a not-firing case, and every test named "scenario: ..." lists every alert
         at each of its evaluation times (so "exactly one page" is checked against all of them).
         With --alertmanager: every alert name its inhibit rules match exists.
"""

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# Grafana's built-in interval variables and what to put in their place for an instant query.
# With a 1 s scrape interval, 1m holds plenty of samples for rate()/increase()/deriv().
BUILTIN_VARS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
    "__interval_ms": "60000",
}

PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "atan2", "inf", "nan", "start", "end",
}


# ----------------------------------------------------------------------------- extraction

def dashboard_exprs(dash):
    """Yields (where, expr) for every panel target (rows and nested panels included)."""
    def walk(panels, path):
        for p in panels or []:
            title = p.get("title") or "panel %s" % p.get("id")
            for t in p.get("targets") or []:
                expr = t.get("expr")
                if expr:
                    yield ("dashboard: %s%s [%s]" % (path, title, t.get("refId", "?")), expr)
            # collapsed rows keep their panels inside the row
            yield from walk(p.get("panels"), path + title + " / ")
    yield from walk(dash.get("panels"), "")


def dashboard_variable_queries(dash):
    """Turns label_values(selector, label) / query_result(expr) variable queries into PromQL."""
    out = []
    for v in (dash.get("templating") or {}).get("list") or []:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if not q:
            continue
        m = re.match(r"^\s*label_values\(\s*(.*?)\s*,\s*(\w+)\s*\)\s*$", q, re.S)
        if m:
            out.append(("variable $%s" % v.get("name"), "count by (%s) (%s)" % (m.group(2), m.group(1))))
            continue
        m = re.match(r"^\s*query_result\((.*)\)\s*$", q, re.S)
        if m:
            out.append(("variable $%s" % v.get("name"), m.group(1)))
    return out


def _unquote(s):
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        body = s[1:-1]
        return body.replace("''", "'") if s[0] == "'" else json.loads(s)
    return s


def _alert_exprs_fallback(text):
    """Minimal reader for Prometheus rule files: `- alert:`/`- record:` and `expr:` (plain,
    quoted, or a `|`/`>` block scalar). Enough for the files we ship; PyYAML is preferred."""
    rules = []
    lines = text.splitlines()
    name = None
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.split(" #", 1)[0] if not line.lstrip().startswith(("expr:", "- expr:")) else line
        m = re.match(r"^\s*-?\s*(alert|record)\s*:\s*(.+?)\s*$", stripped)
        if m:
            name = "%s %s" % (m.group(1), _unquote(m.group(2)))
            i += 1
            continue
        m = re.match(r"^(\s*)-?\s*expr\s*:\s*(.*?)\s*$", line)
        if m:
            value = m.group(2)
            if value[:1] in ("|", ">"):
                block = []
                indent = None
                i += 1
                while i < len(lines):
                    ln = lines[i]
                    if ln.strip() == "":
                        block.append("")
                        i += 1
                        continue
                    cur = len(ln) - len(ln.lstrip())
                    if indent is None:
                        indent = cur
                    if cur < indent:
                        break
                    block.append(ln[indent:])
                    i += 1
                joiner = "\n" if value[0] == "|" else " "
                expr = joiner.join(block).strip()
            else:
                expr = _unquote(value)
                i += 1
            rules.append((name or "rule", expr))
            name = None
            continue
        i += 1
    return rules


def alert_exprs(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        import yaml  # noqa: PLC0415 (optional dependency)
    except ImportError:
        return _alert_exprs_fallback(text)
    doc = yaml.safe_load(text) or {}
    rules = []
    for g in doc.get("groups") or []:
        for r in g.get("rules") or []:
            kind = "alert" if "alert" in r else "record"
            rules.append(("%s %s" % (kind, r.get(kind)), str(r["expr"]).strip()))
    return rules


# ----------------------------------------------------------------------------- PromQL helpers

_VAR = r"\$(?:\{(\w+)(?::[^}]*)?\}|(\w+))|\[\[(\w+)(?::[^\]]*)?\]\]"
_MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def substitute(expr):
    """Replaces Grafana variables: in label matchers the matcher becomes `label=~".*"` (match
    anything, as "All" would); the interval variables become fixed durations. Returns
    (expr, [unknown variable names])."""
    def matcher(m):
        if re.search(_VAR, m.group(3)):
            return '%s=~".*"' % m.group(1)
        return m.group(0)
    expr = _MATCHER.sub(matcher, expr)
    unknown = []

    def var(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in BUILTIN_VARS:
            return BUILTIN_VARS[name]
        unknown.append(name)
        return m.group(0)
    expr = re.sub(_VAR, var, expr)
    return expr, unknown


def selectors(expr):
    """The vector selectors in an expression: [(metric_name, selector_text)]."""
    # drop string literals outside label matchers, and grouping/matching label lists
    s = re.sub(r'\{[^{}]*\}', lambda m: m.group(0).replace("(", "\x00").replace(")", "\x01"), expr)
    s = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', " ", s)
    out = []
    token = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|\{[^{}]*\}|[a-zA-Z_:][\w:]*|\d+(?:\.\d+)?(?:e[+-]?\d+)?[smhdwy]?|.', re.S)
    toks = [m for m in token.finditer(s)]
    for idx, m in enumerate(toks):
        t = m.group(0)
        if not re.match(r"[a-zA-Z_:]", t) or t.lower() in PROMQL_KEYWORDS:
            continue
        # skip function names (followed by "(") and identifiers inside braces (handled below)
        j = idx + 1
        while j < len(toks) and toks[j].group(0).isspace():
            j += 1
        nxt = toks[j].group(0) if j < len(toks) else ""
        if nxt == "(":
            continue
        sel = t
        if nxt.startswith("{"):
            sel += nxt.replace("\x00", "(").replace("\x01", ")")
        out.append((t, sel))
    return list(dict.fromkeys(out))


def norm(sel):
    return re.sub(r"\s+", "", sel)


# ----------------------------------------------------------------------------- HTTP

def query(prom, expr, timeout=10):
    url = prom.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        try:
            body = json.load(e)
        except Exception:  # noqa: BLE001
            return None, "HTTP %s" % e.code
    except (urllib.error.URLError, OSError, ValueError) as e:
        return None, "request failed: %s" % e
    if body.get("status") != "success":
        return None, "%s: %s" % (body.get("errorType"), body.get("error"))
    data = body["data"]
    if data["resultType"] in ("scalar", "string"):
        return 1, None
    return len(data["result"]), None


# ----------------------------------------------------------------------------- subcommands

def cmd_wait(a):
    deadline = time.monotonic() + a.timeout
    last = "not started"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(a.prom.rstrip("/") + "/-/ready", timeout=2) as r:
                ready = r.status == 200
        except (urllib.error.URLError, OSError):
            ready = False
        if ready:
            q = 'sum_over_time(up{job="%s"}[5m])' % a.job
            n, err = query(a.prom, q)
            if err:
                last = err
            else:
                scrapes = 0
                url = a.prom.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
                with urllib.request.urlopen(url, timeout=5) as r:
                    res = json.load(r)["data"]["result"]
                if res:
                    scrapes = min(float(x["value"][1]) for x in res)
                last = "%d successful scrapes of job %s" % (scrapes, a.job)
                if n and scrapes >= a.min_scrapes:
                    print("prometheus ready: %s" % last)
                    return 0
        else:
            last = "prometheus not ready"
        time.sleep(0.5)
    print("timed out after %ss waiting for the target (%s)" % (a.timeout, last), file=sys.stderr)
    try:
        with urllib.request.urlopen(a.prom.rstrip("/") + "/api/v1/targets", timeout=5) as r:
            for t in json.load(r)["data"]["activeTargets"]:
                print("  target %s: health=%s lastError=%s" % (t.get("scrapeUrl"), t.get("health"), t.get("lastError")),
                      file=sys.stderr)
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        pass
    return 1


def load_allowlist(path):
    allow = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            pat, sep, reason = line.partition(" # ")
            if not sep or not reason.strip():
                raise SystemExit("%s:%d: every entry needs a reason: '<metric or selector> # <reason>'" % (path, n))
            allow[norm(pat)] = reason.strip()
    return allow


def allowed(allow, name, sel):
    for key in (norm(sel), name):
        if key in allow:
            return key
    return None


def cmd_check(a):
    with open(a.dashboard, encoding="utf-8") as f:
        dash = json.load(f)
    allow = load_allowlist(a.may_be_empty)
    used = set()
    failures = []
    ok = empty_allowed = 0

    items = [("dashboard", w, e) for w, e in dashboard_exprs(dash)]
    items += [("variable", w, e) for w, e in dashboard_variable_queries(dash)]
    items += [("alert", w, e) for w, e in alert_exprs(a.alerts)]
    if not items:
        failures.append("no expressions found (wrong file?)")

    for kind, where, raw in items:
        expr, unknown = substitute(raw)
        if unknown:
            failures.append("%s: unknown template variable(s) %s in: %s" % (where, ", ".join(sorted(set(unknown))), raw))
            continue
        n, err = query(a.prom, expr)
        if err:
            failures.append("%s: query error: %s\n      expr: %s" % (where, err, expr))
            continue
        sels = selectors(expr)
        problems = []
        allowed_here = []
        for name, sel in sels:
            cnt, err = query(a.prom, sel)
            if err:
                problems.append("selector %s: query error: %s" % (sel, err))
            elif cnt == 0:
                key = allowed(allow, name, sel)
                if key:
                    used.add(key)
                    allowed_here.append(sel)
                else:
                    problems.append("selector %s matches no series" % sel)
        if kind != "alert" and n == 0 and not allowed_here and not problems:
            problems.append("expression returns no data")
        if problems:
            failures.append("%s:\n      expr: %s\n      %s" % (where, expr, "\n      ".join(problems)))
            continue
        if allowed_here:
            empty_allowed += 1
            if a.verbose:
                print("  empty (allowed): %s  [%s]" % (where, ", ".join(allowed_here)))
        else:
            ok += 1
            if a.verbose:
                print("  ok: %s -> %d series" % (where, n))

    for key in sorted(set(allow) - used) if a.verbose else ():
        print("note: may-be-empty entry %s had data in this run (fine; listed because it may be empty)" % key)
    print("checked %d expressions (dashboard targets, variable queries, alerts): %d ok, %d empty but allowed (may-be-empty), %d failed"
          % (len(items), ok, empty_allowed, len(failures)))
    if failures:
        print("FAILED expressions:", file=sys.stderr)
        for f in failures:
            print("  - " + f, file=sys.stderr)
        return 1
    return 0


def cmd_lint(a):
    with open(a.metrics_rs, encoding="utf-8") as f:
        src = f.read()
    prefix_m = re.search(r'const PREFIX: &str = "(\w+)"', src)
    prefix = prefix_m.group(1) if prefix_m else "mcm_bridge"
    defined = set()
    for m in re.finditer(r'(?:name\(\s*|\(\s*&r,\s*)"(\w+)"', src):
        defined.add("%s_%s" % (prefix, m.group(1)))
    for m in re.finditer(r'histogram\(\s*&r,\s*"(\w+)"', src):
        for suf in ("_bucket", "_sum", "_count"):
            defined.add("%s_%s%s" % (prefix, m.group(1), suf))
    if len(defined) < 10:
        print("could not read metric names from %s (found %d)" % (a.metrics_rs, len(defined)), file=sys.stderr)
        return 1
    with open(a.dashboard, encoding="utf-8") as f:
        dash = json.load(f)
    exprs = list(dashboard_exprs(dash)) + dashboard_variable_queries(dash) + alert_exprs(a.alerts)
    bad = []
    for where, raw in exprs:
        expr, _ = substitute(raw)
        for name in re.findall(r"\b%s_\w+" % prefix, expr):
            if name not in defined:
                bad.append("%s: unknown metric %s" % (where, name))
    if a.runbook:
        with open(a.runbook, encoding="utf-8") as f:
            doc = f.read()
        anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                   for h in re.findall(r"^#+\s+(.*)$", doc, re.M)}
        with open(a.alerts, encoding="utf-8") as f:
            links = re.findall(r"runbook\w*:\s*[\"']?[^#\s\"']*#([\w-]+)", f.read())
        if not links:
            bad.append("%s: no runbook annotations found" % a.alerts)
        for anchor in links:
            if anchor not in anchors:
                bad.append("runbook anchor #%s has no heading in %s" % (anchor, a.runbook))
        bad += lint_runbook_urls(a.alerts)
        documented = set(re.findall(r"\b(?:%s|process)_\w+" % prefix, doc))
        for name in sorted(defined | PROCESS_METRICS):
            base = re.sub(r"_(bucket|sum|count)$", "", name) if name not in documented else name
            if name not in documented and base not in documented:
                bad.append("metric %s is not documented in %s" % (name, a.runbook))
    if a.alert_tests:
        bad += lint_alert_tests(a.alerts, a.alert_tests)
    if a.alertmanager:
        bad += lint_alertmanager(a.alerts, a.alertmanager)
    print("lint: %d expressions, %d metric names defined in %s" % (len(exprs), len(defined), a.metrics_rs))
    for b in bad:
        print("  - " + b, file=sys.stderr)
    return 1 if bad else 0


# The prometheus crate's process collector (src/observe/metrics.rs registers it on Linux).
PROCESS_METRICS = {
    "process_cpu_seconds_total", "process_open_fds", "process_max_fds", "process_virtual_memory_bytes",
    "process_resident_memory_bytes", "process_start_time_seconds", "process_threads",
}


def _yaml():
    try:
        import yaml  # noqa: PLC0415 (optional dependency)
    except ImportError:
        raise SystemExit("PyYAML is needed for this check (Debian: apt-get install python3-yaml)")
    return yaml


def _alert_rules(path):
    with open(path, encoding="utf-8") as f:
        doc = _yaml().safe_load(f) or {}
    return [r for g in doc.get("groups") or [] for r in g.get("rules") or [] if "alert" in r]


def lint_runbook_urls(alerts_path):
    """Every alert has an absolute runbook_url on one common base, anchored at its own name."""
    bad = []
    bases = set()
    for r in _alert_rules(alerts_path):
        url = (r.get("annotations") or {}).get("runbook_url", "")
        m = re.match(r"^(https?://[^#\s]+)#([\w-]+)$", url)
        if not m:
            bad.append("alert %s: runbook_url must be an absolute http(s) link with an anchor (got %r)" % (r["alert"], url))
            continue
        bases.add(m.group(1))
        if m.group(2) != r["alert"].lower():
            bad.append("alert %s: runbook_url anchor #%s is not the alert's own section" % (r["alert"], m.group(2)))
        rel = (r.get("annotations") or {}).get("runbook", "")
        if rel and not rel.endswith("#" + m.group(2)):
            bad.append("alert %s: runbook %r and runbook_url point at different sections" % (r["alert"], rel))
    if len(bases) > 1:
        bad.append("runbook_url uses several bases (%s): use one, so scripts/render-alerts.py can replace it" % ", ".join(sorted(bases)))
    return bad


def lint_alert_tests(alerts_path, tests_path):
    """A firing and a not-firing case per alert; scenarios list every alert at each time."""
    names = [r["alert"] for r in _alert_rules(alerts_path)]
    with open(tests_path, encoding="utf-8") as f:
        doc = _yaml().safe_load(f) or {}
    firing, quiet = set(), set()
    bad = []
    scenarios = 0
    for t in doc.get("tests") or []:
        at = {}
        for case in t.get("alert_rule_test") or []:
            name = case.get("alertname")
            (firing if case.get("exp_alerts") else quiet).add(name)
            at.setdefault(str(case.get("eval_time")), set()).add(name)
            if name not in names:
                bad.append("%s: test %r checks unknown alert %s" % (tests_path, t.get("name"), name))
        if str(t.get("name", "")).startswith("scenario:"):
            scenarios += 1
            for when, listed in sorted(at.items()):
                missing = [n for n in names if n not in listed]
                if missing:
                    bad.append("%s: scenario %r at %s does not list %s" % (tests_path, t["name"], when, ", ".join(missing)))
    for n in names:
        if n not in firing:
            bad.append("%s: alert %s has no firing test case" % (tests_path, n))
        if n not in quiet:
            bad.append("%s: alert %s has no not-firing test case" % (tests_path, n))
    if not scenarios:
        bad.append("%s: no 'scenario: ...' test (an incident with every alert listed)" % tests_path)
    return bad


def lint_alertmanager(alerts_path, am_path):
    """Every alert name an inhibit rule matches (exactly or by regex) exists in the rules."""
    names = [r["alert"] for r in _alert_rules(alerts_path)]
    with open(am_path, encoding="utf-8") as f:
        doc = _yaml().safe_load(f) or {}
    bad = []
    rules = doc.get("inhibit_rules") or []
    if not rules:
        bad.append("%s: no inhibit_rules" % am_path)
    for i, rule in enumerate(rules):
        for side in ("source_matchers", "target_matchers"):
            for m in rule.get(side) or []:
                mm = re.match(r'^\s*alertname\s*(=~|=)\s*"?([^"]*)"?\s*$', m)
                if not mm:
                    continue
                if mm.group(1) == "=":
                    wanted = [mm.group(2)]
                else:
                    wanted = mm.group(2).split("|")
                for w in wanted:
                    if w not in names:
                        bad.append("%s: inhibit rule %d %s names unknown alert %s" % (am_path, i + 1, side, w))
    return bad


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--prom", required=True)
    w.add_argument("--job", required=True)
    w.add_argument("--min-scrapes", type=int, default=5)
    w.add_argument("--timeout", type=float, default=60)
    c = sub.add_parser("check")
    c.add_argument("--prom", required=True)
    c.add_argument("--dashboard", required=True)
    c.add_argument("--alerts", required=True)
    c.add_argument("--may-be-empty", required=True)
    c.add_argument("-v", "--verbose", action="store_true")
    li = sub.add_parser("lint")
    li.add_argument("--dashboard", required=True)
    li.add_argument("--alerts", required=True)
    li.add_argument("--metrics-rs", required=True)
    li.add_argument("--runbook", help="docs/operations.md: check the alerts' runbook anchors and the metric list")
    li.add_argument("--alert-tests", help="alerts_test.yml: check every alert's cases and the scenarios")
    li.add_argument("--alertmanager", help="alertmanager.yml: check the alert names of its inhibit rules")
    a = p.parse_args()
    return {"wait": cmd_wait, "check": cmd_check, "lint": cmd_lint}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
