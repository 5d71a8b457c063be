#!/usr/bin/env python3
"""Open N idle TLS connections to HOST:PORT and hold them.

Usage: idle_tls_conns.py HOST PORT N HOLD_SECONDS

The TLS variant of idle_conns.py: each connection completes a full TLS
handshake (TLS 1.3, certificate not verified, no session reuse) and then
sends nothing.  Prints "connected N failed F slow S seconds T" on stdout once
all handshakes have finished, then holds every socket open until
HOLD_SECONDS more have passed or it gets SIGTERM/SIGINT.  Used by
bench/tls.sh to measure a TLS-terminating proxy's memory per idle connection.
"""
import socket
import ssl
import sys
import time

import clientlib


def main() -> int:
    host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    stop = clientlib.prepare(n)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3

    socks = []
    failed = 0
    start = time.monotonic()
    deadline = start + 90.0  # connect phase
    slow = 0
    for _ in range(n):
        if stop or time.monotonic() > deadline:
            break
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(5.0)
        t0 = time.monotonic()
        try:
            raw.connect((host, port))
            s = ctx.wrap_socket(raw, server_hostname="localhost")  # handshakes here
            if time.monotonic() - t0 > 0.5:
                slow += 1  # a SYN was dropped and retransmitted
        except OSError:
            failed += 1
            raw.close()
            continue
        socks.append(s)
    print(f"connected {len(socks)} failed {failed} slow {slow} seconds {time.monotonic() - start:.2f}",
          flush=True)
    clientlib.hold(socks, hold, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
