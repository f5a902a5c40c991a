#!/usr/bin/env python3
"""Chaos harness for mcm-bridge with exact accounting (Jepsen-style).

Starts a broker (`mcm-bridge dev-broker`, librdkafka's mock cluster in its own process), the MCM
sandbox (`mcm-bridge sandbox --record`) and 1-3 `mcm-bridge run` processes in one consumer group,
produces N events with unique ids at a steady rate while a seeded fault schedule runs, then stops
every bridge with SIGTERM and accounts for every produced id: delivered at least once (sandbox
record) or dead-lettered with `mcm.error.reason` (only the deliberately invalid ids may be).

`--broker kafka` runs Apache Kafka instead (3 brokers from scripts/kafka.py, replication factor 3):
the bridges in a network namespace behind a fault proxy, with broker SIGKILLs and restarts, a
network partition, latency, connection resets and half-open stalls (`--group-protocol classic` or
`consumer`, KIP-848).

Python 3 standard library only. The Kafka client side is `examples/chaos_kafka.rs`.
See docs/chaos.md. Exit status: 0 green, 1 accounting/exit-code failure, 2 harness error.
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

GROUP = "chaos"
TOPICS = [("chaos.a", 4), ("chaos.b", 4)]
DLQ_TOPIC = "chaos.dlq"
PLATFORM = "CHAOS_TEST"
API_KEY = "chaos-key-5d1e"
FAULT_KINDS = ["kill", "scale", "burst_5xx", "burst_429", "latency", "sink_outage", "broker_outage"]
# Apache Kafka mode: `broker_outage` becomes real broker faults, plus network faults between the
# bridges and the brokers (a namespace partition and the fault proxy's latency/resets/stalls).
KAFKA_FAULT_KINDS = ["kill", "scale", "burst_5xx", "burst_429", "latency", "sink_outage",
                     "leader_kill", "coordinator_kill", "broker_restart", "partition",
                     "net_latency", "net_reset", "net_stall"]

# Processes and cleanup live in procs.py; the Apache Kafka mode's pieces (apache_kafka.py,
# network.py) are imported by start_kafka_mode only: they need root and Java.
from procs import (HarnessError, cleanup, drain_stdout, log, now, on_signal, read_first_line,
                   spawn)

# --------------------------------------------------------------------------------------------
# Broker, sandbox, bridges
# --------------------------------------------------------------------------------------------


class Broker:
    def __init__(self, binary, workdir):
        args = [binary, "dev-broker"]
        for name, parts in TOPICS + [(DLQ_TOPIC, 2)]:
            args += ["--topic", f"{name}:{parts}"]
        self.p = spawn(args, os.path.join(workdir, "broker.log"), stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE)
        line = read_first_line(self.p, 30, "dev-broker")
        if not line.startswith("bootstrap.servers="):
            raise HarnessError(f"dev-broker: unexpected first line {line!r}")
        self.bootstrap = line.split("=", 1)[1]
        drain_stdout(self.p)

    def command(self, cmd):
        self.p.stdin.write((cmd + "\n").encode())
        self.p.stdin.flush()

    def stop(self):
        if self.p.poll() is None:
            try:
                self.command("quit")
            except OSError:
                pass
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=10)


def free_port(host="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_port(port, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise HarnessError(f"{what} not listening on 127.0.0.1:{port} within {timeout}s")


class TansuBroker:
    """tansu 0.6.0 with sqlite storage. `down` kills the broker process (SIGKILL), `up` starts it
    again on the same file: a real broker crash and restart. tansu 0.6.0 never expires a member
    that died without LeaveGroup, so in this mode bridges are only ever stopped cleanly."""

    def __init__(self, binary, workdir):
        self.binary, self.workdir = binary, workdir
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.db = os.path.join(workdir, "tansu.db")
        self.restarts = 0
        self.p = None
        self._start()
        for name, parts in TOPICS + [(DLQ_TOPIC, 2)]:
            r = subprocess.run([binary, "topic", "create", name, "--partitions", str(parts),
                                "--broker", f"tcp://{self.bootstrap}"],
                               capture_output=True, timeout=30, check=False, cwd=workdir)
            if r.returncode != 0:
                raise HarnessError(f"tansu topic create {name}: {r.stderr.decode()[-500:]}")

    def _start(self):
        url = f"tcp://{self.bootstrap}"
        self.p = spawn([self.binary, "broker", "--listener-url", url, "--advertised-listener-url",
                        url, "--storage-engine", "sqlite://tansu.db"],
                       os.path.join(self.workdir, "broker.log"), cwd=self.workdir)
        wait_port(self.port, 30, "tansu")

    def command(self, cmd):
        if cmd == "down":
            self.p.kill()
            self.p.wait(timeout=10)
        elif cmd == "up":
            self.restarts += 1
            self._start()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=10)


class Sandbox:
    def __init__(self, binary, workdir, host="127.0.0.1"):
        self.record = os.path.join(workdir, "accepted.jsonl")
        env = dict(os.environ, MCM_API_KEY=API_KEY)
        self.p = spawn([binary, "sandbox", "--listen", f"{host}:0", "--platform-id", PLATFORM,
                        "--record", self.record], os.path.join(workdir, "sandbox.log"),
                       stdout=subprocess.PIPE, env=env)
        line = read_first_line(self.p, 30, "sandbox")
        # "sandbox listening on http://127.0.0.1:PORT (platform P)"
        url = [w for w in line.split() if w.startswith("http://")]
        if not url:
            raise HarnessError(f"sandbox: unexpected first line {line!r}")
        self.url = url[0]
        drain_stdout(self.p)

    def _req(self, method, path, body=None, timeout=10):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (loopback only)
            return json.loads(r.read() or b"null")

    def stats(self):
        return self._req("GET", "/_sandbox/stats")

    def faults(self, knobs):
        return self._req("PUT", "/_sandbox/faults", knobs)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=10)


BRIDGE_CONFIG = """\
kafka:
  bootstrap_servers: "{bootstrap}"
  group_id: {group}
{group_settings}  commit_interval: 200ms
  properties:
{properties}mcm:
  base_url: {sandbox}
  allow_insecure_http: true
  platform_id: {platform}
  api_key: {api_key}
  timeout: 5s
  future_tolerance: 1h
  max_in_flight: 64
  retry:
    initial_backoff: 20ms
    max_backoff: 1s
    max_attempts: 1000000
  circuit_breaker:
    failure_threshold: 20
    probe_interval: 500ms
delivery:
  dlq_topic: {dlq}
  drain_timeout: 3s
observe:
  listen: 127.0.0.1:0
  log_level: info,librdkafka=warn
topics:
{topics}"""

# The classic protocol: the member keeps its own session (6 s, heartbeat every 500 ms). KIP-848
# (`consumer`): the broker owns session and heartbeat (scripts/kafka.py sets the same 6 s / 500 ms
# on the broker), so the bridge's config must not name them.
GROUP_SETTINGS = {
    "classic": "  session_timeout: 6s\n",
    "consumer": "  group_protocol: consumer\n",
}
CLASSIC_PROPERTIES = "    heartbeat.interval.ms: 500\n"
# Apache Kafka mode: a 10 s session (both protocols; chaos/apache_kafka.py says why), so that a
# killed group coordinator is replaced within it, as in production.
KAFKA_GROUP_SETTINGS = {
    "classic": "  session_timeout: 10s\n",
    "consumer": "  group_protocol: consumer\n",
}
KAFKA_CLASSIC_PROPERTIES = "    heartbeat.interval.ms: 1000\n"
# Apache Kafka mode: a request on a half-open connection (the `net_stall` fault) is given up after
# 10 s instead of librdkafka's 60 s default, and the connection with it.
KAFKA_MODE_PROPERTIES = "    socket.timeout.ms: 10000\n"


def bridge_config(args, bootstrap, sandbox_url):
    kafka_mode = args.broker == "kafka"
    props = ""
    if args.group_protocol == "classic":
        props = KAFKA_CLASSIC_PROPERTIES if kafka_mode else CLASSIC_PROPERTIES
    if kafka_mode:
        props += KAFKA_MODE_PROPERTIES
    group_settings = (KAFKA_GROUP_SETTINGS if kafka_mode else GROUP_SETTINGS)[args.group_protocol]
    return BRIDGE_CONFIG.format(
        bootstrap=bootstrap, group=GROUP, sandbox=sandbox_url, platform=PLATFORM,
        api_key=API_KEY, dlq=DLQ_TOPIC, group_settings=group_settings,
        properties=props or "    {}\n",
        topics="".join(TOPIC_BLOCK.format(name=n) for n, _ in TOPICS))


TOPIC_BLOCK = """\
  - topic: {name}
    on_no_match: dlq
    fields:
      id: {{path: id}}
      timestamp: {{path: ts, transform: epoch_millis}}
      channel_type: SITE
      user_id: {{path: user}}
    rules:
      - when: {{field: kind, equals: home}}
        event_type: HOME
"""


class Bridges:
    """The bridge processes of the group. Every exit is checked: after SIGTERM it must be 0;
    any exit we did not cause is an error."""

    def __init__(self, binary, workdir, config, wrap=None):
        self.binary, self.workdir, self.config = binary, workdir, config
        self.wrap = wrap or (lambda args: args)  # e.g. run inside the bridges' namespace
        self.live = {}  # name -> Popen
        self.n = 0
        self.bad_exits = []  # (name, how, code)
        self.lock = threading.Lock()

    def start(self):
        with self.lock:
            self.n += 1
            name = f"bridge-{self.n}"
            env = dict(os.environ, RUST_LOG=os.environ.get("CHAOS_RUST_LOG", "info,librdkafka=warn"))
            self.live[name] = spawn(self.wrap([self.binary, "run", "--config", self.config]),
                                    os.path.join(self.workdir, name + ".log"), env=env)
        log(f"started {name} (pid {self.live[name].pid}); members {sorted(self.live)}")
        return name

    def kill(self, name):
        with self.lock:
            p = self.live.pop(name)
        p.kill()
        p.wait(timeout=10)
        log(f"SIGKILLed {name}")

    def term(self, name, timeout=60):
        with self.lock:
            p = self.live.pop(name)
        t = time.monotonic()
        p.send_signal(signal.SIGTERM)
        try:
            code = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
            code = "timeout"
        took = time.monotonic() - t
        if code != 0:
            self.bad_exits.append((name, "SIGTERM", code))
            log(f"ERROR {name} exited {code} after SIGTERM ({took:.1f}s)")
        else:
            log(f"stopped {name} with SIGTERM: exit 0 in {took:.1f}s")
        return took

    def check_unexpected(self):
        with self.lock:
            for name, p in list(self.live.items()):
                code = p.poll()
                if code is not None:
                    del self.live[name]
                    self.bad_exits.append((name, "unexpected", code))
                    log(f"ERROR {name} exited on its own with {code}")

    def names(self):
        """Live members, oldest first."""
        with self.lock:
            return sorted(self.live, key=lambda n: int(n.rsplit("-", 1)[1]))


# --------------------------------------------------------------------------------------------
# Progress monitor: the sandbox's accepted_total over time, for recovery times.
# --------------------------------------------------------------------------------------------


class Monitor:
    def __init__(self, sandbox, bridges, interval=0.25):
        self.sandbox, self.bridges, self.interval = sandbox, bridges, interval
        self.samples = []  # (t, accepted_total, unique_ids)
        self.stop_ev = threading.Event()
        self.errors = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_ev.wait(self.interval):
            try:
                s = self.sandbox.stats()
                self.samples.append((now(), s["accepted_total"], s["unique_ids"]))
            except (OSError, urllib.error.URLError, ValueError):
                self.errors += 1
            self.bridges.check_unexpected()

    def last(self):
        return self.samples[-1] if self.samples else (now(), 0, 0)

    def stop(self):
        self.stop_ev.set()
        self.thread.join(5)

    def resumed_after(self, t_from, t_to=None):
        """First sample time >= t_from at which accepted_total grew; None if never (until t_to)."""
        prev = None
        for t, acc, _ in self.samples:
            if t_to is not None and t > t_to:
                break
            if t < t_from:
                prev = acc
                continue
            if prev is not None and acc > prev:
                return t
            prev = acc
        return None

    def longest_stall(self, t_from, t_to):
        """Longest interval in [t_from, t_to] without any acceptance."""
        longest, since, prev = 0.0, None, None
        for t, acc, _ in self.samples:
            if t < t_from:
                prev = acc
                continue
            if t > t_to:
                break
            if since is None:
                since = t
            if prev is not None and acc > prev:
                since = t
            longest = max(longest, t - since)
            prev = acc
        return longest


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


def make_schedule(rng, n_faults, profile, allowed=FAULT_KINDS):
    """Every allowed kind at least once (when n_faults allows), the rest drawn at random; seeded."""
    kinds = list(allowed)
    rng.shuffle(kinds)
    kinds = kinds[:n_faults]
    while len(kinds) < n_faults:
        kinds.append(rng.choice(allowed))
    rng.shuffle(kinds)
    sched = []
    for k in kinds:
        f = {"kind": k, "gap_before_s": round(rng.uniform(*profile["gap"]), 1)}
        if k in ("burst_5xx", "burst_429"):
            f["rate"] = round(rng.uniform(0.3, 0.8), 2)
            f["for_s"] = round(rng.uniform(*profile["burst"]), 1)
        elif k == "latency":
            f["latency"] = "2s"
            f["for_s"] = round(rng.uniform(*profile["burst"]), 1)
        elif k == "sink_outage":
            f["for_s"] = profile["sink_outage"]
        elif k == "broker_outage":
            f["for_s"] = profile["broker_outage"]
        elif k == "kill":
            f["restart_after_s"] = round(rng.uniform(0.0, 2.0), 1)
        elif k == "scale":
            f["hold_s"] = round(rng.uniform(*profile["scale_hold"]), 1)
        elif k in ("leader_kill", "coordinator_kill"):
            f["down_s"] = round(rng.uniform(*profile["broker_down"]), 1)
        elif k == "partition":
            f["for_s"] = round(rng.uniform(*profile["partition"]), 1)
        elif k == "net_latency":
            f["latency_ms"] = 200
            f["for_s"] = round(rng.uniform(*profile["net"]), 1)
        elif k == "net_reset":
            f["rate"] = 0.2
            f["for_s"] = round(rng.uniform(*profile["net"]), 1)
        elif k == "net_stall":
            f["for_s"] = round(rng.uniform(*profile["net"]), 1)
        sched.append(f)
    return sched


def schedule_seconds(schedule):
    """A rough duration of the schedule (gaps, fault durations, member start/stop overhead)."""
    total = 5.0
    for f in schedule:
        total += f["gap_before_s"] + f.get("for_s", 0) + f.get("hold_s", 0)
        total += f.get("restart_after_s", 0) + (6 if f["kind"] == "scale" else 0)
        total += 8 if f["kind"] in ("kill", "broker_outage") else 1  # waiting for recovery
        # A JVM start on a busy 2-core machine, then the replicas catching up.
        total += f.get("down_s", 0) + (8 if f["kind"] in BROKER_KINDS else 0)
        total += 4 if f["kind"] in ("partition", "net_stall") else 0  # session/socket timeouts
    return total


BROKER_KINDS = ("leader_kill", "coordinator_kill", "broker_restart")


def run_fault(f, ctx, rng):
    """Injects one fault; returns (t_inject, t_heal, notes)."""
    sb, broker, bridges = ctx["sandbox"], ctx["broker"], ctx["bridges"]
    k = f["kind"]
    t_inject = now()
    notes = {}
    if k == "kill":
        victim = rng.choice(bridges.names())
        if ctx["clean_stops_only"]:
            notes["stopped_s"] = round(bridges.term(victim), 2)  # a restart, not a crash
        else:
            bridges.kill(victim)
        time.sleep(f["restart_after_s"])
        notes["victim"] = victim
        notes["replacement"] = bridges.start()
    elif k == "scale":
        before = bridges.names()
        added = [bridges.start() for _ in range(max(0, 3 - len(before)))]
        time.sleep(f["hold_s"])
        # Back to one member: stop everyone but the oldest, cleanly.
        keep = bridges.names()[0]
        stops = {}
        for name in bridges.names():
            if name != keep:
                stops[name] = round(bridges.term(name), 2)
        notes.update(added=added, stopped=stops)
    elif k in ("burst_5xx", "burst_429"):
        knob = "fail_rate" if k == "burst_5xx" else "throttle_rate"
        sb.faults({knob: f["rate"]})
        time.sleep(f["for_s"])
        sb.faults({})
    elif k == "latency":
        sb.faults({"latency": f["latency"]})
        time.sleep(f["for_s"])
        sb.faults({})
    elif k == "sink_outage":
        sb.faults({"outage_after": 0, "outage_for": f"{f['for_s']}s"})
        time.sleep(f["for_s"])
        sb.faults({})
    elif k == "broker_outage":
        broker.command("down")
        time.sleep(f["for_s"])
        broker.command("up")
    elif k in BROKER_KINDS:
        t_inject, notes = broker_fault(f, ctx, rng)
    elif k == "partition":
        ctx["netns"].partition()
        time.sleep(f["for_s"])
        ctx["netns"].heal()
    elif k in ("net_latency", "net_reset", "net_stall"):
        proxy = ctx["proxy"]
        knobs = {"net_latency": {"latency_ms": f.get("latency_ms", 200)},
                 "net_reset": {"reset_rate": f.get("rate", 0.2), "window_s": f["for_s"]},
                 "net_stall": {"stall": True}}[k]
        pre = proxy.set(stats=True)
        t_inject = now()
        proxy.set(**knobs)
        time.sleep(f["for_s"])
        after = proxy.set(clear=True)
        notes["proxy"] = {"live_at_inject": pre["live"],
                          "resets": after["resets"] - pre["resets"],
                          "stalled": after["stalled"] - pre["stalled"],
                          "opened_during": after["accepted"] - pre["accepted"]}
    return t_inject, now(), notes


def broker_fault(f, ctx, rng):
    """SIGKILL a data partition's leader or the group coordinator and start it again after
    `down_s`, or restart a broker cleanly (SIGTERM: controlled shutdown). Healed when the node
    has started again; the next fault waits until every replica is back in sync."""
    kafka, k = ctx["broker"], f["kind"]
    notes = {}
    if k == "leader_kill":
        topic, parts = rng.choice(TOPICS)
        tp = f"{topic}/{rng.randrange(parts)}"
        node = kafka.leaders([topic])[tp]["leader"]
        notes.update(partition=tp, node=node)
    elif k == "coordinator_kill":
        node, p = kafka.coordinator(GROUP)
        notes.update(coordinator_partition=f"__consumer_offsets/{p}", node=node)
    else:
        node = rng.choice(kafka.nodes)
        notes["node"] = node
    t_inject = now()
    if k == "broker_restart":
        kafka.stop_node(node)
        notes["stopped_s"] = round(now() - t_inject, 1)
        log(f"broker {node} stopped cleanly in {notes['stopped_s']}s; starting it again")
    else:
        kafka.kill_node(node)
        log(f"SIGKILLed broker {node} ({k}); starting it again in {f['down_s']}s")
        time.sleep(f["down_s"])
    t = now()
    kafka.start_node(node)
    notes["start_s"] = round(now() - t, 1)
    log(f"broker {node} started again in {notes['start_s']}s")
    if k == "coordinator_kill":
        notes["new_coordinator"] = kafka.coordinator(GROUP)[0]
    return t_inject, notes


# --------------------------------------------------------------------------------------------
# Accounting
# --------------------------------------------------------------------------------------------


def kafka_tool(args, timeout):
    r = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
    if r.returncode != 0:
        raise HarnessError(f"{' '.join(args[:2])} failed: {r.stderr.decode()[-2000:]}")
    return r.stdout.decode()


def lag(ctx):
    out = kafka_tool([ctx["kafka"], "lag", "--bootstrap", ctx["broker"].bootstrap, "--group", GROUP,
                      "--topics", ctx["topics_spec"]], 60)
    return json.loads(out.strip().splitlines()[-1])


def account(workdir, args, sandbox_record, dlq_lines, produce_summary):
    ids_expected = set(f"{args.prefix}{i:09d}" for i in range(args.events))
    failed = set()
    failed_path = os.path.join(workdir, "failed.txt")
    if os.path.exists(failed_path):
        with open(failed_path, encoding="utf-8") as fh:
            failed = {line.split("\t", 1)[0] for line in fh if line.strip()}
    ids_expected -= failed
    invalid = {}
    with open(os.path.join(workdir, "invalid.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            o = json.loads(line)
            invalid[o["id"]] = o["kind"]

    delivered = Counter()
    bad_lines = 0
    with open(sandbox_record, encoding="utf-8") as fh:
        for line in fh:
            try:
                delivered[json.loads(line)["id"]] += 1
            except (ValueError, KeyError, TypeError):
                bad_lines += 1
    dlq = {}
    dlq_by_reason = Counter()
    dlq_records = 0
    dlq_without_reason = []
    for line in dlq_lines:
        o = json.loads(line)
        dlq_records += 1
        key = o.get("key") or o["headers"].get("chaos.id")
        reason = o["headers"].get("mcm.error.reason")
        cls = o["headers"].get("mcm.error.class")
        if not reason:
            dlq_without_reason.append(key)
            continue
        dlq.setdefault(key, f"{cls}/{reason}")
        dlq_by_reason[f"{cls}/{reason}"] += 1

    lost = sorted(i for i in ids_expected if i not in delivered and i not in dlq)
    unexpected_dlq = sorted(i for i in dlq if i not in invalid)
    invalid_delivered = sorted(i for i in invalid if i in delivered)
    unknown_delivered = sorted(i for i in delivered if i not in ids_expected and i not in failed)
    dup_deliveries = sum(n - 1 for n in delivered.values())
    total_deliveries = sum(delivered.values())
    return {
        "produced": len(ids_expected),
        "produce_failed": len(failed),
        "valid": len(ids_expected) - len([i for i in invalid if i in ids_expected]),
        "invalid": len(invalid),
        "delivered_unique": len(delivered),
        "delivered_total": total_deliveries,
        "duplicates": dup_deliveries,
        "duplicate_pct": round(100.0 * dup_deliveries / max(1, total_deliveries), 3),
        "max_copies": max(delivered.values()) if delivered else 0,
        "dlq_records": dlq_records,
        "dlq_unique": len(dlq),
        "dlq_duplicates": dlq_records - len(dlq) - len(dlq_without_reason),
        "dlq_by_reason": dict(sorted(dlq_by_reason.items())),
        "dlq_without_reason": dlq_without_reason[:20],
        "lost": len(lost),
        "lost_sample": lost[:20],
        "unexpected_dlq": len(unexpected_dlq),
        "unexpected_dlq_sample": unexpected_dlq[:20],
        "invalid_delivered": invalid_delivered[:20],
        "unknown_delivered": unknown_delivered[:20],
        "record_bad_lines": bad_lines,
        "producer": produce_summary,
    }


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

PROFILES = {
    "small": {"events": 50_000, "faults": 7, "gap": (2.0, 5.0), "burst": (3.0, 5.0),
              "sink_outage": 10, "broker_outage": 5, "scale_hold": (6.0, 10.0),
              "broker_down": (3.0, 5.0), "partition": (8.0, 10.0), "net": (4.0, 6.0)},
    "large": {"events": 1_000_000, "faults": 24, "gap": (4.0, 12.0),
              "burst": (3.0, 8.0), "sink_outage": 30, "broker_outage": 10,
              "scale_hold": (8.0, 20.0),
              "broker_down": (3.0, 8.0), "partition": (8.0, 20.0), "net": (5.0, 15.0)},
}
# Apache Kafka mode: every one of its 13 kinds at least once in the small profile (fewer events:
# three JVMs share the two cores), twice in the large one.
# The members' session is 10 s there, so a `partition` lasts longer than that. The large profile
# spreads its faults over ~30 min, so that production (~500 events/s) spans them all.
KAFKA_PROFILE_OVERRIDES = {
    "small": {"events": 30_000, "faults": 13, "partition": (11.0, 13.0)},
    "large": {"faults": 26, "gap": (35.0, 65.0), "partition": (11.0, 20.0)},
}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="small")
    ap.add_argument("--events", type=int, help="events to produce (profile default)")
    ap.add_argument("--faults", type=int, help="number of faults (profile default)")
    ap.add_argument("--rate", type=float,
                    help="produce rate, events/s (default: spread the events over the schedule)")
    ap.add_argument("--invalid-every", type=int, default=500,
                    help="every K-th event is deliberately invalid (0 = none)")
    ap.add_argument("--max-backlog", type=int, default=40_000,
                    help="pause producing while the group is this many events behind (the mock "
                         "broker keeps only ~5 MB per partition and drops older data, so an "
                         "unbounded backlog would lose events in the broker); 0 = no bound")
    ap.add_argument("--seed", type=int, help="schedule seed (default: random, logged)")
    ap.add_argument("--sink-outage", type=float, help="sink outage seconds (profile default)")
    ap.add_argument("--broker-outage", type=float, help="broker outage seconds (profile default)")
    ap.add_argument("--broker", choices=["mock", "tansu", "kafka"], default="mock",
                    help="mock: mcm-bridge dev-broker (outage = down/up); tansu: tansu 0.6.0 on "
                         "sqlite (outage = SIGKILL + restart on the same file; bridges are "
                         "only stopped cleanly, so `kill` becomes a SIGTERM restart); kafka: "
                         "Apache Kafka, 3 nodes (scripts/kafka.py), bridges in a network "
                         "namespace behind a fault proxy: broker and network faults (root)")
    ap.add_argument("--group-protocol", choices=["classic", "consumer"], default="classic",
                    help="the bridges' kafka.group_protocol (consumer = KIP-848: needs "
                         "--broker kafka)")
    ap.add_argument("--tansu-bin", default="tansu")
    ap.add_argument("--kinds",
                    help="comma-separated fault kinds to draw from (default: all; on tansu all but "
                         "scale: tansu 0.6.0's group coordinator loses track of the group when "
                         "three members join and leave, see docs/chaos.md)")
    ap.add_argument("--max-duplicates-pct", type=float,
                    help="fail when duplicate deliveries exceed this share (default: 0.5 for the "
                         "large profile, no bound for small, whose faults are dense for its "
                         "events)")
    ap.add_argument("--bin", default="target/release/mcm-bridge")
    ap.add_argument("--kafka-tool", default="target/release/examples/chaos_kafka")
    ap.add_argument("--workdir", help="where logs, record and report go (default: a temp dir)")
    ap.add_argument("--prefix", default="e", help="id prefix")
    ap.add_argument("--drain-timeout", type=float, default=300,
                    help="seconds to wait for the group to finish the backlog after the faults")
    ap.add_argument("--max-seconds", type=float, default=0,
                    help="hard limit for the whole run (default: from the profile)")
    a = ap.parse_args()
    prof = dict(PROFILES[a.profile])
    if a.broker == "kafka":
        prof.update(KAFKA_PROFILE_OVERRIDES[a.profile])
    elif a.group_protocol != "classic":
        ap.error("--group-protocol consumer needs --broker kafka (KIP-848, Kafka 4.0+)")
    a.events = a.events or prof["events"]
    a.faults = a.faults if a.faults is not None else prof["faults"]
    prof = dict(prof)
    if a.sink_outage:
        prof["sink_outage"] = a.sink_outage
    if a.broker_outage:
        prof["broker_outage"] = a.broker_outage
    a.prof = prof
    if a.kinds:
        a.kinds = [k.strip() for k in a.kinds.split(",") if k.strip()]
        allowed = KAFKA_FAULT_KINDS if a.broker == "kafka" else FAULT_KINDS
        unknown = [k for k in a.kinds if k not in allowed]
        if unknown or not a.kinds:
            ap.error(f"--kinds: unknown {unknown} for --broker {a.broker}; choose from "
                     f"{','.join(allowed)}")
    elif a.broker == "kafka":
        a.kinds = list(KAFKA_FAULT_KINDS)
    elif a.broker == "tansu":
        a.kinds = [k for k in FAULT_KINDS if k != "scale"]
    else:
        a.kinds = list(FAULT_KINDS)
    if a.max_duplicates_pct is None and a.profile == "large":
        a.max_duplicates_pct = 0.5
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 2**31)
    if not a.max_seconds:
        a.max_seconds = 420 if a.profile == "small" else 3 * 3600
        if a.broker == "kafka" and a.profile == "small":
            a.max_seconds = 900
    return a


def start_kafka_mode(args, workdir):
    """Apache Kafka mode: the bridges' namespace, the fault proxy on its kafka link, 3 brokers
    advertising the proxy's addresses to the bridges, the topics, and the sandbox on the sink
    link. Returns (cluster, netns, proxy, sandbox)."""
    # pylint: disable=import-outside-toplevel
    from apache_kafka import ApacheKafka
    from network import BridgeNetns, FaultProxy

    netns = BridgeNetns()
    proxy_ports = [free_port(netns.kafka_root) for _ in range(3)]
    external = [f"{netns.kafka_root}:{p}" for p in proxy_ports]
    cluster = ApacheKafka(workdir, args.kafka_tool, external)
    proxy = FaultProxy(workdir, list(zip(external, cluster.external_bind)))
    cluster.create_topics(TOPICS, DLQ_TOPIC, 2)
    sandbox = Sandbox(args.bin, workdir, host=netns.sink_root)
    return cluster, netns, proxy, sandbox


def watchdog(limit):
    def fire():
        log(f"ERROR watchdog: the run exceeded {limit:.0f}s; killing children")
        cleanup()
        os._exit(2)  # pylint: disable=protected-access

    t = threading.Timer(limit, fire)
    t.daemon = True
    t.start()
    return t


def main():  # pylint: disable=too-many-locals,too-many-statements,too-many-branches
    args = parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    workdir = args.workdir or tempfile.mkdtemp(prefix="mcm-chaos-")
    os.makedirs(workdir, exist_ok=True)
    for tool in (args.bin, args.kafka_tool):
        if not os.access(tool, os.X_OK):
            raise HarnessError(f"{tool} not found: build with scripts/chaos.sh (or cargo build)")
    rng = random.Random(args.seed)
    schedule = make_schedule(rng, args.faults, args.prof, args.kinds)
    if not args.rate:
        # Production spans the whole schedule, so that every fault hits live traffic.
        args.rate = args.events / (1.15 * schedule_seconds(schedule) + 15)
    log(f"seed {args.seed}; {args.events} events at {args.rate:.0f}/s; workdir {workdir}")
    for i, f in enumerate(schedule):
        log(f"schedule #{i + 1}: {json.dumps(f)}")
    watchdog(args.max_seconds)

    netns = proxy = None
    if args.broker == "kafka":
        broker, netns, proxy, sandbox = start_kafka_mode(args, workdir)
        bridge_bootstrap = broker.bridge_bootstrap
    else:
        if args.broker == "tansu":
            broker = TansuBroker(args.tansu_bin, workdir)
        else:
            broker = Broker(args.bin, workdir)
        bridge_bootstrap = broker.bootstrap
        sandbox = Sandbox(args.bin, workdir)
    log(f"broker {broker.bootstrap}; sandbox {sandbox.url}; group protocol "
        f"{args.group_protocol}")
    topics_spec = ",".join(f"{n}:{p}" for n, p in TOPICS)
    config = os.path.join(workdir, "bridge.yaml")
    with open(config, "w", encoding="utf-8") as fh:
        fh.write(bridge_config(args, bridge_bootstrap, sandbox.url))
    bridges = Bridges(args.bin, workdir, config, wrap=netns.wrap if netns else None)
    ctx = {"sandbox": sandbox, "broker": broker, "bridges": bridges, "kafka": args.kafka_tool,
           "topics_spec": topics_spec, "clean_stops_only": args.broker == "tansu",
           "netns": netns, "proxy": proxy}
    monitor = Monitor(sandbox, bridges)
    bridges.start()

    producer = spawn([args.kafka_tool, "produce", "--bootstrap", broker.bootstrap, "--topics",
                      topics_spec, "--count", str(args.events), "--rate", str(args.rate),
                      "--invalid-every", str(args.invalid_every), "--prefix", args.prefix,
                      "--group", GROUP, "--max-backlog", str(args.max_backlog),
                      "--out", workdir], os.path.join(workdir, "producer.log"),
                     stdout=subprocess.PIPE)
    # Let the first member join and deliver before the first fault.
    deadline = time.monotonic() + 60
    while monitor.last()[1] == 0:
        if time.monotonic() > deadline:
            raise HarnessError("no delivery within 60 s of start; see bridge-1.log")
        time.sleep(0.2)
    log("first deliveries seen; starting the fault schedule")

    results = []
    for i, f in enumerate(schedule):
        time.sleep(f["gap_before_s"])
        log(f"fault #{i + 1} {f['kind']} ...")
        t_inject, t_heal, notes = run_fault(f, ctx, rng)
        results.append({"n": i + 1, **f, "t_inject": round(t_inject, 2), "t_heal": round(t_heal, 2),
                        **notes})
        log(f"fault #{i + 1} {f['kind']} healed after {t_heal - t_inject:.1f}s")
        # Faults are measured one at a time: the next one waits until delivery has resumed.
        deadline = time.monotonic() + 120
        while monitor.resumed_after(t_heal) is None and producer.poll() is None:
            if time.monotonic() > deadline:
                log(f"WARNING no delivery within 120 s of healing fault #{i + 1}")
                break
            time.sleep(0.1)
        resumed = monitor.resumed_after(t_heal)
        if resumed is not None:
            log(f"fault #{i + 1} delivery resumed {resumed - t_heal:.2f}s after the heal")
        if f["kind"] in BROKER_KINDS:
            # The next broker fault must not take the last in-sync replica of a partition.
            waited = broker.wait_in_sync(120, [n for n, _ in TOPICS] + [DLQ_TOPIC])
            results[-1]["in_sync_after_s"] = round(waited, 1) if waited is not None else None
    log("fault schedule done; waiting for the producer")
    try:
        out, _ = producer.communicate(timeout=max(600, args.events / args.rate * 3))
    except subprocess.TimeoutExpired as e:
        raise HarnessError("producer did not finish in time") from e
    if producer.returncode != 0:
        raise HarnessError(f"producer exited {producer.returncode}; see producer.log")
    produce_summary = json.loads(out.decode().strip().splitlines()[-1])
    log(f"producer done: {json.dumps(produce_summary)}")

    # Drain: the group is done when its committed offsets reach the end of every partition.
    t_drain = now()
    deadline = time.monotonic() + args.drain_timeout
    lg = None
    while True:
        try:
            lg = lag(ctx)
        except HarnessError as e:
            # A broker just restarted (tansu mode) may time out a metadata request or two:
            # ask again until the drain deadline rather than end the run without accounting.
            log(f"lag query failed, retrying: {str(e)[:300]}")
        if lg is not None and lg["lag"] == 0:
            break
        if time.monotonic() > deadline:
            raise HarnessError(f"group still has lag {lg} after {args.drain_timeout}s")
        time.sleep(1)
    log(f"group lag 0 after {now() - t_drain:.1f}s of drain ({lg})")
    for name in bridges.names():
        bridges.term(name)
    monitor.stop()
    # Recovery time of each fault: from the heal point to the first acceptance after it.
    for r in results:
        resumed = monitor.resumed_after(r["t_heal"])
        r["recovery_s"] = round(resumed - r["t_heal"], 2) if resumed is not None else None
        r["longest_stall_s"] = round(monitor.longest_stall(r["t_inject"],
                                                           resumed or r["t_heal"]), 2)
    stats = sandbox.stats()  # flushes the record
    dlq_out = kafka_tool([args.kafka_tool, "read-dlq", "--bootstrap", broker.bootstrap,
                          "--topic", DLQ_TOPIC], 180)
    with open(os.path.join(workdir, "dlq.jsonl"), "w", encoding="utf-8") as fh:
        fh.write(dlq_out)
    acc = account(workdir, args, sandbox.record, dlq_out.splitlines(), produce_summary)
    sandbox.stop()
    broker.stop()
    if hasattr(broker, "discard_data"):
        broker.discard_data()

    recoveries = [r["recovery_s"] for r in results if r["recovery_s"] is not None]
    never = [r["n"] for r in results if r["recovery_s"] is None]
    report = {
        "seed": args.seed,
        "profile": args.profile,
        "broker": args.broker,
        "group_protocol": args.group_protocol,
        "events": args.events,
        "duration_s": round(now(), 1),
        "accounting": acc,
        "sandbox_stats": {k: stats.get(k) for k in ("accepted_total", "unique_ids",
                                                    "duplicate_ids", "faults", "rejected_by_reason",
                                                    "record_errors")},
        "faults": results,
        "longest_recovery_s": max(recoveries) if recoveries else None,
        "faults_without_recovery": never,
        "bridge_bad_exits": bridges.bad_exits,
        "monitor_errors": monitor.errors,
        "workdir": workdir,
    }
    with open(os.path.join(workdir, "report.json"), "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2)
    print_report(report)
    # A fault without recovery is reported, not failed: after the producer finished there may be
    # nothing left to deliver. A wedged group fails the drain (lag 0) check above instead.
    dup_ok = args.max_duplicates_pct is None or acc["duplicate_pct"] <= args.max_duplicates_pct
    if not dup_ok:
        print(f"duplicates {acc['duplicate_pct']}% above --max-duplicates-pct "
              f"{args.max_duplicates_pct}")
    ok = (acc["lost"] == 0 and acc["unexpected_dlq"] == 0 and not acc["invalid_delivered"]
          and not acc["dlq_without_reason"] and not bridges.bad_exits
          and acc["record_bad_lines"] == 0 and dup_ok)
    print("RESULT: " + ("PASS" if ok else "FAIL"), flush=True)
    return 0 if ok else 1


def print_report(r):
    a = r["accounting"]
    print("\n==================== chaos report ====================")
    print(f"seed {r['seed']}  profile {r['profile']}  broker {r['broker']}  "
          f"group protocol {r['group_protocol']}  "
          f"duration {r['duration_s']}s  "
          f"workdir {r['workdir']}")
    print(f"produced {a['produced']} (valid {a['valid']}, invalid {a['invalid']}, "
          f"produce failures {a['produce_failed']})")
    print(f"delivered unique {a['delivered_unique']}  total {a['delivered_total']}  "
          f"duplicates {a['duplicates']} ({a['duplicate_pct']}%)  max copies {a['max_copies']}")
    print(f"DLQ records {a['dlq_records']} (unique ids {a['dlq_unique']}, "
          f"duplicates {a['dlq_duplicates']})  by reason {a['dlq_by_reason']}")
    print(f"LOST {a['lost']} {a['lost_sample'] or ''}")
    print(f"unexpected in DLQ {a['unexpected_dlq']} {a['unexpected_dlq_sample'] or ''}; "
          f"invalid delivered {len(a['invalid_delivered'])}; "
          f"DLQ without reason {len(a['dlq_without_reason'])}")
    print(f"bridge exits not 0 after SIGTERM / unexpected: {r['bridge_bad_exits'] or 'none'}")
    print("faults (t = seconds since start; recovery = heal -> first acceptance; "
          "stall = longest gap without acceptance from injection to recovery):")
    for f in r["faults"]:
        extra = {k: f[k] for k in ("rate", "for_s", "latency", "hold_s", "restart_after_s",
                                   "victim", "stopped", "down_s", "node", "partition",
                                   "new_coordinator", "start_s", "in_sync_after_s", "proxy")
                 if k in f}
        print(f"  #{f['n']:<2} {f['kind']:<13} inject {f['t_inject']:7.1f}  heal {f['t_heal']:7.1f}"
              f"  recovery {f['recovery_s']}s  stall {f['longest_stall_s']}s  {extra}")
    print(f"longest recovery {r['longest_recovery_s']}s")
    print("======================================================")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as e:
        log(f"HARNESS ERROR: {e}")
        sys.exit(2)
    finally:
        cleanup()
