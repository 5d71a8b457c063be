"""Half-close is relayed in both directions."""

import socket
import struct
import time
import unittest

from baton_harness import (BatonTestCase, connect, pseudo_random, readable_within,
                           recv_exact, recv_until_eof, send_and_half_close, sha256_hex,
                           wait_until)


class HalfCloseTest(BatonTestCase):

    def test_client_shutdown_then_small_reply(self):
        """Client SHUT_WR: the server sees EOF, replies; client gets it all."""
        sink = self.sink_server()
        b, addr = self.proxy([sink])
        data = pseudo_random(1 << 20, b"hc-client")
        reply = send_and_half_close(addr, data)
        self.assertEqual(reply.decode("ascii", "replace"), sha256_hex(data))

    def test_client_shutdown_then_large_reply(self):
        """Same with a 4 MiB reply sent only after the server saw EOF."""
        extra = 4 << 20
        sink = self.sink_server(extra=extra)
        b, addr = self.proxy([sink])
        data = pseudo_random(300000, b"hc-client-large")
        s = connect(addr)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            reply = recv_until_eof(s, timeout=60)
        finally:
            s.close()
        self.assertEqual(len(reply), 64 + extra)
        self.assertEqual(reply[:64].decode("ascii", "replace"), sha256_hex(data))
        self.assertEqual(reply[64:], pseudo_random(extra, b"extra"))
        acc = b.wait_access(1)[0]
        self.assertEqual(int(acc["bytes_in"]), len(data))
        self.assertEqual(int(acc["bytes_out"]), 64 + extra)

    def test_server_reply_and_fin_to_a_slow_reader(self):
        """Copy mode: the server's last bytes and its FIN arrive together
        while the client reads nothing, so baton cannot pass them on at
        once; every byte still arrives, in order, before the EOF."""
        size = 1 << 20
        src = self.source_server(size, seed=b"hc-fin")
        b, addr = self.proxy([src], glob={"splice": "off"})
        # A small receive window keeps baton's sends to the client partial.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(60)
        s.connect(addr)
        try:
            time.sleep(0.3)   # not a wait for a result: lets the buffers fill first
            n, digest = recv_until_eof(s, timeout=60, hash_only=True)
        finally:
            s.close()
        self.assertEqual(n, size)
        self.assertEqual(digest, sha256_hex(src.data))
        acc = b.wait_access(1)[0]
        self.assertEqual((acc["end"], int(acc["bytes_out"])), ("server_close", size))

    def test_request_and_fin_at_once(self):
        """A client that sends its request and FIN before baton has even
        connected a server (bytes taken at accept) gets the full answer."""
        sink = self.sink_server()
        b, addr = self.proxy([sink])
        for i in range(20):
            data = pseudo_random(100 + i, b"early-%d" % i)
            reply = send_and_half_close(addr, data)
            self.assertEqual(reply.decode("ascii", "replace"), sha256_hex(data), "round %d" % i)
        self.assertEqual(len(b.wait_access(20)), 20)

    def test_urgent_byte_does_not_end_the_stream(self):
        """A short read that stops at an urgent (out-of-band) mark, with the
        client's FIN already in, is not the end: the bytes after the mark are
        relayed and only then the FIN.  (The urgent byte itself is not
        relayed: baton, like other L4 proxies, passes the in-band stream.)"""
        sink = self.sink_server()
        b, addr = self.proxy([sink])
        for i in range(20):
            s = connect(addr)
            try:
                wait_until(lambda: len(sink.conns) > i, timeout=10,
                           what="baton to connect to the sink")
                s.sendall(b"abc")
                s.send(b"!", socket.MSG_OOB)
                s.sendall(b"def")
                s.shutdown(socket.SHUT_WR)
                reply = recv_until_eof(s)
            finally:
                s.close()
            self.assertEqual(reply.decode("ascii", "replace"), sha256_hex(b"abcdef"),
                             "round %d" % i)

    def test_client_shutdown_server_waits(self):
        """After the client's SHUT_WR the connection stays open while the
        server has not answered yet (no premature close)."""
        sink = self.sink_server()
        b, addr = self.proxy([sink])
        s = connect(addr)
        try:
            s.sendall(b"hello")
            s.shutdown(socket.SHUT_WR)
            reply = recv_until_eof(s)
        finally:
            s.close()
        self.assertEqual(reply.decode(), sha256_hex(b"hello"))

    def test_server_shutdown_then_client_sends(self):
        """Server sends then SHUT_WR: the client reads everything up to EOF and
        can still send; the server receives all of it."""
        size = 1 << 20
        src = self.source_server(size, seed=b"hc-server", half_close=True)
        b, addr = self.proxy([src])
        s = connect(addr)
        try:
            n, digest = recv_until_eof(s, hash_only=True)
            self.assertEqual(n, size)
            self.assertEqual(digest, sha256_hex(src.data))
            # Now, after EOF from the server, send in several pieces.
            payload = pseudo_random(2 << 20, b"after-eof")
            for i in range(0, len(payload), 256 << 10):
                s.sendall(payload[i:i + (256 << 10)])
            s.shutdown(socket.SHUT_WR)
            # The server closes after our EOF; we then see the end.
            self.assertEqual(recv_until_eof(s), b"")
        finally:
            s.close()
        src.wait_done(1)
        with src.lock:
            info = dict(src.conns[0])
        self.assertNotIn("error", info)
        self.assertEqual(info.get("received_bytes"), len(payload))
        self.assertEqual(info.get("received_sha256"), sha256_hex(payload))
        acc = b.wait_access(1)[0]
        self.assertEqual(int(acc["bytes_in"]), len(payload))
        self.assertEqual(int(acc["bytes_out"]), size)

    def test_server_shutdown_delayed_client_data(self):
        """The client sends a second after the server's EOF: the half-open
        connection is kept (not closed on the server's EOF)."""
        src = self.source_server(1000, seed=b"hc-delay", half_close=True)
        b, addr = self.proxy([src])
        s = connect(addr)
        try:
            self.assertEqual(recv_until_eof(s), src.data)
            # Poll (bounded) for ~1 s that the server has not been cut off.
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                with src.lock:
                    self.assertFalse(src.conns[0]["done"],
                                     "server side closed before the client finished")
                time.sleep(0.05)
            s.sendall(b"late data")
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_until_eof(s), b"")
        finally:
            s.close()
        src.wait_done(1)
        with src.lock:
            self.assertEqual(src.conns[0].get("received_sha256"), sha256_hex(b"late data"))

    def test_server_reset_after_client_shutdown(self):
        """A server that resets the connection after the client's SHUT_WR
        (what the kernel does to a connection whose handshake completed
        into a full accept queue: docs/operations.md) ends it: the client
        sees the end at once and nothing else, and the access line names
        the server, not the client's half-close that came first."""
        rst = self.reset_server()
        b, addr = self.proxy([rst])
        self.assertEqual(send_and_half_close(addr, b"7 bytes", timeout=10), b"")
        rst.wait_done(1)
        with rst.lock:
            self.assertEqual(rst.conns[0].get("received_bytes"), 7)
        acc = b.wait_access(1)[0]
        self.assertEqual((acc["end"], acc["bytes_in"], acc["bytes_out"]),
                         ("server_close", "7", "0"), acc)

    def test_client_reset_after_server_shutdown(self):
        """The mirror case: the server answers and half-closes, then the
        client resets; the access line names the client."""
        src = self.source_server(1000, seed=b"hc-rst", half_close=True)
        b, addr = self.proxy([src])
        s = connect(addr)
        try:
            self.assertEqual(recv_until_eof(s), src.data)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            s.close()
        acc = b.wait_access(1)[0]
        self.assertEqual((acc["end"], acc["bytes_in"], acc["bytes_out"]),
                         ("client_close", "0", "1000"), acc)


if __name__ == "__main__":
    unittest.main()
