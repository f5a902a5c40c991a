#!/usr/bin/env python3
"""Builds the fuzz seed corpora from the shipped examples (run by scripts/fuzz.sh).

process_message: every message of deploy/examples/*.cases.yaml, in the input layout of
fuzz/harness.rs (`[block, flags, key_len, header_len, key.., header.., payload..]`).
load_config: the three example configurations, whole. (Two hostile seeds kept by hand in
fuzz/seeds/load_config/ are left alone: a YAML alias bomb and 5,000-level flow nesting.)
"""
import json
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "deploy" / "examples"
# Block order of fuzz/harness.rs: the examples in EXAMPLES order, blocks in file order.
BLOCKS = ["shop.events", "shop.orders", "segment.events", "ga4.events"]
HEADERS = ["x-platform", "x-other", "content-type"]


def message_seed(case):
    block = BLOCKS.index(case["topic"])
    flags = 0
    key = (case.get("key") or "").encode()
    if "key" in case:
        flags |= 1
    hdr = b""
    for name, value in (case.get("headers") or {}).items():
        if name in HEADERS:
            flags |= (HEADERS.index(name) + 1) << 1
            hdr = str(value).encode()
            break
    if case.get("tombstone"):
        flags |= 16
        payload = b""
    elif "raw" in case:
        payload = case["raw"].encode()
    else:
        payload = json.dumps(case["message"], separators=(",", ":"), default=str).encode()
    return bytes([block, flags, min(len(key), 255), min(len(hdr), 255)]) + key[:255] + hdr[:255] + payload


def main(out):
    out = pathlib.Path(out)
    pm = out / "process_message"
    lc = out / "load_config"
    pm.mkdir(parents=True, exist_ok=True)
    lc.mkdir(parents=True, exist_ok=True)
    n = 0
    for cases in sorted(EXAMPLES.glob("*.cases.yaml")):
        for i, case in enumerate(yaml.safe_load(cases.read_text())):
            (pm / f"{cases.stem}-{i:02}").write_bytes(message_seed(case))
            n += 1
    for cfg in ("mcm-bridge.yaml", "segment.yaml", "ga4.yaml"):
        (lc / cfg).write_bytes((EXAMPLES / cfg).read_bytes())
    print(f"seeds: {n} messages, 3 configs -> {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ROOT / "fuzz" / "seeds")
