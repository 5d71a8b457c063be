"""Server health: active checks (tcp, tls) with rise/fall, passive failure
counting from client connections with a retry after check_interval, all
servers down, and health carried over to the next generation on reload."""

import re
import shutil
import socket
import time
import unittest

from baton_harness import (BatonTestCase, PortTagServer, ProtoEchoServer, closed_port,
                           connect, pid_alive, recv_exact, recv_until_eof, scaled, server_context,
                           shared_pki, wait_closed, wait_status, wait_until)
from test_backend import read_tag


def one_tag(addr):
    s = connect(addr)
    try:
        return read_tag(s)
    finally:
        s.close()


def down_rx(server, addr, reason=".+"):
    return r"^backend app: server %s \(%s\) is DOWN: (%s)$" % (
        re.escape(server), re.escape("%s:%d" % addr), reason)


def up_rx(server, addr, reason=".+"):
    return r"^backend app: server %s \(%s\) is UP: (%s)$" % (
        re.escape(server), re.escape("%s:%d" % addr), reason)


def state_is(want):
    """Status predicate: {server name: state} for backend app."""
    def pred(st, sv):
        return all(sv.get(("app", name), {}).get("state") == state
                   for name, state in want.items())
    return pred


class HealthTest(BatonTestCase):

    def connect_failures(self, b, server, start=0):
        return len(b.find_log(r"^backend app: connect to server %s \(" % re.escape(server),
                              start))

    def test_check_tcp_down_and_up(self):
        live = self.tag_server("live")
        dead_addr = closed_port()
        b, addr = self.proxy([live, "dead %s:%d" % dead_addr], backend={
            "check": "tcp", "check_interval": "200ms", "check_rise": 2, "check_fall": 2,
            "check_timeout": "1s"})
        m = b.wait_for_log(down_rx("dead", dead_addr))
        self.assertEqual(m.group(1), "2 consecutive failures")
        self.assertEqual(b.find_log(down_rx("live", live.addr)), [])
        wait_status(b, state_is({"dead": "down", "live": "up"}), what="dead down in status")
        mark = b.mark()
        for _ in range(6):
            self.assertEqual(one_tag(addr), "live")
        accs = b.wait_access(6, start=mark)
        self.assertEqual({a["server"] for a in accs}, {"live"})
        self.assertEqual(self.connect_failures(b, "dead", mark), 0,
                         "client connections tried the down server")
        # the server comes back: rise after 2 good checks
        mark = b.mark()
        revived = self._track(PortTagServer(dead_addr, name="dead"))
        m = b.wait_for_log(up_rx("dead", dead_addr), start=mark)
        self.assertEqual(m.group(1), "2 consecutive successful checks")
        wait_status(b, state_is({"dead": "up", "live": "up"}), what="dead up in status")
        tags = [one_tag(addr) for _ in range(6)]
        self.assertIn("dead", tags, "the revived server gets no connections")
        self.assertIn("live", tags)

    def test_check_tls(self):
        pki = shared_pki() if shutil.which("openssl") else None
        if pki is None:
            self.skipTest("the openssl command-line tool is not installed")
        good = self._track(ProtoEchoServer(ctx=server_context(pki.certs["backend"]),
                                           name="good"))
        rogue = self._track(ProtoEchoServer(ctx=server_context(pki.certs["rogue"]),
                                            name="rogue"))
        notls = self.hold_server("notls")   # accepts TCP, never speaks TLS
        b, addr = self.proxy([good, rogue, notls], backend={
            "tls": "on", "tls_ca": pki.cas["Test CA"]["cert"], "tls_sni": "backend.test",
            "check": "tls", "check_interval": "200ms", "check_fall": 2,
            "check_timeout": "500ms"})
        b.wait_for_log(down_rx("rogue", rogue.addr))
        b.wait_for_log(down_rx("notls", notls.addr))
        wait_status(b, state_is({"good": "up", "rogue": "down", "notls": "down"}),
                    what="check = tls verdicts in status")
        self.assertEqual(b.find_log(down_rx("good", good.addr)), [])
        mark = b.mark()
        for i in range(4):
            s = connect(addr)
            try:
                s.sendall(b"checked %d" % i)
                self.assertEqual(recv_exact(s, 9), b"checked %d" % i)
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(recv_until_eof(s), b"")
            finally:
                s.close()
        accs = b.wait_access(4, start=mark)
        self.assertEqual({a["server"] for a in accs}, {"good"}, accs)
        self.assertEqual(self.connect_failures(b, "rogue", mark), 0)
        self.assertEqual(self.connect_failures(b, "notls", mark), 0)

    def test_passive_failures_count_failed_tls_handshakes(self):
        """A TLS server that accepts TCP but fails every handshake goes DOWN
        on client traffic alone (check = off): the TCP connect is not a
        success that resets its failures."""
        pki = shared_pki() if shutil.which("openssl") else None
        if pki is None:
            self.skipTest("the openssl command-line tool is not installed")
        good = self._track(ProtoEchoServer(ctx=server_context(pki.certs["backend"]),
                                           name="good"))
        plain = self._track(ProtoEchoServer(name="plain"))   # echoes the ClientHello back
        b, addr = self.proxy([plain, good], backend={
            "tls": "on", "tls_verify": "off", "check_fall": 2, "retries": 1,
            "check_interval": "1m"})
        for i in range(8):
            s = connect(addr)
            try:
                s.sendall(b"hs %d" % i)
                self.assertEqual(recv_exact(s, 4), b"hs %d" % i)
            finally:
                s.close()
            if b.find_log(down_rx("plain", plain.addr)):
                break
        m = b.wait_for_log(down_rx("plain", plain.addr))
        self.assertEqual(m.group(1), "2 consecutive failures")
        wait_status(b, state_is({"plain": "down", "good": "up"}), what="plain down in status")

    def test_passive_failures_and_retry(self):
        live = self.tag_server("live")
        dead_addr = closed_port()
        interval = 3.0
        b, addr = self.proxy(["dead %s:%d" % dead_addr, live], backend={
            "check_fall": 2, "check_interval": "%ds" % interval})
        t_down = None
        for i in range(12):
            self.assertEqual(one_tag(addr), "live", "connection %d" % i)
            if b.find_log(down_rx("dead", dead_addr)):
                t_down = time.monotonic()
                break
        self.assertIsNotNone(t_down, "2 failed connects did not take the server down")
        m = b.wait_for_log(down_rx("dead", dead_addr))
        self.assertEqual(m.group(1), "2 consecutive failures")
        # the failed connect is logged right after the DOWN line it caused
        b.wait_for_log(r"^backend app: connect to server dead \(", count=2)
        self.assertEqual(self.connect_failures(b, "dead"), 2)
        _, sv = wait_status(b, state_is({"dead": "down", "live": "up"}),
                            what="dead down in status")
        self.assertEqual(sv[("app", "dead")]["failures"], "2")
        # while down (within check_interval), client connections skip it
        mark = b.mark()
        for _ in range(4):
            self.assertEqual(one_tag(addr), "live")
        if time.monotonic() - t_down < interval - 0.5:
            self.assertEqual(self.connect_failures(b, "dead", mark), 0,
                             "the down server was tried before check_interval")
        # after check_interval a client connection tries it again
        mark = b.mark()
        self._track(PortTagServer(dead_addr, name="dead"))
        wait_until(lambda: one_tag(addr) == "dead", interval + 15, interval=0.1,
                   what="a client connection to reach the revived server")
        t_up = time.monotonic()
        self.assertGreater(t_up - t_down, interval - 1.0,
                           "the down server was retried before check_interval")
        m = b.wait_for_log(up_rx("dead", dead_addr), start=mark)
        self.assertEqual(m.group(1), "a connection succeeded")
        wait_status(b, state_is({"dead": "up", "live": "up"}), what="dead up in status")

    def test_all_servers_down(self):
        d1, d2 = closed_port(), closed_port()
        b, addr = self.proxy(["d1 %s:%d" % d1, "d2 %s:%d" % d2], backend={
            "check": "tcp", "check_interval": "200ms", "check_fall": 1})
        b.wait_for_log(down_rx("d1", d1))
        b.wait_for_log(down_rx("d2", d2))
        wait_status(b, state_is({"d1": "down", "d2": "down"}), what="both down in status")
        mark = b.mark()
        s = connect(addr)
        try:
            port = s.getsockname()[1]
            t = wait_closed(s, scaled(5))
        finally:
            s.close()
        self.assertIsNotNone(t, "client not closed with all servers down")
        self.assertLess(t, scaled(2.0), "client closed only after %.2fs" % t)
        b.wait_for_log(r"^listener web: .*\(all servers are down\).* 127\.0\.0\.1:%d$" % port,
                       start=mark)
        acc = b.wait_access(1, start=mark, pred=lambda a: a["client"].endswith(":%d" % port))[0]
        self.assertEqual((acc["end"], acc["server"]), ("connect_failed", "-"), acc)
        self.assertEqual(self.connect_failures(b, "d1", mark) + self.connect_failures(b, "d2", mark),
                         0, "down servers were tried")

    def reload_and_check_carried(self, b, cfg, addr, dead_addr, passive):
        # the master knows what the worker last reported: wait for status
        wait_status(b, state_is({"dead": "down", "live": "up"}), what="dead down in status")
        w1, g1 = b.current_worker()
        mark = b.mark()
        r = b.ctl("reload", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        b.wait_for_log(r"^worker \d+ generation %d ready" % (g1 + 1), start=mark)
        m = b.wait_for_log(down_rx("dead", dead_addr), start=mark)
        self.assertEqual(m.group(1), "as the previous generation found it")
        wait_until(lambda: not pid_alive(w1), 20, interval=0.05,
                   what="old worker %d to exit" % w1)
        wait_status(b, state_is({"dead": "down", "live": "up"}),
                    what="dead down in the new generation's status")
        self.assertEqual(len(b.find_log(down_rx("dead", dead_addr), mark)), 1,
                         "the new generation took the server down again by itself")
        self.assertEqual(b.find_log(r"^backend app: server live \(.* is DOWN", mark), [])
        for _ in range(4):
            self.assertEqual(one_tag(addr), "live")
        if passive:
            self.assertEqual(self.connect_failures(b, "dead", mark), 0,
                             "the new generation tried the down server")

    def test_health_carries_over_reload_active(self):
        live = self.tag_server("live")
        dead_addr = closed_port()
        cfg = self.make_config([live, "dead %s:%d" % dead_addr], backend={
            "check": "tcp", "check_interval": "200ms", "check_fall": 2})
        b = self.start_baton(cfg)
        addr = b.listener_addr("web")
        b.wait_for_log(down_rx("dead", dead_addr))
        self.reload_and_check_carried(b, cfg, addr, dead_addr, passive=False)

    def test_health_carries_over_reload_passive(self):
        live = self.tag_server("live")
        dead_addr = closed_port()
        cfg = self.make_config(["dead %s:%d" % dead_addr, live], backend={
            "check_fall": 1, "check_interval": "60s"})
        b = self.start_baton(cfg)
        addr = b.listener_addr("web")
        for i in range(4):
            self.assertEqual(one_tag(addr), "live")
            if b.find_log(down_rx("dead", dead_addr)):
                break
        b.wait_for_log(down_rx("dead", dead_addr))
        self.reload_and_check_carried(b, cfg, addr, dead_addr, passive=True)


if __name__ == "__main__":
    unittest.main()
