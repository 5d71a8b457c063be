"""PROXY protocol: send_proxy = v1/v2 towards the servers (byte-exact
headers, TLVs for TLS clients, ahead of TLS to the server) and accept_proxy
on listeners (v1, v2, truncated, garbage, timeout, followed by TLS)."""

import socket
import ssl
import time
import unittest

from baton_harness import (PKITestCase, MemTLSClient, ProtoEchoServer, client_context,
                           connect, proxy_v1_header, proxy_v2_header, parse_tlvs, recv_exact,
                           recv_until_eof, scaled, server_context, tls_connect,
                           wait_closed)

PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, PP2_TYPE_SSL = 0x01, 0x02, 0x20
PP2_SUBTYPE_SSL_VERSION, PP2_SUBTYPE_SSL_CIPHER = 0x21, 0x23


class ProxyProtocolBase(PKITestCase):

    def tls_listener(self, **extra):
        l = {"tls": "on",
             "tls_cert": [self.pki.certs["www-rsa"]["cert"], self.pki.certs["www-ecdsa"]["cert"]],
             "tls_key": [self.pki.certs["www-rsa"]["key"], self.pki.certs["www-ecdsa"]["key"]]}
        l.update(extra)
        return l

    def ctx(self, **kw):
        kw.setdefault("cafile", self.pki.cas["Test CA"]["cert"])
        return client_context(**kw)

    def access_of(self, b, suffix):
        return b.wait_access(1, pred=lambda a: a["client"].endswith(suffix))[0]

    def header_of(self, srv, i=0):
        srv.wait(lambda s: len(s.conns) > i and ("proxy_raw" in s.conns[i] or
                                                  s.conns[i]["done"]),
                 what="PROXY header at the server")
        with srv.lock:
            info = dict(srv.conns[i])
        self.assertIn("proxy_raw", info, "server got no valid PROXY header: %s"
                      % info.get("error"))
        return info


class SendProxyTest(ProxyProtocolBase):

    def plain_round_trip(self, addr, msg):
        s = connect(addr)
        try:
            src = s.getsockname()[:2]
            s.sendall(msg)
            got = recv_exact(s, len(msg))
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_until_eof(s), b"")
        finally:
            s.close()
        self.assertEqual(got, msg)
        return src

    def test_send_proxy_v1(self):
        srv = self._track(ProtoEchoServer(proxy=True, name="pp"))
        b, addr = self.proxy([srv], backend={"send_proxy": "v1"})
        for i in range(2):
            src = self.plain_round_trip(addr, b"after the v1 header %d" % i)
            info = self.header_of(srv, i)
            self.assertEqual(info["proxy_raw"], proxy_v1_header(src, addr))

    def test_send_proxy_v2(self):
        srv = self._track(ProtoEchoServer(proxy=True, name="pp"))
        b, addr = self.proxy([srv], backend={"send_proxy": "v2"})
        src = self.plain_round_trip(addr, b"after the v2 header")
        info = self.header_of(srv)
        self.assertEqual(info["proxy_raw"], proxy_v2_header(src, addr))

    def check_tls_tlvs(self, info, src, addr, sni, alpn, version, cipher):
        p = info["proxy"]
        self.assertEqual(p["version"], 2)
        self.assertEqual((p["src"], p["dst"]), (tuple(src), tuple(addr)))
        self.assertEqual(p["addr_block"], proxy_v2_header(src, addr)[16:])
        tl = dict(p["tlvs"])
        self.assertEqual(len(tl), len(p["tlvs"]), "duplicate TLVs: %r" % p["tlvs"])
        if alpn is None:
            self.assertNotIn(PP2_TYPE_ALPN, tl)
        else:
            self.assertEqual(tl.get(PP2_TYPE_ALPN), alpn.encode())
        self.assertEqual(tl.get(PP2_TYPE_AUTHORITY), sni.encode())
        self.assertIn(PP2_TYPE_SSL, tl, p["tlvs"])
        ssl_tlv = tl[PP2_TYPE_SSL]
        self.assertGreaterEqual(len(ssl_tlv), 5)
        self.assertTrue(ssl_tlv[0] & 0x01, "PP2_CLIENT_SSL not set: %r" % ssl_tlv)
        sub = dict(parse_tlvs(ssl_tlv[5:]))
        self.assertEqual(sub.get(PP2_SUBTYPE_SSL_VERSION), version.encode(), sub)
        self.assertEqual(sub.get(PP2_SUBTYPE_SSL_CIPHER), cipher.encode(), sub)

    def test_send_proxy_v2_tlvs_from_tls_listener(self):
        srv = self._track(ProtoEchoServer(proxy=True, name="pp"))
        b, addr = self.proxy([srv], listener=self.tls_listener(alpn="h2,http/1.1"),
                             backend={"send_proxy": "v2"})
        cases = [(None, ["http/1.1"], "http/1.1"), (ssl.TLSVersion.TLSv1_2, None, None)]
        for i, (maxv, offer, alpn) in enumerate(cases):
            s = tls_connect(addr, self.ctx(max_version=maxv, alpn=offer),
                            server_hostname="www.example.test")
            try:
                src = s.getsockname()[:2]
                s.sendall(b"tls client")
                self.assertEqual(recv_exact(s, 10), b"tls client")
                version, cipher = s.version(), s.cipher()[0]
            finally:
                s.close()
            info = self.header_of(srv, i)
            self.check_tls_tlvs(info, src, addr, "www.example.test", alpn, version, cipher)

    def test_send_proxy_v2_from_passthrough_listener(self):
        """The header precedes the client's untouched ClientHello."""
        srv = self._track(ProtoEchoServer(
            ctx=server_context(self.pki.certs["alpha"], alpn=["h2"]), proxy=True, name="pp"))
        b, addr = self.proxy([srv], listener={"tls": "passthrough"},
                             backend={"send_proxy": "v2"})
        s = tls_connect(addr, self.ctx(alpn=["h2"]), server_hostname="alpha.pass.test")
        try:
            src = s.getsockname()[:2]
            s.sendall(b"end to end")
            self.assertEqual(recv_exact(s, 10), b"end to end")
            self.assertEqual(s.selected_alpn_protocol(), "h2")
        finally:
            s.close()
        info = self.header_of(srv)
        p = info["proxy"]
        self.assertEqual((p["src"], p["dst"]), (tuple(src), tuple(addr)))
        tl = dict(p["tlvs"])
        self.assertEqual(tl.get(PP2_TYPE_AUTHORITY), b"alpha.pass.test", p["tlvs"])
        self.assertEqual(tl.get(PP2_TYPE_ALPN), b"h2", p["tlvs"])

    def test_send_proxy_before_tls_to_server(self):
        for version in ("v1", "v2"):
            srv = self._track(ProtoEchoServer(ctx=server_context(self.pki.certs["backend"]),
                                              proxy=True, name="pp" + version))
            b, addr = self.proxy([srv], name="baton" + version, backend={
                "send_proxy": version, "tls": "on", "tls_ca": self.pki.cas["Test CA"]["cert"],
                "tls_sni": "backend.test"})
            src = self.plain_round_trip(addr, b"header, then TLS")
            info = self.header_of(srv)
            want = (proxy_v1_header if version == "v1" else proxy_v2_header)(src, addr)
            self.assertEqual(info["proxy_raw"], want)
            self.assertEqual(info.get("sni"), "backend.test")


class AcceptProxyTest(ProxyProtocolBase):

    def test_accept_proxy_v1_and_v2(self):
        """The header's addresses become the client's: in the access log
        and in the header sent on to the server."""
        srv = self._track(ProtoEchoServer(proxy=True, name="pp"))
        b, addr = self.proxy([srv], listener={"accept_proxy": "on"},
                             backend={"send_proxy": "v1"})
        cases = [(proxy_v1_header(("203.0.113.7", 4242), ("192.0.2.1", 443)),
                  "203.0.113.7:4242", b"PROXY TCP4 203.0.113.7 192.0.2.1 4242 443\r\n"),
                 (proxy_v2_header(("198.51.100.9", 5151), ("192.0.2.2", 8443)),
                  "198.51.100.9:5151", b"PROXY TCP4 198.51.100.9 192.0.2.2 5151 8443\r\n"),
                 (proxy_v2_header(("2001:db8::7", 4433), ("2001:db8::1", 443)),
                  "[2001:db8::7]:4433", b"PROXY TCP6 2001:db8::7 2001:db8::1 4433 443\r\n"),
                 (proxy_v1_header(("2001:db8::8", 1), ("2001:db8::2", 2)),
                  "[2001:db8::8]:1", b"PROXY TCP6 2001:db8::8 2001:db8::2 1 2\r\n")]
        for i, (hdr, client, forwarded) in enumerate(cases):
            s = connect(addr)
            try:
                s.sendall(hdr + b"payload %d" % i)   # header and data in one segment
                self.assertEqual(recv_exact(s, 9), b"payload %d" % i)
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(recv_until_eof(s), b"")
            finally:
                s.close()
            acc = b.wait_access(1, pred=lambda a: a["client"] == client)[0]
            self.assertEqual(acc["end"], "client_close", acc)
            self.assertEqual(int(acc["bytes_in"]), 9)
            self.assertEqual(self.header_of(srv, i)["proxy_raw"], forwarded)

    def expect_rejected(self, b, addr, data, log_rx, half_close=False, srv=None):
        s = connect(addr)
        try:
            port = s.getsockname()[1]
            if data:
                s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
            t = wait_closed(s, scaled(10))
            self.assertIsNotNone(t, "connection still open after %r" % data)
        finally:
            s.close()
        m = b.wait_for_log(r"^listener web: %s from 127\.0\.0\.1:%d: (.+)$" % (log_rx, port))
        acc = self.access_of(b, ":%d" % port)
        self.assertEqual((acc["end"], acc["server"], acc["client"]),
                         ("bad_request", "-", "127.0.0.1:%d" % port), acc)
        if srv is not None:
            self.assertEqual(srv.count(), 0, "the server got a connection")
        return m.group(1), t

    def test_truncated_header(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo], listener={"accept_proxy": "on"})
        full2 = proxy_v2_header(("198.51.100.9", 5151), ("192.0.2.2", 8443))
        for data in (b"PROXY TCP4 203.0.113.7 ", full2[:10], full2[:20]):
            self.expect_rejected(b, addr, data, r"(bad )?PROXY header", half_close=True,
                                 srv=echo)

    def test_garbage_header(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo], listener={"accept_proxy": "on"})
        bad_v2 = bytearray(proxy_v2_header(("198.51.100.9", 5151), ("192.0.2.2", 8443)))
        bad_v2[12] = 0x31   # protocol version 3
        for data in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                     b"PROXY TCP4 203.0.113.7 192.0.2.1 99999 443\r\n",
                     b"PROXY TCP4 not-an-address 192.0.2.1 1 443\r\n",
                     bytes(bad_v2)):
            self.expect_rejected(b, addr, data, r"bad PROXY header", srv=echo)
        # still serving good clients
        s = connect(addr)
        try:
            s.sendall(proxy_v1_header(("203.0.113.7", 4242), ("192.0.2.1", 443)) + b"ok")
            self.assertEqual(recv_exact(s, 2), b"ok")
        finally:
            s.close()

    def test_header_timeout(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo], listener={"accept_proxy": "on", "proxy_timeout": "1s"})
        for data in (b"", b"PROXY TCP4 "):
            reason, t = self.expect_rejected(b, addr, data, r"PROXY header", srv=echo)
            self.assertEqual(reason, "timeout")
            self.assertGreater(t, 0.8)

    def test_accept_proxy_then_tls(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo], listener=self.tls_listener(accept_proxy="on"))
        hdr = proxy_v1_header(("203.0.113.50", 5000), ("192.0.2.1", 443))
        # the header alone in a segment of its own, then the handshake
        # (the header and the ClientHello in one segment: test below)
        s = connect(addr)
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(hdr)
            time.sleep(0.2)   # separate segments, not synchronisation
            t = self.ctx().wrap_socket(s, server_hostname="www.example.test")
            t.sendall(b"tls after header")
            self.assertEqual(recv_exact(t, 16), b"tls after header")
            t.close()
        finally:
            s.close()
        acc = b.wait_access(1, pred=lambda a: a["client"] == "203.0.113.50:5000")[0]
        self.assertEqual((acc["sni"], acc["tls"]), ("www.example.test", "TLSv1.3"), acc)

    def test_accept_proxy_header_and_client_hello_together(self):
        """A PROXY header and the ClientHello arriving in one segment (as
        from a load balancer in front): nothing more comes until the
        server answers."""
        echo = self.echo_server()
        b, addr = self.proxy([echo], listener=self.tls_listener(
            accept_proxy="on", tls_handshake_timeout="3s"))
        hdr = proxy_v2_header(("203.0.113.51", 5001), ("192.0.2.1", 443))
        s = connect(addr)
        try:
            c = MemTLSClient(s, self.ctx(), "www.example.test", timeout=8)
            s.sendall(hdr + c.client_hello())
            try:
                c.handshake()
            except (ssl.SSLError, AssertionError) as e:
                self.fail("no TLS handshake after a PROXY header and a ClientHello sent "
                          "in one segment: %r" % e)
            c.sendall(b"together")
            self.assertEqual(c.recv_exact(8), b"together")
        finally:
            s.close()
        acc = b.wait_access(1, pred=lambda a: a["client"] == "203.0.113.51:5001")[0]
        self.assertEqual(acc["sni"], "www.example.test", acc)

    def test_accept_proxy_header_and_client_hello_together_passthrough(self):
        srv = self._track(ProtoEchoServer(ctx=server_context(self.pki.certs["alpha"]),
                                          name="alpha"))
        b, addr = self.proxy([srv], listener={"tls": "passthrough", "accept_proxy": "on",
                                              "tls_handshake_timeout": "3s"})
        hdr = proxy_v1_header(("203.0.113.52", 5002), ("192.0.2.1", 443))
        s = connect(addr)
        try:
            c = MemTLSClient(s, self.ctx(), "alpha.pass.test", timeout=8)
            s.sendall(hdr + c.client_hello())
            try:
                c.handshake()
            except (ssl.SSLError, AssertionError) as e:
                self.fail("no TLS handshake after a PROXY header and a ClientHello sent "
                          "in one segment: %r" % e)
            c.sendall(b"together")
            self.assertEqual(c.recv_exact(8), b"together")
        finally:
            s.close()
        acc = b.wait_access(1, pred=lambda a: a["client"] == "203.0.113.52:5002")[0]
        self.assertEqual(acc["sni"], "alpha.pass.test", acc)


if __name__ == "__main__":
    unittest.main()
