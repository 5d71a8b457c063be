"""TLS streams for the live handoff of TLS connections (issue 10): each one
driven by a real, independent client, every byte checked against
streams.py's patterns and each direction's sha256 compared end to end by
streams.py's checker (client_problems, server_problems).

Kinds (each one stream, a thread of its own):
  PyTLSStream      Python ssl to a `tls = on` listener, strict (the server's
                   close_notify must arrive), any version / suite, a resumed
                   session, a client certificate
  SClientStream    `openssl s_client` through its stdin: `K` / `k`
                   (KeyUpdate, ours requested or not) after each reload,
                   or -maxfraglen 512 (every record baton sends <= 512)
  GnuTLSStream     `gnutls-cli --inline-commands`: `^rekey^` / `^rekey1^`
                   after each reload (TLS 1.3), TLS 1.2 priorities
  CurlStream       `curl` downloading SIZE bytes over TLS from a plain HTTP
                   backend (PacedHTTPServer) paced while running, the rest
                   at full speed at stop
  UpstreamPlainStream  a plain client to a listener whose backend speaks TLS
                   (`tls = on`) to a Python TLS echo server (TLSStreamServer)
  SServerStream    the same to `openssl s_server`, whose stdin and stdout
                   this stream drives: it sends KeyUpdates (`K` / `k`)
  PartialHelloStream   half a ClientHello, the rest once `released`
  HeldFinishedStream   TLS 1.3 ClientHello sent and the server's flight
                   received; the client Finished goes only once `released`

The text kinds (tools' stdin) use TEXT_ALPHABET patterns, which hold no
command letter.  Clients that talk to the StreamServer send the stream
header; SServerStream and CurlStream are both ends themselves.
"""

import os
import random
import re
import select
import socket
import ssl
import subprocess
import threading
import time

from baton_harness import MemTLSClient, Server, connect, recv_exact, scaled
from streams import (Record, StreamSet, TLSStreamServer, _Threaded, client_problems,
                     register_kind, server_problems)

T_TOOL = 120          # a tool's single wait (an echo, a KeyUpdate) at most


class TLSStreams(object):
    """The owner of a set of TLS streams: add() starts one; poke() after
    each reload asks the ones that can to send a KeyUpdate; release() lets
    the handshakes held in the middle go on; stop() winds all up; verify()
    lists the broken ones."""

    def __init__(self, server, params):
        self.server, self.params = server, params
        self.stop_event = threading.Event()
        self.released = threading.Event()
        self.epoch = 0
        self.streams = []

    def add(self, stream):
        self.streams.append(stream)
        stream.thread.start()
        return stream

    def poke(self):
        self.epoch += 1

    def release(self):
        self.released.set()

    def progress(self):
        """{name: (sent, received, done, failed)} from the client ends."""
        return {s.name: (s.rec.up.n, s.rec.down.n, s.rec.done, bool(s.client_failure()))
                for s in self.streams}

    # until pred(progress()) or the deadline, as a StreamSet does
    wait_progress = StreamSet.wait_progress

    def failed_now(self):
        return [s.name for s in self.streams if s.client_failure()]

    def stop(self, timeout=120):
        # from now on the server's EOFs are no longer early
        if self.server is not None:
            self.server.freeze()
        self.released.set()
        self.stop_event.set()
        deadline = time.monotonic() + scaled(timeout)
        for s in self.streams:
            s.thread.join(max(0.1, deadline - time.monotonic()))
            s.finish()

    def verify(self):
        out = []
        for s in self.streams:
            probs = s.problems()
            if probs:
                out.append("%s: %s" % (s.name, "; ".join(probs)))
        return out

    def close(self):
        self.stop_event.set()
        self.released.set()
        for s in self.streams:
            s.kill()


class _Stream(_Threaded):
    """A stream's client end (a streams.py _Threaded) whose server end is
    the StreamServer's record of the same (kind, cid), unless `self.srec`
    (an end this stream drives itself)."""

    srec = None
    echo = True              # the server end sends back what it got

    def __init__(self, owner, kind, cid, text=False):
        register_kind(kind, text=text)
        super().__init__(owner, kind, cid)
        self.extra = []          # what the tool or the protocol got wrong

    @property
    def name(self):
        return "%s #%d" % (self.kind, self.cid)

    def server_rec(self):
        if self.srec is not None:
            return self.srec
        return self.owner.server.records.get((self.kind, self.cid))

    def client_failure(self):
        r = self.rec
        return r.end not in (None, "eof") or r.eof_early is not None or \
            r.down.bad_at is not None

    def problems(self):
        probs = client_problems(self.rec) + list(self.extra)
        s = self.server_rec()
        if s is None:
            return probs + ["the server never saw this connection"]
        probs += server_problems(self.rec, s)
        if self.echo and self.rec.down.n != self.rec.up.n:
            probs.append("down: %d bytes, expected %d" % (self.rec.down.n, self.rec.up.n))
        return probs

    def finish(self):
        """After the thread ended (or the deadline): final checks."""

    def kill(self):
        """Ends what the stream started (a tool) at cleanup."""


# --------------------------------------------------------------------------
# Python ssl

class PyTLSStream(_Stream):
    """Python ssl, strict: suppress_ragged_eofs off, our close_notify, the
    peer's close_notify back, then EOF.  expect: {'version', 'cipher',
    'resumed', 'peer'} checked after the handshake; session: a
    zero-argument callable giving the session to resume."""

    def __init__(self, owner, kind, cid, addr, ctx, hostname, expect=None, session=None):
        super().__init__(owner, kind, cid)
        self.addr, self.ctx, self.hostname = addr, ctx, hostname
        self.expect, self.session = expect or {}, session

    def body(self):
        raw = connect(self.addr, timeout=T_TOOL)
        try:
            s = self.ctx.wrap_socket(raw, server_hostname=self.hostname,
                                     suppress_ragged_eofs=False,
                                     session=self.session() if self.session else None)
        except BaseException:
            raw.close()
            raise
        try:
            self.check_handshake(s)
            self.tls_echo_strict(s)
        finally:
            s.close()

    def check_handshake(self, s):
        got = {"version": s.version(), "cipher": s.cipher()[0], "resumed": s.session_reused}
        for k, v in self.expect.items():
            if got.get(k) != v:
                self.extra.append("negotiated %s %r, expected %r" % (k, got.get(k), v))


def tls_session(addr, ctx, hostname):
    """A session of a short full handshake to addr (an echo through a
    StreamServer is not needed: the ticket comes with the first bytes
    read), for a PyTLSStream to resume."""
    s = ctx.wrap_socket(connect(addr, timeout=T_TOOL), server_hostname=hostname)
    try:
        s.sendall(b"x")          # a TLS 1.3 ticket arrives after the handshake
        s.settimeout(scaled(2))
        try:
            s.recv(1)
        except (socket.timeout, ssl.SSLError, OSError):
            pass
        if s.session is None or not s.session.has_ticket and s.version() == "TLSv1.3":
            raise AssertionError("no session to resume (%s)" % s.version())
        return s.session
    finally:
        s.close()


# --------------------------------------------------------------------------
# command-line tools driven through stdin

class _Pipe(object):
    """Bytes a tool writes (stdout or stderr) gathered by a thread of their
    own, so a tool never blocks on a full pipe."""

    def __init__(self, f, keep=True):
        self.f, self.keep = f, keep
        self.cond = threading.Condition()
        self.buf = bytearray()
        self.eof = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                d = os.read(self.f.fileno(), 1 << 16)
            except OSError:
                d = b""
            with self.cond:
                if not d:
                    self.eof = True
                    self.cond.notify_all()
                    self.f.close()
                    return
                self.buf += d
                self.cond.notify_all()

    def take(self, n, timeout=T_TOOL):
        """Exactly n bytes, or what came before EOF or the deadline."""
        deadline = time.monotonic() + scaled(timeout)
        with self.cond:
            while len(self.buf) < n and not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, 0.5))
            out = bytes(self.buf[:n])
            del self.buf[:n]
            return out

    def take_all(self):
        with self.cond:
            out = bytes(self.buf)
            self.buf.clear()
            return out

    def wait_for(self, pred, timeout=T_TOOL):
        """Waits until pred(bytes so far) is true; returns it or None."""
        deadline = time.monotonic() + scaled(timeout)
        with self.cond:
            while True:
                v = pred(bytes(self.buf))
                if v or self.eof:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.5))

    def text(self):
        with self.cond:
            return bytes(self.buf).decode("utf-8", "replace")


def _count_file(path, rx):
    try:
        with open(path, errors="replace") as f:
            return len(re.findall(rx, f.read(), re.M))
    except FileNotFoundError:
        return 0


class _ToolStream(_Stream):
    """A client tool whose stdin goes to the server and whose stdout is what
    the server sent (text kinds), echoed by the StreamServer; after each
    poke() it is given `keyupdate_commands` in turn, one per epoch, each
    waited for (ku_done) before any more bytes go in, so a command never
    shares a read with data."""

    keyupdate_commands = ()

    def __init__(self, owner, kind, cid, chunk=None):
        super().__init__(owner, kind, cid, text=True)
        self.proc = None
        self.chunk = chunk
        self.commands = 0

    def command(self):
        raise NotImplementedError

    def start_tool(self):
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = _Pipe(self.proc.stdout)
        self.err = _Pipe(self.proc.stderr)

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def recv(self, n):
        return self.out.take(n)

    def body(self):
        self.start_tool()
        self.send(self.header())
        o, rng = self.owner, random.Random(self.name)
        seen = o.epoch
        while not o.stop_event.is_set():
            n = self.chunk or rng.randint(1, o.params.echo_max)
            self._exchange(self.send, self.recv, n)
            if o.epoch != seen and self.keyupdate_commands:
                seen = o.epoch
                self.keyupdate()
            o.stop_event.wait(o.params.echo_interval)
        self._exchange(self.send, self.recv, 64)
        self.proc.stdin.close()
        rc = self.proc.wait(scaled(T_TOOL))
        if rc != 0:
            self.extra.append("%s exited with status %d: %s"
                              % (self.command()[0], rc, self.err.text()[-300:]))

    def keyupdate(self):
        cmd = self.keyupdate_commands[self.commands % len(self.keyupdate_commands)]
        self.commands += 1
        before = self.ku_done()
        self.send(cmd)
        deadline = time.monotonic() + scaled(T_TOOL)
        while self.ku_done() <= before:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("%r was not carried out" % cmd)
            time.sleep(0.02)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass     # it had exited with bytes of ours unread


def _record_lengths(msgfile, direction="<<<"):
    """Lengths of the records in an -msg file's RecordHeader dumps, one
    direction ('<<<' received, '>>>' sent)."""
    with open(msgfile, errors="replace") as f:
        text = f.read()
    rx = r"^%s [^\n]*RecordHeader \[length 0005\]\n\s+((?:[0-9a-f]{2} ?){5})" % re.escape(direction)
    return [int(h.split()[3] + h.split()[4], 16) for h in re.findall(rx, text, re.M)]


class SClientStream(_ToolStream):
    """openssl s_client -quiet -no_ign_eof (command letters on); its -msg
    output in a file.  keyupdates: K and k in turn after each poke (each
    KeyUpdate we request must be answered by one of baton's); maxfrag:
    -maxfraglen N, and every record baton sends must fit it."""

    def __init__(self, owner, kind, cid, addr, cafile, hostname, tmpdir, args=(),
                 keyupdates=True, maxfrag=None):
        super().__init__(owner, kind, cid, chunk=3000 if maxfrag else None)
        self.addr, self.cafile, self.hostname = addr, cafile, hostname
        self.args, self.maxfrag = list(args), maxfrag
        self.msgfile = os.path.join(tmpdir, "%s-%d.msg" % (kind, cid))
        if keyupdates:
            self.keyupdate_commands = (b"K\n", b"k\n")

    def command(self):
        cmd = ["openssl", "s_client", "-quiet", "-no_ign_eof",
               "-connect", "%s:%d" % tuple(self.addr[:2]), "-servername", self.hostname,
               "-CAfile", self.cafile, "-verify_return_error", "-msg", "-msgfile", self.msgfile]
        if self.maxfrag:
            cmd += ["-maxfraglen", str(self.maxfrag)]
        return cmd + self.args

    def ku_done(self):
        return self.err.text().count("KEYUPDATE")

    def finish(self):
        if not os.path.exists(self.msgfile):
            return
        sent = _count_file(self.msgfile, r"^>>> .*KeyUpdate")
        got = _count_file(self.msgfile, r"^<<< .*KeyUpdate")
        requested = (self.commands + 1) // 2       # K, k, K, ...
        if sent != self.commands:
            self.extra.append("%d KeyUpdate(s) sent for %d command(s)" % (sent, self.commands))
        if got < requested:
            self.extra.append("%d KeyUpdate(s) requested, baton sent %d" % (requested, got))
        if _count_file(self.msgfile, r"^<<< .*Alert"):
            self.extra.append("alert from baton: %s" % _count_file(self.msgfile, r"^<<< .*Alert"))
        if self.maxfrag:
            lens = _record_lengths(self.msgfile)
            limit = self.maxfrag + 1 + 16     # + TLS 1.3 content type + AEAD tag
            big = [n for n in lens if n > limit]
            if big or not lens:
                self.extra.append("records from baton over max_fragment_length %d: %s of %d"
                                  % (self.maxfrag, big[:5], len(lens)))
            if sum(lens) <= self.rec.down.n:
                self.extra.append("record lengths (%d in all) do not cover the %d bytes "
                                  "received" % (sum(lens), self.rec.down.n))


class GnuTLSStream(_ToolStream):
    """gnutls-cli --inline-commands with a --priority; its messages in a log
    file.  keyupdates (TLS 1.3): ^rekey^ (update requested) and ^rekey1^
    (not requested) in turn after each poke.  The negotiated suite must
    match `expect` (the log's Description), and the session must end with
    baton's close_notify ('Peer has closed the GnuTLS connection')."""

    def __init__(self, owner, kind, cid, addr, cafile, hostname, tmpdir, priority, expect,
                 keyupdates=False):
        super().__init__(owner, kind, cid)
        self.addr, self.cafile, self.hostname = addr, cafile, hostname
        self.priority, self.expect = priority, expect
        self.logfile = os.path.join(tmpdir, "%s-%d.gnutls.log" % (kind, cid))
        if keyupdates:
            self.keyupdate_commands = (b"^rekey^\n", b"^rekey1^\n")

    def command(self):
        return ["gnutls-cli", "--x509cafile", self.cafile, "-p", str(self.addr[1]),
                self.addr[0], "--sni-hostname", self.hostname,
                "--verify-hostname", self.hostname, "--inline-commands",
                "--logfile", self.logfile, "--priority", self.priority]

    def keyupdate(self):
        # gnutls-cli sees a command only at the start of a line, and splits
        # it from the bytes around it itself (no need to wait: its log,
        # which says when a rekey is done, is written only at exit)
        nl = self.rec.up.next_bytes(256).index(b"\n")
        self._exchange(self.send, self.recv, nl + 1)
        self.send(self.keyupdate_commands[self.commands % len(self.keyupdate_commands)])
        self.commands += 1

    def ku_done(self):
        return _count_file(self.logfile, r"^- Rekey was completed")

    def finish(self):
        if not os.path.exists(self.logfile):
            return
        with open(self.logfile, errors="replace") as f:
            log = f.read()
        m = re.search(r"^- Description: (\S+)", log, re.M)
        if not m or self.expect not in m.group(1):
            self.extra.append("negotiated %s, expected %s" % (m and m.group(1), self.expect))
        if self.rec.end == "eof" and "Peer has closed the GnuTLS connection" not in log:
            self.extra.append("no close_notify from baton: %s" % log[-300:])
        if self.ku_done() != self.commands:
            self.extra.append("%d rekey(s) completed of %d" % (self.ku_done(), self.commands))


# --------------------------------------------------------------------------
# curl downloading from a plain HTTP backend

class PacedHTTPServer(Server):
    """Answers GET /dl/<kind>/<cid> with `size` bytes of the stream's
    pattern: at `rate` bytes/s until `stop_event`, then at full speed.
    corrupt: {(kind, cid): offset} flips a bit there (negative control)."""

    def __init__(self, size, rate, stop_event, corrupt=None, **kw):
        self.size, self.rate, self.stop_event = size, rate, stop_event
        self.corrupt = dict(corrupt or {})
        self.records = {}
        super().__init__(name="http", **kw)

    def handle(self, conn, info):
        req = bytearray()
        while b"\r\n\r\n" not in req:
            d = conn.recv(4096)
            if not d:
                return
            req += d
        m = re.match(rb"GET /dl/(\w+)/(\d+) HTTP/1\.[01]\r\n", bytes(req))
        if not m:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        kind, cid = m.group(1).decode(), int(m.group(2))
        rec = self.records[(kind, cid)] = Record(kind, cid, "server")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                     % self.size)
        bad = self.corrupt.get((kind, cid))
        start = time.monotonic()
        try:
            while rec.down.n < self.size:
                if self.stop_event.is_set():
                    due = self.size
                else:
                    due = min(self.size, int((time.monotonic() - start) * self.rate) + 65536)
                if due <= rec.down.n:
                    self.stop_event.wait(0.01)
                    continue
                data = rec.down.next_bytes(min(due - rec.down.n, 1 << 20))
                out = data
                if bad is not None and rec.down.n <= bad < rec.down.n + len(data):
                    i = bad - rec.down.n
                    out = data[:i] + bytes([data[i] ^ 1]) + data[i + 1:]
                conn.sendall(out)
                rec.down.sent(data)
            rec.end = "eof"
        except OSError as e:
            rec.end = "error: %r" % (e,)
        finally:
            rec.done = True


class CurlStream(_Stream):
    """curl --fail downloading from baton's TLS listener (name resolved to
    the listener with --resolve); what it writes to stdout is checked
    against the pattern as it comes, its size and sha256 against the
    server's."""

    echo = False

    def __init__(self, owner, kind, cid, addr, cafile, hostname, http, args=()):
        super().__init__(owner, kind, cid)
        self.addr, self.cafile, self.hostname, self.http = addr, cafile, hostname, http
        self.args = list(args)
        self.proc = None

    def server_rec(self):
        return self.http.records.get((self.kind, self.cid))

    def body(self):
        url = "https://%s:%d/dl/%s/%d" % (self.hostname, self.addr[1], self.kind, self.cid)
        self.proc = subprocess.Popen(
            ["curl", "--silent", "--show-error", "--fail", "--http1.1", "--cacert", self.cafile,
             "--resolve", "%s:%d:%s" % (self.hostname, self.addr[1], self.addr[0]),
             "--max-time", str(int(scaled(600))), "-o", "-"] + self.args + [url],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        err = _Pipe(self.proc.stderr)
        with self.proc.stdout:
            while True:
                d = self.proc.stdout.read1(1 << 20)
                if not d:
                    break
                self.rec.down.take(d)
        rc = self.proc.wait(scaled(T_TOOL))
        if rc != 0:
            self.extra.append("curl exited with status %d: %s" % (rc, err.text()[-300:]))
        s = self.server_rec()
        if s is not None and self.rec.down.n != self.http.size:
            self.extra.append("downloaded %d bytes of %d" % (self.rec.down.n, self.http.size))

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# --------------------------------------------------------------------------
# upstream TLS: baton is the TLS client

class UpstreamPlainStream(_Stream):
    """A plain echo client to a listener whose backend speaks TLS to a
    Python TLSStreamServer (which issues NewSessionTickets as its context
    says); a FIN after the last echo, then EOF expected."""

    def __init__(self, owner, kind, cid, addr, tls_server):
        super().__init__(owner, kind, cid)
        self.addr, self.tls_server = addr, tls_server

    def server_rec(self):
        return self.tls_server.records.get((self.kind, self.cid))

    def body(self):
        s = connect(self.addr, timeout=T_TOOL)
        try:
            self.plain_echo_then_fin(s)
        finally:
            s.close()


class SServer(object):
    """`openssl s_server -naccept 1` on an ephemeral loopback port, not
    quiet (its command letters work only then): its address from its
    ACCEPT line."""

    def __init__(self, cert, tmpdir, name, args=()):
        self.msgfile = os.path.join(tmpdir, name + ".msg")
        self.proc = subprocess.Popen(
            ["openssl", "s_server", "-naccept", "1", "-accept", "127.0.0.1:0",
             "-cert", cert["cert"], "-key", cert["key"], "-msg", "-msgfile", self.msgfile]
            + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = _Pipe(self.proc.stdout)
        self.err = _Pipe(self.proc.stderr)
        m = self.out.wait_for(lambda b: re.search(rb"^ACCEPT (\S+):(\d+)\n", b, re.M), 30)
        if not m:
            self.kill()
            raise AssertionError("s_server did not start: %r %r" % (self.out.text(),
                                                                   self.err.text()))
        self.addr = ("127.0.0.1", int(m.group(2)))

    def server_line(self, name):
        return "%s %s:%d" % (name, self.addr[0], self.addr[1])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        try:
            self.proc.stdin.close()
        except OSError:
            pass         # it had exited with bytes of ours unread


# s_server's own lines among the data on its stdout: they start with an
# upper-case letter (data never holds one) and end with a newline
_SSERVER_INFO = re.compile(rb"[A-Z][^\n]*\n")
# s_server's report that the connection ended: everything after it (its
# session statistics, lines that start with spaces and digits) is not data
_SSERVER_END = re.compile(rb"(ERROR|shutting down SSL|CONNECTION CLOSED)\n")
BEGIN = b"::begin::\n"


class SServerStream(_Stream):
    """A plain client through a listener whose backend has `tls = on`, to
    an SServer this stream drives: bytes the client sends must come out of
    s_server's stdout, bytes written to its stdin must reach the client.
    After each poke, K or k on s_server's stdin (TLS 1.3: it sends a
    KeyUpdate, baton must answer each requested one)."""

    echo = False

    def __init__(self, owner, kind, cid, addr, sserver, keyupdates=True, corrupt_at=None):
        super().__init__(owner, kind, cid, text=True)
        self.addr, self.ss, self.keyupdates = addr, sserver, keyupdates
        self.srec = Record(kind, cid, "server")
        self.corrupt_at = corrupt_at
        self.commands = 0
        self.pending = bytearray()        # s_server output after BEGIN

    def _out(self, n):
        """n data bytes from s_server's stdout, its own lines taken out."""
        deadline = time.monotonic() + scaled(T_TOOL)
        while True:
            raw = bytes(self.pending)
            end = _SSERVER_END.search(raw)
            tail = raw[end.start():] if end is not None else b""
            data = _SSERVER_INFO.sub(b"", raw[:len(raw) - len(tail)])
            cut = re.search(rb"[A-Z][^\n]*$", data)       # a line still coming
            if cut is None and len(data) >= n:
                self.pending = bytearray(data[n:] + tail)
                return data[:n]
            if end is not None:
                raise AssertionError("s_server's connection ended after %d of %d bytes"
                                     % (len(data), n))
            if time.monotonic() > deadline or self.ss.out.eof:
                raise AssertionError("s_server gave %d of %d bytes: %r" % (len(data), n,
                                                                            data[-80:]))
            self.pending = bytearray(data)
            self.pending += self.ss.out.take(1, timeout=1)

    def _stdin(self, data):
        self.ss.proc.stdin.write(data)
        self.ss.proc.stdin.flush()

    def body(self):
        o, rng, r, sr = self.owner, random.Random(self.name), self.rec, self.srec
        s = connect(self.addr, timeout=T_TOOL)
        try:
            s.sendall(BEGIN)
            if not self.ss.out.wait_for(lambda b: BEGIN in b):
                raise AssertionError("s_server never got the first bytes: %r"
                                     % self.ss.out.text()[-300:])
            self.pending += self.ss.out.take_all().split(BEGIN, 1)[1]
            seen = o.epoch
            while True:
                last = o.stop_event.is_set()
                # before our bytes: baton owes an answer to a K, which
                # OpenSSL sends only with its next record
                if o.epoch != seen and self.keyupdates:
                    seen = o.epoch
                    self.keyupdate()
                n = 64 if last else rng.randint(1, o.params.echo_max)
                up = r.up.next_bytes(n)
                s.sendall(up)
                r.up.sent(up)
                sr.up.take(self._out(n))
                down = sr.down.next_bytes(rng.randint(1, o.params.echo_max))
                out = down
                if self.corrupt_at is not None and \
                        sr.down.n <= self.corrupt_at < sr.down.n + len(down):
                    i = self.corrupt_at - sr.down.n
                    out = down[:i] + b"0" + down[i + 1:] if down[i:i + 1] != b"0" else \
                        down[:i] + b"1" + down[i + 1:]
                self._stdin(out)
                sr.down.sent(down)
                r.down.take(recv_exact(s, len(down), timeout=T_TOOL))
                if last:
                    break
                o.stop_event.wait(o.params.echo_interval)
            # our FIN: baton closes its TLS session with s_server
            # (close_notify), s_server closes, baton passes the FIN on
            s.shutdown(socket.SHUT_WR)
            s.settimeout(scaled(T_TOOL))
            if s.recv(1) != b"":
                raise AssertionError("bytes after the exchanges")
            sr.end = "eof"
        finally:
            sr.done = True
            s.close()

    def keyupdate(self):
        cmd = (b"K\n", b"k\n")[self.commands % 2]
        self.commands += 1
        deadline = time.monotonic() + scaled(T_TOOL)
        self._stdin(cmd)
        while _count_file(self.ss.msgfile, r"^>>> .*KeyUpdate") < self.commands:
            if time.monotonic() > deadline or self.ss.proc.poll() is not None:
                raise AssertionError("s_server did not send its KeyUpdate (%r)" % cmd)
            time.sleep(0.02)

    def finish(self):
        try:
            rc = self.ss.proc.wait(scaled(30))
        except subprocess.TimeoutExpired:
            self.extra.append("s_server still running after the connection ended")
            self.ss.kill()
            return
        self.ss.kill()
        got = _count_file(self.ss.msgfile, r"^<<< .*KeyUpdate")
        if got < (self.commands + 1) // 2:
            self.extra.append("s_server requested %d KeyUpdate(s), baton sent %d"
                              % ((self.commands + 1) // 2, got))
        if _count_file(self.ss.msgfile, r"^<<< .*Alert.*fatal"):
            self.extra.append("fatal alert from baton to s_server")
        text = self.ss.err.text() + self.ss.out.text()
        if rc != 0 or "unexpected eof" in text:
            self.extra.append("s_server: status %d: %s" % (rc, text[-300:]))

    def kill(self):
        self.ss.kill()


# --------------------------------------------------------------------------
# handshakes caught in the middle

class PartialHelloStream(_Stream):
    """Sends half its ClientHello, waits for `released` (the test releases
    it after a reload), sends the rest, then echoes until stop."""

    def __init__(self, owner, kind, cid, addr, ctx, hostname):
        super().__init__(owner, kind, cid)
        self.addr, self.ctx, self.hostname = addr, ctx, hostname
        self.sent_part = threading.Event()

    def body(self):
        s = connect(self.addr, timeout=T_TOOL)
        try:
            m = MemTLSClient(s, self.ctx, server_hostname=self.hostname, timeout=T_TOOL)
            self.hold(s, m)
            self.mem_echo_strict(m)
        finally:
            s.close()

    def hold(self, s, m):
        hello = m.client_hello()
        s.sendall(hello[:len(hello) // 2])
        self.sent_part.set()
        self.owner.released.wait()
        s.sendall(hello[len(hello) // 2:])


class HeldFinishedStream(PartialHelloStream):
    """The whole ClientHello sent and the server's flight received (TLS 1.3:
    ServerHello to Finished): baton has replied; the client Finished waits
    for `released`."""

    def hold(self, s, m):
        s.sendall(m.client_hello())
        while True:
            try:
                m.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                if not m._fill():
                    raise AssertionError("EOF before the server's flight")
        held = m.out.read()
        self.sent_part.set()
        self.owner.released.wait()
        s.sendall(held)
