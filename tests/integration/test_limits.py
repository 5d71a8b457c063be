"""idle_timeout, per-listener and global max_connections."""

import selectors
import socket
import time
import unittest

from baton_harness import (BatonTestCase, connect, readable_within, recv_exact,
                           scaled, wait_closed)


def echo_ok(s, msg, timeout=15):
    s.sendall(msg)
    return recv_exact(s, len(msg), timeout) == msg


class IdleTimeoutTest(BatonTestCase):

    def test_idle_closed_active_survives(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo], listener={"idle_timeout": "1s"})
        idle = connect(addr)
        active = connect(addr)
        try:
            self.assertTrue(echo_ok(idle, b"i"))
            idle_since = time.monotonic()
            self.assertTrue(echo_ok(active, b"a"))
            idle.setblocking(False)
            idle_closed_at = None
            start = time.monotonic()
            n = 0
            # Keep `active` busy every 200 ms for 2.6 s while watching `idle`.
            while time.monotonic() - start < 2.6:
                msg = b"tick %d" % n
                n += 1
                self.assertTrue(echo_ok(active, msg),
                                "active connection broken after %.1fs" %
                                (time.monotonic() - start))
                if idle_closed_at is None and readable_within(idle, 0.2):
                    try:
                        data = idle.recv(100)
                    except (ConnectionResetError, BlockingIOError):
                        data = b""
                    self.assertEqual(data, b"", "unexpected data on idle connection")
                    idle_closed_at = time.monotonic()
                elif idle_closed_at is not None:
                    time.sleep(0.2)
            if idle_closed_at is None:
                idle.setblocking(True)
                t = wait_closed(idle, scaled(5.0))
                self.assertIsNotNone(t, "idle connection still open %.1fs after its "
                                     "last byte (idle_timeout = 1s)" %
                                     (time.monotonic() - idle_since))
                idle_closed_at = time.monotonic()
            waited = idle_closed_at - idle_since
            self.assertGreaterEqual(waited, 0.8, "closed too early (%.2fs)" % waited)
            self.assertLess(waited, scaled(5.0), "closed too late (%.2fs)" % waited)
            # active one is still fine after > 2 s
            self.assertTrue(echo_ok(active, b"still here"))
        finally:
            idle.close()
            active.close()
        acc = b.wait_access(2)
        ends = sorted(a["end"] for a in acc)
        self.assertIn("idle_timeout", ends)
        self.assertEqual(ends.count("idle_timeout"), 1, ends)

    def test_idle_timeout_zero_means_none(self):
        """idle_timeout = 0 disables it (no close after 1.5 s of silence)."""
        echo = self.echo_server()
        b, addr = self.proxy([echo], listener={"idle_timeout": "0"})
        s = connect(addr)
        try:
            self.assertTrue(echo_ok(s, b"x"))
            self.assertFalse(readable_within(s, 1.5), "connection closed")
            self.assertTrue(echo_ok(s, b"y"))
        finally:
            s.close()


class MaxConnectionsTest(BatonTestCase):

    def check_queued_then_served(self, b, first, queued, echo, limit):
        """`first` hold the `limit` slots; each of `queued` has sent a byte and
        must get no service until a slot frees."""
        for s in queued:
            self.assertFalse(readable_within(s, 1.5),
                             "connection beyond the limit got data or was closed")
        self.assertEqual(echo.count(), limit,
                         "backend saw %d connections with limit %d" %
                         (echo.count(), limit))

    def test_listener_max_connections(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo], listener={"max_connections": 2})
        c1, c2 = connect(addr), connect(addr)
        c3 = None
        try:
            self.assertTrue(echo_ok(c1, b"one"))
            self.assertTrue(echo_ok(c2, b"two"))
            c3 = connect(addr)    # completes via the kernel backlog
            c3.sendall(b"three")
            self.check_queued_then_served(b, [c1, c2], [c3], echo, 2)
            # the two served ones keep working
            self.assertTrue(echo_ok(c2, b"two again"))
            c1.close()
            self.assertEqual(recv_exact(c3, 5, 15), b"three",
                             "third connection not served after one closed")
            self.assertTrue(echo_ok(c3, b"more"))
            self.assertEqual(echo.count(), 3)
        finally:
            for s in (c1, c2, c3):
                if s is not None:
                    s.close()
        acc = b.wait_access(3)
        self.assertEqual(len(acc), 3)

    def test_global_max_connections(self):
        echo = self.echo_server()
        cfg = self.make_config([echo], glob={"max_connections": 2})
        cfg["listener web2"] = {"bind": "127.0.0.1:0", "backend": "app"}
        b = self.start_baton(cfg)
        a1 = b.listener_addr("web")
        a2 = b.listener_addr("web2")
        socks = []
        try:
            c1 = connect(a1)
            socks.append(c1)
            self.assertTrue(echo_ok(c1, b"one"))
            c2 = connect(a2)
            socks.append(c2)
            self.assertTrue(echo_ok(c2, b"two"))
            c3 = connect(a1)
            socks.append(c3)
            c3.sendall(b"333")
            c4 = connect(a2)
            socks.append(c4)
            c4.sendall(b"444")
            self.check_queued_then_served(b, [c1, c2], [c3, c4], echo, 2)
            c1.close()
            # exactly one of c3/c4 gets the freed slot
            sel = selectors.DefaultSelector()
            sel.register(c3, selectors.EVENT_READ, b"333")
            sel.register(c4, selectors.EVENT_READ, b"444")
            ready = sel.select(scaled(15))
            sel.close()
            self.assertTrue(ready, "no queued connection served after a slot freed")
            first = ready[0][0].fileobj
            second = c4 if first is c3 else c3
            want = b"333" if first is c3 else b"444"
            self.assertEqual(recv_exact(first, 3), want)
            self.assertFalse(readable_within(second, 1.5),
                             "both queued connections served with max_connections=2")
            self.assertEqual(echo.count(), 3)
            c2.close()
            want2 = b"444" if first is c3 else b"333"
            self.assertEqual(recv_exact(second, 3, 15), want2)
            self.assertEqual(echo.count(), 4)
        finally:
            for s in socks:
                s.close()
        b.wait_access(4)

    def test_listener_limit_is_per_listener(self):
        """A listener's max_connections does not block another listener."""
        echo = self.echo_server()
        cfg = self.make_config([echo], listener={"max_connections": 1})
        cfg["listener other"] = {"bind": "127.0.0.1:0", "backend": "app"}
        b = self.start_baton(cfg)
        a1 = b.listener_addr("web")
        a2 = b.listener_addr("other")
        socks = []
        try:
            c1 = connect(a1)
            socks.append(c1)
            self.assertTrue(echo_ok(c1, b"1"))
            c2 = connect(a1)
            socks.append(c2)
            c2.sendall(b"2")
            self.assertFalse(readable_within(c2, 1.5), "limit 1 not enforced")
            for i in range(3):
                c = connect(a2)
                socks.append(c)
                self.assertTrue(echo_ok(c, b"other %d" % i))
            c1.close()
            self.assertEqual(recv_exact(c2, 1, 15), b"2")
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    unittest.main()
