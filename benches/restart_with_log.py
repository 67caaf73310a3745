#!/usr/bin/env python3
"""Restart time of the real daemon with a full redo log, and after a clean stop (issue 11).

Usage: python3 benches/restart_with_log.py [STOCKD_BINARY]   (default: target/release/stockd)

Starts `stockd serve` on a temp dir with checkpoints held off, creates 1,000 products and
sends 28 bulk counts of 1,000 lines (about 12 MB of log), kills it with SIGKILL, and times the
next start until /readyz answers 200 (the log is applied first). Then it stops that daemon
cleanly and times one more start. Loopback only; every loop is bounded.
"""
import http.client
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

import stockd_http

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/stockd"
PORT = 18099
BULK_REQUESTS = 28
READY_TIMEOUT_S = 30
RECORD_MAGIC = struct.pack("<I", 0x52444F57)


def start(config):
    began = time.time()
    proc = subprocess.Popen(
        [BIN, "serve", "--listen", f"127.0.0.1:{PORT}", "--config", config],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    if stockd_http.ready(PORT, READY_TIMEOUT_S, 0.002):
        return proc, time.time() - began
    proc.kill()
    sys.exit("stockd did not become ready")


def call(conn, method, path, body):
    conn.request(method, path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status not in (200, 201):
        sys.exit(f"{method} {path}: {r.status} {data[:200]!r}")


def log_in_use(path):
    wal = open(path, "rb").read()
    offset, records = 4096, 0
    while offset + 24 <= len(wal) and wal[offset : offset + 4] == RECORD_MAGIC:
        length = struct.unpack("<I", wal[offset + 4 : offset + 8])[0]
        records += 1
        offset += (24 + length + 7) // 8 * 8
    return records, offset - 4096


def main():
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "restart.redb")
        config = os.path.join(d, "stockd.toml")
        with open(config, "w") as f:
            f.write(f'[storage]\npath = "{data}"\ncheckpoint_interval_ms = 3600000\n')
        proc, _ = start(config)
        conn = http.client.HTTPConnection("127.0.0.1", PORT)
        for i in range(1000):
            call(conn, "PUT", f"/api/products/p{i}", {"sku": f"s{i}", "name": "x"})
        for n in range(BULK_REQUESTS):
            lines = [
                {"product_id": f"p{j}", "warehouse_id": "default", "actual_quantity": (n + j) % 97, "reason": "count"}
                for j in range(1000)
            ]
            call(conn, "POST", "/api/inventory/adjustments", {"adjustments": lines})
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        records, used = log_in_use(data + ".wal")
        print(f"log after kill -9: {records} records, {used / 1e6:.1f} MB")
        proc, seconds = start(config)
        print(f"restart after kill -9 with that log: {seconds * 1000:.0f} ms (target ≤ 1000 ms)")
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        proc, seconds = start(config)
        print(f"restart after a clean stop: {seconds * 1000:.0f} ms (target ≤ 50 ms)")
        proc.send_signal(signal.SIGTERM)
        proc.wait()


if __name__ == "__main__":
    main()
