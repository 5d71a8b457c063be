#!/usr/bin/env python3
"""Watches a live handoff from the old worker's side (bench/handoff.sh).

Polls every 2 ms (one process, no fork per poll: the measurement must not
take the CPU the workers need) until the old worker is gone, then prints
one line:  exit_s old_cpu_ms new_cpu_ms
- exit_s: wall clock (time.time()) when the old worker was seen gone;
- old_cpu_ms: CPU the old worker used from the start of the watch (just
  before the reload) to its exit, from /proc/PID/task/*/schedstat (ns);
- new_cpu_ms: CPU the new worker had used when the old one exited, since it
  started (its start-up included: an upper bound of what adopting cost).
Usage: handoff_watch.py OLD_PID RELOAD_OUT_FILE TIMEOUT_S
"""
import os
import re
import sys
import time


def cpu_ns(pid):
    """CPU time of every thread of pid (ns), or None if pid is gone; a
    thread that ends while it is read is left out."""
    total, seen = 0, False
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
                seen = True
        except (OSError, ValueError, IndexError):
            continue
    return total if seen else None


def gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def main():
    old, out, limit = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    start = cpu_ns(old) or 0
    last, new, new_cpu = start, None, 0
    deadline = time.time() + limit
    while not gone(old):
        if time.time() > deadline:
            sys.exit("worker %d still alive %.0f s after the reload" % (old, limit))
        v = cpu_ns(old)
        if v is not None:
            last = v
        if new is None:
            try:
                m = re.search(r"worker pid (\d+)", open(out).read())
                new = int(m.group(1)) if m else None
            except OSError:
                pass
        if new is not None:
            new_cpu = cpu_ns(new) or new_cpu
        time.sleep(0.002)
    t = time.time()
    if new is not None:
        new_cpu = cpu_ns(new) or new_cpu
    print("%.6f %.1f %.1f" % (t, (last - start) / 1e6, new_cpu / 1e6))


if __name__ == "__main__":
    main()
