"""Backend selection: balancing algorithms, retries on connect failure,
all servers down."""

import collections
import socket
import time
import unittest

from baton_harness import (BatonTestCase, closed_port, connect, format_addr,
                           recv_exact, recv_until_eof, scaled, wait_closed)


def read_tag(s):
    """Reads the 'NAME\\n' a TagServer sends first."""
    buf = b""
    deadline = time.monotonic() + scaled(15)
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no tag received (got %r)" % buf)
        s.settimeout(left)
        try:
            c = s.recv(64)
        except socket.timeout:
            raise AssertionError("no tag received (got %r)" % buf)
        if not c:
            raise AssertionError("EOF before tag (got %r)" % buf)
        buf += c
    return buf[:-1].decode()


def loopback_alias_ok():
    s = socket.socket()
    try:
        s.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


class BackendTest(BatonTestCase):

    def one_tag(self, addr, source=None):
        s = connect(addr, source=source)
        try:
            return read_tag(s)
        finally:
            s.close()

    def test_roundrobin_weights(self):
        a = self.tag_server("a")
        b_ = self.tag_server("b")
        b, addr = self.proxy([a.server_line(1), b_.server_line(3)],
                             backend={"balance": "roundrobin"})
        seen = collections.Counter(self.one_tag(addr) for _ in range(40))
        self.assertEqual(dict(seen), {"a": 10, "b": 30})
        a.wait_conns(10)
        b_.wait_conns(30)
        self.assertEqual((a.count(), b_.count()), (10, 30))
        acc = b.wait_access(40)
        self.assertEqual(collections.Counter(x["server"] for x in acc),
                         collections.Counter({"a": 10, "b": 30}))

    def test_roundrobin_equal_alternates(self):
        servers = [self.tag_server(n) for n in ("a", "b", "c")]
        b, addr = self.proxy(servers, backend={"balance": "roundrobin"})
        tags = [self.one_tag(addr) for _ in range(9)]
        self.assertEqual(collections.Counter(tags), {"a": 3, "b": 3, "c": 3})
        # consecutive picks differ (a true rotation)
        for x, y in zip(tags, tags[1:]):
            self.assertNotEqual(x, y, tags)

    def test_connect_failure_tries_next(self):
        dead = closed_port()
        live = self.echo_server(name="live")
        b, addr = self.proxy(["dead %s" % format_addr(dead), live.server_line()],
                             backend={"balance": "roundrobin", "retries": 2,
                                      "connect_timeout": "3s"})
        for i in range(6):
            s = connect(addr)
            try:
                msg = b"message %d" % i
                s.sendall(msg)
                self.assertEqual(recv_exact(s, len(msg)), msg)
            finally:
                s.close()
        self.assertEqual(live.count(), 6)
        acc = b.wait_access(6)
        for a in acc:
            self.assertEqual(a["server"], "live", a)
            self.assertNotEqual(a["end"], "connect_failed", a)

    def test_connect_failure_second_of_three(self):
        """Order independent: with two of three servers down every
        connection still ends up at the live one (retries = 2)."""
        d1, d2 = closed_port(), closed_port()
        live = self.tag_server("live")
        b, addr = self.proxy(["d1 %s" % format_addr(d1), live.server_line(),
                              "d2 %s" % format_addr(d2)],
                             backend={"balance": "roundrobin", "retries": 2})
        for _ in range(6):
            self.assertEqual(self.one_tag(addr), "live")

    def test_all_servers_down(self):
        d1, d2 = closed_port(), closed_port()
        b, addr = self.proxy(["d1 %s" % format_addr(d1), "d2 %s" % format_addr(d2)],
                             backend={"retries": 2, "connect_timeout": "3s"})
        s = connect(addr)
        try:
            try:
                s.sendall(b"anyone there?")
            except OSError:
                pass
            t = wait_closed(s, scaled(2.0))
        finally:
            s.close()
        self.assertIsNotNone(t, "client connection not closed within 2 s")
        acc = b.wait_access(1)[0]
        self.assertEqual(acc["end"], "connect_failed")
        self.assertEqual(acc["server"], "-")
        self.assertEqual(acc["backend"], "app")
        self.assertEqual(int(acc["bytes_out"]), 0)
        # the proxy keeps working afterwards
        s = connect(addr)
        try:
            self.assertIsNotNone(wait_closed(s, scaled(2.0)))
        finally:
            s.close()
        b.wait_access(2)

    def test_leastconn_prefers_idle(self):
        x = self.tag_server("x")
        y = self.tag_server("y")
        b, addr = self.proxy([x, y], backend={"balance": "leastconn"})
        held = connect(addr)
        try:
            busy = read_tag(held)
            other = "y" if busy == "x" else "x"
            for i in range(6):
                self.assertEqual(self.one_tag(addr), other,
                                 "connection %d went to the busy server" % i)
                # wait until baton finished that connection (access line)
                b.wait_access(i + 1)
            # a second held connection also goes to the idle one
            held2 = connect(addr)
            try:
                self.assertEqual(read_tag(held2), other)
            finally:
                held2.close()
        finally:
            held.close()

    def test_source_sticky(self):
        if not loopback_alias_ok():
            self.skipTest("cannot bind 127.0.0.x source addresses")
        servers = [self.tag_server(n) for n in ("a", "b", "c")]
        b, addr = self.proxy(servers, backend={"balance": "source"})
        picks = {}
        for i in range(16):
            src = "127.0.0.%d" % (10 + i)
            tags = {self.one_tag(addr, source=src) for _ in range(3)}
            self.assertEqual(len(tags), 1, "source %s went to %s" % (src, tags))
            picks[src] = tags.pop()
        # again, in another order: same mapping
        for src in sorted(picks, reverse=True):
            self.assertEqual(self.one_tag(addr, source=src), picks[src], src)
        self.assertGreater(len(set(picks.values())), 1,
                           "all 16 source addresses hashed to one server: %s" % picks)

    def test_random_uses_all(self):
        servers = [self.tag_server(n) for n in ("a", "b")]
        b, addr = self.proxy(servers, backend={"balance": "random"})
        tags = collections.Counter(self.one_tag(addr) for _ in range(60))
        self.assertEqual(set(tags), {"a", "b"}, tags)


if __name__ == "__main__":
    unittest.main()
