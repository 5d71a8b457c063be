"""baton.exe under Wine: reloads.  Under load with zero failed connections;
with connections waiting in the listeners' backlog while the old worker
does not accept (none lost); with handoff = live, established TCP and TLS
connections moving to the new worker, bytes intact across the reload."""

import os
import signal
import unittest

from baton_harness import (BatonTestCase, ClientLoop, WINDOWS, WinPKITestCase,
                           client_context, connect, pseudo_random,
                           recv_exact, reload_ok, tls_connect, wait_status, wine_cmdline,
                           wine_processes, win_tls_listener)


def echo_ok(s, msg):
    s.sendall(msg)
    got = recv_exact(s, len(msg))
    if got != msg:
        raise AssertionError("echo: %d bytes differ" % len(msg))


def one_echo(addr):
    def one(n):
        s = connect(addr)
        try:
            echo_ok(s, pseudo_random(4096 + n % 512, b"load-%d" % n))
        finally:
            s.close()
    return one


def wine_worker_pids(b):
    """Linux PIDs of the wine processes that are b's workers."""
    return {p for p in wine_processes(b.marker) - {b.proc.pid} if "--worker" in wine_cmdline(p)}


def live_generation(b, gen, conns):
    """Waits until `-s status` lists generation gen alone, serving conns."""
    def ok(st, sv):
        ws = st["worker"]
        return (len(ws) == 1 and int(ws[0]["generation"]) == gen and
                int(ws[0]["connections"]) == conns)
    return wait_status(b, ok, what="generation %d alone with %d connection(s)" % (gen, conns))


@unittest.skipUnless(WINDOWS, "Windows mode only (BATON_WINDOWS_EXE)")
class WinReloadTest(BatonTestCase):

    def test_reload_under_load(self):
        b, addr = self.proxy([self.echo_server()])
        loop = ClientLoop(one_echo(addr), limit=60)
        try:
            for want in (2, 3):
                self.assertEqual(reload_ok(self, b)[0], want)
        finally:
            ok, failures = loop.stop()
        self.assertEqual(failures, [])
        self.assertGreater(ok, 0)

    def test_backlog_kept_at_reload(self):
        b, addr = self.proxy([self.echo_server()])
        frozen = wine_worker_pids(b)
        self.assertTrue(frozen, "no worker process found for %s" % b.marker)
        for p in frozen:
            os.kill(p, signal.SIGSTOP)
            self.addCleanup(os.kill, p, signal.SIGCONT)
        # The worker accepts nothing now: these wait in the backlog.
        clients = [connect(addr) for _ in range(8)]
        for c in clients:
            self.addCleanup(c.close)
        for i, c in enumerate(clients):
            c.sendall(b"queued-%d\n" % i)
        self.assertEqual(reload_ok(self, b)[0], 2)
        for i, c in enumerate(clients):
            self.assertEqual(recv_exact(c, len(b"queued-%d\n" % i)), b"queued-%d\n" % i)
            echo_ok(c, b"after-%d" % i)
        for p in frozen:
            os.kill(p, signal.SIGCONT)


@unittest.skipUnless(WINDOWS, "Windows mode only (BATON_WINDOWS_EXE)")
class WinLiveHandoffTest(WinPKITestCase):

    def moved(self, listener, open_conn):
        b, addr = self.proxy([self.echo_server()], listener=listener,
                             glob={"handoff": "live"})
        s = open_conn(addr)
        self.addCleanup(s.close)
        before = pseudo_random(50000, b"before")
        echo_ok(s, before)
        live_generation(b, 1, 1)
        self.assertEqual(reload_ok(self, b)[0], 2)
        b.wait_for_log(r"^worker generation 1: handoff: 1 connection\(s\) moved to "
                       r"generation 2, 0 left to drain")
        # the same connection, served by generation 2 alone
        live_generation(b, 2, 1)
        echo_ok(s, pseudo_random(50000, b"after"))

    def test_tcp_moves(self):
        self.moved({}, connect)

    def test_tls_moves(self):
        ctx = client_context(self.ca)
        self.moved(win_tls_listener(self.pki, ["alpha"]),
                   lambda addr: tls_connect(addr, ctx, server_hostname="alpha.win.test"))


if __name__ == "__main__":
    unittest.main()
