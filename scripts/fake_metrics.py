#!/usr/bin/env python3
"""A fake mcm-bridge /metrics endpoint for testing the monitoring without Kafka or MCM.

Serves every metric in src/observe/metrics.rs with realistic labels; counters grow with time.
  scripts/fake_metrics.py [--port 9464] [--minimal]
--minimal serves only what a healthy, quiet bridge exports: lazily created label values that only
appear on errors (dead letters, drops, failures, retries, commit errors, non-2xx responses,
filters, lost/revoked rebalances) are absent -- the series `deploy/prometheus/may-be-empty.txt`
exists for. Only binds to loopback.
"""
import argparse
import http.server
import time

START = time.time()
BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
TOPICS = ["orders", "clicks"]


def render(minimal):
    t = time.time() - START
    now = int(time.time())
    out = []

    def fam(name, typ, help_, samples):
        name = "mcm_bridge_" + name
        out.append("# HELP %s %s" % (name, help_))
        out.append("# TYPE %s %s" % (name, typ))
        for labels, value in samples:
            lab = ",".join('%s="%s"' % kv for kv in labels.items())
            out.append("%s%s %s" % (name, "{%s}" % lab if lab else "", value))

    def c(rate):  # a counter that grows at `rate` per second
        return int(100 + rate * t)

    fam("messages_consumed_total", "counter", "Messages taken from Kafka.",
        [({"topic": tp}, c(50)) for tp in TOPICS])
    fam("events_delivered_total", "counter", "Events accepted by MCM (2xx).",
        [({"topic": "orders", "event_type": et}, c(r)) for et, r in
         (("PURCHASE", 10), ("ADD_TO_CART", 15), ("ITEM_PAGE_VIEW", 20))]
        + [({"topic": "clicks", "event_type": "HOME"}, c(40))])
    err = not minimal
    fam("messages_filtered_total", "counter", "Messages deliberately skipped by a mapping rule.",
        [({"topic": "clicks", "reason": "rule_skip"}, c(5))] if err else [])
    fam("messages_dead_lettered_total", "counter", "Messages written to the dead-letter topic.",
        [({"topic": "orders", "reason": "validation"}, c(0.5))] if err else [])
    fam("messages_dropped_total", "counter", "Undeliverable messages dropped by an on_failure: drop policy.",
        [({"topic": "clicks", "reason": "mapping"}, c(0.2))] if err else [])
    fam("delivery_failures_total", "counter", "Messages that could not be delivered, by class.",
        [({"topic": tp, "class": cl}, c(0.1)) for tp in TOPICS
         for cl in ("decode", "mapping", "validation", "no_match", "permanent", "exhausted", "fatal")] if err else [])
    fam("http_requests_total", "counter", "Requests to the MCM API.",
        [({"status_class": "2xx"}, c(85))]
        + ([({"status_class": sc}, c(0.3)) for sc in ("3xx", "4xx", "5xx", "error")] if err else []))
    fam("http_responses_total", "counter", "MCM API answers by HTTP status code.",
        [({"code": code}, c(85) if code == "200" else (c(0.1) if err else 0))
         for code in ("200", "400", "401", "403", "404", "429", "500", "502", "503", "504", "error")])
    fam("concurrency_limit", "gauge", "Requests allowed in flight now.", [({}, 64)])
    # histograms (unlabelled: always exported)
    for hname in ("http_request_duration_seconds", "commit_latency_seconds"):
        total = c(85)
        samples = []
        for i, b in enumerate(BUCKETS):
            samples.append(({"le": repr(b)}, int(total * min(1.0, 0.05 + i * 0.12))))
        samples.append(({"le": "+Inf"}, total))
        out.append("# HELP mcm_bridge_%s Latency." % hname)
        out.append("# TYPE mcm_bridge_%s histogram" % hname)
        for labels, v in samples:
            out.append('mcm_bridge_%s_bucket{le="%s"} %s' % (hname, labels["le"], v))
        out.append("mcm_bridge_%s_sum %s" % (hname, total * 0.08))
        out.append("mcm_bridge_%s_count %s" % (hname, total))
    fam("retries_total", "counter", "Retried MCM requests.",
        [({"reason": r}, c(0.2)) for r in ("throttled", "server_error", "timeout", "connect")] if err else [])
    fam("in_flight_messages", "gauge", "Messages taken from Kafka and not yet finished.", [({}, 42)])
    fam("retries_waiting_messages", "gauge", "In-flight messages waiting out a retry backoff (parked: they hold no request slot).", [({}, 3)])
    fam("in_flight_bytes", "gauge", "Payload bytes of in-flight messages.", [({}, 42 * 1800)])
    fam("circuit_state", "gauge", "Circuit breaker: 0 closed, 1 open, 2 half-open.", [({}, 0)])
    fam("halted", "gauge", "1 while delivery is halted.", [({}, 0)])
    fam("commits_total", "counter", "Offset commits.",
        [({"result": "ok"}, c(1))] + ([({"result": "error"}, c(0.01))] if err else []))
    parts = [(tp, p) for tp in TOPICS for p in range(3)]
    fam("consumer_lag_messages", "gauge", "Broker high watermark minus committed offset.",
        [({"topic": tp, "partition": str(p)}, 10 * p) for tp, p in parts])
    fam("consumer_lag_seconds", "gauge", "Age of the oldest unfinished message (0 when caught up).",
        [({"topic": tp, "partition": str(p)}, p) for tp, p in parts])
    fam("partition_last_progress_timestamp_seconds", "gauge", "When the partition's watermark last advanced.",
        [({"topic": tp, "partition": str(p)}, now - p) for tp, p in parts])
    fam("assigned_partitions", "gauge", "Partitions currently assigned to this member.", [({}, len(parts))])
    fam("topic_partitions", "gauge", "Partitions of each subscribed topic.",
        [({"topic": tp}, 3) for tp in TOPICS])
    fam("retention_headroom_messages", "gauge", "Committed offset minus the log start offset.",
        [({"topic": tp, "partition": str(p)}, 5000 + p) for tp, p in parts])
    fam("ready", "gauge", "1 while /readyz answers 200.", [({}, 1)])
    fam("rebalances_total", "counter", "Rebalance events.",
        [({"kind": "assign"}, 1)] + ([({"kind": "revoke"}, 1), ({"kind": "lost"}, 0)] if err else []))
    fam("stale_acks_total", "counter", "Acknowledgements dropped because their partition was revoked.", [({}, 0)])
    fam("build_info", "gauge", "Build information.", [({"version": "0.1.0"}, 1)])
    fam("platform_info", "gauge", "MCM platform id and consumer group.",
        [({"platform_id": "ACME_TEST", "group": "mcm-bridge-shop"}, 1)])
    fam("dlq_write_failures_total", "counter", "Failed dead-letter writes.", [({}, 0)])
    # the prometheus crate's process collector
    for name, typ, value in (("process_cpu_seconds_total", "counter", int(1 + 0.2 * t)),
                             ("process_resident_memory_bytes", "gauge", 48 << 20),
                             ("process_virtual_memory_bytes", "gauge", 900 << 20),
                             ("process_open_fds", "gauge", 40), ("process_max_fds", "gauge", 1 << 20),
                             ("process_threads", "gauge", 12), ("process_start_time_seconds", "gauge", int(START))):
        out.append("# HELP %s Process metric." % name)
        out.append("# TYPE %s %s" % (name, typ))
        out.append("%s %s" % (name, value))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=9464)
    ap.add_argument("--minimal", action="store_true")
    a = ap.parse_args()

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = render(a.minimal).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), H)
    print("fake mcm-bridge metrics on http://127.0.0.1:%d/metrics%s" % (a.port, " (minimal)" if a.minimal else ""), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
