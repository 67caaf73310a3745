#!/usr/bin/env python3
"""The disk's sync floor, alone and with the other core busy (docs/benchmarks.md).

Usage: python3 benches/sync_floor.py [DIR] [SECONDS]
       (default: the system temp dir, 3 s per case)

Writes + fdatasyncs in a preallocated file in DIR, two patterns: whole 4 KiB pages in turn
over 1 MiB (the load bench's floor), and records of the redo log's size and alignment
(632 bytes, 8-byte aligned, one after the other over 32 MiB). Each runs once on a quiet
machine and once with a child process spinning on a core. Prints p50, mean and p99 in µs.
On the 2-core test VM the busy core raised the mean by ~50 µs: a thread that waits on a
sync resumes later when the other core is busy.
"""
import os
import sys
import tempfile
import time

DIR = sys.argv[1] if len(sys.argv) > 1 else tempfile.gettempdir()
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
PAGE_BYTES = 4096
RECORD_BYTES = 632
RECORD_ALIGN_BYTES = 8
CHUNK_BYTES = 1 << 20


def run(pattern):
    size = (1 << 20) if pattern == "page" else (32 << 20)
    path = os.path.join(DIR, f"sync-floor-{pattern}-{os.getpid()}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        zeros = b"\0" * CHUNK_BYTES
        for off in range(0, size, CHUNK_BYTES):
            os.pwrite(fd, zeros, off)
        os.fsync(fd)
        data = b"\x5a" * (PAGE_BYTES if pattern == "page" else RECORD_BYTES)
        step = PAGE_BYTES if pattern == "page" else -(-RECORD_BYTES // RECORD_ALIGN_BYTES) * RECORD_ALIGN_BYTES
        latencies, off = [], PAGE_BYTES
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            t0 = time.perf_counter_ns()
            os.pwrite(fd, data, off)
            os.fdatasync(fd)
            latencies.append((time.perf_counter_ns() - t0) / 1000)
            off += step
            if off + PAGE_BYTES > size:
                off = PAGE_BYTES
    finally:
        os.close(fd)
        os.unlink(path)
    latencies.sort()
    n = len(latencies)
    return n, latencies[n // 2], sum(latencies) / n, latencies[int(n * 0.99)]


def spinner():
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + 4 * SECONDS + 10
        while time.monotonic() < end:
            pass
        os._exit(0)
    return pid


def main():
    print("| case | syncs | p50 | mean | p99 |")
    print("|---|---:|---:|---:|---:|")
    for busy in (False, True):
        pid = spinner() if busy else None
        try:
            for pattern in ("page", "record"):
                n, p50, mean, p99 = run(pattern)
                label = f"{pattern}{', other core busy' if busy else ''}"
                print(f"| {label} | {n} | {p50:.0f} µs | {mean:.0f} µs | {p99:.0f} µs |")
        finally:
            if pid:
                os.kill(pid, 9)
                os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
