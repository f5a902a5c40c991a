"""Apache Kafka for the chaos harness: 3 KRaft nodes from scripts/kafka.py, each with an EXTERNAL
listener advertised at the fault proxy's address for that node (what the bridges use), while the
producer, the lag and DLQ tools and the brokers among themselves use the PLAINTEXT listeners on
127.0.0.1 directly.

Group and broker timing (on top of the script's test defaults), chosen so that the order of the
timeouts is the one production has, on a loaded 2-core machine:

- KIP-848 session 10 s, heartbeat every 2 s. librdkafka 2.12.1 gives a ConsumerGroupHeartbeat
  request exactly one heartbeat interval to answer (rdkafka_request.c, a FIXME): with the
  script's 500 ms, a broker slower than that on a busy machine makes the member miss the answer
  that bumped its epoch, and the next heartbeat is FENCED_MEMBER_EPOCH: the whole assignment is
  lost and redelivered, with no fault at all (the first 1M run here did this every few seconds).
- KRaft fences a dead broker after 6 s (broker.session.timeout.ms, 9 s by default) with
  heartbeats every second, so that a killed group coordinator is replaced before the members'
  10 s session runs out — as a production 45 s session outlives the 9 s failover.

Topics: the data topics with replication factor 3, the DLQ topic with replication factor 3 and
`min.insync.replicas=2` (the bridge's DLQ producer uses acks=all). Broker faults use the
script's own commands on the cluster directory: `kill --node N` (SIGKILL: the node recovers its
log on start), `stop --node N` (SIGTERM: controlled shutdown) and `start --node N`.

The group coordinator of a group is the leader of `__consumer_offsets` partition
`Utils.abs(groupId.hashCode()) % partitions` (Kafka's GroupCoordinatorService.partitionFor, for
both group protocols); `coordinator()` computes it from the metadata.
Python 3 standard library only.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import time

from procs import HarnessError, log, on_cleanup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KAFKA_PY = os.path.join(ROOT, "scripts", "kafka.py")


def java_string_hash(s):
    """java.lang.String.hashCode (over UTF-16 code units), as a signed 32-bit int."""
    b = s.encode("utf-16-be")
    h = 0
    for i in range(0, len(b), 2):
        h = (31 * h + int.from_bytes(b[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


def kafka_abs(n):
    """org.apache.kafka.common.utils.Utils.abs: Math.abs, but 0 for Integer.MIN_VALUE."""
    return 0 if n == -(1 << 31) else abs(n)


CLUSTER_SETTINGS = {
    "group.consumer.session.timeout.ms": "10000",
    "group.consumer.heartbeat.interval.ms": "2000",
    "broker.session.timeout.ms": "6000",
    "broker.heartbeat.interval.ms": "1000",
}
# The members' session under both protocols (the classic one is the bridge's `session_timeout`).
SESSION_TIMEOUT_S = 10


class ApacheKafka:
    def __init__(self, workdir, kafka_tool, external, heap="512m"):
        self.dir = os.path.join(workdir, "kafka")
        self.tool = kafka_tool
        self.restarts = 0
        on_cleanup(self.kill_all)
        t = time.monotonic()
        sets = [x for k, v in CLUSTER_SETTINGS.items() for x in ("--set", f"{k}={v}")]
        out = self._script(["start", "--dir", self.dir, "--brokers", "3", "--heap", heap,
                            "--external", ",".join(external), "--watch-pid", str(os.getpid()),
                            *sets], timeout=300)
        info = json.loads(out.strip().splitlines()[-1])
        self.bootstrap = info["bootstrap"]
        self.bridge_bootstrap = info["external_bootstrap"]
        self.external_bind = info["external_bind"]
        self.nodes = [n["id"] for n in info["nodes"]]
        log(f"Apache Kafka {info['version']}: 3 nodes up in {time.monotonic() - t:.1f}s "
            f"(direct {self.bootstrap}; bridges via {self.bridge_bootstrap})")

    def _script(self, args, timeout=240):
        r = subprocess.run([sys.executable, KAFKA_PY, *args], capture_output=True,
                           timeout=timeout, check=False)
        if r.returncode != 0:
            raise HarnessError(f"scripts/kafka.py {' '.join(args[:3])} failed: "
                               f"{r.stderr.decode()[-2000:]}")
        return r.stdout.decode()

    def create_topics(self, topics, dlq_topic, dlq_partitions):
        for name, parts in topics:
            self._create(name, parts, "")
        self._create(dlq_topic, dlq_partitions, "min.insync.replicas=2")
        self.wait_in_sync(60, [n for n, _ in topics] + [dlq_topic], offsets_topic=False)

    def _create(self, name, parts, configs):
        args = [self.tool, "create-topic", "--bootstrap", self.bootstrap, "--topic", name,
                "--partitions", str(parts), "--replication", "3"]
        if configs:
            args += ["--configs", configs]
        r = subprocess.run(args, capture_output=True, timeout=60, check=False)
        if r.returncode != 0:
            raise HarnessError(f"create topic {name}: {r.stderr.decode()[-1000:]}")

    def leaders(self, topics):
        r = subprocess.run([self.tool, "leaders", "--bootstrap", self.bootstrap, "--topics",
                            ",".join(topics)], capture_output=True, timeout=30, check=False)
        if r.returncode != 0:
            raise HarnessError(f"leaders: {r.stderr.decode()[-500:]}")
        return json.loads(r.stdout.decode().strip().splitlines()[-1])

    def coordinator(self, group):
        md = self.leaders(["__consumer_offsets"])
        parts = len(md)
        if not parts:
            raise HarnessError("__consumer_offsets has no partitions yet")
        p = kafka_abs(java_string_hash(group)) % parts
        return md[f"__consumer_offsets/{p}"]["leader"], p

    def wait_in_sync(self, timeout, topics, offsets_topic=True):
        """Waits until every partition of `topics` has a leader and all 3 replicas in sync, so
        that the next broker fault never takes the last in-sync replica. Returns seconds waited,
        or None when the time ran out (logged: the run goes on)."""
        t = time.monotonic()
        last = None
        while time.monotonic() - t < timeout:
            try:
                md = self.leaders(topics + (["__consumer_offsets"] if offsets_topic else []))
                behind = {k: v["isr"] for k, v in md.items()
                          if v["leader"] < 0 or len(v["isr"]) < len(v["replicas"])}
                if not behind:
                    return time.monotonic() - t
                last = behind
            except (HarnessError, subprocess.TimeoutExpired) as e:
                last = str(e)[:200]
            time.sleep(1)
        log(f"WARNING replicas not all in sync after {timeout}s: {last}")
        return None

    def kill_node(self, node):
        self._script(["kill", "--dir", self.dir, "--node", str(node)], timeout=60)

    def stop_node(self, node):
        self._script(["stop", "--dir", self.dir, "--node", str(node)], timeout=90)

    def start_node(self, node):
        self.restarts += 1
        self._script(["start", "--dir", self.dir, "--node", str(node)], timeout=300)

    def stop(self):
        """The end of the run: the data is thrown away, so no controlled shutdown is needed."""
        self.kill_all()

    def kill_all(self):
        if os.path.exists(os.path.join(self.dir, "cluster.json")):
            subprocess.run([sys.executable, KAFKA_PY, "kill", "--dir", self.dir],
                           capture_output=True, timeout=60, check=False)

    def discard_data(self):
        """Deletes the nodes' logs of records (up to a few GB after a large run); the broker
        logs stay for reading."""
        for d in glob.glob(os.path.join(self.dir, "node-*", "data")):
            shutil.rmtree(d, ignore_errors=True)
