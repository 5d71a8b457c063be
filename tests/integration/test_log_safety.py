"""Logs cannot be forged: hostile strings (newlines, CR, terminal escape
sequences, other C0 and C1 controls, NUL, DEL, invalid UTF-8, a forged
complete log line, 64 KiB values) sent through every path by which an
outside value reaches a log line or the `status` output: passthrough SNI
and ALPN, terminated-TLS SNI and ALPN, PROXY v1/v2 header fields and TLVs,
client certificate subjects, the version and failure reason a worker
sends, control commands, configuration values echoed in errors, the
configuration path, the environment.  Every line of the log must be one
well-formed, printable, bounded log line, and there must be exactly one
access line per connection.  Refused clients are rate-limited, with the
suppressed count reported."""

import hashlib
import os
import re
import socket
import struct
import subprocess
import time
import unittest

from baton_harness import (BATON_BIN, BatonTestCase, client_context, connect, install_binary,
                           install_script, parse_status_text, pid_alive, PKITestCase, pp2_tlv,
                           proxy_v2_header, recv_exact, recv_until_eof, render_config,
                           run_openssl, scaled, start_baton_command, wait_until)

LINE_RE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z baton\[(\d+)\] "
                     rb"(?:error|warn|info|debug): [\x20-\x7e]*\n$")
LINE_MAX = 4096
SUPPRESSED_RE = r"(\d+) similar messages suppressed"

# The PID is above Linux's largest pid_max: no process can have it.
FORGED = (b"2026-01-01T00:00:00.000Z baton[4194305] info: access client=203.0.113.66:1 "
          b"listener=web backend=app server=app1 bytes_in=0 bytes_out=0 duration_ms=0 "
          b"end=client_close")

# Hostile values, none empty, none longer than 255 bytes (one SNI or ALPN id).
CORPUS = [
    b"a\nb",
    b"a\rb",
    b"\x1b[2K",
    bytes(range(1, 32)),                       # every C0 control but NUL
    b"\x80\x85\x8d\x9b\x9f",                   # C1 controls, raw
    b"\xc2\x9b" b"31m\xc2\x85",                # C1 controls, UTF-8 encoded
    b"x\x00y",                                 # NUL
    b"\x7f",                                   # DEL
    b"\xff\xfe\xc3\x28\xe2\x82",               # invalid UTF-8
    b"h2\n" + FORGED + b"\x1b[2K",             # a forged complete line
    b"\r" + FORGED[:200] + b"\n",
    b"sp ace=1 back\\slash \"quote\" sni=evil",  # fields and quoting
    b"\x1b]0;title\x07\x1b[31m" + b"\n" * 200,  # OSC, SGR, many newlines
]

LONG = (b"\n\x1b[2K" + FORGED) * (64 * 1024 // (len(FORGED) + 5))   # ~64 KiB


def unescape(text):
    """Reverses baton's escaping (\\xHH, \\\\, \\") of one value."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text.startswith("\\x", i) and re.match(r"[0-9a-f]{2}", text[i + 2:i + 4]):
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        elif text[i] == "\\" and i + 1 < len(text):
            out += text[i + 1].encode()
            i += 2
        else:
            out += text[i].encode()
            i += 1
    return bytes(out)


def shown(field, value):
    """The value a log field stands for: whole, or cut (ending in "...")."""
    if field.endswith("..."):
        return value.startswith(unescape(field[:-3]))
    return unescape(field) == value


def client_hello(sni=None, alpn=None):
    """TLS records carrying a ClientHello with the raw SNI bytes and ALPN ids
    given (no validation: this is what a hostile client sends)."""
    exts = b""
    if sni is not None:
        entry = b"\x00" + struct.pack("!H", len(sni)) + sni
        body = struct.pack("!H", len(entry)) + entry
        exts += struct.pack("!HH", 0, len(body)) + body
    if alpn is not None:
        ids = b"".join(struct.pack("B", len(p)) + p for p in alpn)
        body = struct.pack("!H", len(ids)) + ids
        exts += struct.pack("!HH", 16, len(body)) + body
    hello = (b"\x03\x03" + b"\x11" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" +
             struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + struct.pack("!I", len(hello))[1:] + hello
    out = b""
    for i in range(0, len(hs), 16384):
        frag = hs[i:i + 16384]
        out += b"\x16\x03\x01" + struct.pack("!H", len(frag)) + frag
    return out


def ctl_raw(b, command):
    """`baton -s COMMAND` with its output as bytes (nothing translated)."""
    b.snapshot_children()
    return subprocess.run([BATON_BIN, "-s", command, "-c", b.config_path],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=scaled(30))


def printable(data, newlines=True):
    """True if data (bytes) holds only printable ASCII (and newlines)."""
    return re.search(rb"[^\x20-\x7e\n]" if newlines else rb"[^\x20-\x7e]", data) is None


def status_of(testcase, b):
    """`-s status`, checked to be printable, one line per item; parsed."""
    r = ctl_raw(b, "status")
    testcase.assertEqual(r.returncode, 0, r.stderr)
    testcase.assertTrue(printable(r.stdout), r.stdout)
    kinds = [l.split(b" ", 1)[0] for l in r.stdout.splitlines()]
    testcase.assertTrue(set(kinds) <= {b"baton", b"master", b"worker", b"server", b"listener"},
                        r.stdout)
    testcase.assertEqual((kinds.count(b"baton"), kinds.count(b"master")), (1, 1), r.stdout)
    return parse_status_text(r.stdout.decode("ascii"))


def exchange(addr, data):
    """Sends data, half-closes, reads to EOF; a reset (baton refused the
    client with bytes unread) counts as the end too."""
    s = connect(addr)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return recv_until_eof(s)
    except OSError:
        # refused with bytes unread (reset), or closed before the shutdown
        return None
    finally:
        s.close()


class LogSafetyBase(BatonTestCase):

    def baton_pids(self, b):
        pids = {b.pid}
        for m in b.find_log(r"^worker (\d+) generation \d+ starting"):
            pids.add(int(m.group(1)))
        return pids

    def check_log(self, b, connections=None):
        """Every stderr line so far: one whole log line of a baton process,
        printable ASCII only, at most LINE_MAX bytes; and, if given, exactly
        `connections` access lines.  Returns the decoded lines."""
        if connections is not None:
            # A connection's line is written when baton sees it end, which
            # need not be in the order the clients closed.
            b.wait_access(connections)
        with b.cond:
            raw = list(b.raw_lines)
        pids = self.baton_pids(b)
        bad = []
        for line in raw:
            m = LINE_RE.match(line)
            if m is None or len(line) > LINE_MAX or int(m.group(1)) not in pids:
                bad.append(line[:300])
        self.assertEqual(bad, [], "malformed, forged or unbounded log lines")
        text = [l.decode("ascii").rstrip("\n") for l in raw]
        if connections is not None:
            access = [l for l in text if " info: access client=" in l]
            self.assertEqual(len(access), connections, "access lines")
        return text

    def sync_log(self, b, addr):
        """One more connection, and its access line: every line logged for
        the connections before it (one loop thread, in order) is read then.
        Returns the number of connections it adds (1)."""
        s = connect(addr)
        port = s.getsockname()[1]
        try:
            s.sendall(b"sentinel")
            s.shutdown(socket.SHUT_WR)
            recv_until_eof(s)
        except OSError:
            pass
        finally:
            s.close()
        b.wait_access(1, pred=lambda a: a["client"] == "127.0.0.1:%d" % port)
        return 1


class PassthroughValuesTest(LogSafetyBase):

    def test_passthrough_sni_and_alpn(self):
        sink = self.sink_server()
        b = self.start_baton(self.make_config([sink], listener={"tls": "passthrough"}))
        addr = b.listener_addr("web")
        sent = []
        for v in CORPUS:
            sent.append(("sni", v, client_hello(sni=v)))
            if b"\x00" not in v:
                sent.append(("alpn", v, client_hello(sni=b"ok.test", alpn=[v, b"h2"])))
        sent.append(("sni", LONG[:65000], client_hello(sni=LONG[:65000])))
        # 64000 bytes of ALPN ids (the first is logged)
        sent.append(("alpn", LONG[:255], client_hello(alpn=[LONG[i:i + 255]
                                                            for i in range(0, 250 * 255, 255)])))
        sent.append(("alpn", b"\x00", client_hello(alpn=[b"\x00"])))
        for _, _, hello in sent:
            self.assertLessEqual(len(hello), 64 * 1024 + 64)
            reply = exchange(addr, hello)
            if reply:
                # routed: the server got the ClientHello intact
                self.assertEqual(reply, hashlib.sha256(hello).hexdigest().encode())
        lines = self.check_log(b, connections=len(sent) + self.sync_log(b, addr))
        access = [l for l in lines if " info: access client=" in l]
        fields = [dict(kv.split("=", 1) for kv in l.split(" access ", 1)[1].split(" "))
                  for l in access]
        # every ALPN the parser accepted is logged as sent (escaped, maybe cut)
        alpns = [f["alpn"] for f in fields if f["end"] != "bad_request"]
        for kind, v, _ in sent:
            if kind == "alpn" and b"\x00" not in v:
                self.assertTrue(any(shown(a, v) for a in alpns),
                                "ALPN %r not found in %r" % (v[:40], alpns))
        for f in fields:
            self.assertLessEqual(len(f["alpn"]), 256)
            self.assertLessEqual(len(f["sni"]), 256)


class TLSValuesTest(LogSafetyBase, PKITestCase):

    def tls_listener(self, **extra):
        c = self.pki.certs["www-ecdsa"]
        l = {"tls": "on", "tls_cert": c["cert"], "tls_key": c["key"], "alpn": "h2,http/1.1"}
        l.update(extra)
        return l

    def ctx(self, **kw):
        kw.setdefault("cafile", self.pki.cas["Test CA"]["cert"])
        kw.setdefault("check_hostname", False)
        return client_context(**kw)

    def round_trip(self, addr, ctx, hostname):
        raw = connect(addr)
        try:
            s = ctx.wrap_socket(raw, server_hostname=hostname)
        except BaseException:
            raw.close()
            raise
        try:
            s.sendall(b"ping")
            self.assertEqual(recv_exact(s, 4), b"ping")
            return s.selected_alpn_protocol()
        finally:
            s.close()

    def test_terminated_sni_and_alpn(self):
        echo = self.echo_server()
        b = self.start_baton(self.make_config([echo], listener=self.tls_listener()))
        addr = b.listener_addr("web")
        ascii_values = [v for v in CORPUS if b"\x00" not in v and max(v) < 0x80]
        n = 0
        for v in ascii_values:
            # Python sends bytes as they are (ASCII only); ALPN ids too
            alpn = self.round_trip(addr, self.ctx(alpn=[v.decode("ascii"), "h2"]), v)
            self.assertEqual(alpn, "h2")
            n += 1
        others = [v for v in CORPUS if b"\x00" not in v and max(v) >= 0x80]
        others.append(LONG[:255].replace(b"\x00", b"x"))
        for v in others:
            # openssl s_client sends any bytes; it closes at the end of its stdin
            subprocess.run([b"openssl", b"s_client", b"-connect", b"%s:%d" % (
                addr[0].encode(), addr[1]), b"-servername", v, b"-alpn", b"h2",
                b"-CAfile", self.pki.cas["Test CA"]["cert"].encode()],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                timeout=scaled(30))
            n += 1
        lines = self.check_log(b, connections=n + self.sync_log(b, addr))
        access = [l for l in lines if " info: access client=" in l][:-1]   # not the sentinel
        snis = [re.search(r" sni=(\S+)", l).group(1) for l in access]
        for v in ascii_values + others:
            self.assertTrue(any(shown(s, v) for s in snis), "SNI %r not in %r" % (v[:40], snis))
        for l in access:
            self.assertIn(" alpn=h2 ", l)
            self.assertIn(" end=client_close ", l)

    def hostile_client_cert(self, ca, cn, org):
        pki = self.pki
        key = pki._key("hostile", "ec")
        csr, cert = pki._path("hostile", "csr"), pki._path("hostile", "pem")
        ext = pki._path("hostile", "ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=clientAuth\n")
        run_openssl([b"req", b"-new", b"-key", key.encode(), b"-subj",
                     b"/CN=" + cn + b"/O=" + org, b"-out", csr.encode()])
        pki.serial += 1
        run_openssl(["x509", "-req", "-in", csr, "-CA", ca["cert"], "-CAkey", ca["key"],
                     "-set_serial", str(pki.serial), "-days", "30", "-sha256",
                     "-extfile", ext, "-out", cert])
        return {"cert": cert, "key": key}

    def test_client_certificate_subject(self):
        cn = b"evil\n2026-01-01T00:00:00.000Z baton[4194305] info: access\x1b[2K\x07\x7f"
        org = b"\r\x1b]0;t\x07 x=1 back\\\\slash"
        ca = self.pki.cas["Client CA"]
        hostile = self.hostile_client_cert(ca, cn, org)
        echo = self.echo_server()
        b = self.start_baton(self.make_config([echo], listener=self.tls_listener(
            tls_client_ca=ca["cert"], tls_verify_client="optional")))
        addr = b.listener_addr("web")
        self.round_trip(addr, self.ctx(cert=hostile), "www.example.test")
        self.round_trip(addr, self.ctx(cert=self.pki.certs["client1"]), "www.example.test")
        self.round_trip(addr, self.ctx(), "www.example.test")
        lines = self.check_log(b, connections=3 + self.sync_log(b, addr))
        certs = [re.search(r" client_cert=(\S+)", l).group(1)
                 for l in lines if " info: access client=" in l]
        subjects = [unescape(c) for c in certs]
        # RFC 2253 form: its special characters (";", "\\") escaped its way
        self.assertTrue(any(b"CN=" + cn in s and b"O=\r\x1b]0\\;t\x07 x=1 back\\\\slash" in s
                            for s in subjects), subjects)
        self.assertIn(b"CN=client1", subjects)
        self.assertIn("-", certs)


class ProxyHeaderValuesTest(LogSafetyBase):

    def test_proxy_header_fields_and_tlvs(self):
        sink = self.sink_server()
        b = self.start_baton(self.make_config([sink], listener={"accept_proxy": "on"}))
        addr = b.listener_addr("web")
        src, dst = ("192.0.2.1", 1234), ("192.0.2.2", 443)
        sent = []
        for v in CORPUS + [LONG[:3000]]:
            flat = v.replace(b"\r\n", b"")
            # v1: the value in an address field, and behind UNKNOWN
            sent.append(b"PROXY TCP4 " + flat + b" 192.0.2.2 1 2\r\n")
            sent.append(b"PROXY UNKNOWN " + flat + b"\r\n")
            # v2: as authority, ALPN, SSL version/cipher, and an unknown TLV
            ssl_tlv = (b"\x01" + b"\0\0\0\0" + pp2_tlv(0x21, v[:31]) + pp2_tlv(0x23, v[:63]))
            tlvs = (pp2_tlv(0x02, v[:255]) + pp2_tlv(0x01, v[:255]) + pp2_tlv(0x20, ssl_tlv) +
                    pp2_tlv(0xE0, v))
            sent.append(proxy_v2_header(src, dst, tlvs))
        sent.append(b"PROXY TCP4 " + FORGED + b"\r\n")
        sent.append(LONG[:4000])
        for hdr in sent:
            exchange(addr, hdr + b"after the header")
        self.check_log(b, connections=len(sent) + self.sync_log(b, addr))
        # the v2 headers were valid (except where a NUL is refused): their
        # client address is the one in the header
        self.assertTrue(b.access_lines(), "no access lines")
        self.assertTrue(any(a["client"] == "192.0.2.1:1234" for a in b.access_lines()))


class ProcessValuesTest(LogSafetyBase):

    def test_control_command_text(self):
        b, _ = self.proxy([self.echo_server()])
        for v in CORPUS + [LONG[:200]]:
            if b"\n" in v:
                v = v.replace(b"\n", b"")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.control_path())
            s.settimeout(scaled(20))
            try:
                s.sendall(v + b"\n")
                reply = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
            finally:
                s.close()
            # Refused as a whole line (whatever follows a NUL included).
            self.assertTrue(reply.startswith(b"ERR "), reply)
            self.assertTrue(reply.endswith(b"\n"), reply)
            self.assertIsNone(re.search(rb"[^\x20-\x7e]", reply[:-1]), reply)
            self.assertLess(len(reply), 400)
        self.assertEqual(len(status_of(self, b)["worker"]), 1)
        self.check_log(b)

    def test_configuration_path_and_environment(self):
        """The configuration's path (status, log lines) and NOTIFY_SOCKET
        (a warning) hold a forged line."""
        echo = self.echo_server()
        cfg = self.make_config([echo])
        weird_dir = os.path.join(self.tmp, "dir \x1b[2K\r\n" + FORGED.decode() + "\x7f")
        os.makedirs(weird_dir)
        weird = os.path.join(weird_dir, "baton.ini")
        with open(weird, "w") as f:
            f.write(render_config(cfg))
        b = start_baton_command(self, cfg, argv=lambda binary, path: [binary, "-c", weird],
                                extra_env={"NOTIFY_SOCKET": "x\n" + FORGED.decode() + "\x1b[2K"})
        b.wait_for_log(r"^NOTIFY_SOCKET '.*' is not a usable socket path")
        st = status_of(self, b)
        self.assertEqual(unescape(st["master"]["config"]), os.path.realpath(weird).encode())
        self.assertEqual(unescape(st["master"]["binary"]), os.path.realpath(BATON_BIN).encode())
        self.assertTrue(st["worker"] and all("\\" not in w["version"] for w in st["worker"]))
        self.check_log(b)

    def check_refused(self, b, text, expect):
        """`baton -t` on text and a reload to it: both refused, with every
        problem on a line of its own, printable; `expect` (regex) is among
        the log lines.  expect=None: the problems are in [global], so
        `baton -s` cannot tell the control socket and refuses by itself."""
        path = os.path.join(self.tmp, "bad.ini")
        with open(path, "wb") as f:
            f.write(text.encode("latin-1"))
        r = subprocess.run([BATON_BIN, "-t", "-c", path], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=scaled(20))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertTrue(printable(r.stderr), r.stderr)
        self.assertIn(b"\\x1b[2K", r.stderr)
        self.assertTrue(all(l.startswith(path.encode() + b":")
                            for l in r.stderr.splitlines()), r.stderr)
        with open(b.config_path, "wb") as f:
            f.write(text.encode("latin-1"))
        mark = b.mark()
        r = ctl_raw(b, "reload")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertTrue(printable(r.stderr), r.stderr)
        self.assertIn(b"\\x1b[2K", r.stderr)
        if expect is None:
            self.assertIn(b"cannot tell which control socket", r.stderr)
            return r.stderr
        return b.wait_for_log(r"^reload refused: " + expect, start=mark)

    def test_configuration_values_in_errors(self):
        echo = self.echo_server()
        b, _ = self.proxy([echo])
        good = render_config(self.make_config([echo]))
        self.assertTrue(good.startswith("[global]\n"))
        hostile = ["threads = 2\x1b[2K\r" + FORGED.decode(),
                   "\x1b[2Kbogus\x07 = 1",
                   "log_level = info\x7f\x1b]0;title\x07\x9b"]
        bad = good.replace("[global]\n", "[global]\n" + "\n".join(hostile) + "\n", 1)
        bad += "\n[listener \x1b[2K\r]\nbind = 127.0.0.1:0\nbackend = app\n"
        err = self.check_refused(b, bad, None)
        self.assertIn(b"\\x1b[2K\\x0d2026-01-01T00:00:00.000Z", err)
        # files that cannot be loaded (checked once the rest is valid)
        bad = good + ("\n[listener tls]\nbind = 127.0.0.1:0\nbackend = app\ntls = on\n"
                      "tls_cert = /nonexistent/\x1b[2K\rcert.pem\n"
                      "tls_key = /nonexistent/k\x9b.pem\n")
        self.check_refused(b, bad, r".*tls_cert /nonexistent/\\x1b\[2K\\x0dcert\.pem")
        self.check_log(b)


FAKE_WORKER = r'''#!/usr/bin/env python3
# Stands in for a worker: HELLO with a hostile version, then FAILED with a
# hostile reason once the test says so.
import os, struct, sys, time
fd = int(sys.argv[2])
def msg(typ, seq, payload):
    return struct.pack("!HBBHHII", 0xBA70, 1, 0, typ, 0, seq, len(payload)) + payload
def s(b):
    return struct.pack("!H", len(b)) + b
os.write(fd, msg(1, 1, struct.pack("!I", os.getpid()) + s(bytes.fromhex("%(version)s"))))
deadline = time.monotonic() + 60
while not os.path.exists("%(go)s") and time.monotonic() < deadline:
    time.sleep(0.02)
os.write(fd, msg(6, 2, s(bytes.fromhex("%(reason)s"))))
sys.exit(1)
'''


class WorkerValuesTest(LogSafetyBase):

    def test_worker_version_and_failure_reason(self):
        version = b"9\n" + FORGED[:40] + b"\x1b[2K x=1"        # < 64 bytes
        reason = (b"bad\n" + FORGED + b"\x1b[2K\r\x9b\xff" + b"\n" * 100)[:500]
        self.assertLess(len(version), 64)
        echo = self.echo_server()
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir)
        exe = os.path.join(bindir, "baton")
        install_binary(BATON_BIN, exe)
        cfg = self.make_config([echo], glob={"upgrade_timeout": "30s"})
        b = start_baton_command(self, cfg, binary=exe)
        w1, g1 = b.current_worker()
        go = os.path.join(self.tmp, "go")
        install_script(exe, FAKE_WORKER % {"version": version.hex(), "reason": reason.hex(),
                                           "go": go})
        mark = b.mark()
        reload = subprocess.Popen([BATON_BIN, "-s", "reload", "-c", b.config_path],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        try:
            fake = int(b.wait_for_log(r"^worker (\d+) generation %d starting" % (g1 + 1),
                                      start=mark).group(1))

            def fake_listed():
                st = parse_status_text(ctl_raw(b, "status").stdout.decode("latin-1"))
                ws = [w for w in st["worker"] if w.get("pid") == str(fake)]
                return ws and ws[0].get("version") not in (None, "-") and ws[0]
            wait_until(fake_listed, 20, interval=0.05, what="the fake worker's version")
            st = status_of(self, b)
            self.assertEqual(len(st["worker"]), 2, st)
            w = [w for w in st["worker"] if w.get("pid") == str(fake)][0]
            self.assertTrue(shown(w["version"], version), w)
            self.assertEqual(w["state"], "starting")
            with open(go, "w"):
                pass
            out, err = reload.communicate(timeout=scaled(30))
        finally:
            if reload.poll() is None:
                reload.kill()
                reload.wait(10)
        self.assertEqual(reload.returncode, 1, err)
        self.assertTrue(printable(err), err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn(b"\\x0a2026-01-01T00:00:00.000Z", err)
        b.wait_for_log(r"^worker %d generation %d failed to start: bad\\x0a" % (fake, g1 + 1),
                       start=mark)
        b.wait_for_log(r"^reload failed: ", start=mark)
        wait_until(lambda: not pid_alive(fake), 20, what="the fake worker to exit")
        install_binary(BATON_BIN, exe)
        self.check_log(b)


class RateLimitTest(LogSafetyBase):

    def test_refused_clients_are_rate_limited(self):
        n = 500
        sink = self.sink_server()
        b = self.start_baton(self.make_config([sink], listener={"tls": "passthrough"},
                                              glob={"threads": 2}))
        addr = b.listener_addr("web")
        mark = b.mark()
        t0 = time.monotonic()
        deadline = t0 + scaled(120)
        for _ in range(n):
            self.assertLess(time.monotonic(), deadline, "500 clients took too long")
            exchange(addr, b"GET / HTTP/1.0\r\n\r\n")
        elapsed = time.monotonic() - t0
        b.wait_access(n, start=mark)

        def accounted():
            logged = b.find_log(r"not a TLS ClientHello from ", start=mark)
            counts = [int(m.group(1)) for m in b.find_log(SUPPRESSED_RE, start=mark)]
            return (len(logged), sum(counts), counts) if len(logged) + sum(counts) >= n \
                else None
        logged, suppressed, counts = wait_until(accounted, 20, interval=0.1,
                                                what="the suppressed count to be reported")
        self.assertEqual(logged + suppressed, n, counts)
        self.assertLessEqual(logged, 10 * (int(elapsed) + 2))
        self.assertLess(logged, n // 2)
        self.assertTrue(counts)
        self.check_log(b, connections=n)


if __name__ == "__main__":
    unittest.main()
