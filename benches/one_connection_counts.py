#!/usr/bin/env python3
"""What one durable movement costs the daemon in kernel events, at one connection.

Usage: python3 benches/one_connection_counts.py [STOCKD_BINARY] [SECONDS]
       (default: target/release/stockd, 4 seconds)

Starts `stockd serve` on a temp data file, creates 100 products, then sends single
movements one at a time over one keep-alive connection while `perf stat -p <daemon>`
counts context switches, page faults and futex and madvise calls for SECONDS. It prints
each count per movement: the thread hand-offs (context switches, futex calls) against the
allocator's work (page faults, madvise). Needs perf, with tracepoints readable (as root).
Loopback only; every loop is bounded.
"""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import stockd_http

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/stockd"
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
PORT = 18124
PRODUCTS = 100
READY_TIMEOUT_S = 30
EVENTS = [
    "context-switches",
    "page-faults",
    "syscalls:sys_enter_futex",
    "syscalls:sys_enter_madvise",
]


def call(conn, method, path, body):
    conn.request(method, path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status}")


def movements(conn, stop, done):
    i = 0
    while not stop.is_set():
        call(conn, "POST", "/api/inventory/movements",
             {"product_id": f"p{i % PRODUCTS}", "warehouse_id": "default", "movement_type": "in", "quantity": 1})
        i += 1
        done[0] = i


def main():
    if shutil.which("perf") is None:
        sys.exit("perf is not installed")
    with tempfile.TemporaryDirectory() as d:
        config = os.path.join(d, "stockd.toml")
        with open(config, "w") as f:
            f.write(f'[server]\nlisten = "127.0.0.1:{PORT}"\n\n[storage]\npath = "{d}/data.redb"\n')
        daemon = subprocess.Popen([BIN, "serve", "--config", config],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if not stockd_http.ready(PORT, READY_TIMEOUT_S, 0.1):
                sys.exit("stockd did not become ready")
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
            for i in range(PRODUCTS):
                call(conn, "PUT", f"/api/products/p{i}", {"sku": f"s{i}", "name": f"P{i}"})
            stop, done = threading.Event(), [0]
            client = threading.Thread(target=movements, args=(conn, stop, done))
            client.start()
            time.sleep(1.0)  # warm-up
            before = done[0]
            perf = subprocess.run(
                ["perf", "stat", "-x", ",", "-e", ",".join(EVENTS), "-p", str(daemon.pid),
                 "--", "sleep", str(SECONDS)],
                capture_output=True, text=True, timeout=SECONDS + 30)
            moved = done[0] - before
            stop.set()
            client.join(timeout=30)
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
    if moved == 0:
        sys.exit("no movement was answered")
    print(f"{moved} movements in {SECONDS:.1f} s ({moved / SECONDS:,.0f}/s), one connection; per movement:")
    for line in perf.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and re.fullmatch(r"\d+", fields[0]):
            print(f"  {fields[2]:<28} {int(fields[0]) / moved:8.2f}")


if __name__ == "__main__":
    main()
