#!/usr/bin/env python3
"""The disk's sync floor, alone and with the other core busy (docs/benchmarks.md).

Usage: python3 benches/sync_floor.py [DIR] [SECONDS]
       (default: the system temp dir, 3 s per case)

Writes + fdatasyncs in a preallocated file in DIR, three patterns: whole 4 KiB pages in turn
over 1 MiB (the load bench's floor), and records of the redo log's alignment one after the
other over 32 MiB, 632 bytes (a one-movement group) and 14,000 bytes (a group at 64
connections). Each pattern goes through the page cache, as the log does, and with O_DIRECT
(the 4 KiB blocks each record touches, from an aligned buffer: a variant measured for the
log and not kept). Each case runs once on a quiet machine and once with a child process
spinning on a core. Prints p50, mean and p99 in µs. On the 2-core test VM the busy core
raised the mean by ~50 µs: a thread that waits on a sync resumes later when the other core
is busy.
"""
import mmap
import os
import sys
import tempfile
import time

DIR = sys.argv[1] if len(sys.argv) > 1 else tempfile.gettempdir()
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
PAGE_BYTES = 4096
RECORD_ALIGN_BYTES = 8
CHUNK_BYTES = 1 << 20
# Pattern: (bytes a write, the file's size).
PATTERNS = {
    "page": (PAGE_BYTES, 1 << 20),
    "632-byte records": (632, 32 << 20),
    "14,000-byte records": (14_000, 32 << 20),
}
CASES = [(pattern, direct) for pattern in PATTERNS for direct in (False, True)]


def run(pattern, direct):
    length, size = PATTERNS[pattern]
    path = os.path.join(DIR, f"sync-floor-{os.getpid()}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    dfd = None
    try:
        zeros = b"\0" * CHUNK_BYTES
        for off in range(0, size, CHUNK_BYTES):
            os.pwrite(fd, zeros, off)
        os.fsync(fd)
        if direct:
            dfd = os.open(path, os.O_WRONLY | os.O_DIRECT)
        # An anonymous mapping is page-aligned, as O_DIRECT needs.
        buf = mmap.mmap(-1, length + 2 * PAGE_BYTES)
        buf.write(b"\x5a" * len(buf))
        data = memoryview(buf)
        step = -(-length // RECORD_ALIGN_BYTES) * RECORD_ALIGN_BYTES
        latencies, off = [], PAGE_BYTES
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            t0 = time.perf_counter_ns()
            if direct:
                start = off // PAGE_BYTES * PAGE_BYTES
                stop = -(-(off + length) // PAGE_BYTES) * PAGE_BYTES
                os.pwrite(dfd, data[: stop - start], start)
            else:
                os.pwrite(fd, data[:length], off)
            os.fdatasync(fd)
            latencies.append((time.perf_counter_ns() - t0) / 1000)
            off += step
            if off + length + PAGE_BYTES > size:
                off = PAGE_BYTES
    finally:
        if dfd is not None:
            os.close(dfd)
        os.close(fd)
        os.unlink(path)
    latencies.sort()
    n = len(latencies)
    return n, latencies[n // 2], sum(latencies) / n, latencies[int(n * 0.99)]


def spinner():
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + len(CASES) * (SECONDS + 2) + 10
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
            for pattern, direct in CASES:
                n, p50, mean, p99 = run(pattern, direct)
                label = f"{pattern}{', O_DIRECT' if direct else ''}{', other core busy' if busy else ''}"
                print(f"| {label} | {n} | {p50:.0f} µs | {mean:.0f} µs | {p99:.0f} µs |")
        finally:
            if pid:
                os.kill(pid, 9)
                os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
