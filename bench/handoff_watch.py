#!/usr/bin/env python3
"""Watches a live handoff from the old worker's side (bench/handoff.sh).

Polls every 2 ms (one process, no fork per poll: the measurement must not
take the CPU the workers need) until the old worker is gone, then prints
the wall clock (time.time()) when it was seen gone.  The CPU each worker
spent comes from baton's own handoff lines.
Usage: handoff_watch.py OLD_PID TIMEOUT_S
"""
import sys
import time


def gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def main():
    old, limit = int(sys.argv[1]), float(sys.argv[2])
    deadline = time.time() + limit
    while not gone(old):
        if time.time() > deadline:
            sys.exit("worker %d still alive %.0f s after the reload" % (old, limit))
        time.sleep(0.002)
    print("%.6f" % time.time())


if __name__ == "__main__":
    main()
