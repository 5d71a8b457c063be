#!/usr/bin/env python3
"""Open N half-open TLS connections to HOST:PORT, hold them, then close them.

Usage: half_open_tls.py HOST PORT N HOLD_SECONDS [MODE]

MODE says what each connection sends after its TCP connect (default hello):
  hello    a whole TLS 1.3 ClientHello (SNI localhost, made once with
           Python's ssl module and sent on every connection); the handshake
           is never finished.  The connection counts as "answered" once the
           server has sent its first flight (ServerHello ... Finished): from
           then on the server holds the handshake's state and waits for the
           client's Finished.
  partial  the first 100 bytes of that ClientHello (a slow client)
  silent   nothing
  mix      hello, partial and silent in turn
A partial or silent connection counts as answered once it is established.
At most 256 connections are being opened at a time.

Prints "opened N answered A failed F seconds T" once every connection has
been answered, has failed, or 120 s have passed; then holds every socket
until HOLD_SECONDS more have passed or it gets SIGTERM/SIGINT, closes them
all (unread data makes the kernel reset them) and prints "closed N" just
before it exits.  Used by bench/tls_burst_rss.sh to measure how much memory
a TLS proxy holds for handshakes in progress and gives back afterwards.
"""
import errno
import selectors
import socket
import ssl
import sys
import time

import clientlib

WINDOW = 256          # connections being opened at once
OPEN_DEADLINE = 120.0  # seconds for the whole opening phase


def client_hello():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def what_to_send(mode, i, hello):
    kind = ("hello", "partial", "silent")[i % 3] if mode == "mix" else mode
    return {"hello": hello, "partial": hello[:100], "silent": b""}[kind]


def open_all(host, port, n, hello, mode, stop):
    """Returns (sockets kept, answered, failed)."""
    sel = selectors.DefaultSelector()
    kept, answered, failed, started, pending = [], 0, 0, 0, 0
    deadline = time.monotonic() + OPEN_DEADLINE
    while (started < n or pending > 0) and not stop and time.monotonic() < deadline:
        while started < n and pending < WINDOW:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            started += 1
            err = s.connect_ex((host, port))
            if err not in (0, errno.EINPROGRESS):
                failed += 1
                s.close()
                continue
            sel.register(s, selectors.EVENT_WRITE, what_to_send(mode, started, hello))
            pending += 1
        for key, _ in sel.select(0.5):
            s = key.fileobj
            if key.data is not None:          # connecting: bytes to send
                data = key.data
                sel.unregister(s)
                try:
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                        raise OSError("connect failed")
                    if data:
                        s.send(data)   # a few hundred bytes: fits the empty send buffer
                except OSError:
                    s.close()
                    failed += 1
                    pending -= 1
                    continue
                if data is hello:
                    sel.register(s, selectors.EVENT_READ, None)   # wait for the answer
                else:
                    answered += 1
                    pending -= 1
                    kept.append(s)
                continue
            sel.unregister(s)
            pending -= 1
            try:
                first = s.recv(1, socket.MSG_PEEK)
            except OSError:
                first = b""
            if first:
                answered += 1
                kept.append(s)   # the server's flight stays unread
            else:
                failed += 1
                s.close()
    for key in list(sel.get_map().values()):
        kept.append(key.fileobj)   # unanswered at the deadline: still held
    sel.close()
    return kept, answered, failed


def main() -> int:
    host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    mode = sys.argv[5] if len(sys.argv) > 5 else "hello"
    if mode not in ("hello", "partial", "silent", "mix"):
        print("unknown mode %r" % mode, file=sys.stderr)
        return 2
    stop = clientlib.prepare(n)

    start = time.monotonic()
    kept, answered, failed = open_all(host, port, n, client_hello(), mode, stop)
    print(f"opened {len(kept)} answered {answered} failed {failed} "
          f"seconds {time.monotonic() - start:.2f}", flush=True)
    clientlib.hold(kept, hold, stop)
    print(f"closed {len(kept)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
