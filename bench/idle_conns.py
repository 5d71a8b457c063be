#!/usr/bin/env python3
"""Open N idle TCP connections to HOST:PORT and hold them.

Usage: idle_conns.py HOST PORT N HOLD_SECONDS

Prints "connected N" (the number actually established) on stdout once all
connects have finished, then holds every socket open, sending nothing, until
HOLD_SECONDS more have passed or it gets SIGTERM/SIGINT; the kernel closes the
sockets when it exits.  Used by bench/run.sh to measure a proxy's memory per
idle connection.
"""
import socket
import sys
import time

import clientlib


def main() -> int:
    host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    stop = clientlib.prepare(n)

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
    clientlib.hold(socks, hold, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
