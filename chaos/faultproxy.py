#!/usr/bin/env python3
"""A TCP fault proxy for the chaos harness: latency, connection resets and half-open stalls.

    faultproxy.py --route LISTEN_HOST:PORT=TARGET_HOST:PORT [--route ...]

The kernels this harness runs on have no `sch_netem`, so network faults between the bridge and
the brokers are injected here, in user space: every broker advertises this proxy's address on the
listener the bridge uses, so every bridge-to-broker connection passes through it (one route per
broker), while inter-broker and harness traffic goes to the brokers directly.

Control: one JSON object per line on stdin, one JSON answer per line on stdout.

    {"latency_ms": 200}   every chunk waits 200 ms in each direction (order kept, pipelined)
    {"reset_rate": 0.2}   a fifth of the live connections (at least one) are reset (RST to
                          both peers) at random moments within `window_s` (default 5 s), and
                          each of the
                          connections opened while the rate is set with that probability,
                          0-1 s after opening
    {"stall": true}       half-open: every live connection, and every one opened while the stall
                          is on, goes silent for good: nothing is forwarded either way, nothing is
                          closed, until a peer closes it (the client has to notice by itself);
                          connections opened after `{"stall": false}` work again
    {"clear": true}       all of the above off (stalled connections stay stalled)
    {"stats": true}       only answer

Every answer carries the counters: connections accepted/live, resets, stalled. EOF on stdin (the
harness is gone) ends the proxy. Python 3 standard library only.
"""

import argparse
import asyncio
import json
import random
import socket
import struct
import sys
import threading

CHUNK = 65536


class State:
    def __init__(self):
        self.latency = 0.0
        self.reset_rate = 0.0
        self.stall = False
        self.conns = set()
        self.accepted = 0
        self.resets = 0
        self.stalled = 0
        self.connect_errors = 0
        self.rng = random.Random()

    def counters(self):
        return {"latency_ms": round(self.latency * 1000), "reset_rate": self.reset_rate,
                "stall": self.stall, "accepted": self.accepted, "live": len(self.conns),
                "resets": self.resets, "stalled": self.stalled,
                "connect_errors": self.connect_errors}


STATE = State()


class Conn:
    def __init__(self, cr, cw, br, bw):
        self.cr, self.cw, self.br, self.bw = cr, cw, br, bw
        self.frozen = False
        self.closed = False
        self.tasks = []

    def freeze(self):
        if not self.frozen and not self.closed:
            self.frozen = True
            STATE.stalled += 1

    def reset(self):
        """RST to both peers (SO_LINGER 0, then abort)."""
        if self.closed:
            return
        STATE.resets += 1
        for w in (self.cw, self.bw):
            sock = w.get_extra_info("socket")
            try:
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            w.transport.abort()
        self.close()

    def close(self):
        if self.closed:
            return
        self.closed = True
        STATE.conns.discard(self)
        for w in (self.cw, self.bw):
            try:
                w.transport.abort() if self.frozen else w.close()
            except (OSError, RuntimeError):
                pass
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()


async def pump(conn, reader, writer):
    """One direction: read chunks, hold each for the current latency, write in order. A frozen
    connection reads and discards (so that a peer's close is still noticed) and writes nothing."""
    loop = asyncio.get_running_loop()
    q = asyncio.Queue(maxsize=64)

    async def read_side():
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if conn.frozen:
                    continue
                await q.put((loop.time() + STATE.latency, data))
        except (OSError, asyncio.IncompleteReadError):
            pass
        await q.put(None)

    async def write_side():
        try:
            while True:
                item = await q.get()
                if item is None:
                    break
                due, data = item
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if conn.frozen:
                    continue
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError):
            pass

    rt = asyncio.ensure_future(read_side())
    try:
        await write_side()
    finally:
        rt.cancel()
    # A half-open connection stays open until its peer closes it: only an EOF or error on the
    # reading side of a live (not frozen) connection closes both sides.
    conn.close()


async def delayed_reset(conn, delay):
    await asyncio.sleep(delay)
    conn.reset()


def handler(target_host, target_port):
    async def handle(cr, cw):
        STATE.accepted += 1
        try:
            br, bw = await asyncio.wait_for(asyncio.open_connection(target_host, target_port), 10)
        except (OSError, asyncio.TimeoutError):
            STATE.connect_errors += 1
            cw.transport.abort()
            return
        for w in (cw, bw):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Conn(cr, cw, br, bw)
        STATE.conns.add(conn)
        if STATE.stall:
            conn.freeze()
        elif STATE.reset_rate and STATE.rng.random() < STATE.reset_rate:
            asyncio.ensure_future(delayed_reset(conn, STATE.rng.uniform(0.0, 1.0)))
        conn.tasks = [asyncio.ensure_future(pump(conn, cr, bw)),
                      asyncio.ensure_future(pump(conn, br, cw))]

    return handle


def apply(cmd):
    if cmd.get("clear"):
        STATE.latency, STATE.reset_rate, STATE.stall = 0.0, 0.0, False
    if "latency_ms" in cmd:
        STATE.latency = float(cmd["latency_ms"]) / 1000.0
    if "reset_rate" in cmd:
        STATE.reset_rate = float(cmd["reset_rate"])
        if STATE.reset_rate > 0:
            # That share of the live connections (at least one), each at a random moment.
            window = float(cmd.get("window_s", 5.0))
            live = [c for c in STATE.conns if not c.frozen]
            n = max(1, round(STATE.reset_rate * len(live))) if live else 0
            for conn in STATE.rng.sample(live, n):
                asyncio.ensure_future(delayed_reset(conn, STATE.rng.uniform(0.0, window)))
    if "stall" in cmd:
        STATE.stall = bool(cmd["stall"])
        if STATE.stall:
            for conn in list(STATE.conns):
                conn.freeze()


async def main_async(routes):
    loop = asyncio.get_running_loop()
    servers = []
    for listen, target in routes:
        lh, lp = listen.rsplit(":", 1)
        th, tp = target.rsplit(":", 1)
        servers.append(await asyncio.start_server(handler(th, int(tp)), lh, int(lp),
                                                  reuse_address=True))
    done = asyncio.Event()

    def on_line(line):
        if not line:
            done.set()
            return
        try:
            cmd = json.loads(line)
            apply(cmd)
            out = {"ok": True, **STATE.counters()}
        except (ValueError, TypeError, AttributeError) as e:
            out = {"ok": False, "error": str(e)}
        print(json.dumps(out), flush=True)

    def stdin_reader():
        for line in iter(sys.stdin.readline, ""):
            if line.strip():
                loop.call_soon_threadsafe(on_line, line)
        loop.call_soon_threadsafe(on_line, "")

    threading.Thread(target=stdin_reader, daemon=True).start()
    print(json.dumps({"ok": True, "listening": [r[0] for r in routes]}), flush=True)
    await done.wait()
    for s in servers:
        s.close()
    for conn in list(STATE.conns):
        conn.frozen = True
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--route", action="append", required=True,
                    metavar="LISTEN_HOST:PORT=TARGET_HOST:PORT")
    a = ap.parse_args()
    routes = []
    for r in a.route:
        listen, sep, target = r.partition("=")
        if not sep:
            ap.error(f"--route {r!r}: expected LISTEN=TARGET")
        routes.append((listen, target))
    asyncio.run(main_async(routes))


if __name__ == "__main__":
    main()
