"""Network faults between the bridges and the brokers (Apache Kafka mode of chaos/chaos.py).

- `BridgeNetns`: the bridges run in a network namespace of their own, joined to the root
  namespace by two veth pairs, one per peer: the *kafka link* (bridge ↔ fault proxy ↔ brokers)
  and the *sink link* (bridge ↔ MCM sandbox). `partition()` sets the root end of the kafka link
  down: every packet between bridge and brokers is dropped, silently, both ways, while the sink
  stays reachable; `heal()` sets it up again (the kernel restores the connected routes). The
  namespace is deleted on every way out: by a cleanup hook, and by a detached watcher when the
  harness is SIGKILLed.
- `FaultProxy`: chaos/faultproxy.py in its own process, on the kafka link's root address, one
  route per broker; the brokers advertise these addresses to the bridges (their EXTERNAL
  listener), so every bridge-to-broker connection passes through it.

Needs root and iproute2 (`ip netns`). Python 3 standard library only.
"""

import json
import os
import subprocess
import sys
import threading

from procs import HarnessError, log, on_cleanup, spawn

PREFIX = "mcmchaos"


def ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, timeout=30, check=False)
    if check and r.returncode != 0:
        raise HarnessError(f"ip {' '.join(args)}: {r.stderr.decode().strip()}")
    return r


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def remove_stale():
    """Namespaces left by a harness that died without cleanup (the watcher normally removes
    them): `mcmchaos<pid>` whose pid is gone."""
    r = ip("netns", "list", check=False)
    for line in r.stdout.decode().splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX) and name[len(PREFIX):].isdigit():
            if not _alive(int(name[len(PREFIX):])):
                ip("netns", "del", name, check=False)
                log(f"removed stale network namespace {name}")


def _free_subnets(count):
    """`count` free 10.231.x.0/30 subnets (none of their addresses configured here)."""
    used = ip("-4", "addr", "show", check=False).stdout.decode()
    used += ip("-4", "route", "show", "table", "all", check=False).stdout.decode()
    base = os.getpid() % 60
    found = []
    for i in range(256):
        third = (base * 4 + i) % 256
        for fourth in range(0, 256, 4):
            prefix = f"10.231.{third}.{fourth}"
            if f"10.231.{third}.{fourth + 1}" in used or f"{prefix}/30" in used:
                continue
            found.append((f"10.231.{third}.{fourth + 1}", f"10.231.{third}.{fourth + 2}"))
            if len(found) == count:
                return found
    raise HarnessError("no free 10.231.x.y/30 subnet for the bridge namespace")


class BridgeNetns:
    def __init__(self):
        if os.geteuid() != 0:
            raise HarnessError("the Apache Kafka mode puts the bridges in a network namespace: "
                               "run as root")
        remove_stale()
        self.name = f"{PREFIX}{os.getpid()}"
        (kr, kn), (sr, sn) = _free_subnets(2)
        self.kafka_root, self.kafka_ns = kr, kn
        self.sink_root, self.sink_ns = sr, sn
        tag = os.getpid()
        self.kafka_dev, self.sink_dev = f"mck{tag}", f"mcs{tag}"
        on_cleanup(self.delete)
        self._watch()
        ip("netns", "add", self.name)
        ip("-n", self.name, "link", "set", "lo", "up")
        for dev, root, ns in ((self.kafka_dev, kr, kn), (self.sink_dev, sr, sn)):
            ip("link", "add", dev, "type", "veth", "peer", "name", "eth-" + dev[:3], "netns",
               self.name)
            ip("addr", "add", f"{root}/30", "dev", dev)
            ip("link", "set", dev, "up")
            ip("-n", self.name, "addr", "add", f"{ns}/30", "dev", "eth-" + dev[:3])
            ip("-n", self.name, "link", "set", "eth-" + dev[:3], "up")
        self.partitioned = False
        log(f"network namespace {self.name}: kafka link {kn} -> {kr} ({self.kafka_dev}), "
            f"sink link {sn} -> {sr} ({self.sink_dev})")

    def _watch(self):
        """A detached watcher deletes the namespace when the harness is gone, however it went."""
        script = ("import os,sys,time,subprocess\n"
                  "pid=int(sys.argv[1])\n"
                  "def alive(p):\n"
                  "    try: os.kill(p,0); return True\n"
                  "    except ProcessLookupError: return False\n"
                  "    except PermissionError: return True\n"
                  "while alive(pid): time.sleep(1)\n"
                  "subprocess.run(['ip','netns','del',sys.argv[2]],capture_output=True)\n")
        subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-c", script, str(os.getpid()), self.name], start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=True)

    def wrap(self, args):
        """A command line run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *args]

    def partition(self):
        ip("link", "set", self.kafka_dev, "down")
        self.partitioned = True

    def heal(self):
        ip("link", "set", self.kafka_dev, "up")
        self.partitioned = False

    def delete(self):
        # Deleting the namespace deletes the veth ends in it, and with them their peers.
        ip("netns", "del", self.name, check=False)
        for dev in (self.kafka_dev, self.sink_dev):
            ip("link", "del", dev, check=False)


class FaultProxy:
    """chaos/faultproxy.py as a child process; `set(**knobs)` sends one command and returns the
    proxy's counters."""

    def __init__(self, workdir, routes):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "faultproxy.py")
        args = [sys.executable, script]
        for listen, target in routes:
            args += ["--route", f"{listen}={target}"]
        self.p = spawn(args, os.path.join(workdir, "proxy.log"), stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE)
        self.lock = threading.Lock()
        first = self._answer(30)
        if not first.get("ok"):
            raise HarnessError(f"fault proxy: {first}")
        log(f"fault proxy listening on {first.get('listening')}")

    def _answer(self, timeout):
        box = []
        t = threading.Thread(target=lambda: box.append(self.p.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        if not box or not box[0]:
            raise HarnessError(f"fault proxy did not answer within {timeout}s "
                               f"(exit {self.p.poll()}; see proxy.log)")
        return json.loads(box[0].decode())

    def set(self, **knobs):
        with self.lock:
            try:
                self.p.stdin.write((json.dumps(knobs) + "\n").encode())
                self.p.stdin.flush()
            except OSError as e:
                raise HarnessError(f"fault proxy gone: {e}") from e
            return self._answer(10)
