"""Long-lived connections through baton whose every byte is checked, for
the live connection handoff (Python 3 standard library only).

Kinds (KINDS); each connection is one (kind, id):
  echo         the client keeps sending small writes, every echoed byte is
               checked as it comes back
  idle         connected, silent until stop, then one echoed message
  half_client  the client sends a block and shuts its write side; the
               server keeps sending until stop
  half_server  the reverse: the server sends a block and shuts its write
               side; the client keeps sending until stop
  slow         both ends queue megabytes and neither reads until stop,
               then both drain
  bulk         the server sends at bulk rate (reads fill baton's buffer,
               so the direction goes to splice mode) to a client reading
               at full speed
  tls          passthrough TLS end to end (Python ssl both ends, strict
               close_notify: an EOF without it is a failure)
  proxy_partial  a client of an accept_proxy listener that sent part of
               its PROXY header; the rest (and an echo stream) at stop
  hello_partial  a passthrough client that sent part of its ClientHello;
               the rest, the handshake and an echo stream at stop
  connecting   an echo stream whose server connection is still being set
               up: its backend (GateServer) listens with a full accept
               queue, so baton's SYNs are dropped and its connect stays in
               progress; the gate opens at stop and the connect completes
               at the next SYN retransmission (1, 3, 7, 15 s after the
               first), then the echo stream (sent meanwhile, queued in
               baton) must come back intact

Every direction's bytes come from a fixed pseudo-random pattern at an
offset of the connection's own, so each receiver checks bytes as they come
(the offset of the first difference is reported) and both ends keep a
sha256 and a count of what they sent and received; verify() compares the
client's figures with the server's per direction.  A connection starts with
a 24-byte header (magic, kind, id) so the server knows what to do.

Use: StreamSet(plain=ADDR, proxy=ADDR, tls=ADDR, server=StreamServer(),
tls_server=TLSStreamServer(ctx), client_ctx=ctx) -> start(kind, n) ...
progress() ... stop() -> verify() (a list of failure texts, empty if all
intact).  Everything runs on loopback; every wait has a deadline.
"""

import hashlib
import heapq
import os
import random
import selectors
import socket
import ssl
import struct
import threading
import time
import traceback

from baton_harness import MemTLSClient, Server, connect, pseudo_random, recv_exact, scaled

KINDS = ("echo", "idle", "half_client", "half_server", "slow", "bulk", "tls",
         "proxy_partial", "hello_partial", "connecting")
SELECTOR_KINDS = ("echo", "idle", "half_client", "half_server", "slow", "bulk", "connecting")
# the server echoes what these send
ECHO_KINDS = ("echo", "idle", "tls", "proxy_partial", "hello_partial", "connecting")
KIND_CODE = {k: i + 1 for i, k in enumerate(KINDS)}
CODE_KIND = {v: k for k, v in KIND_CODE.items()}
HEADER = struct.Struct("!4sB3xQQ")    # magic, kind, pad, id, reserved
MAGIC = b"BSTR"
# The same header in text (for clients driven through a tool's stdin, which
# may not pass NUL bytes): "BTXT", the kind's code in 3 digits, the id in 16,
# a newline; as long as the binary one.
TEXT_MAGIC = b"BTXT"
# Kinds whose clients live in other modules (tls_streams.py), added by
# register_kind: the StreamServer echoes them and their clients send their
# FIN only after stop.
EXTRA_KINDS = set()
# Kinds whose bytes are text (TEXT_ALPHABET and newlines): tools such as
# openssl s_client and s_server read a chunk of their stdin that starts
# with K, k, Q, R, c... as a command, and gnutls-cli a line with ^...^.
TEXT_KINDS = set()
TEXT_ALPHABET = b"abdefghijlmnopstuvwxyz0123456789"
TEXT_LINE = 61
SLOW_RCVBUF = 64 << 10

# The pattern: L bytes (not a power of two, so it does not line up with any
# buffer size) stored twice, so that any slice up to L is contiguous.
PATTERN_LEN = (1 << 20) + 13
_PAT = {}


def pattern(name):
    """The pattern `name`; a name ending in '-text' is text: TEXT_ALPHABET
    with a newline every TEXT_LINE bytes."""
    p = _PAT.get(name)
    if p is None:
        b = pseudo_random(PATTERN_LEN, b"streams-" + name.encode())
        if name.endswith("-text"):
            table = bytes(TEXT_ALPHABET[i % len(TEXT_ALPHABET)] for i in range(256))
            b = bytearray(b.translate(table))
            b[TEXT_LINE - 1::TEXT_LINE] = b"\n" * len(b[TEXT_LINE - 1::TEXT_LINE])
            b = bytes(b)
        p = _PAT[name] = b + b
    return p


def register_kind(name, text=False):
    """A stream kind whose client another module drives; its header code is
    the next free one.  The StreamServer echoes it."""
    if name not in KIND_CODE:
        code = max(CODE_KIND) + 1
        KIND_CODE[name], CODE_KIND[code] = code, name
    EXTRA_KINDS.add(name)
    if text:
        TEXT_KINDS.add(name)


def echoes(kind):
    """True if the StreamServer echoes what this kind's client sends."""
    return kind in ECHO_KINDS or kind in EXTRA_KINDS


def stream_header(kind, cid):
    """The first bytes a client of (kind, cid) sends: text for TEXT_KINDS."""
    if kind in TEXT_KINDS:
        return TEXT_MAGIC + b"%03d%016d\n" % (KIND_CODE[kind], cid)
    return HEADER.pack(MAGIC, KIND_CODE[kind], cid, 0)


def parse_stream_header(raw):
    """(kind, cid) of a header (either form), or None if it is not one."""
    if raw[:4] == TEXT_MAGIC and raw[-1:] == b"\n" and raw[4:-1].isdigit():
        code, cid = int(raw[4:7]), int(raw[7:-1])
    else:
        magic, code, cid, _ = HEADER.unpack(raw)
        if magic != MAGIC:
            return None
    return (CODE_KIND[code], cid) if code in CODE_KIND else None


def start_offset(kind, cid, direction):
    """Where connection (kind, cid)'s stream starts in the pattern: each
    connection has its own, so bytes of one landing in another differ."""
    d = hashlib.sha256(("%s/%d/%s" % (kind, cid, direction)).encode()).digest()
    return int.from_bytes(d[:8], "big") % PATTERN_LEN


class Flow(object):
    """One end's view of one direction: bytes sent or received, their sha256,
    and (receiving) the offset of the first byte unlike the pattern."""

    def __init__(self, pat, start):
        self.pat, self.start = pat, start
        self.n = 0
        self.h = hashlib.sha256()
        self.bad_at = None

    def take(self, data):
        """Counts received bytes, checking them against the pattern."""
        if self.bad_at is None:
            pos = 0
            while pos < len(data):
                k = min(len(data) - pos, PATTERN_LEN)
                o = (self.start + self.n + pos) % PATTERN_LEN
                exp = self.pat[o:o + k]
                got = bytes(data[pos:pos + k])
                if got != exp:
                    i = next(i for i in range(k) if got[i] != exp[i])
                    self.bad_at = self.n + pos + i
                    break
                pos += k
        self.n += len(data)
        self.h.update(data)

    def next_bytes(self, k):
        """The next k bytes this end is to send (not counted until sent)."""
        out = bytearray()
        n = self.n
        while len(out) < k:
            o = (self.start + n + len(out)) % PATTERN_LEN
            step = min(k - len(out), PATTERN_LEN)
            out += self.pat[o:o + step]
        return bytes(out)

    def sent(self, data):
        self.n += len(data)
        self.h.update(data)

    def digest(self):
        return self.h.hexdigest()


class Record(object):
    """One end (client or server) of one connection: its two flows and how
    it ended."""

    def __init__(self, kind, cid, side):
        self.kind, self.cid, self.side = kind, cid, side
        down_pat = "up" if echoes(kind) else "down"
        text = "-text" if kind in TEXT_KINDS else ""
        self.up = Flow(pattern("up" + text), start_offset(kind, cid, "up"))
        self.down = Flow(pattern(down_pat + text), start_offset(kind, cid, down_pat))
        self.end = None            # 'eof', 'reset', or an error text
        self.errors = []
        self.eof_early = None      # bytes read when an EOF came before stop
        self.done = False
        self.connected = False
        self.started = time.monotonic()

    @property
    def name(self):
        return "%s #%d" % (self.kind, self.cid)

    def fail(self, text):
        if len(self.errors) < 5:
            self.errors.append(text)

    def recv_flow(self):
        return self.down if self.side == "client" else self.up

    def send_flow(self):
        return self.up if self.side == "client" else self.down


def peer_closed(sock):
    """True if the peer's FIN (or RST) has arrived on sock, whether or not
    what came before it was read (TCP_INFO's state: TIME_WAIT, CLOSE,
    CLOSE_WAIT, LAST_ACK or CLOSING)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    except OSError:
        return True
    return info[0] in (6, 7, 8, 9, 11)


def _end_text(exc):
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "reset"
    return "error: %r" % (exc,)


# --------------------------------------------------------------------------
# the selectors loop shared by the plain client and server ends

class _Conn(object):
    """A non-blocking socket with an output queue and a Record."""

    def __init__(self, sock, rec):
        self.sock, self.rec = sock, rec
        self.out = bytearray()
        self.out_flow = []           # (nbytes, flow or None) for each queued piece
        self.want_shut = False       # shutdown(SHUT_WR) once out is empty
        self.wr_shut = False
        self.rd_eof = False
        self.reading = True
        self.connecting = False
        self.closed = False
        self.events = 0


class _Loop(object):
    """One thread running a selector over _Conns; other threads hand it work
    through call() (a wake-up pipe), so only this thread touches sockets."""

    TICK = 0.01

    def __init__(self, name):
        self.sel = selectors.DefaultSelector()
        self.conns = set()
        self.lock = threading.Lock()
        self.calls = []
        self.rpipe, self.wpipe = os.pipe()
        os.set_blocking(self.rpipe, False)
        os.set_blocking(self.wpipe, False)
        self.sel.register(self.rpipe, selectors.EVENT_READ, None)
        self.stopping = False          # the streams are being wound up
        self.quit = False
        self.records = {}              # (kind, cid) -> Record
        self.timers = []               # heap of (when, seq, conn): paced connections
        self.seq = 0
        self.rng = random.Random(name)
        self.crashed = None
        self.thread = threading.Thread(target=self._run, name="streams-" + name, daemon=True)
        self.thread.start()

    def call(self, fn):
        with self.lock:
            self.calls.append(fn)
        try:
            os.write(self.wpipe, b"x")
        except BlockingIOError:
            pass

    def _run(self):
        try:
            self._loop()
        except Exception:
            # reported by StreamSet.verify (a dead loop would look like
            # streams that stopped moving)
            self.crashed = traceback.format_exc()
            for c in list(self.conns):
                self._close(c)

    def _loop(self):
        while not self.quit:
            for key, ev in self.sel.select(self.TICK):
                if key.data is None:
                    try:
                        os.read(self.rpipe, 4096)
                    except BlockingIOError:
                        pass
                    continue
                self._io(key.data, ev)
            with self.lock:
                calls, self.calls = self.calls, []
            for fn in calls:
                fn()
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                c = heapq.heappop(self.timers)[2]
                if c.closed:
                    continue
                nxt = self.tick(c, now)
                if nxt is not None:
                    self.schedule(c, nxt)
                self._update(c)
        for c in list(self.conns):
            self._close(c)

    def schedule(self, c, when):
        self.seq += 1
        heapq.heappush(self.timers, (when, self.seq, c))

    # ---- socket plumbing
    def add(self, sock, rec, connecting=False):
        c = _Conn(sock, rec)
        c.connecting = connecting
        self.conns.add(c)
        self.records[(rec.kind, rec.cid)] = rec
        self._update(c)
        return c

    def queue(self, c, data, flow):
        if data:
            c.out += data
            c.out_flow.append((len(data), flow))

    def _update(self, c):
        if c.closed:
            return
        ev = 0
        if c.connecting or c.out or (c.want_shut and not c.wr_shut):
            ev |= selectors.EVENT_WRITE
        if c.reading and not c.rd_eof and not c.connecting:
            ev |= selectors.EVENT_READ
        if ev == c.events:
            return
        if c.events == 0:
            self.sel.register(c.sock, ev, c)
        elif ev == 0:
            self.sel.unregister(c.sock)
        else:
            self.sel.modify(c.sock, ev, c)
        c.events = ev

    def _close(self, c):
        if c.closed:
            return
        if c.events:
            self.sel.unregister(c.sock)
            c.events = 0
        c.closed = True
        try:
            c.sock.close()
        except OSError:
            pass
        self.conns.discard(c)
        c.rec.done = True

    def _broken(self, c, exc):
        if c.rec.end is None:
            c.rec.end = _end_text(exc)
        self._close(c)

    def _io(self, c, ev):
        if c.closed:
            return
        if c.connecting:
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                c.rec.end = "connect failed: %s" % os.strerror(err)
                self._close(c)
                return
            c.connecting = False
            self.connected(c)
        if ev & selectors.EVENT_WRITE:
            self._write(c)
        if not c.closed and ev & selectors.EVENT_READ and c.reading and not c.rd_eof:
            self._read(c)
        if not c.closed:
            self._update(c)

    def _write(self, c):
        while c.out:
            try:
                n = c.sock.send(c.out[:1 << 18])
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._broken(c, e)
                return
            sent = bytes(c.out[:n])
            del c.out[:n]
            pos = 0
            while pos < n:
                size, flow = c.out_flow[0]
                k = min(size, n - pos)
                if flow is not None:
                    flow.sent(sent[pos:pos + k])
                if k == size:
                    c.out_flow.pop(0)
                else:
                    c.out_flow[0] = (size - k, flow)
                pos += k
        if c.want_shut and not c.wr_shut:
            try:
                c.sock.shutdown(socket.SHUT_WR)
            except OSError as e:
                self._broken(c, e)
                return
            c.wr_shut = True
            self.maybe_done(c)

    def _read(self, c):
        for _ in range(8):
            try:
                data = c.sock.recv(1 << 18)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._broken(c, e)
                return
            if not data:
                c.rd_eof = True
                if not self.stopping and self.eof_is_early(c):
                    c.rec.eof_early = c.rec.recv_flow().n
                self.got_eof(c)
                self.maybe_done(c)
                return
            self.got(c, data)
            if c.closed or not c.reading:
                return

    def maybe_done(self, c):
        if c.rd_eof and c.wr_shut and not c.out:
            if c.rec.end is None:
                c.rec.end = "eof"
            self._close(c)

    # ---- behaviour, per subclass
    def connected(self, c):
        pass

    def tick(self, c, now):
        """A paced connection's turn; returns when the next is due, or None."""
        return None

    def got(self, c, data):
        pass

    def got_eof(self, c):
        pass

    def eof_is_early(self, c):
        return False

    def freeze(self, timeout=10):
        """First step of stopping, run in the loop and waited for: from now
        on an EOF is no longer early, and a connection whose peer closed
        before now, unread (not reading, or not yet), is marked as cut.
        Both ends freeze before either winds up, so neither takes the
        other's winding up for a cut."""
        done = threading.Event()

        def go():
            self.stopping = True
            for c in list(self.conns):
                if (not c.rd_eof and not c.connecting and c.rec.eof_early is None and
                        self.eof_is_early(c) and peer_closed(c.sock)):
                    c.rec.eof_early = c.rec.recv_flow().n
            done.set()
        self.call(go)
        if not done.wait(scaled(timeout)) and not self.crashed:
            raise AssertionError("stream loop %s did not answer" % self.thread.name)

    def wind_up(self):
        """Tells every connection the streams are being stopped."""
        def go():
            for c in list(self.conns):
                self.on_stop(c)
                self._update(c)
        self.call(go)

    def on_stop(self, c):
        pass

    def close(self):
        self.quit = True
        self.call(lambda: None)
        self.thread.join(10)
        self.sel.close()
        for fd in (self.rpipe, self.wpipe):
            os.close(fd)


class Params(object):
    """How much each kind sends (defaults sized for a test of ~30 s on a
    shared machine; the bench asks for fewer bytes per connection)."""

    def __init__(self, **kw):
        self.echo_interval = 0.02      # s between the writes of an echo stream
        self.echo_max = 700            # bytes per write, 1..echo_max
        self.echo_window = 64 << 10    # unanswered bytes at most
        self.half_block = 256 << 10    # what the first side sends before it shuts
        self.half_interval = 0.02      # pacing of the side that goes on
        self.half_chunk = 4096
        # each way: more than the kernel takes (receiver's small buffer +
        # baton's send buffer, at most tcp_wmem's 4 MiB), so bytes wait in
        # baton itself while neither end reads
        self.slow_bytes = 6 << 20
        self.bulk_rate = 8 << 20       # bytes/s while running
        self.bulk_min = 24 << 20       # at least this much in all, sent at full speed at stop
        for k, v in kw.items():
            if not hasattr(self, k):
                raise TypeError("unknown stream parameter %r" % k)
            setattr(self, k, v)


# --------------------------------------------------------------------------
# the plain server end

class StreamServer(_Loop):
    """The backend for the plain kinds: one thread, any number of
    connections; each Record (side 'server') in self.records."""

    def __init__(self, host="127.0.0.1", params=None, name="streams-srv", backlog=4096):
        self.params = params or Params()
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.lsock = socket.socket(fam, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, 0))
        self.lsock.listen(backlog)
        self.lsock.setblocking(False)
        self.addr = self.lsock.getsockname()[:2]
        self.name = name
        self.pending = {}            # conn -> header bytes so far
        super().__init__(name)
        self.call(lambda: self.sel.register(self.lsock, selectors.EVENT_READ, "listen"))

    def server_line(self):
        host, port = self.addr
        return "%s %s:%d" % (self.name, "[%s]" % host if ":" in host else host, port)

    def close(self):
        super().close()
        self.lsock.close()

    def _io(self, c, ev):
        if c == "listen":
            for _ in range(256):
                try:
                    s, _peer = self.lsock.accept()
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return
                self._adopt(s)
            return
        super()._io(c, ev)

    def _adopt(self, s):
        s.setblocking(False)
        conn = _Conn(s, Record("?", -1, "server"))
        self.pending[conn] = bytearray()
        self.conns.add(conn)
        self._update(conn)

    def adopt(self, s):
        """Serves a connection accepted elsewhere (a GateServer's)."""
        self.call(lambda: self._adopt(s))

    def got(self, c, data):
        hdr = self.pending.get(c)
        if hdr is not None:
            hdr += data
            if len(hdr) < HEADER.size:
                return
            del self.pending[c]
            key = parse_stream_header(bytes(hdr[:HEADER.size]))
            if key is None:
                c.rec.end = "bad header %r" % bytes(hdr[:HEADER.size])
                self.records[("?", id(c))] = c.rec
                self._close(c)
                return
            kind, cid = key
            c.rec = Record(kind, cid, "server")
            self.records[(c.rec.kind, cid)] = c.rec
            self.begin(c)
            data = bytes(hdr[HEADER.size:])
            if not data or c.closed:
                return
        c.rec.up.take(data)
        if echoes(c.rec.kind):
            self.queue(c, data, c.rec.down)

    def begin(self, c):
        p, k = self.params, c.rec.kind
        if k == "half_server":
            self.queue(c, c.rec.down.next_bytes(p.half_block), c.rec.down)
            c.want_shut = True
        elif k == "slow":
            # A small receive buffer: what this end does not read stays
            # queued in baton (its buffer and its sockets), not in ours.
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
            self.queue(c, c.rec.down.next_bytes(p.slow_bytes), c.rec.down)
            c.reading = self.stopping
            c.want_shut = self.stopping
        elif k == "bulk":
            if self.stopping:
                self.on_stop(c)
            else:
                self.schedule(c, time.monotonic())

    def tick(self, c, now):
        p, k = self.params, c.rec.kind
        if self.stopping or c.want_shut:
            return None
        if k == "half_client":
            if not c.out:
                self.queue(c, c.rec.down.next_bytes(p.half_chunk), c.rec.down)
            return now + p.half_interval
        if k == "bulk":
            queued = c.rec.down.n + len(c.out)
            if len(c.out) < (256 << 10):
                due = int((now - c.rec.started) * p.bulk_rate) - queued
                if due >= (64 << 10):
                    self.queue(c, c.rec.down.next_bytes(min(due, 512 << 10)), c.rec.down)
            return now + 0.01
        return None

    def eof_is_early(self, c):
        # these clients send their FIN only after stop
        return c.rec.kind in ("echo", "idle", "half_server", "slow", "connecting") or \
            c.rec.kind in EXTRA_KINDS

    def got_eof(self, c):
        if c.rec.kind == "half_client":
            if self.stopping:
                c.want_shut = True
            else:
                self.schedule(c, time.monotonic())
        else:
            c.want_shut = True

    def on_stop(self, c):
        if c in self.pending:
            return
        p, k = self.params, c.rec.kind
        c.reading = True
        if (k == "half_client" and c.rd_eof) or k == "slow":
            c.want_shut = True
        elif k == "bulk" and not c.want_shut:
            queued = c.rec.down.n + len(c.out)
            if queued < p.bulk_min:
                self.queue(c, c.rec.down.next_bytes(p.bulk_min - queued), c.rec.down)
            c.want_shut = True


class CorruptingServer(StreamServer):
    """Flips one bit of what it receives at a given offset of given streams
    ({(kind, cid): offset}): a proxy that damaged a byte in flight."""

    def __init__(self, targets, **kw):
        self.targets = dict(targets)
        super().__init__(**kw)

    def got(self, c, data):
        r = c.rec
        off = self.targets.get((r.kind, r.cid))
        if c not in self.pending and off is not None and r.up.n <= off < r.up.n + len(data):
            i = off - r.up.n
            data = data[:i] + bytes([data[i] ^ 1]) + data[i + 1:]
        super().got(c, data)


# --------------------------------------------------------------------------
# the plain client end

class StreamClients(_Loop):
    """Client ends of the plain kinds, all on one selector thread."""

    def __init__(self, params=None, name="streams-cli"):
        self.params = params or Params()
        super().__init__(name)

    def open(self, addr, kind, cid):
        def go():
            fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setblocking(False)
            if kind == "slow":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
            rec = Record(kind, cid, "client")
            err = s.connect_ex(tuple(addr[:2]))
            if err not in (0, 115):         # EINPROGRESS
                rec.end = "connect failed: %s" % os.strerror(err)
                rec.done = True
                self.records[(kind, cid)] = rec
                s.close()
                return
            c = self.add(s, rec, connecting=True)
            c.reading = kind != "slow"
        self.call(go)

    def connected(self, c):
        p, k, rec = self.params, c.rec.kind, c.rec
        rec.connected = True
        self.queue(c, stream_header(k, rec.cid), None)
        if k == "half_client":
            self.queue(c, rec.up.next_bytes(p.half_block), rec.up)
            c.want_shut = True
        elif k == "slow":
            self.queue(c, rec.up.next_bytes(p.slow_bytes), rec.up)
            c.want_shut = self.stopping
        if k in ("echo", "half_server", "connecting"):
            if self.stopping:
                self.on_stop(c)
            else:
                self.schedule(c, time.monotonic() + self.rng.random() * p.echo_interval)

    def tick(self, c, now):
        p, k, rec = self.params, c.rec.kind, c.rec
        if self.stopping or c.want_shut:
            return None
        if k in ("echo", "connecting"):
            if rec.up.n + len(c.out) - rec.down.n < p.echo_window:
                self.queue(c, rec.up.next_bytes(self.rng.randint(1, p.echo_max)), rec.up)
            return now + p.echo_interval
        if not c.out:
            self.queue(c, rec.up.next_bytes(p.half_chunk), rec.up)
        return now + p.half_interval

    def got(self, c, data):
        c.rec.down.take(data)
        self._shut_when_echoed(c)

    def _shut_when_echoed(self, c):
        # A gated stream half-closes only once its server connection is up
        # and everything came back: baton gives up a connect in progress
        # when the client half-closes meanwhile (seen: the client's bytes
        # were never delivered and it got a bare EOF), which is not what
        # this kind is about.
        r = c.rec
        if r.kind == "connecting" and self.stopping and not c.out and r.down.n == r.up.n:
            c.want_shut = True

    def eof_is_early(self, c):
        # half_server's server ends its sending by itself; everyone else
        # only after stop.
        return c.rec.kind != "half_server"

    def got_eof(self, c):
        if c.rec.kind == "bulk":
            c.want_shut = True

    def on_stop(self, c):
        k, rec = c.rec.kind, c.rec
        c.reading = True
        if k == "idle":
            self.queue(c, rec.up.next_bytes(64), rec.up)
        if k in ("echo", "idle", "half_server", "slow"):
            c.want_shut = True
        self._shut_when_echoed(c)


# --------------------------------------------------------------------------
# the thread-per-connection kinds: TLS and connections still in setup

class TLSStreamServer(Server):
    """A TLS echo backend (Python ssl, strict: an EOF without close_notify
    is recorded as an error), one thread per connection."""

    def __init__(self, ctx, host="127.0.0.1", name="streams-tls"):
        self.ctx = ctx
        self.records = {}
        super().__init__(host=host, name=name)

    def handle(self, raw, info):
        rec = Record("?", -1, "server")
        s = raw
        try:
            s = self.ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
            hdr = recv_exact(s, HEADER.size, timeout=120)
            key = parse_stream_header(hdr)
            if key is None:
                raise ValueError("bad header %r" % hdr)
            rec = Record(key[0], key[1], "server")
            self.records[(rec.kind, rec.cid)] = rec
            while True:
                data = s.recv(65536)
                if not data:          # close_notify (a bare EOF raises)
                    break
                rec.up.take(data)
                s.sendall(data)
                rec.down.sent(data)
            s = s.unwrap()
            rec.end = "eof"
        except Exception as e:
            rec.end = _end_text(e)
            self.records.setdefault((rec.kind, rec.cid), rec)
        finally:
            rec.done = True
            s.close()


class GateServer(object):
    """A backend address whose connects stay in progress until open(): it
    listens with a backlog of 0 and a connection of its own fills the
    accept queue, so the kernel drops every further SYN (a full accept
    queue drops SYNs, cookies or not); the connecting side retransmits its
    SYN 1, 3, 7, 15 s after the first.  open() accepts (and closes) the
    filler and from then on accepts everything and hands it to `server`."""

    def __init__(self, server, host="127.0.0.1", name="gate"):
        self.server, self.name = server, name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(0)
        self.addr = self.sock.getsockname()[:2]
        self.filler = connect(self.addr, timeout=10)
        self.thread = None

    def server_line(self):
        return "%s %s:%d" % (self.name, self.addr[0], self.addr[1])

    def open(self):
        if self.thread is None:
            self.thread = threading.Thread(target=self._accept, name=self.name, daemon=True)
            self.thread.start()

    def _accept(self):
        filler = self.filler.getsockname()
        while True:
            try:
                s, peer = self.sock.accept()
            except OSError:
                return
            if peer[:2] == filler[:2]:
                s.close()
            else:
                self.server.adopt(s)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.filler.close()
        if self.thread is not None:
            self.thread.join(5)


class _Threaded(object):
    """A client connection run by a thread of its own: an echo exchange
    paced until stop (or, for the setup kinds, a wait for stop first)."""

    def __init__(self, owner, kind, cid):
        self.owner, self.kind, self.cid = owner, kind, cid
        self.rec = Record(kind, cid, "client")
        self.thread = threading.Thread(target=self._run, name="streams-%s-%d" % (kind, cid),
                                       daemon=True)

    def _exchange(self, send, recv, nbytes):
        data = self.rec.up.next_bytes(nbytes)
        send(data)
        self.rec.up.sent(data)
        got = bytearray()
        while len(got) < nbytes:
            chunk = recv(nbytes - len(got))
            if not chunk:
                self.rec.eof_early = self.rec.down.n + len(got)
                raise EOFError("EOF after %d of %d echoed bytes" % (len(got), nbytes))
            got += chunk
        self.rec.down.take(bytes(got))

    def _echo_until_stop(self, send, recv):
        o = self.owner
        rng = random.Random("%s%d" % (self.kind, self.cid))
        while not o.stop_event.is_set():
            self._exchange(send, recv, rng.randint(1, o.params.echo_max))
            o.stop_event.wait(o.params.echo_interval)
        self._exchange(send, recv, 64)

    def _run(self):
        try:
            self.body()
            if self.rec.end is None:
                self.rec.end = "eof"
        except Exception as e:
            if self.rec.end is None:
                self.rec.end = _end_text(e)
        finally:
            self.rec.done = True

    def body(self):
        """What the thread does (subclasses of other modules replace it)."""
        getattr(self, "run_" + self.kind)()

    def header(self):
        return stream_header(self.kind, self.cid)

    def run_tls(self):
        o = self.owner
        raw = connect(o.tls_addr, timeout=120)
        try:
            s = o.client_ctx.wrap_socket(raw, server_hostname=o.server_hostname,
                                         suppress_ragged_eofs=False)
        except BaseException:
            raw.close()
            raise
        try:
            self.tls_echo_strict(s)
        finally:
            s.close()

    def tls_echo_strict(self, s):
        """The header and an echo stream until stop over the SSLSocket s,
        then strictly: our close_notify, the peer's close_notify back, EOF."""
        s.sendall(self.header())
        self._echo_until_stop(s.sendall, s.recv)
        plain = s.unwrap()
        try:
            if plain.recv(1) != b"":
                raise AssertionError("bytes after close_notify")
        finally:
            plain.close()

    def run_proxy_partial(self):
        o = self.owner
        s = connect(o.proxy_addr, timeout=120)
        try:
            hdr = b"PROXY TCP4 192.0.2.1 192.0.2.2 40000 443\r\n"
            s.sendall(hdr[:17])
            o.stop_event.wait()
            self.plain_echo_then_fin(s, hdr[17:])
        finally:
            s.close()

    def plain_echo_then_fin(self, s, prefix=b""):
        """prefix, the header and an echo stream until stop over the plain
        socket s, then our FIN and the peer's EOF (nothing after the echoes)."""
        s.sendall(prefix + self.header())
        self._echo_until_stop(s.sendall, s.recv)
        s.shutdown(socket.SHUT_WR)
        if s.recv(1) != b"":
            raise AssertionError("bytes after the echoes")

    def run_hello_partial(self):
        o = self.owner
        s = connect(o.tls_addr, timeout=120)
        try:
            m = MemTLSClient(s, o.client_ctx, server_hostname=o.server_hostname, timeout=120)
            hello = m.client_hello()
            s.sendall(hello[:len(hello) // 2])
            o.stop_event.wait()
            s.sendall(hello[len(hello) // 2:])
            self.mem_echo_strict(m)
        finally:
            s.close()

    def mem_echo_strict(self, m):
        """The rest of the MemTLSClient m's handshake, the header, an echo
        stream until stop, and a strict close (_mem_close_strict)."""
        m.handshake()
        m.sendall(self.header())
        self._echo_until_stop(m.sendall, m.recv)
        _mem_close_strict(m)


def _mem_close_strict(m):
    """close_notify through a MemTLSClient, then the peer's close_notify and
    EOF; a bare EOF raises."""
    m.close_notify()
    while True:
        try:
            if m.obj.read(65536):
                raise AssertionError("bytes after our close_notify")
        except ssl.SSLZeroReturnError:
            return
        except ssl.SSLWantReadError:
            if not m._fill():
                raise AssertionError("EOF without the server's close_notify")


def client_problems(c):
    """What went wrong at the client end of a connection (its Record)."""
    probs = list(c.errors)
    if not c.done:
        probs.append("client end still open at the deadline (sent %d, received %d)"
                     % (c.up.n, c.down.n))
    if c.end not in (None, "eof"):
        probs.append("client end: %s (sent %d, received %d)" % (c.end, c.up.n, c.down.n))
    if c.eof_early is not None:
        probs.append("EOF before stop, after %d bytes received" % c.eof_early)
    if c.down.bad_at is not None:
        probs.append("down: first difference at offset %d" % c.down.bad_at)
    return probs


def server_problems(c, s):
    """What went wrong at the server end s, and between the two ends of a
    connection: each direction's count and sha256 as sent and as received."""
    probs = []
    if s.end not in (None, "eof"):
        probs.append("server end: %s (sent %d, received %d)" % (s.end, s.down.n, s.up.n))
    elif not s.done:
        probs.append("server end still open (sent %d, received %d)" % (s.down.n, s.up.n))
    if s.eof_early is not None:
        probs.append("server end: EOF before stop, after %d bytes received" % s.eof_early)
    if s.up.bad_at is not None:
        probs.append("up: first difference at offset %d" % s.up.bad_at)
    for d, snd, rcv in (("up", c.up, s.up), ("down", s.down, c.down)):
        if snd.n != rcv.n or snd.digest() != rcv.digest():
            probs.append("%s: sent %d bytes sha256 %s.., received %d sha256 %s.."
                         % (d, snd.n, snd.digest()[:12], rcv.n, rcv.digest()[:12]))
    return probs


# --------------------------------------------------------------------------
# the set a test drives

class StreamSet(object):
    """start(kind, n) -> progress() -> stop() -> verify().

    plain / proxy / tls / gated: baton listeners (a plain one, one with
    accept_proxy = on, one with tls = passthrough, one whose backend is
    `gate`) in front of `server` (plain, proxy and, once the gate opens,
    gated) and `tls_server`; client_ctx verifies the TLS server as
    server_hostname."""

    def __init__(self, plain=None, proxy=None, tls=None, server=None, tls_server=None,
                 client_ctx=None, server_hostname=None, params=None, id_base=0,
                 gated=None, gate=None):
        self.plain_addr, self.proxy_addr, self.tls_addr = plain, proxy, tls
        self.gated_addr, self.gate = gated, gate
        self.server, self.tls_server = server, tls_server
        self.client_ctx, self.server_hostname = client_ctx, server_hostname
        self.params = params or (server.params if server is not None else Params())
        self.clients = StreamClients(self.params)
        self.threaded = []
        self.stop_event = threading.Event()
        self.counts = {}
        self.id_base = id_base       # ids of this set: id_base, id_base + 1, ...
        self.stopped_at = None

    def start(self, kind, n):
        if kind not in KINDS:
            raise ValueError("unknown stream kind %r" % kind)
        need = {"connecting": self.gated_addr, "proxy_partial": self.proxy_addr,
                "tls": self.tls_addr, "hello_partial": self.tls_addr}.get(kind, self.plain_addr)
        if need is None:
            raise ValueError("stream kind %s: this StreamSet has no listener for it" % kind)
        first = self.id_base + self.counts.get(kind, 0)
        self.counts[kind] = self.counts.get(kind, 0) + n
        for cid in range(first, first + n):
            if kind in SELECTOR_KINDS:
                self.clients.open(self.gated_addr if kind == "connecting" else self.plain_addr,
                                  kind, cid)
            else:
                t = _Threaded(self, kind, cid)
                self.threaded.append(t)
                t.thread.start()

    def client_records(self):
        recs = dict(self.clients.records)
        for t in self.threaded:
            recs[(t.kind, t.cid)] = t.rec
        return recs

    def server_record(self, kind, cid):
        srv = self.server if kind in SELECTOR_KINDS or kind == "proxy_partial" \
            else self.tls_server
        return srv.records.get((kind, cid)) if srv is not None else None

    def progress(self):
        """{kind: {'conns', 'connected', 'open', 'up', 'down', 'failed'}} from
        the client ends (bytes sent up and received down so far)."""
        out = {}
        for (kind, _), r in self.client_records().items():
            d = out.setdefault(kind, {"conns": 0, "connected": 0, "open": 0, "up": 0, "down": 0,
                                      "failed": 0})
            d["conns"] += 1
            d["connected"] += 1 if r.connected else 0
            d["open"] += 0 if r.done else 1
            d["up"] += r.up.n
            d["down"] += r.down.n
            d["failed"] += 1 if (r.end not in (None, "eof") or r.eof_early is not None
                                 or r.down.bad_at is not None) else 0
        return out

    def wait_progress(self, pred, timeout, what="stream progress"):
        deadline = time.monotonic() + scaled(timeout)
        while True:
            p = self.progress()
            if pred(p):
                return p
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s; progress: %r" % (what, p))
            time.sleep(0.05)

    def stop(self, timeout=60):
        """Winds every stream up and waits until each has ended (both ends),
        or the deadline."""
        self.stopped_at = time.monotonic()
        if self.gate is not None:
            self.gate.open()
        self.stop_event.set()
        loops = [self.clients] + ([self.server] if self.server is not None else [])
        for lp in loops:
            lp.freeze()
        for lp in reversed(loops):
            lp.wind_up()
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            recs = self.client_records()
            pending = [r for r in recs.values() if not r.done]
            if not pending and len(recs) == sum(self.counts.values()):
                srv_pending = [k for k in recs if (self.server_record(*k) is not None and
                                                   not self.server_record(*k).done)]
                if not srv_pending:
                    return
            time.sleep(0.05)

    def verify(self):
        """Failure texts, one per broken connection (empty: all intact)."""
        out = []
        for lp in (self.clients, self.server):
            if lp is not None and lp.crashed:
                out.append("stream loop %s died: %s" % (lp.thread.name, lp.crashed))
        for srv in (self.server, self.tls_server):
            for key, r in list(srv.records.items()) if srv is not None else ():
                if key[0] == "?":
                    out.append("a server connection it could not place: %s" % r.end)
        recs = self.client_records()
        for kind, n in self.counts.items():
            for cid in range(self.id_base, self.id_base + n):
                r = recs.get((kind, cid))
                problems = self._check(kind, cid, r)
                if problems:
                    out.append("%s #%d: %s" % (kind, cid, "; ".join(problems)))
        return out

    def _check(self, kind, cid, c):
        if c is None:
            return ["never started"]
        s = self.server_record(kind, cid)
        probs = client_problems(c)
        if s is None:
            if (self.server if kind in SELECTOR_KINDS or kind == "proxy_partial"
                    else self.tls_server) is not None:
                probs.append("the server never saw this connection")
            # else the server runs elsewhere (bench/handoff_load.py): the
            # client's own checks are all there is (for echo streams they
            # cover both directions: every byte came back as sent)
            return probs + self._check_lengths(kind, c)
        return probs + server_problems(c, s) + self._check_lengths(kind, c)

    def _check_lengths(self, kind, c):
        p, probs = self.params, []
        if kind in EXTRA_KINDS and echoes(kind):
            return [] if c.down.n == c.up.n else \
                ["down: %d bytes, expected %d" % (c.down.n, c.up.n)]
        want = {"echo": ("down", c.up.n), "idle": ("down", c.up.n),
                "tls": ("down", c.up.n), "proxy_partial": ("down", c.up.n),
                "hello_partial": ("down", c.up.n), "connecting": ("down", c.up.n),
                "half_client": ("up", p.half_block),
                "half_server": ("down", p.half_block), "slow": ("down", p.slow_bytes)}
        if kind in want:
            d, n = want[kind]
            got = getattr(c, d).n
            if got != n:
                probs.append("%s: %d bytes, expected %d" % (d, got, n))
        if kind == "slow" and c.up.n != p.slow_bytes:
            probs.append("up: %d bytes, expected %d" % (c.up.n, p.slow_bytes))
        if kind == "bulk" and c.down.n < p.bulk_min:
            probs.append("down: %d bytes, expected at least %d" % (c.down.n, p.bulk_min))
        return probs

    def close(self):
        self.stop_event.set()
        self.clients.close()
        for t in self.threaded:
            t.thread.join(5)
