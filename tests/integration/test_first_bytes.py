"""How a connection's first bytes travel: defer_accept and tcp_fastopen on a
listener, tcp_fastopen to a backend's servers, and the early send of the
client's first bytes right after connect().  Each option is read back from
baton's own sockets (getsockopt through pidfd_getfd) and the bytes relayed
with it must arrive intact."""

import socket
import unittest

from baton_harness import (BatonTestCase, ProtoEchoServer, connect, proxy_v1_header,
                           pseudo_random, recv_exact, recv_until_eof, send_and_half_close, sha256_hex,
                           sockopt_of, tcp_conn_inode, tcp_listen_inode, wait_until)

TCP_FASTOPEN_CONNECT = getattr(socket, "TCP_FASTOPEN_CONNECT", 30)


class FirstBytesTest(BatonTestCase):

    def worker(self, b):
        return b.current_worker()[0]

    def echo_intact(self, addr, size, seed):
        """Sends size bytes, half-closes, and checks the echo by hash."""
        data = pseudo_random(size, seed)
        got = send_and_half_close(addr, data, timeout=60)
        self.assertEqual(len(got), len(data))
        self.assertEqual(sha256_hex(got), sha256_hex(data))

    def listener_opts(self, b, addr):
        w, inode = self.worker(b), tcp_listen_inode(addr)
        self.assertIsNotNone(inode, "nothing listens on %s" % (addr,))
        return (sockopt_of(w, inode, socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT),
                sockopt_of(w, inode, socket.IPPROTO_TCP, socket.TCP_FASTOPEN))

    def test_listener_options_off_by_default(self):
        b, addr = self.proxy([self.echo_server()])
        self.assertEqual(self.listener_opts(b, addr), (0, 0))

    def test_listener_options_applied_and_relay_intact(self):
        b, addr = self.proxy([self.echo_server()],
                             listener={"defer_accept": "5s", "tcp_fastopen": "128"})
        defer, tfo = self.listener_opts(b, addr)
        # The kernel keeps the deferral as SYN-ACK retransmissions and
        # reports it back rounded up to their timeouts (1, 2, 4 s...).
        self.assertGreaterEqual(defer, 5)
        self.assertEqual(tfo, 128)
        for i, size in enumerate((1, 3000, 1 << 20)):
            self.echo_intact(addr, size, b"deferred-%d" % i)

    def test_reload_turns_listener_options_off(self):
        srv = self.echo_server()
        b, addr = self.proxy([srv], listener={"defer_accept": "2s", "tcp_fastopen": "16"})
        self.assertNotEqual(self.listener_opts(b, addr), (0, 0))
        old = self.worker(b)
        with open(b.config_path, "w") as f:
            f.write(b.config_text.replace("defer_accept = 2s\n", "")
                    .replace("tcp_fastopen = 16\n", ""))
        b.ctl("reload")
        wait_until(lambda: self.worker(b) != old, 10, what="a new worker")
        self.assertEqual(self.listener_opts(b, addr), (0, 0))
        self.echo_intact(addr, 5000, b"after-reload")

    def test_backend_fastopen_applied_and_relay_intact(self):
        srv = self.echo_server()
        b, addr = self.proxy([srv], backend={"tcp_fastopen": "on"})
        # A held connection, to read the option from baton's server socket.
        s = connect(addr)
        try:
            s.sendall(b"first bytes")
            self.assertEqual(recv_exact(s, 11), b"first bytes")
            inode = tcp_conn_inode(srv.addr)
            self.assertIsNotNone(inode)
            self.assertEqual(sockopt_of(self.worker(b), inode, socket.IPPROTO_TCP,
                                        TCP_FASTOPEN_CONNECT), 1)
        finally:
            s.close()
        for i, size in enumerate((1, 70000, 1 << 20)):
            self.echo_intact(addr, size, b"tfo-%d" % i)

    def test_backend_fastopen_server_speaks_first(self):
        """No client bytes to carry: the SYN must not wait for them."""
        src = self.source_server(100000, seed=b"greeting")
        b, addr = self.proxy([src], backend={"tcp_fastopen": "on"})
        s = connect(addr)
        try:
            got = recv_until_eof(s, timeout=30)
        finally:
            s.close()
        self.assertEqual(sha256_hex(got), sha256_hex(src.data))

    def test_backend_fastopen_with_proxy_header(self):
        srv = self._track(ProtoEchoServer(proxy=True, name="pp"))
        b, addr = self.proxy([srv], backend={"tcp_fastopen": "on", "send_proxy": "v1"})
        for i in range(3):
            s = connect(addr)
            try:
                src = s.getsockname()[:2]
                msg = pseudo_random(2000 + i, b"pp-%d" % i)
                s.sendall(msg)
                self.assertEqual(recv_exact(s, len(msg)), msg)
            finally:
                s.close()
            srv.wait(lambda v: len(v.conns) > i and "proxy_raw" in v.conns[i],
                     what="PROXY header %d" % i)
            self.assertEqual(srv.conns[i]["proxy_raw"], proxy_v1_header(src, addr))

    def test_early_send_then_more_bytes(self):
        """The bytes that came with the connection go out right after
        connect(); what follows keeps its order behind them."""
        srv = self.echo_server()
        b, addr = self.proxy([srv])
        data = pseudo_random(300000, b"early-then-more")
        for n in range(3):
            s = connect(addr)
            try:
                s.sendall(data[:1000])
                self.assertEqual(recv_exact(s, 1000), data[:1000])
                s.sendall(data[1000:])
                s.shutdown(socket.SHUT_WR)
                rest = recv_until_eof(s, timeout=60)
            finally:
                s.close()
            self.assertEqual(sha256_hex(data[:1000] + rest), sha256_hex(data))


if __name__ == "__main__":
    unittest.main()
