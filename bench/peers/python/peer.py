"""Benchmark peer: the same job as mcm-bridge (Kafka shop messages -> MCM User Event API) done as a
plain Python loop, written for this benchmark: confluent-kafka consumer, one synchronous
`requests` POST per message over a keep-alive session, 3 attempts with 100 ms doubling backoff plus
0-99 ms jitter on network errors and non-2xx answers, offsets stored only after delivery (and
committed by the client's auto-commit), so it is at-least-once like the bridge.

The mapping is the minimal one for the `shop.events` shape the benchmark loads (same fields as
bench/bridge.yaml, a regex instead of full user-agent parsing). Configuration from the environment: BROKERS, TOPIC,
GROUP, MCM_BASE_URL, MCM_PLATFORM_ID, MCM_API_KEY.
"""

import hashlib
import json
import os
import random
import re
import signal
import sys
import time

import requests
from confluent_kafka import Consumer


def env(name):
    value = os.environ.get(name, "").strip()
    if not value:
        sys.exit(f"missing {name}")
    return value


CHANNELS = {"web": "SITE", "ios": "APP", "android": "APP"}


IOS = re.compile(r"iPhone OS (\d+)_(\d+)")
ANDROID = re.compile(r"Android (\d+(?:\.\d+)*); ([^;)]+)")


def device_os(ua):
    """Just enough user-agent parsing for the benchmark's agents: APP events need a mobile OS."""
    m = IOS.search(ua or "")
    if m:
        return {"os": "iOS", "os_version": f"{m[1]}.{m[2]}", "model": "iPhone"}
    m = ANDROID.search(ua or "")
    if m:
        return {"os": "Android", "os_version": m[1], "model": m[2].strip()}
    return {}


def money(cents, currency):
    return {"amount": cents / 100, "currency": str(currency).upper()}


def map_event(m):
    """shop.events message -> MCM event, or None for kinds the benchmark does not map."""
    email = (m.get("customer") or {}).get("email")
    ev = {
        "id": m["event_id"],
        "timestamp": int(m["occurred_at"]) * 1000,
        "channel_type": CHANNELS.get(str(m.get("channel", "")).lower(), "SITE"),
        "device": {**device_os(m.get("user_agent")), "persistent_id": m.get("device_id"), "ua": m.get("user_agent")},
    }
    if email:
        ev["user_id"] = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    kind, p = m.get("kind"), m.get("product") or {}
    if kind == "page_view":
        page = m.get("page") or {}
        if page.get("type") == "home":
            return {**ev, "event_type": "HOME", "page_id": "HOME_PAGE"}
        return {**ev, "event_type": "PAGE_VIEW", "page_id": page.get("path")}
    if kind == "product_view":
        item = {"id": p["sku"], "seller_id": p.get("seller"), "price": money(p["price_cents"], p["currency"])}
        return {**ev, "event_type": "ITEM_PAGE_VIEW", "page_id": f"PRODUCT_DETAIL_PAGE:{p['sku']}", "items": [item]}
    if kind == "cart_add":
        item = {"id": p["sku"], "quantity": m.get("quantity", 1), "price": money(p["price_cents"], p["currency"])}
        return {**ev, "event_type": "ADD_TO_CART", "page_id": "CART_PAGE", "items": [item]}
    if kind == "search":
        return {**ev, "event_type": "SEARCH", "search_query": str(m.get("query", "")).strip()}
    return None


def send(session, url, event, attempts=3):
    delay = 0.1
    for attempt in range(1, attempts + 1):
        try:
            r = session.post(url, json=event, timeout=10)
            if 200 <= r.status_code < 300:
                return True
        except requests.RequestException:
            pass
        if attempt < attempts:
            time.sleep(delay + random.randint(0, 99) / 1000)
            delay *= 2
    return False


def main():
    base = env("MCM_BASE_URL").rstrip("/")
    url = f"{base}/rmp/event/v1/platforms/{env('MCM_PLATFORM_ID')}/userevents"
    session = requests.Session()
    session.headers.update({"X-API-Key": env("MCM_API_KEY"), "Accept": "application/json"})
    consumer = Consumer(
        {
            "bootstrap.servers": env("BROKERS"),
            "group.id": env("GROUP"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
        }
    )
    consumer.subscribe([env("TOPIC")])
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = 0
    while running:
        msg = consumer.poll(0.1)
        if msg is None:
            continue
        if msg.error():
            print(f"consume error: {msg.error()}", file=sys.stderr)
            continue
        try:
            event = map_event(json.loads(msg.value()))
        except (ValueError, KeyError, TypeError):
            event, failed = None, failed + 1
        if event is not None and not send(session, url, event):
            failed += 1
            if failed <= 5:
                print("delivery failed after 3 attempts", file=sys.stderr)
        consumer.store_offsets(message=msg)
    consumer.close()


if __name__ == "__main__":
    main()
