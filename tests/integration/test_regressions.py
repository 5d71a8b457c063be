"""Regression tests for bugs found in review (each once reproduced by a
stand-alone script):

  * early client bytes (read together with a PROXY header while the server
    connect is in progress) overtaken by later bytes once the connect
    completes;
  * a reload during which the old worker crashes: the crash replacement
    (old configuration) must be retired, the master must keep running;
  * application data a TLS 1.2 server sends in the same segment as its
    Finished must be relayed at once, not when more bytes arrive;
  * bytes sent together with a PROXY header must reach a TLS server.
"""

import os
import shutil
import signal
import socket
import ssl
import struct
import tempfile
import unittest

from baton_harness import (BatonTestCase, ProtoEchoServer, Server, TestPKI,
                           connect, parse_status_text, pid_alive, proc_state, proxy_v1_header,
                           read_proxy_header, recv_exact, scaled, server_context,
                           status_text, wait_until)

EARLY_SRC, EARLY_DST = ("1.2.3.4", 1111), ("5.6.7.8", 2222)

TCP_ESTABLISHED, TCP_SYN_SENT = "01", "02"


def children_of(pid):
    """Direct children of pid (Linux /proc/PID/task/PID/children)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _hex_addr(text):
    h, p = text.split(":")
    return (socket.inet_ntoa(struct.pack("<I", int(h, 16))), int(p, 16))


def tcp4_sockets():
    """[(local, remote, state, tx_queue, rx_queue)] from /proc/net/tcp."""
    out = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if len(cols) < 5:
                continue
            tx, rx = cols[4].split(":")
            out.append((_hex_addr(cols[1]), _hex_addr(cols[2]), cols[3],
                        int(tx, 16), int(rx, 16)))
    return out


def rx_queue(local, remote):
    """Unread bytes in the receive queue of the TCP socket local<->remote,
    or None if there is no such (established) socket."""
    for l, r, st, _tx, rx in tcp4_sockets():
        if l == tuple(local) and r == tuple(remote) and st == TCP_ESTABLISHED:
            return rx
    return None


def stop_process(testcase, pid):
    """SIGSTOPs pid; a cleanup continues it again should the test fail."""
    def cont():
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass
    testcase.addCleanup(cont)
    os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: proc_state(pid) in ("T", "t", None), 5,
               what="pid %d to stop" % pid)


class TLS12GreetServer(Server):
    """A TLS 1.2 server that speaks first: its handshake runs over memory
    BIOs so that the last handshake flight (..., Finished) and the greeting
    record leave in ONE send.  Then holds the connection until EOF."""

    GREETING = b"220 greeting\r\n"

    def __init__(self, ctx, **kw):
        self.ctx = ctx
        super().__init__(**kw)

    def handle(self, conn, info):
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self.ctx.wrap_bio(inc, out, server_side=True)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                data = out.read()
                if data:
                    conn.sendall(data)
                data = conn.recv(65536)
                if not data:
                    info["error"] = "EOF during handshake"
                    return
                inc.write(data)
        info["version"] = obj.version()
        obj.write(self.GREETING)
        conn.sendall(out.read())        # Finished + greeting together
        info["greeted"] = True
        while conn.recv(65536):
            pass


class RegressionTest(BatonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki_dir = None
        if not shutil.which("openssl"):
            cls.pki = None
            return
        cls.pki_dir = tempfile.mkdtemp(prefix="baton-reg-pki-")
        cls.pki = TestPKI(cls.pki_dir)
        ca = cls.pki.ca("Reg CA")
        cls.pki.leaf("backend", ["backend.test"], ca)

    @classmethod
    def tearDownClass(cls):
        if cls.pki_dir:
            shutil.rmtree(cls.pki_dir, ignore_errors=True)
        super().tearDownClass()

    def need_pki(self):
        if self.pki is None:
            self.skipTest("the openssl command-line tool is not installed")
        return self.pki.certs["backend"]

    # ------------------------------------------------------------------
    # 1. early bytes keep their order

    def early_bytes_order(self, send_proxy):
        # A server whose accept queue is full: baton's SYN is dropped, its
        # connect stays in progress until the queue is drained (the SYN is
        # retransmitted about a second later).
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(ls.close)
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)                    # room for exactly one queued connection
        baddr = ls.getsockname()
        filler = socket.create_connection(baddr, timeout=scaled(5))
        self.addCleanup(filler.close)

        backend = {"connect_timeout": "20s"}
        if send_proxy:
            backend["send_proxy"] = send_proxy
        b, addr = self.proxy(["s1 127.0.0.1:%d" % baddr[1]],
                             listener={"accept_proxy": "on", "tls": "off"},
                             backend=backend)
        worker, _gen = b.current_worker()

        c = connect(addr, timeout=10)
        self.addCleanup(c.close)
        cli = c.getsockname()[:2]
        c.sendall(proxy_v1_header(EARLY_SRC, EARLY_DST) + b"AAAA")

        # baton parsed the header, holds AAAA and is connecting
        def connecting():
            syn = [s for s in tcp4_sockets()
                   if s[1] == tuple(baddr) and s[2] == TCP_SYN_SENT]
            return bool(syn) and rx_queue(addr, cli) == 0
        wait_until(connecting, 10, what="baton to read the header + AAAA and connect")

        stop_process(self, worker)

        # drain the queue; baton's retransmitted SYN completes the connect
        # (in the kernel: the worker is stopped)
        ls.settimeout(scaled(10))
        f_conn, f_peer = ls.accept()
        self.addCleanup(f_conn.close)
        self.assertEqual(f_peer[1], filler.getsockname()[1])
        up, _peer = ls.accept()
        self.addCleanup(up.close)

        c.sendall(b"BBBB")
        wait_until(lambda: rx_queue(addr, cli) == 4, 5,
                   what="BBBB queued at baton's client socket")
        os.kill(worker, signal.SIGCONT)

        if send_proxy:
            _raw, hdr = read_proxy_header(up, timeout=10)
            self.assertEqual((hdr["src"], hdr["dst"]), (EARLY_SRC, EARLY_DST))
        got = recv_exact(up, 8, timeout=10)
        self.assertEqual(got, b"AAAABBBB")
        # and nothing else follows
        up.settimeout(0.2)
        try:
            extra = up.recv(100)
        except socket.timeout:
            extra = None
        self.assertIsNone(extra, "unexpected bytes after AAAABBBB: %r" % extra)

    def test_early_bytes_keep_order(self):
        self.early_bytes_order(None)

    def test_early_bytes_keep_order_send_proxy_v1(self):
        self.early_bytes_order("v1")

    # ------------------------------------------------------------------
    # 2. reload while the old worker crashes

    def test_reload_during_worker_crash_leaves_one_generation(self):
        # A worker opens the access log while it sets up, before it reports
        # ready.  With the access log on a FIFO, a worker started while no
        # one has the FIFO open for reading blocks there: it stays
        # "starting" for as long as the test wants, with no race.
        fifo = os.path.join(self.tmp, "access.fifo")
        os.mkfifo(fifo)
        reader = [os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)]

        def close_reader():
            if reader[0] is not None:
                os.close(reader[0])
                reader[0] = None
        self.addCleanup(close_reader)       # runs after baton is stopped
        echo = self.echo_server()
        b, addr = self.proxy([echo], glob={"access_log": fifo})
        w1, _g1 = b.current_worker()
        wait_until(lambda: children_of(b.pid) == [w1], 10, what="one worker")

        close_reader()
        mark = b.mark()
        b.send_signal(signal.SIGHUP)
        gen = int(b.wait_for_log(r"^reload: configuration .* accepted, starting "
                                 r"generation (\d+)", start=mark).group(1))
        w2 = wait_until(lambda: ([p for p in children_of(b.pid) if p != w1] or [None])[0],
                        10, interval=0, what="the reload's worker")
        stop_process(self, w2)

        # the old worker crashes while the reload is in progress
        os.kill(w1, signal.SIGKILL)
        # polled without pause: the stop usually lands between fork and exec,
        # while the child still has the master's signal handlers (a SIGTERM
        # that the master sends it then must not reach the master's loop)
        w3 = wait_until(lambda: ([p for p in children_of(b.pid) if p not in (w1, w2)]
                                 or [None])[0],
                        10, interval=0, what="the crash replacement worker")
        stop_process(self, w3)
        st = parse_status_text(status_text(b))
        self.assertEqual(sorted((w["pid"], w["state"]) for w in st["worker"]),
                         sorted([(str(w2), "starting"), (str(w3), "starting")]))

        reader[0] = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        os.kill(w2, signal.SIGCONT)
        b.wait_for_log(r"^reload complete: generation %d \(worker %d\) is active"
                       % (gen, w2), start=mark)
        os.kill(w3, signal.SIGCONT)

        # settled: the replacement either went away or (the old bug) became
        # an active worker of its own
        def master_stopped():
            stops = b.find_log(r"^master: (fast|graceful) stop", start=mark)
            if stops or b.proc.poll() is not None:
                raise AssertionError("the master stopped (%r, exit status %r)"
                                     % ([m.group(0) for m in stops], b.proc.poll()))

        def settled():
            master_stopped()
            try:
                st = parse_status_text(status_text(b))
            except AssertionError:
                master_stopped()
                raise
            ws = {int(w["pid"]): w for w in st["worker"]}
            if w3 in ws and ws[w3].get("state") == "active":
                return st
            if not pid_alive(w3) and w3 not in ws:
                return st
            return None
        st = wait_until(settled, 10, interval=0.1, what="the replacement to be settled")
        self.assertEqual([(w["pid"], w["state"], w["generation"]) for w in st["worker"]],
                         [(str(w2), "active", str(gen))])
        self.assertFalse(pid_alive(w3), "replacement worker %d still running" % w3)
        self.assertFalse(pid_alive(w1))

        # the master keeps running: it answers and serves
        self.assertIsNone(b.proc.poll(), "master exited")
        self.assertEqual(b.find_log(r"^master: (fast|graceful) stop|^master exiting",
                                    start=mark), [])
        st = parse_status_text(status_text(b))
        self.assertEqual(st["master"].get("pid"), str(b.pid))
        self.assertEqual(children_of(b.pid), [w2])
        s = connect(addr, timeout=10)
        try:
            s.sendall(b"still serving")
            self.assertEqual(recv_exact(s, 13, timeout=10), b"still serving")
        finally:
            s.close()
        self.assertIsNone(b.proc.poll(), "master exited")

    # ------------------------------------------------------------------
    # 3. TLS 1.2 server that speaks first

    def test_upstream_tls12_server_speaks_first(self):
        cert = self.need_pki()
        ctx = server_context(cert)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        srv = self._track(TLS12GreetServer(ctx, name="greeter"))
        b, addr = self.proxy([srv], listener={"tls": "off"},
                             backend={"tls": "on", "tls_verify": "off"})
        c = connect(addr, timeout=10)
        self.addCleanup(c.close)
        srv.wait(lambda s: s.conns and (s.conns[0].get("greeted") or s.conns[0]["done"]),
                 10, "the server's greeting")
        with srv.lock:
            info = dict(srv.conns[0])
        self.assertTrue(info.get("greeted"), info.get("error"))
        self.assertEqual(info.get("version"), "TLSv1.2")
        got = recv_exact(c, len(TLS12GreetServer.GREETING), timeout=3)
        self.assertEqual(got, TLS12GreetServer.GREETING)

    # ------------------------------------------------------------------
    # 4. bytes sent with the PROXY header reach a TLS server

    def test_early_bytes_reach_tls_backend(self):
        cert = self.need_pki()
        srv = self._track(ProtoEchoServer(ctx=server_context(cert), name="tlsecho"))
        b, addr = self.proxy([srv], listener={"accept_proxy": "on", "tls": "off"},
                             backend={"tls": "on", "tls_verify": "off"})
        c = connect(addr, timeout=10)
        self.addCleanup(c.close)
        c.sendall(proxy_v1_header(EARLY_SRC, EARLY_DST) + b"hello-early")
        self.assertEqual(recv_exact(c, 11, timeout=5), b"hello-early")
        c.sendall(b"later")
        self.assertEqual(recv_exact(c, 5, timeout=5), b"later")


if __name__ == "__main__":
    unittest.main()
