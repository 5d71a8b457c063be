"""Bytes relayed intact in both directions, various sizes, IPv4 and IPv6."""

import hashlib
import socket
import unittest

from baton_harness import (BatonTestCase, connect, echo_duplex, has_ipv6_loopback,
                           pseudo_random, recv_exact, recv_until_eof, send_and_half_close, sha256_hex)

SIZES = [("1B", 1), ("64KiB", 64 << 10), ("64MiB", 64 << 20)]


class TransferTest(BatonTestCase):

    def client_to_server(self, size, seed):
        sink = self.sink_server()
        b, addr = self.proxy([sink])
        data = pseudo_random(size, seed)
        s = connect(addr, timeout=60)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            reply = recv_until_eof(s, timeout=60)
        finally:
            s.close()
        self.assertEqual(reply.decode("ascii", "replace"), sha256_hex(data),
                         "digest of %d bytes as received by the server" % size)
        sink.wait_done(1)
        with sink.lock:
            self.assertEqual(sink.conns[0]["received_bytes"], size)
        acc = b.wait_access(1)[0]
        self.assertEqual(int(acc["bytes_in"]), size)
        self.assertEqual(int(acc["bytes_out"]), 64)
        self.assertEqual(acc["listener"], "web")
        self.assertEqual(acc["backend"], "app")
        self.assertEqual(acc["server"], sink.name)

    def server_to_client(self, size, seed):
        src = self.source_server(size, seed=seed)
        b, addr = self.proxy([src])
        s = connect(addr, timeout=60)
        try:
            n, digest = recv_until_eof(s, timeout=60, hash_only=True)
        finally:
            s.close()
        self.assertEqual(n, size, "bytes received by the client")
        self.assertEqual(digest, sha256_hex(src.data))
        acc = b.wait_access(1)[0]
        self.assertEqual(int(acc["bytes_out"]), size)
        self.assertEqual(int(acc["bytes_in"]), 0)

    def test_client_to_server_1B(self):
        self.client_to_server(1, b"c2s-1")

    def test_client_to_server_64KiB(self):
        self.client_to_server(64 << 10, b"c2s-64k")

    def test_client_to_server_64MiB(self):
        self.client_to_server(64 << 20, b"c2s-64m")

    def test_server_to_client_1B(self):
        self.server_to_client(1, b"s2c-1")

    def test_server_to_client_64KiB(self):
        self.server_to_client(64 << 10, b"s2c-64k")

    def test_server_to_client_64MiB(self):
        self.server_to_client(64 << 20, b"s2c-64m")

    def test_echo_round_trips(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo])
        s = connect(addr)
        total = 0
        try:
            stream = pseudo_random(1 << 20, b"echo-rt")
            off = 0
            for i in range(200):
                n = 1 + (stream[i] * 37 + i * 101) % 8192
                msg = stream[off:off + n]
                off = (off + n) % ((1 << 20) - 8192)
                s.sendall(msg)
                self.assertEqual(recv_exact(s, len(msg)), msg, "round trip %d" % i)
                total += len(msg)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_until_eof(s), b"")
        finally:
            s.close()
        acc = b.wait_access(1)[0]
        self.assertEqual(int(acc["bytes_in"]), total)
        self.assertEqual(int(acc["bytes_out"]), total)

    def test_echo_bulk_full_duplex(self):
        """8 MiB echoed while still sending (both directions busy at once)."""
        echo = self.echo_server()
        b, addr = self.proxy([echo])
        data = pseudo_random(8 << 20, b"duplex")
        n, digest = echo_duplex(addr, data, timeout=60)
        self.assertEqual(n, len(data))
        self.assertEqual(digest, sha256_hex(data))

    def test_ipv6(self):
        if not has_ipv6_loopback():
            self.skipTest("no IPv6 loopback")
        sink = self.sink_server(host="::1")
        b, addr = self.proxy([sink], binds=("[::1]:0",))
        self.assertEqual(addr[0], "::1")
        m = b.wait_for_log(r"^listener web bound to (\S+)$")
        self.assertRegex(m.group(1), r"^\[::1\]:\d+$")
        data = pseudo_random(256 << 10, b"v6")
        reply = send_and_half_close(addr, data)
        self.assertEqual(reply.decode(), sha256_hex(data))
        acc = b.wait_access(1)[0]
        self.assertTrue(acc["client"].startswith("[::1]:"), acc)

    def test_two_binds_one_listener(self):
        """bind is repeatable: both addresses serve the same backend."""
        echo = self.echo_server()
        binds = ["127.0.0.1:0", "127.0.0.1:0"]
        b, _ = self.proxy([echo], binds=binds)
        a0 = b.listener_addr("web", index=0)
        a1 = b.listener_addr("web", index=1)
        self.assertNotEqual(a0, a1)
        for a in (a0, a1):
            s = connect(a)
            try:
                s.sendall(b"ping")
                self.assertEqual(recv_exact(s, 4), b"ping")
            finally:
                s.close()


if __name__ == "__main__":
    unittest.main()
