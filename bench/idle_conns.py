#!/usr/bin/env python3
"""Open N idle TCP connections to HOST:PORT and hold them.

Usage: idle_conns.py HOST PORT N HOLD_SECONDS

Prints "connected N" (the number actually established) on stdout once all
connects have finished, then holds every socket open, sending nothing, until
HOLD_SECONDS more have passed or it gets SIGTERM/SIGINT; the kernel closes the
sockets when it exits.  Used by bench/run.sh to measure a proxy's memory per
idle connection.
"""
import resource
import signal
import socket
import sys
import time


def main() -> int:
    host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        want = n + 64 if hard == resource.RLIM_INFINITY else min(n + 64, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    socks = []
    failed = 0
    start = time.monotonic()
    deadline = start + 60.0  # connect phase
    slow = 0
    for _ in range(n):
        if stop or time.monotonic() > deadline:
            break
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5.0)
        t0 = time.monotonic()
        try:
            s.connect((host, port))
            if time.monotonic() - t0 > 0.5:
                slow += 1  # a SYN was dropped and retransmitted
        except OSError:
            failed += 1
            s.close()
            continue
        socks.append(s)
    print(f"connected {len(socks)} failed {failed} slow {slow} seconds {time.monotonic() - start:.2f}",
          flush=True)
    deadline = time.monotonic() + hold
    while not stop and time.monotonic() < deadline:
        time.sleep(0.05)
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
