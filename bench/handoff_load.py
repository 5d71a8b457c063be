#!/usr/bin/env python3
"""Live connections for bench/handoff.sh (Python 3 standard library; the
streams of tests/integration/streams.py).

  handoff_load.py server --port-file F
      the echo backend (one thread, any number of connections); writes its
      port to F and runs until SIGTERM.
  handoff_load.py client --port P --conns N --busy B --base ID
                         --ready-file F --stop-file S --result-file R
      opens N connections to 127.0.0.1:P, B of them echo streams that keep
      sending (every echoed byte checked against what was sent), the rest
      idle (one echoed message at the end); writes "ready" to F once all are
      connected and every busy one has had an echo back, then runs until S
      exists (at most --max-seconds), stops every stream, checks it and
      writes a JSON summary to R.  Exit status 0 if every connection was
      intact, 1 if not, 2 on a set-up failure.
  handoff_load.py client --tls ...
      the same over TLS 1.3 terminated by baton (a `tls = on` listener;
      the certificate is not verified): each connection completes its
      handshake, then speaks the streams' header and pattern inside TLS to
      the same plain echo backend; every echoed byte is checked against the
      pattern as it comes back.  At stop the idle ones send one message,
      every connection must get all its bytes back, then sends close_notify.
"""
import argparse
import json
import os
import random
import resource
import selectors
import signal
import socket
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from streams import (HEADER, KIND_CODE, MAGIC, PATTERN_LEN, Params, StreamServer,  # noqa: E402
                     StreamSet, pattern, start_offset)

ECHO_WINDOW = 64 << 10   # unanswered bytes a busy TLS stream may have


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def params(a):
    return Params(echo_interval=a.interval, echo_max=a.msg)


def run_server(a):
    srv = StreamServer(params=params(a), name="handoff-srv")
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.addr[1])
    os.replace(tmp, a.port_file)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    srv.close()
    return 0


def run_client(a):
    streams = StreamSet(plain=("127.0.0.1", a.port), params=params(a), id_base=a.base)
    streams.start("echo", a.busy)
    streams.start("idle", a.conns - a.busy)
    deadline = time.monotonic() + a.setup_seconds
    while True:
        p = streams.progress()
        conn = sum(v["connected"] for v in p.values())
        failed = sum(v["failed"] for v in p.values())
        busy_ok = a.busy == 0 or p.get("echo", {}).get("down", 0) > 0
        if conn == a.conns and busy_ok:
            break
        if failed or time.monotonic() > deadline:
            print("client %d: %d of %d connected, %d failed at set-up: %s"
                  % (a.base, conn, a.conns, failed, streams.verify()[:3]), file=sys.stderr)
            return 2
        time.sleep(0.05)
    with open(a.ready_file, "w") as f:
        f.write("ready %d\n" % a.conns)
    end = time.monotonic() + a.max_seconds
    while not os.path.exists(a.stop_file) and time.monotonic() < end:
        time.sleep(0.05)
    before = streams.progress()
    streams.stop(timeout=60)
    failures = streams.verify()
    p = streams.progress()
    out = {"conns": a.conns, "busy": a.busy,
           "busy_failed": sum(1 for f in failures if f.startswith("echo ")),
           "idle_failed": sum(1 for f in failures if f.startswith("idle ")),
           "echo_bytes": p.get("echo", {}).get("down", 0),
           "echo_bytes_at_stop": before.get("echo", {}).get("down", 0),
           "failures": failures[:20]}
    with open(a.result_file, "w") as f:
        json.dump(out, f)
    streams.close()
    return 1 if failures else 0


class TLSStream(object):
    """One TLS echo connection: what it sent (from the pattern at its own
    offset) and how much of it came back intact."""

    def __init__(self, sock, kind, cid):
        self.sock, self.kind, self.cid = sock, kind, cid
        self.pat = pattern("up")
        self.off = start_offset(kind, cid, "up")
        self.out = HEADER.pack(MAGIC, KIND_CODE[kind], cid, 0)   # the server echoes what follows
        self.sent = self.back = 0       # pattern bytes sent / echoed and checked
        self.failure = None
        self.next_at = 0.0

    def fail(self, why):
        if self.failure is None:
            self.failure = "%s %d: %s" % (self.kind, self.cid, why)

    def queue(self, n):
        o = (self.off + self.sent) % PATTERN_LEN
        self.out += self.pat[o:o + n]
        self.sent += n

    def flush(self):
        """Sends what is queued (whole, as ssl retries need the same bytes);
        False while the socket cannot take it."""
        while self.out:
            try:
                k = self.sock.send(self.out)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                return False
            except (OSError, ssl.SSLError) as e:
                self.fail("send: %s" % e)
                return True
            self.out = self.out[k:]
        return True

    def read(self):
        while self.failure is None:
            try:
                data = self.sock.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return
            except (OSError, ssl.SSLError) as e:
                self.fail("recv after %d bytes back: %s" % (self.back, e))
                return
            if not data:
                self.fail("EOF after %d of %d bytes back" % (self.back, self.sent))
                return
            o = (self.off + self.back) % PATTERN_LEN
            if data != self.pat[o:o + len(data)]:
                self.fail("byte %d back differs from what was sent" % self.back)
                return
            self.back += len(data)
            if self.back > self.sent:
                self.fail("%d bytes back, only %d sent" % (self.back, self.sent))

    def done(self):
        return self.failure is not None or (not self.out and self.back == self.sent)


def tls_connect_all(a, n_busy, n_idle):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    conns = []
    deadline = time.monotonic() + a.setup_seconds
    for i in range(n_busy + n_idle):
        kind = "echo" if i < n_busy else "idle"
        cid = a.base + (i if i < n_busy else i - n_busy)
        if time.monotonic() > deadline:
            raise RuntimeError("%d of %d TLS connections set up in %.0f s"
                               % (len(conns), n_busy + n_idle, a.setup_seconds))
        raw = socket.create_connection(("127.0.0.1", a.port), timeout=30)
        s = ctx.wrap_socket(raw, server_hostname="localhost")   # the handshake, blocking
        if s.version() != "TLSv1.3":
            raise RuntimeError("negotiated %s, not TLSv1.3" % s.version())
        s.setblocking(False)
        conns.append(TLSStream(s, kind, cid))
    return conns


def run_tls_client(a):
    rng = random.Random(a.base)
    try:
        conns = tls_connect_all(a, a.busy, a.conns - a.busy)
    except (OSError, RuntimeError, ssl.SSLError) as e:
        print("client %d: TLS set-up failed: %s" % (a.base, e), file=sys.stderr)
        return 2
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    busy = [c for c in conns if c.kind == "echo"]
    for c in conns:
        if c.kind == "echo":
            c.queue(rng.randint(1, a.msg))
        c.flush()

    def pump(until, stopping):
        """Runs the streams until `until`; True early once stopping and
        every stream is done, or not stopping and the stop file is there."""
        while time.monotonic() < until:
            now = time.monotonic()
            for c in busy:
                if not stopping and c.failure is None and now >= c.next_at and not c.out \
                        and c.sent - c.back < ECHO_WINDOW:
                    c.queue(rng.randint(1, a.msg))
                    c.next_at = now + a.interval * (0.5 + rng.random())
            for c in conns:
                if c.out:
                    c.flush()
            for key, _ in sel.select(timeout=0.01):
                key.data.read()
            if stopping and all(c.done() for c in conns):
                return True
            if not stopping and os.path.exists(a.stop_file):
                return True
        return False

    # ready once every busy stream had an echo back
    deadline = time.monotonic() + a.setup_seconds
    while not all(c.back > 0 or c.failure for c in busy):
        if time.monotonic() > deadline:
            print("client %d: busy TLS streams without an echo" % a.base, file=sys.stderr)
            return 2
        pump(time.monotonic() + 0.1, False)
    if any(c.failure for c in conns):
        print("client %d: %s" % (a.base, [c.failure for c in conns if c.failure][:3]),
              file=sys.stderr)
        return 2
    with open(a.ready_file, "w") as f:
        f.write("ready %d\n" % a.conns)
    end = time.monotonic() + a.max_seconds
    while time.monotonic() < end and not os.path.exists(a.stop_file):
        pump(min(end, time.monotonic() + 0.2), False)
    echo_at_stop = sum(c.back for c in busy)
    for c in conns:
        if c.kind == "idle" and c.failure is None:
            c.queue(a.msg)
    if not pump(time.monotonic() + 60, True):
        for c in conns:
            if not c.done():
                c.fail("only %d of %d bytes back within 60 s of stop" % (c.back, c.sent))
    for c in conns:
        try:
            c.sock.unwrap()            # close_notify; the peer's is not awaited
        except (OSError, ssl.SSLError, ValueError):
            pass
        c.sock.close()
    failures = [c.failure for c in conns if c.failure]
    out = {"conns": a.conns, "busy": a.busy,
           "busy_failed": sum(1 for f in failures if f.startswith("echo ")),
           "idle_failed": sum(1 for f in failures if f.startswith("idle ")),
           "echo_bytes": sum(c.back for c in busy), "echo_bytes_at_stop": echo_at_stop,
           "failures": failures[:20]}
    with open(a.result_file, "w") as f:
        json.dump(out, f)
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=("server", "client"))
    ap.add_argument("--port-file")
    ap.add_argument("--port", type=int)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--busy", type=int, default=100)
    ap.add_argument("--base", type=int, default=0)
    ap.add_argument("--interval", type=float, default=0.1, help="s between a busy stream's writes")
    ap.add_argument("--msg", type=int, default=256, help="bytes per write, 1..msg")
    ap.add_argument("--ready-file")
    ap.add_argument("--stop-file")
    ap.add_argument("--result-file")
    ap.add_argument("--setup-seconds", type=float, default=120)
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--tls", action="store_true", help="client: TLS 1.3 to a tls = on listener")
    a = ap.parse_args()
    raise_nofile()
    if a.role == "server":
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])
        return run_server(a)
    return run_tls_client(a) if a.tls else run_client(a)


if __name__ == "__main__":
    sys.exit(main())
