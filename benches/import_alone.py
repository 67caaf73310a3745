#!/usr/bin/env python3
"""`stockd import` of the load bench's 40,000 stock rows, alone, for one or more binaries in turn.

Usage: python3 benches/import_alone.py BINARY [BINARY ...]
       (env ROUNDS, default 4; PRODUCTS, default 10,000: the stock rows are 4 per product)

Writes the load bench's CSVs (10,000 products, 3 warehouses besides `default`, 40,000 stock
rows) to a temp directory, imports the products and warehouses into a file once, and then,
ROUNDS times and alternating between the binaries, copies that file and times
`BINARY import --kind stock` of the stock rows into the copy: wall time, CPU, minor page
faults and peak RSS of the process. The load bench times the same import inside a longer run; this takes
it alone, so two builds can be compared minutes apart on this noisy machine. Prints each
run and, per binary, the median.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROUNDS = int(os.environ.get("ROUNDS", "4"))
PRODUCTS = int(os.environ.get("PRODUCTS", "10000"))
TIMEOUT_S = 300
WAREHOUSES = ["default", "wh-2", "wh-3", "wh-4"]


def write_csvs(d):
    with open(os.path.join(d, "products.csv"), "w") as f:
        f.write("id,sku,name\n")
        f.writelines(f"p{i:05},SKU-p{i:05},Bench product {i}\n" for i in range(PRODUCTS))
    with open(os.path.join(d, "warehouses.csv"), "w") as f:
        f.write("id,name\n")
        f.writelines(f"{w},Warehouse {w}\n" for w in WAREHOUSES[1:])
    with open(os.path.join(d, "stock.csv"), "w") as f:
        f.write("product_id,warehouse_id,quantity\n")
        levels = PRODUCTS * len(WAREHOUSES)
        f.writelines(f"p{k // len(WAREHOUSES):05},{WAREHOUSES[k % len(WAREHOUSES)]},1000000\n" for k in range(levels))


def child_env():
    return {k: v for k, v in os.environ.items() if k not in ("STOCKD_CONFIG", "STOCKD_DATA")}


def run(args):
    return subprocess.run(
        args, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=TIMEOUT_S
    )


def timed(args):
    """Runs `args`; its wall time, exit status and the resources of that process alone."""
    t0 = time.monotonic()
    child = subprocess.Popen(args, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            return time.monotonic() - t0, child.returncode, usage
        if time.monotonic() - t0 > TIMEOUT_S:
            child.kill()
            child.wait()
            sys.exit(f"{args[0]}: import did not end within {TIMEOUT_S} s; killed")
        time.sleep(0.002)


def main():
    binaries = sys.argv[1:]
    rows = PRODUCTS * len(WAREHOUSES)
    if not binaries:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory(prefix="stockd-import-") as d:
        write_csvs(d)
        base = os.path.join(d, "base.redb")
        for kind in ("products", "warehouses"):
            r = run([binaries[0], "import", "--data", base, "--kind", kind, os.path.join(d, f"{kind}.csv")])
            if r.returncode != 0:
                sys.exit(f"import of {kind} failed: {r.stderr}")
        walls = {b: [] for b in binaries}
        for i in range(ROUNDS):
            for b in binaries:
                data = os.path.join(d, "run.redb")
                shutil.copyfile(base, data)
                wall, status, usage = timed([b, "import", "--data", data, "--kind", "stock", os.path.join(d, "stock.csv")])
                if status != 0:
                    sys.exit(f"{b}: import failed (status {status})")
                walls[b].append(wall)
                print(
                    f"round {i + 1} {b}: {wall:.3f} s wall ({rows / wall:,.0f} rows/s), "
                    f"user {usage.ru_utime:.2f} s, sys {usage.ru_stime:.2f} s, "
                    f"{usage.ru_minflt} minor faults, peak RSS {usage.ru_maxrss / 1024:.1f} MiB"
                )
                os.remove(data)
        for b, w in walls.items():
            w.sort()
            print(f"median {b}: {w[len(w) // 2]:.3f} s ({rows / w[len(w) // 2]:,.0f} rows/s)")


if __name__ == "__main__":
    main()
