#!/usr/bin/env python3
"""Writes the seed inputs of tests/fuzz/corpus/<target>/ (files named seed-*).

The seeds are the inputs of the unit tests (tests/unit/test_*.c) and the
configuration files of tests/conf, in the input layout of each fuzz target
(see the comment at the top of each fuzz_<target>.c).  Run it again after a
change of a format:

    python3 tests/fuzz/make_corpus.py

It replaces seed-* files only; regression inputs (crash-*, and anything else
added by hand) are left alone.  Python 3 standard library only.
"""
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


class Corpus:
    """The seed files of one target: written at the end, stale ones removed."""

    def __init__(self, target):
        self.dir = os.path.join(CORPUS, target)
        self.files = {}

    def add(self, name, data):
        if isinstance(data, str):
            data = data.encode()
        name = "seed-" + name
        assert name not in self.files, name
        self.files[name] = bytes(data)

    def write(self):
        os.makedirs(self.dir, exist_ok=True)
        for old in os.listdir(self.dir):
            if old.startswith("seed-") and old not in self.files:
                os.remove(os.path.join(self.dir, old))
        for name, data in sorted(self.files.items()):
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(data)
        print("%-12s %3d seeds, %6d bytes" % (os.path.basename(self.dir), len(self.files),
                                             sum(len(d) for d in self.files.values())))


# --- conf --------------------------------------------------------------------

CONF_TLS = """\
[global]
threads = 2
tls_ticket_rotate = 6h
tls_session_cache = 50000
upgrade_timeout = 5s
splice = off

[listener edge]
bind = [::]:443
bind = 0.0.0.0:443
backend = web                    ; when no route matches
tls = on
tls_cert = /etc/baton/example.com.rsa.pem
tls_key  = /etc/baton/example.com.rsa.key
tls_cert = /etc/baton/example.com.ecdsa.pem
tls_key  = /etc/baton/example.com.ecdsa.key
tls_min_version = 1.2
tls_max_version = 1.3
tls_ciphers = ECDHE+AESGCM
tls_ciphersuites = TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256
alpn = h2,http/1.1
route = api.example.com api
route = *.internal.example.com intra
route_alpn = h2 web
tls_client_ca = /etc/baton/clients-ca.pem
tls_verify_client = optional
tls_handshake_timeout = 5s

[listener sni]
bind = [::1]:8443
backend = web
tls = passthrough
route = *.tenant.example.com api
route_alpn = acme-tls/1 intra

[listener from_lb]
bind = 10.0.0.5:443
backend = api
accept_proxy = on
proxy_timeout = 2s

[backend web]
server = web1 127.0.0.1:8080
balance = roundrobin

[backend api]
server = app1.internal 10.0.1.11:8443
server = app2.internal 10.0.1.12:8443 weight=3
tls = on
tls_ca = /etc/baton/internal-ca.pem
tls_sni = app.internal
tls_cert = /etc/baton/baton-client.pem
tls_key  = /etc/baton/baton-client.key
send_proxy = v2
check = tls
check_interval = 2s
check_rise = 2
check_fall = 3
check_timeout = 1s

[backend intra]
server = i1 [2001:db8::1]:80
tls = on
tls_verify = off
send_proxy = v1
check = tcp
"""

CONF_MIXED_ERRORS = """\
[global]
threads = 99
log_level = loud
[listener web]
bind = 127.0.0.1:99999
backend = nowhere
tls = on
route_alpn = h3 app
[backend app]
server = a 127.0.0.1:1 weight=0
check = tls
tls_ca = /x
[Backend b]
key: value
   [listener web]
"""


def conf_seeds():
    c = Corpus("conf")
    for kind in ("good", "bad"):
        d = os.path.join(ROOT, "tests", "conf", kind)
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                c.add("%s-%s" % (kind, name), f.read())
    c.add("tls-routes-checks.ini", CONF_TLS)
    c.add("many-errors.ini", CONF_MIXED_ERRORS)
    c.add("crlf.ini", CONF_TLS.replace("\n", "\r\n")[:600])
    c.add("empty.ini", "")
    return c


# --- clienthello -------------------------------------------------------------

def captured(name):
    """A hex ClientHello captured in tests/unit/test_clienthello.c, by its C name."""
    with open(os.path.join(ROOT, "tests", "unit", "test_clienthello.c")) as f:
        src = f.read()
    m = re.search(r"static const char %s\[\] =((?:\s*\"[0-9a-f]*\")+);" % name, src)
    if m is None:
        sys.exit("make_corpus: %s not found in test_clienthello.c" % name)
    return bytes.fromhex("".join(re.findall(r'"([0-9a-f]*)"', m.group(1))))


def vec(width, body):
    return len(body).to_bytes(width, "big") + body


def u16(v):
    return struct.pack(">H", v)


def hello_msg(sni=None, sni2=None, alpn=(), tls13=False, no_exts=False, dup_ext=False):
    """A ClientHello handshake message, as test_clienthello.c builds them."""
    rnd = b"\xab" * 32
    body = u16(0x0303) + rnd + vec(1, rnd) + vec(2, u16(0x1301) + u16(0xc02f)) + b"\x01\x00"
    if not no_exts:
        exts = b""
        if sni is not None:
            names = b"\x00" + vec(2, sni)
            if sni2 is not None:
                names += b"\x00" + vec(2, sni2)
            exts += u16(0) + vec(2, vec(2, names))
        exts += u16(10) + vec(2, u16(4) + u16(0x001d) + u16(0x0017))
        if alpn:
            exts += u16(16) + vec(2, vec(2, b"".join(vec(1, p) for p in alpn)))
        if tls13:
            exts += u16(43) + vec(2, vec(1, u16(0x0304) + u16(0x0303)))
        if dup_ext:
            exts += u16(10) + u16(4) + u16(2) + u16(0x001d)
        body += vec(2, exts)
    return b"\x01" + vec(3, body)


def records(msg, nrec, ctype=22):
    """Wraps a handshake message into nrec records of near-equal size."""
    chunk = -(-len(msg) // nrec)
    out = b""
    for off in range(0, len(msg), chunk):
        frag = msg[off:off + chunk]
        out += bytes([ctype, 3, 1]) + vec(2, frag)
    return out


def clienthello_seeds():
    c = Corpus("clienthello")
    # Python's ssl (OpenSSL 3.0): TLS 1.3 with SNI and ALPN, and TLS 1.2 without.
    tls13 = captured("captured_tls13")
    tls12 = captured("captured_tls12")
    assert len(tls13) == 517 and len(tls12) == 162
    msg13 = tls13[5:]
    c.add("captured-tls13", b"\x00" + tls13)
    c.add("captured-tls13-then-ccs", b"\x00" + tls13 + b"\x14\x03\x03\x00\x01\x01")
    c.add("captured-tls13-bytewise", b"\x01" + tls13)
    c.add("captured-tls13-2-records", b"\x40" + records(msg13, 2))
    c.add("captured-tls13-3-records", b"\x90" + records(msg13, 3))
    c.add("captured-tls13-1-byte-records", b"\xc8" + records(msg13, len(msg13)))
    c.add("captured-tls12", b"\x07" + tls12)
    built = {
        "sni-alpn-tls13": hello_msg(b"Mixed.Case-Host_1.EXAMPLE", alpn=[b"http/1.1"], tls13=True),
        "plain": hello_msg(),
        "no-extensions": hello_msg(no_exts=True),
        "sni-wildcard": hello_msg(b"*.example.com"),
        "alpn-20": hello_msg(alpn=[b"h2" if i % 2 else b"http/1.1" for i in range(20)]),
        "sni-255": hello_msg(b"a" * 255),
        "sni-256": hello_msg(b"a" * 256),
        "sni-empty": hello_msg(b""),
        "sni-nul": hello_msg(b"good.example\0.evil"),
        "sni-space": hello_msg(b"has space.example"),
        "sni-two-names": hello_msg(b"one.example", sni2=b"two.example"),
        "dup-extension": hello_msg(dup_ext=True),
        "alpn-empty-name": hello_msg(alpn=[b"h2", b""]),
    }
    for i, (name, msg) in enumerate(sorted(built.items())):
        c.add(name, bytes([i * 17 % 256]) + records(msg, 1))
    msg = hello_msg(b"example.org")
    c.add("sni-2-records", b"\x05" + records(msg, 2))
    c.add("hs-header-split", b"\x00" + records(msg, len(msg) // 2))
    # The hello must be alone in its last record.
    extra = bytearray(records(msg, 1) + b"\x01\x00\x00\x00")
    extra[3:5] = u16(len(msg) + 4)
    c.add("bytes-after-hello", b"\x00" + extra)
    mixed = bytearray(records(msg, 2))
    mixed[5 + (len(msg) + 1) // 2] = 23
    c.add("appdata-between-fragments", b"\x00" + mixed)
    for name, data in (("record-version-0305", b"\x16\x03\x05\x00\x10"),
                       ("record-major-2", b"\x16\x02\x01"),
                       ("record-length-0", b"\x16\x03\x01\x00\x00"),
                       ("record-length-16641", b"\x16\x03\x01\x41\x01"),
                       ("record-length-16640", b"\x16\x03\x01\x41\x00"),
                       ("not-clienthello", b"\x16\x03\x01\x00\x10\x02"),
                       ("hello-65537", b"\x16\x03\x01\x00\x10\x01\x01\x00\x01"),
                       ("hello-empty", b"\x16\x03\x01\x00\x04\x01\x00\x00\x00"),
                       ("http", b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
                       ("proxy-line", b"PROXY TCP4")):
        c.add(name, b"\x00" + data)
    return c


# --- proxyproto --------------------------------------------------------------

PP2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def pp2(vercmd, fam, body, length=None):
    return PP2_SIG + bytes([vercmd, fam]) + u16(len(body) if length is None else length) + body


def tlv(t, value):
    return bytes([t]) + u16(len(value)) + value


def proxyproto_seeds():
    c = Corpus("proxyproto")
    good_v1 = [
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n",
        b"PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 1 2\r\n",
        b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
        b"PROXY UNKNOWN\r\n",
        b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nabc",
    ]
    bad_v1 = [
        b"PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",
        b"PROXY  TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1 65536\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 +1 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 0x10 2\r\n",
        b"PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n",
        b"PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",
        b"PROXY TCP4\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n",
        b"PROXY TCP4 192.0.2.256 198.51.100.2 1 2\r\n",
        b"PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n",
        b"PROXY UNKNOWNX\r\n",
        b"PROXY TCP4\t192.0.2.1 198.51.100.2 1 2\r\n",
        b"PROXY TCP4 192.0.2.1\0 198.51.100.2 1 2\r\n",
        b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n",      # 107 bytes: the longest line
        b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n",      # 108: one too long
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00",
        b"PROX",
    ]
    for i, line in enumerate(good_v1):
        c.add("v1-good-%d" % i, bytes([i * 37 % 256]) + line)
    for i, line in enumerate(bad_v1):
        c.add("v1-bad-%02d" % i, bytes([(i * 29 + 3) % 256]) + line)

    addr4 = bytes([192, 0, 2, 1, 198, 51, 100, 2]) + u16(56324) + u16(443)
    addr6 = (bytes.fromhex("20010db8000000000000000000000001")
             + bytes.fromhex("20010db8ffff00000000000000000002") + u16(1) + u16(65535))
    ssl = tlv(0x20, b"\x03\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3")
              + tlv(0x23, b"TLS_AES_128_GCM_SHA256"))
    tlvs = tlv(0x01, b"h2") + tlv(0x02, b"a.example") + ssl + tlv(0x04, b"") + tlv(0xe0, b"\0\0")
    v2 = {
        "tcp4": pp2(0x21, 0x11, addr4) + b"\x16\x03\x01",
        "tcp4-tlvs": pp2(0x21, 0x11, addr4 + tlvs),
        "tcp6-tlvs": pp2(0x21, 0x21, addr6 + tlv(0x01, b"http/1.1") + tlv(0x02, b"www.example.com")),
        "local": pp2(0x20, 0x00, b""),
        "local-tcp4-authority": pp2(0x20, 0x11, addr4 + tlv(0x02, b"health")),
        "unspec": pp2(0x21, 0x00, b""),
        "version-1": pp2(0x11, 0x11, addr4),
        "command-3": pp2(0x23, 0x11, addr4),
        "family-0x12": pp2(0x21, 0x12, addr4),
        "too-short": pp2(0x21, 0x21, addr4),
        "too-long": pp2(0x21, 0x11, addr4, length=4081),
        "tlv-overrun": pp2(0x21, 0x11, addr4 + b"\x02\x00\x05abc"),
        "tlv-cut": pp2(0x21, 0x11, addr4 + b"\x02\x00"),
        "ssl-short": pp2(0x21, 0x11, addr4 + b"\x20\x00\x04\x01\x00\x00\x00"),
        "ssl-sub-overrun": pp2(0x21, 0x11, addr4 + b"\x20\x00\x09\x01\x00\x00\x00\x00\x21\x00\x05T"),
        "ssl-not-ssl": pp2(0x21, 0x11, addr4 + b"\x20\x00\x05\x00\x00\x00\x00\x00"),
        "alpn-nul": pp2(0x21, 0x11, addr4 + b"\x01\x00\x03a\0b"),
        "alpn-256": pp2(0x21, 0x11, addr4 + tlv(0x01, b"a" * 256)),
        "sig-only": PP2_SIG[:9],
    }
    for i, (name, data) in enumerate(sorted(v2.items())):
        c.add("v2-" + name, bytes([i * 53 % 256]) + data)
    return c


# --- handoff: wire, message, channel -----------------------------------------

HELLO, CONFIG, LISTENER, START, READY, FAILED, STOP_ACCEPTING, DRAIN, STATUS_REQ, STATUS, \
    RESUME_ACCEPTING = range(1, 12)
MASTER_STATE, TICKET_KEYS, SERVER_STATE = 16, 17, 18
CONN, CONN_DONE = 32, 33
EMPTY_TYPES = (START, READY, STOP_ACCEPTING, DRAIN, RESUME_ACCEPTING)


def hdr(mtype, length, nfds=0, seq=1, magic=0xBA70, version=1, flags=0):
    return struct.pack(">HBBHHII", magic, version, nfds, mtype, flags, seq, length)


def p32(v):
    return struct.pack(">I", v)


def p64(v):
    return struct.pack(">Q", v)


def pstr(s):
    s = s.encode() if isinstance(s, str) else s
    return u16(len(s)) + s


def pbytes(b):
    b = b.encode() if isinstance(b, str) else b
    return p32(len(b)) + b


def servers(items):
    out = p32(len(items))
    for backend, server, down, active, total, failures in items:
        out += pstr(backend) + pstr(server) + p32(down) + p64(active) + p64(total) + p64(failures)
    return out


CONFIG_TEXT = open(os.path.join(ROOT, "tests", "conf", "good", "minimal.ini"), "rb").read()
TICKET_KEY = bytes(range(80))

# Payloads as handoff/message.c lays them out (see the comment at its top).
PAYLOADS = {
    "hello": (HELLO, 0, p32(4711) + pstr("0.1.0")),
    "config": (CONFIG, 0, p32(3) + pstr("/etc/baton/baton.ini") + pbytes(CONFIG_TEXT)),
    "listener": (LISTENER, 1, pstr("web") + pstr("127.0.0.1:0")),
    "failed": (FAILED, 0, pstr("configuration rejected: /etc/baton/baton.ini:3: bad port")),
    "status-req": (STATUS_REQ, 0, p32(42)),
    "status": (STATUS, 0, p32(42) + p32(5120) + p64(812) + p64(1904332) + p64(1 << 33)
               + p64(77) + p32(2) + pstr("web") + p64(800) + p64(1900000) + pstr("admin")
               + p64(12) + p64(4332) + p64(3)
               + servers([("app", "app1", 0, 410, 996001, 0), ("app", "app2", 1, 0, 908120, 17)])),
    "ticket-keys-1": (TICKET_KEYS, 0, pbytes(TICKET_KEY)),
    "ticket-keys-3": (TICKET_KEYS, 0, pbytes(TICKET_KEY * 3)),
    "server-state": (SERVER_STATE, 0, servers([("app", "app1", 1, 2, 3, 4)])),
    "server-state-empty": (SERVER_STATE, 0, servers([])),
    "master-state": (MASTER_STATE, 0, p64(123456) + p32(3) + p32(9) + p32(3) + p32(0xffffffff)
                     + pstr("") + pstr("/etc/baton/baton.ini") + pbytes(CONFIG_TEXT)
                     + p32(2) + pstr("web") + pstr("127.0.0.1:8080") + p32(5)
                     + pstr("admin") + pstr("[::1]:9090") + p32(6)
                     + p32(2) + p32(2) + p32(4990) + p32(2) + p32(17) + p32(7) + p64(1000)
                     + pstr("0.1.0") + pbytes(b"")
                     + p32(3) + p32(5120) + p32(1) + p32(4) + p32(8) + p64(2000)
                     + pstr("0.1.0-next") + pbytes(hdr(READY, 0))
                     + pbytes(TICKET_KEY * 2)),
    "master-state-reply": (MASTER_STATE, 0, p64(1) + p32(1) + p32(1) + p32(3) + p32(11)
                           + pstr("reloaded: generation 2 worker pid 77") + pstr("/b.ini")
                           + pbytes(b"") + p32(0) + p32(0) + pbytes(b"")),
}
for _t in EMPTY_TYPES:
    PAYLOADS["empty-%d" % _t] = (_t, 0, b"")

# Index of each decoder in tests/fuzz/fuzz_decode.c's table.
DECODER_INDEX = {HELLO: 0, CONFIG: 1, LISTENER: 2, FAILED: 3, STATUS_REQ: 4, STATUS: 5,
                 TICKET_KEYS: 6, SERVER_STATE: 7, MASTER_STATE: 8, START: 9, READY: 10,
                 STOP_ACCEPTING: 11, DRAIN: 12, RESUME_ACCEPTING: 13}
EMPTY_GIVEN_HELLO = 14


def framed(name, seq=1):
    mtype, nfds, payload = PAYLOADS[name]
    return hdr(mtype, len(payload), nfds, seq) + payload


def message_seeds():
    c = Corpus("message")
    for name, (mtype, nfds, payload) in sorted(PAYLOADS.items()):
        c.add("ok-" + name, bytes([DECODER_INDEX[mtype], nfds, 0]) + payload)
    bad = {
        "hello-truncated": (HELLO, 0, 0, p32(1) + u16(5) + b"0.1"),
        "hello-trailing": (HELLO, 0, 0, p32(1) + pstr("0.1.0") + b"\0"),
        "hello-version-nul": (HELLO, 0, 0, p32(1) + pstr("0.1\0x")),
        "hello-version-long": (HELLO, 0, 0, p32(1) + pstr("v" * 64)),
        "config-text-nul": (CONFIG, 0, 0, p32(1) + pstr("/a") + pbytes(b"[global]\0")),
        "config-text-long": (CONFIG, 0, 0, p32(1) + pstr("/a") + p32(0x200001)),
        "listener-no-fd": (LISTENER, 0, 0, pstr("web") + pstr("127.0.0.1:0")),
        "listener-fd-taken": (LISTENER, 0x81, 0, pstr("web") + pstr("127.0.0.1:0")),
        "status-257-listeners": (STATUS, 0, 0, p32(1) + p32(2) + p64(0) * 4 + p32(257)),
        "server-state-1025": (SERVER_STATE, 0, 0, p32(1025)),
        "ticket-keys-none": (TICKET_KEYS, 0, 0, pbytes(b"")),
        "ticket-keys-79": (TICKET_KEYS, 0, 0, pbytes(TICKET_KEY[:79])),
        "master-state-ctl-none": (MASTER_STATE, 0, 0, p64(1) + p32(1) + p32(1) + p32(0xffffffff)),
        "master-state-fd-range": (MASTER_STATE, 0, 0, p64(1) + p32(1) + p32(1) + p32(0x80000000)),
        "master-state-65-gens": (MASTER_STATE, 0, 0, p64(1) + p32(1) + p32(1) + p32(3) + p32(4)
                                 + pstr("") + pstr("") + pbytes(b"") + p32(0) + p32(65)),
        "status-req-wrong-type": (STATUS_REQ, 0, STATUS, p32(42)),
        "empty-with-payload": (READY, 0, 0, b"\0"),
        "empty-given-hello": (EMPTY_GIVEN_HELLO, 0, 0, b""),
        "empty-two-fds": (START, 2, 0, b""),
    }
    for name, (mtype, nfds, htype, payload) in sorted(bad.items()):
        index = DECODER_INDEX.get(mtype, mtype)
        c.add("bad-" + name, bytes([index, nfds, htype]) + payload)
    return c


def channel_seeds():
    c = Corpus("channel")
    startup = (framed("hello", 1) + framed("config", 1) + framed("listener", 2)
               + framed("listener", 3) + framed("empty-%d" % START, 4)
               + framed("empty-%d" % READY, 2))
    c.add("startup-whole", b"\x00\x02" + startup)
    c.add("startup-bytewise", b"\x01\x02" + startup)
    c.add("startup-chunks", b"\x11\x02" + startup)
    c.add("startup-missing-fd", b"\x23\x01" + startup)
    c.add("status-round", b"\x85\x00" + framed("status-req") + framed("status")
          + framed("server-state") + framed("ticket-keys-3"))
    c.add("master-state", b"\x40\x00" + framed("master-state"))
    c.add("drain-stop-resume", b"\x09\x00" + framed("empty-%d" % STOP_ACCEPTING)
          + framed("empty-%d" % RESUME_ACCEPTING) + framed("empty-%d" % DRAIN))
    c.add("conn-reserved", b"\x03\x02" + hdr(CONN, 4, 2) + p32(1) + hdr(CONN_DONE, 0))
    c.add("fds-16", b"\x00\x28" + hdr(CONN, 0, 16) + framed("listener"))
    c.add("cut-in-header", b"\x05\x00" + framed("hello") + framed("failed")[:9])
    c.add("cut-in-payload", b"\x06\x00" + framed("failed")[:-3])
    c.add("bad-magic", b"\x07\x00" + framed("hello") + hdr(HELLO, 0, magic=0xBA71))
    c.add("bad-version", b"\x08\x00" + hdr(HELLO, 0, version=2))
    c.add("bad-type", b"\x0a\x00" + hdr(12, 0))
    c.add("bad-flags", b"\x0b\x00" + hdr(READY, 0, flags=1))
    c.add("bad-nfds", b"\x0c\x00" + hdr(LISTENER, 0, nfds=17))
    c.add("bad-length", b"\x0d\x00" + hdr(CONFIG, 0x200001))
    c.add("decoder-refuses", b"\x0e\x00" + hdr(HELLO, 1) + b"\0" + framed("hello"))
    # A batching peer (descriptor byte / 41, bit 0): three CONN of 2 handles,
    # sends starting at the first and third (HANDLES_FIRST, 0x4); whole, and
    # with the second handle lost (a quarter of the way: the first two CONN
    # lose theirs, the third starts afresh).
    batch = (hdr(CONN, 4, 2, seq=1, flags=4) + p32(1) + hdr(CONN, 4, 2, seq=2) + p32(2)
             + hdr(CONN, 4, 2, seq=3, flags=4) + p32(3))
    c.add("batch-whole", b"\x07" + bytes([1 * 41 + 6]) + batch)
    c.add("batch-lost", b"\x00" + bytes([3 * 41 + 6]) + batch)
    return c


def wire_seeds():
    c = Corpus("wire")
    # Headers alone (the first 16 bytes are decoded as one).
    for mtype in (HELLO, CONFIG, LISTENER, STATUS, MASTER_STATE, TICKET_KEYS, CONN_DONE):
        c.add("header-%d" % mtype, hdr(mtype, 0x100, nfds=1, seq=0x01020304))
    c.add("header-bad-flags", hdr(READY, 0, flags=0x8000))
    c.add("header-max-payload", hdr(CONFIG, 0x200000))
    c.add("header-over-payload", hdr(CONFIG, 0x200001))
    # Getter ops (kind in the low 3 bits, parameter in the top 3) on a
    # payload that is also a builder program: [type] then (op, operands)...
    ops = bytes([0, 1, 2, 3, 4 | 5 << 5, 5 | 6 << 5, 6])
    program = (bytes([HELLO]) + b"\x00\x7f" + b"\x01\x12\x34" + b"\x02" + p32(0xdeadbeef)
               + b"\x03" + p64(1 << 63) + b"\x04\x03abc" + b"\x05\x05hello" + b"\x06\x03")
    c.add("getters-and-program", bytes([len(ops)]) + ops + program)
    c.add("program-only", b"\x00" + program)
    c.add("program-str-nul", b"\x00" + bytes([FAILED]) + b"\x05\x04a\0bc")
    c.add("program-17-fds", b"\x00" + bytes([LISTENER]) + b"\x06\x03" * 17)
    c.add("program-bad-fd", b"\x00" + bytes([LISTENER]) + b"\x06\xff")
    c.add("program-big-bytes", b"\x00" + bytes([CONFIG]) + b"\x07\x00\x80\x00")
    c.add("program-big-bytes-over", b"\x00" + bytes([CONFIG]) + b"\x07\x00\x80\x01")
    c.add("program-long-str", b"\x00" + bytes([CONFIG]) + b"\x07\x01\x10\x00"
          + b"\x07\x01\x10\x01")
    c.add("program-bad-type", b"\x00\x0c\x00\x01")
    strings = pstr("web") + pstr("x" * 4096) + pstr("y" * 4097) + pstr("a\0b") + u16(9) + b"cut"
    str_ops = bytes([5 | 4 << 5, 5 | 7 << 5, 5 | 7 << 5, 5 | 1 << 5])
    c.add("getters-strings", bytes([len(str_ops)]) + str_ops + strings)
    c.add("getters-bytes", b"\x04" + bytes([4 | 0 << 5, 4 | 7 << 5, 4 | 2 << 5, 4 | 6 << 5])
          + pbytes(b"") + pbytes(b"abc") + pbytes(b"toolong") + p32(0xffffffff))
    c.add("getters-after-failure", b"\x05" + bytes([3, 0, 1, 2, 6]) + b"\x01\x02\x03")
    return c


# --- conn: live connection handoff (handoff/conn_msg.c) ----------------------

CONN_DEC = {"link": 0, "conn": 1, "ack": 2, "release": 3, "done": 4}
SOCKADDR_IN = struct.pack("<H", 2) + struct.pack(">H", 40000) + bytes([127, 0, 0, 1]) + bytes(8)
SOCKADDR_IN6 = (struct.pack("<H", 10) + struct.pack(">H", 443) + bytes(4) + bytes(15) + b"\1"
                + struct.pack("<I", 0))


def ext(tag, flags, body):
    return u16(tag) + u16(flags) + pbytes(body)


def conn_payload(phase=1, peer=SOCKADDR_IN, local=b"", listener="web", backend="app",
                 server="s1", tried=("s2", "s1"), sni="", alpn="", up=b"", down=b"",
                 prefix=b"", up_flags=0, down_flags=0):
    """A CONN as handoff/conn_msg.c lays it out (see the comment at its top)."""
    out = p32(77) + p32(phase) + p32(0x5) + p32(0x1) + p32(2) + p32(300000)
    out += p64(1000) + p64(2000) + p64(0 if phase == 1 else 5000)
    out += pbytes(peer) + pbytes(local) + pstr(listener) + pstr(backend) + pstr(server)
    out += p32(len(tried)) + b"".join(pstr(t) for t in tried) + pstr(sni) + pstr(alpn)
    out += p64(1234) + p32(up_flags) + pbytes(up) + p64(5678) + p32(down_flags) + pbytes(down)
    return out + pbytes(prefix)


def tls_side(version=0x0304, suite=0x1301, role=0, flags=0, max_frag=16384, secret=48,
             hs=b"", plain=b"", raw_in=b"", raw_out=b"", subject=""):
    """A TLS side's extension body (CONN tags 1 and 2)."""
    def direction(fill, seq):
        return pbytes(bytes([fill]) * secret) + pbytes(bytes(32)) + pbytes(bytes(12)) + \
            p64(seq) + p64(seq + 1)
    out = p32(version) + p32(suite) + p32(role) + p32(flags) + p32(max_frag) + p64(0)
    out += direction(0xc1, 7) + direction(0x5e, 2)
    out += pbytes(hs) + pbytes(plain) + pbytes(raw_in) + pbytes(raw_out) + p64(4096)
    return out + pstr("TLSv1.3") + pstr("TLS_AES_128_GCM_SHA256") + p32(1) + pstr(subject)


def conn_seeds():
    c = Corpus("conn")
    record = bytes([23, 3, 3, 0, 20]) + bytes(20)
    relaying = conn_payload(up=b"GET / HTTP/1.1\r\n\r\n", down=b"HTTP/1.1 200 OK\r\n",
                            up_flags=1, down_flags=6)
    header = conn_payload(phase=2, backend="", server="", tried=(), prefix=b"PROXY TCP4 ")
    hello = conn_payload(phase=3, backend="", server="", tried=(), sni="www.example.com",
                         alpn="h2", prefix=bytes([22, 3, 1, 0, 5]))
    connecting = conn_payload(phase=4, peer=SOCKADDR_IN6, local=SOCKADDR_IN,
                              tried=tuple("s%d" % i for i in range(17)))
    ok = {
        "link-give": ("link", 1, p32(1) + p32(7) + p32(0) + p32(2)),
        "link-take": ("link", 1, p32(2) + p32(6) + p32(4095) + p32(4096)),
        "conn-relaying": ("conn", 2, relaying),
        "conn-proxy-header": ("conn", 1, header),
        "conn-client-hello": ("conn", 1, hello),
        "conn-connecting": ("conn", 2, connecting),
        "conn-extension": ("conn", 2, relaying + ext(999, 0, b"later")),
        "conn-tls-client": ("conn", 2, relaying + ext(1, 1, tls_side(
            plain=b"GET /", raw_in=record + record[:7], raw_out=record, subject="CN=c"))),
        "conn-tls-both": ("conn", 2, relaying + ext(999, 0, b"x") + ext(1, 1, tls_side())
                          + ext(2, 1, tls_side(version=0x0303, suite=0xc02b, role=1,
                                               hs=bytes([4, 0, 0, 9]) + bytes(3)))),
        "conn-tls-hello": ("conn", 1, conn_payload(phase=5, backend="", server="", tried=(),
                                                   prefix=bytes([22, 3, 1, 2, 0, 1]))),
        "conn-connect": ("conn", 1, conn_payload(phase=6, server="", tried=("s2",))
                         + ext(1, 1, tls_side())),
        "link-caps": ("link", 1, p32(1) + p32(7) + p32(0) + p32(2) + ext(1, 0, p32(0xf))),
        "ack": ("ack", 0, p32(64) + p32(3) + p32(100) + p32(0) + p32(101) + p32(1)
                + p32(102) + p32(0)),
        "ack-empty": ("ack", 0, p32(64) + p32(0)),
        "release": ("release", 0, p32(2) + p32(100) + p32(102)),
        "done": ("done", 0, p32(3)),
        "done-extension": ("done", 0, p32(3) + ext(7, 0x8000, b"") + ext(8, 0, p64(1))),
    }
    for name, (dec, fds, payload) in sorted(ok.items()):
        c.add("ok-" + name, bytes([CONN_DEC[dec], fds]) + payload)
    bad = {
        "link-index": ("link", 1, p32(1) + p32(7) + p32(2) + p32(2)),
        "link-role": ("link", 1, p32(3) + p32(7) + p32(0) + p32(1)),
        "link-fd-taken": ("link", 0x81, p32(1) + p32(7) + p32(0) + p32(1)),
        "conn-phase": ("conn", 2, conn_payload(phase=5)),
        "conn-phase-7": ("conn", 1, conn_payload(phase=7)),
        "conn-tls-secret-short": ("conn", 2, conn_payload() + ext(1, 1, tls_side(secret=47))),
        "conn-tls-truncated": ("conn", 2, conn_payload() + ext(2, 1, tls_side()[:-5])),
        "conn-phase-fds": ("conn", 1, relaying),
        "conn-fds-lost": ("conn", 0x42, relaying),
        "conn-no-peer": ("conn", 2, conn_payload(peer=b"")),
        "conn-peer-long": ("conn", 2, conn_payload(peer=bytes(129))),
        "conn-tried-18": ("conn", 2, conn_payload(tried=tuple("s%d" % i for i in range(18)))),
        "conn-pending-long": ("conn", 2, conn_payload()[:-8] + p32(0x100001)),
        "conn-must-understand": ("conn", 2, relaying + ext(999, 1, b"")),
        "conn-truncated": ("conn", 2, relaying[:-3]),
        "ack-4097": ("ack", 0, p32(1) + p32(4097)),
        "ack-result": ("ack", 0, p32(1) + p32(1) + p32(5) + p32(2)),
        "release-4097": ("release", 0, p32(4097)),
        "done-trailing": ("done", 0, p32(1) + b"zzz"),
    }
    for name, (dec, fds, payload) in sorted(bad.items()):
        c.add("bad-" + name, bytes([CONN_DEC[dec], fds]) + payload)
    return c


def ctl_command_seeds():
    """Control command lines, as test_ctl_command.c and the control tests send them."""
    c = Corpus("ctl_command")
    c.add("status", b"status\n")
    c.add("stop-crlf", b"stop\r\n")
    c.add("quit", b"quit\n")
    c.add("reload-then-more", b"reload\nstatus\n")
    c.add("bad-nul", b"status\0junk\n")
    c.add("bad-longer-word", b"statusx\n")
    c.add("bad-two-words", b"status junk\n")
    c.add("unterminated", b"stat")
    c.add("bad-byte", b"\xffstatus\n")
    c.add("bad-empty", b"\n")
    c.add("bad-two-cr", b"reload\r\r\n")
    c.add("bad-overlong", b"s" * 300 + b"\n")
    return c


def tlsrec_seeds():
    """fuzz_tlsrec.c: [suite][mode][seqs][ku_after][48 key bytes][ops]."""
    c = Corpus("tlsrec")
    keys = bytes(range(48))

    def state(suite, mode=0, seqs=0x20, ku_after=0):
        return bytes([suite, mode, seqs, ku_after]) + keys

    ops = (bytes([2, 0, 100, 0]) + bytes(100) +          # A writes 100 bytes
           bytes([3, 4]) + bytes(64) +                    # B writes 64
           bytes([1, 22, 6]) + bytes([4, 0, 0, 20]) + bytes(20) +   # a ticket
           bytes([1, 22, 2, 24, 0, 0, 1, 1, 0, 0, 0]) +   # KeyUpdate(requested)
           bytes([5]) +                                   # B answers it
           bytes([4, 1, 0]))                              # close_notify
    for i, name in enumerate(("aes128", "aes256", "chacha")):
        c.add("tls13-" + name, state(i) + ops)
        c.add("tls13-%s-client-mfl512-ku" % name, state(i, mode=1, ku_after=2) + ops)
    reneg = (bytes([1, 22, 1, 0, 0, 0, 0]) +              # HelloRequest
             bytes([1, 22, 2, 1, 0, 0, 2, 3, 3, 0, 0]) +  # ClientHello
             bytes([5]) + bytes([2, 0x40, 0, 1]) + bytes(16384) +
             bytes([1, 20, 1, 1, 0, 0, 0]) + bytes([4, 2, 40]))
    for i, name in ((3, "ecdsa-aes128"), (6, "ecdsa-aes256"), (9, "ecdsa-chacha")):
        c.add("tls12-" + name, state(i) + ops)
        c.add("tls12-%s-client-reneg" % name, state(i, mode=1 | 0x20) + reneg)
    c.add("exhausted", state(0, seqs=0xff) + ops)
    c.add("raw-record", state(1) + bytes([0, 23, 3, 3, 0, 40]) + bytes(40))
    c.add("bad-flags", state(3, mode=0x1e) + ops)
    return c


def main():
    if len(sys.argv) > 1:
        sys.exit(__doc__)
    for corpus in (conf_seeds(), clienthello_seeds(), proxyproto_seeds(), message_seeds(),
                   channel_seeds(), wire_seeds(), ctl_command_seeds(), conn_seeds(),
                   tlsrec_seeds()):
        corpus.write()


if __name__ == "__main__":
    main()
