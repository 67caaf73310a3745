#!/usr/bin/env python3
"""The first open of a file written by an earlier stockd, which upgrades it, and `verify` of it.

Usage: python3 benches/upgrade_time.py OLD_BINARY NEW_BINARY   (env ROWS, default 1,000,000)

Writes import_alone.py's 10,000 products and 3 warehouses besides `default`, and ROWS stock rows (each an absolute
count, so each is one movement; 40,000 levels) to a temp directory and imports them with
OLD_BINARY. Then, on a copy, it times NEW_BINARY's first open of the file — an import of
no rows, which opens the file, upgrades it and commits nothing else — and a second one (the
plain open), and `verify` by each binary of its own file: wall time and peak RSS of each
process (wait4; the 10 ms poll bounds the wall time's precision), and the file's size before
and after (redb grows a file by doubling its length; the blocks on disk say what it wrote). Every step is bounded by a timeout.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import import_alone

ROWS = int(os.environ.get("ROWS", "1000000"))
TIMEOUT_S = 900


def write_csvs(d):
    """import_alone.py's products and warehouses, ROWS stock rows over their levels, and a
    CSV of no rows."""
    import_alone.write_csvs(d)
    with open(os.path.join(d, "empty.csv"), "w") as f:
        f.write("id,name\n")
    warehouses = import_alone.WAREHOUSES
    levels = import_alone.PRODUCTS * len(warehouses)
    with open(os.path.join(d, "stock.csv"), "w") as f:
        f.write("product_id,warehouse_id,quantity\n")
        for k in range(ROWS):
            level = k % levels
            f.write(f"p{level // len(warehouses):05},{warehouses[level % len(warehouses)]},{k + 1}\n")


def measure(args):
    """Runs `args` alone: its wall time (s), peak RSS (MiB, from wait4) and output."""
    env = {k: v for k, v in os.environ.items() if k not in ("STOCKD_CONFIG", "STOCKD_DATA")}
    with tempfile.TemporaryFile("w+") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        deadline = t0 + TIMEOUT_S
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                sys.exit(f"timed out: {' '.join(args)}")
            time.sleep(0.01)
        wall = time.monotonic() - t0
        log.seek(0)
        out = log.read().strip()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"failed ({code}): {' '.join(args)}\n{out}")
    return wall, usage.ru_maxrss / 1024, out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    old, new = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="stockd-upgrade-") as d:
        write_csvs(d)
        base = os.path.join(d, "old.redb")
        for kind in ("products", "warehouses", "stock"):
            wall, _, _ = measure([old, "import", "--data", base, "--kind", kind, os.path.join(d, f"{kind}.csv")])
            print(f"{old} import --kind {kind}: {wall:.2f} s")
        data = os.path.join(d, "new.redb")
        shutil.copyfile(base, data)
        size_before = os.stat(data)
        empty = os.path.join(d, "empty.csv")
        for what in ("first open (upgrade)", "second open"):
            wall, rss, _ = measure([new, "import", "--data", data, "--kind", "warehouses", empty])
            print(f"{new} {what}: {wall:.2f} s, peak RSS {rss:.0f} MiB")
        size_after = os.stat(data)
        mib = lambda st: f"{st.st_size / 2**20:.0f} MiB ({st.st_blocks * 512 / 2**20:.0f} MiB on disk)"
        print(f"file: {mib(size_before)} before, {mib(size_after)} after")
        for binary, path in ((old, base), (new, data)):
            wall, rss, out = measure([binary, "verify", "--data", path])
            print(f"{binary} verify: {wall:.2f} s, peak RSS {rss:.0f} MiB: {out.splitlines()[-1] if out else ''}")


if __name__ == "__main__":
    main()
