#!/usr/bin/env python3
"""Instructions per request of the hot paths, counted by callgrind (repeatable on a noisy machine).

Usage: python3 benches/callgrind.py [STOCKD_BINARY] [REQUESTS]
       (default: target/release/stockd, 2000 requests per phase)

Runs `stockd serve` under `valgrind --tool=callgrind` with instrumentation off, creates
products, then for each phase switches instrumentation on, sends REQUESTS requests over 16
keep-alive connections at once (writes share groups and commits, as under load), dumps and switches it off again. It prints the instructions (Ir) per
request of every thread of the daemon (HTTP workers, writer, log syncer) and the functions
that cost most, so a change to a hot path can be compared before and after. A release build
with symbols is best: `cargo bench --no-run` leaves one in target/release/stockd.

Environment: CG_CONNECTIONS (connections per phase, default 16; 1 shows the per-group cost
of one-movement groups), CG_PRODUCTS (products created, default 100; the bulk phase counts up
to 1000 of them per request), CG_KEEP=DIR (keep the data and the callgrind dumps there, for
`callgrind_annotate --tree=calling`).
"""
import concurrent.futures
import glob
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import stockd_http

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/stockd"
REQUESTS = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
PORT = 18097
PRODUCTS = int(os.environ.get("CG_PRODUCTS", "100"))
READY_TIMEOUT_S = 120
TOP_FUNCTIONS = 25
CONNECTIONS = int(os.environ.get("CG_CONNECTIONS", "16"))
BULK_LINES = 1000
BULK_REQUESTS = 32


def wait_ready():
    if not stockd_http.ready(PORT, READY_TIMEOUT_S, 0.2):
        sys.exit("stockd did not become ready under valgrind")


def call(conn, method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status not in (200, 201):
        sys.exit(f"{method} {path}: {r.status} {data[:200]!r}")


def control(pid, *args):
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, stdout=subprocess.DEVNULL)


def phase(pid, out_dir, name, requests):
    """Sends `requests` over CONNECTIONS keep-alive connections at once (so writes share
    groups and commits as under load) and returns the dump files of the phase."""
    conns = [http.client.HTTPConnection("127.0.0.1", PORT, timeout=120) for _ in range(CONNECTIONS)]
    for c in conns:
        call(c, "GET", "/healthz")  # connections are open before counting starts
    control(pid, "--zero")
    control(pid, "--instr=on")
    with concurrent.futures.ThreadPoolExecutor(CONNECTIONS) as pool:
        share = [requests[i::CONNECTIONS] for i in range(CONNECTIONS)]
        list(pool.map(lambda cr: [call(cr[0], *r) for r in cr[1]], zip(conns, share)))
    control(pid, f"--dump={name}")
    control(pid, "--instr=off")
    for c in conns:
        c.close()
    return [f for f in glob.glob(os.path.join(out_dir, "cg.out*")) if name_of(f) == name]


def name_of(path):
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("desc: Trigger: dump "):
                return line.split("dump ", 1)[1].strip()
            if line.startswith("events:"):
                break
    return None


def total_ir(path):
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    return 0


def report(name, dumps, requests):
    ir = sum(total_ir(d) for d in dumps)
    print(f"\n## {name}: {ir / requests:,.0f} instructions per request ({requests} requests)\n")
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=99", *dumps], capture_output=True, text=True
    ).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*)", line)
        if m and "PROGRAM TOTALS" not in line:
            rows.append((int(m.group(1).replace(",", "")), m.group(3)))
    # Inclusive costs of this crate's functions and the libraries' entry points it calls.
    shown = 0
    for ir_fn, fn in rows:
        if not re.search(r"stockd::|redb::.*(commit|insert|open_table)|actix_http::h1::dispatcher|serde_json::(de|ser)::", fn):
            continue
        fn = re.sub(r"/root/\.cargo/registry/src/[^/]+/|\[[^\]]*\]", "", fn)
        print(f"{ir_fn / requests:>10,.0f}  {fn[:160]}")
        shown += 1
        if shown == TOP_FUNCTIONS:
            break


def main():
    with tempfile.TemporaryDirectory() as d:
        d = os.environ.get("CG_KEEP", d)
        data = os.path.join(d, "cg.redb")
        config = os.path.join(d, "stockd.toml")
        with open(config, "w") as f:
            f.write(f'[storage]\npath = "{data}"\n')
        proc = subprocess.Popen(
            [
                "valgrind", "--tool=callgrind", "--instr-atstart=no",
                f"--callgrind-out-file={d}/cg.out.%p",
                BIN, "serve", "--listen", f"127.0.0.1:{PORT}", "--config", config,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": "info"},
        )
        try:
            wait_ready()
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
            for i in range(PRODUCTS):
                call(conn, "PUT", f"/api/products/p{i}", {"sku": f"s{i}", "name": f"Product {i}"})
            conn.close()
            moves = [
                ("POST", "/api/inventory/movements",
                 {"product_id": f"p{i % PRODUCTS}", "warehouse_id": "default",
                  "movement_type": "in" if i % 2 == 0 else "out", "quantity": 1})
                for i in range(REQUESTS)
            ]
            # an opening stock, so the outs never go below zero
            phase(proc.pid, d, "setup",
                  [("POST", "/api/inventory/movements",
                    {"product_id": f"p{i}", "warehouse_id": "default", "movement_type": "in", "quantity": REQUESTS})
                   for i in range(PRODUCTS)])
            report("movement (POST /api/inventory/movements)", phase(proc.pid, d, "movement", moves), REQUESTS)
            reads = [("GET", f"/api/inventory?product_id=p{i % PRODUCTS}&warehouse_id=default", None)
                     for i in range(REQUESTS)]
            report("level read (GET /api/inventory?product_id&warehouse_id)", phase(proc.pid, d, "read", reads), REQUESTS)
            lines = min(BULK_LINES, PRODUCTS)
            counts = [("POST", "/api/inventory/adjustments",
                       {"adjustments": [{"product_id": f"p{(n * 7 + j) % PRODUCTS}", "warehouse_id": "default",
                                         "actual_quantity": (n + j) % 97, "reason": "count"}
                                        for j in range(lines)]})
                      for n in range(BULK_REQUESTS)]
            report(f"bulk count ({lines} lines a request; figures per line)",
                   phase(proc.pid, d, "bulk", counts), BULK_REQUESTS * lines)
            health = [("GET", "/healthz", None) for _ in range(REQUESTS)]
            report("GET /healthz (the HTTP floor)", phase(proc.pid, d, "healthz", health), REQUESTS)
        finally:
            proc.terminate()
            proc.wait(timeout=120)


if __name__ == "__main__":
    main()
