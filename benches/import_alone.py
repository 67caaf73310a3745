#!/usr/bin/env python3
"""`stockd import` of the load bench's 40,000 stock rows, alone, for one or more binaries in turn.

Usage: python3 benches/import_alone.py BINARY [BINARY ...]   (env ROUNDS, default 4)

Writes the load bench's CSVs (10,000 products, 3 warehouses besides `default`, 40,000 stock
rows) to a temp directory, imports the products and warehouses into a file once, and then,
ROUNDS times and alternating between the binaries, copies that file and times
`BINARY import --kind stock` of the stock rows into the copy: wall time, CPU and minor page
faults of the process. The load bench times the same import inside a longer run; this takes
it alone, so two builds can be compared minutes apart on this noisy machine. Prints each
run and, per binary, the median.
"""
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROUNDS = int(os.environ.get("ROUNDS", "4"))
PRODUCTS = 10_000
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


def run(args):
    env = {k: v for k, v in os.environ.items() if k not in ("STOCKD_CONFIG", "STOCKD_DATA")}
    return subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300)


def main():
    binaries = sys.argv[1:]
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
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.monotonic()
                r = run([b, "import", "--data", data, "--kind", "stock", os.path.join(d, "stock.csv")])
                wall = time.monotonic() - t0
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if r.returncode != 0:
                    sys.exit(f"{b}: import failed: {r.stderr}")
                walls[b].append(wall)
                print(
                    f"round {i + 1} {b}: {wall:.3f} s wall ({40_000 / wall:,.0f} rows/s), "
                    f"user {after.ru_utime - before.ru_utime:.2f} s, sys {after.ru_stime - before.ru_stime:.2f} s, "
                    f"{after.ru_minflt - before.ru_minflt} minor faults"
                )
                os.remove(data)
        for b, w in walls.items():
            w.sort()
            print(f"median {b}: {w[len(w) // 2]:.3f} s ({40_000 / w[len(w) // 2]:,.0f} rows/s)")


if __name__ == "__main__":
    main()
