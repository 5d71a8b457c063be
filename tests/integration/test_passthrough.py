"""tls = passthrough: baton reads the ClientHello itself, routes by SNI
(exact, then wildcard, then the default backend) or by ALPN, and forwards
the client's bytes untouched to a TLS server, which the client then sees
end to end (its certificate, its ALPN)."""

import socket
import time
import unittest

from baton_harness import (PKITestCase, MemTLSClient, ProtoEchoServer, client_context,
                           connect, proc_cpu_seconds, recv_exact, scaled, server_context,
                           split_into_records, tls_connect, wait_closed)


class PassthroughTest(PKITestCase):

    def tls_server(self, cert, name, alpn=("h2", "http/1.1")):
        return self._track(ProtoEchoServer(ctx=server_context(self.pki.certs[cert], alpn=alpn),
                                           name=name))

    def start(self, routes=(), alpn_routes=(), backends=None, default="plain_be",
              listener=None):
        """One passthrough listener; backends maps backend name -> server."""
        cfg = {"global": {"threads": 1, "control": self.control_path(),
                          "log_level": "info", "access_log": "stderr"},
               "listener web": {"bind": "127.0.0.1:0", "tls": "passthrough",
                                "backend": default}}
        if routes:
            cfg["listener web"]["route"] = ["%s %s" % r for r in routes]
        if alpn_routes:
            cfg["listener web"]["route_alpn"] = ["%s %s" % r for r in alpn_routes]
        cfg["listener web"].update(listener or {})
        for name, srv in backends.items():
            cfg["backend %s" % name] = {"server": srv.server_line()}
        b = self.start_baton(cfg)
        return b, b.listener_addr("web")

    def which_cert(self, der):
        for name, c in self.pki.certs.items():
            if c["der"] == der:
                return name
        return "an unknown certificate"

    def ctx(self, alpn=None, check_hostname=False):
        return client_context(cafile=self.pki.cas["Test CA"]["cert"], alpn=alpn,
                              check_hostname=check_hostname)

    def access_of(self, b, port):
        suffix = ":%d" % port
        return b.wait_access(1, pred=lambda a: a["client"].endswith(suffix))[0]

    def visit(self, addr, host, alpn=None):
        """TLS through baton: (certificate name, selected ALPN, client port)."""
        s = tls_connect(addr, self.ctx(alpn=alpn), server_hostname=host)
        try:
            port = s.getsockname()[1]
            cert = self.which_cert(s.getpeercert(binary_form=True))
            msg = b"passthrough to %s" % (host or "-").encode()
            s.sendall(msg)
            self.assertEqual(recv_exact(s, len(msg)), msg)
            return cert, s.selected_alpn_protocol(), port
        finally:
            s.close()

    def sni_setup(self):
        servers = {"alpha_be": self.tls_server("alpha", "alpha"),
                   "beta_be": self.tls_server("beta", "beta"),
                   "star_be": self.tls_server("star", "star"),
                   "plain_be": self.tls_server("plain", "plain")}
        routes = [("*.star.pass.test", "star_be"),      # wildcard listed first
                  ("alpha.pass.test", "alpha_be"),
                  ("beta.pass.test", "beta_be"),
                  ("over.star.pass.test", "beta_be")]   # exact beats the wildcard
        b, addr = self.start(routes=routes, backends=servers)
        return b, addr, servers

    def test_sni_routing(self):
        b, addr, servers = self.sni_setup()
        cases = [("alpha.pass.test", "alpha", "alpha_be"),
                 ("beta.pass.test", "beta", "beta_be"),
                 ("x.star.pass.test", "star", "star_be"),
                 ("over.star.pass.test", "beta", "beta_be"),
                 ("a.b.star.pass.test", "plain", "plain_be"),
                 ("unknown.test", "plain", "plain_be"),
                 (None, "plain", "plain_be")]
        for host, cert, backend in cases:
            got, _, port = self.visit(addr, host)
            self.assertEqual(got, cert, "SNI %r reached the server with certificate %s"
                             % (host, got))
            acc = self.access_of(b, port)
            self.assertEqual((acc["backend"], acc["sni"], acc["tls"]),
                             (backend, host or "-", "-"), acc)
            self.assertNotEqual(acc["end"], "bad_request")
        # the servers saw the client's own ClientHello (SNI untouched)
        want = {"alpha_be": ["alpha.pass.test"],
                "beta_be": ["beta.pass.test", "over.star.pass.test"],
                "star_be": ["x.star.pass.test"],
                "plain_be": ["a.b.star.pass.test", "unknown.test", None]}
        for name, srv in servers.items():
            srv.wait_done(len(want[name]))
            with srv.lock:
                got = [c.get("sni") for c in srv.conns]
                errors = [c.get("error") for c in srv.conns if c.get("error")]
            self.assertEqual(got, want[name], "SNI seen by %s" % name)
            self.assertEqual(errors, [], name)
        # normal verification end to end works as well
        s = tls_connect(addr, self.ctx(check_hostname=True), server_hostname="alpha.pass.test")
        s.close()

    def send_hello_and_finish(self, addr, host, pieces, delay=0.1):
        """Sends the ClientHello as `pieces` (a function of the hello bytes
        returning a list of byte strings, each sent separately with
        TCP_NODELAY), then completes the handshake and an echo."""
        s = connect(addr)
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c = MemTLSClient(s, self.ctx(), host)
            hello = c.client_hello()
            parts = pieces(hello)
            self.assertEqual(b"".join(parts)[:1], b"\x16")
            for i, p in enumerate(parts):
                if i:
                    time.sleep(delay)   # separate segments, not synchronisation
                s.sendall(p)
            c.handshake()
            cert = self.which_cert(c.getpeercert_der())
            c.sendall(b"after a split hello")
            self.assertEqual(c.recv_exact(19), b"after a split hello")
            return cert, s.getsockname()[1]
        finally:
            s.close()

    def test_client_hello_split_across_segments(self):
        b, addr, servers = self.sni_setup()

        def three(h):
            return [h[:3], h[3:len(h) // 2], h[len(h) // 2:]]
        for host, cert in (("alpha.pass.test", "alpha"), ("x.star.pass.test", "star")):
            got, port = self.send_hello_and_finish(addr, host, three)
            self.assertEqual(got, cert, host)
            self.assertEqual(self.access_of(b, port)["sni"], host)

    def test_client_hello_split_across_records(self):
        b, addr, servers = self.sni_setup()
        for host, cert in (("beta.pass.test", "beta"), ("x.star.pass.test", "star")):
            # the first record ends well before the SNI extension
            got, port = self.send_hello_and_finish(
                addr, host, lambda h: [split_into_records(h, 40)])
            self.assertEqual(got, cert, host)
            self.assertEqual(self.access_of(b, port)["sni"], host)
            # two records, and also in two segments, split inside the second
            got, port = self.send_hello_and_finish(
                addr, host, lambda h: (lambda r: [r[:60], r[60:]])(split_into_records(h, 40)))
            self.assertEqual(got, cert, host)
        with servers["alpha_be"].lock:
            self.assertEqual(servers["alpha_be"].conns, [])

    def test_hello_in_one_byte_records_costs_linear_cpu(self):
        """A 10 KiB ClientHello re-framed as one-byte records (six times its
        size on the wire) costs the worker no more CPU than a 60 KiB hello in
        four ordinary records.  Two batons get the two hellos, trickled in
        two-byte segments in turn, so each worker reads some thirty thousand
        times under the same conditions.  Parsing is user time; the recv
        calls are mostly kernel time and cost both alike, so user time is
        compared.  Re-walking every record after each read made the first
        worker's user time four times the second's (0.8 s against 0.2 s);
        looking at each byte once makes them equal.  Both handshakes then
        complete end to end."""
        srv = self.tls_server("plain", "plain")
        one_byte, addr_a = self.start(backends={"plain_be": srv},
                                      listener={"tls_handshake_timeout": "120s"})
        ordinary = self.start_baton({
            "global": {"threads": 1, "control": self.control_path("ordinary"),
                       "log_level": "info", "access_log": "stderr"},
            "listener web": {"bind": "127.0.0.1:0", "tls": "passthrough",
                             "backend": "plain_be", "tls_handshake_timeout": "120s"},
            "backend plain_be": {"server": srv.server_line()}}, name="ordinary")
        addr_b = ordinary.listener_addr("web")
        small = ["h2"] + ["p%03d%s" % (i, "x" * 250) for i in range(40)]
        large = ["h2"] + ["q%03d%s" % (i, "y" * 250) for i in range(236)]
        conns, wires = [], []
        try:
            for addr, alpn in ((addr_a, small), (addr_b, large)):
                s = connect(addr)
                conns.append(s)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c = MemTLSClient(s, self.ctx(alpn=alpn), "default.pass.test")
                wires.append((c, c.client_hello()))
            hello = wires[0][1]
            body = hello[5:]
            self.assertEqual(len(body), int.from_bytes(hello[3:5], "big"), "one record")
            one_byte_wire = b"".join(hello[:3] + b"\x00\x01" + body[i:i + 1]
                                     for i in range(len(body)))
            ordinary_wire = wires[1][1]
            # both fit what baton buffers for a hello, and take as many segments
            self.assertLess(len(one_byte_wire), 64 * 1024)
            self.assertLess(abs(len(one_byte_wire) - len(ordinary_wire)), 4096)
            pids = (one_byte.current_worker()[0], ordinary.current_worker()[0])
            user0 = [proc_cpu_seconds(p)[0] for p in pids]
            for off in range(0, max(len(one_byte_wire), len(ordinary_wire)), 2):
                for s, w in ((conns[0], one_byte_wire), (conns[1], ordinary_wire)):
                    if off < len(w):
                        s.sendall(w[off:off + 2])
                time.sleep(0.0001)   # separate segments, so separate reads
            for c, _ in wires:
                c.handshake()
            user = [proc_cpu_seconds(p)[0] - u for p, u in zip(pids, user0)]
            for c, _ in wires:
                self.assertEqual(self.which_cert(c.getpeercert_der()), "plain")
                c.sendall(b"after a trickled hello")
                self.assertEqual(c.recv_exact(22), b"after a trickled hello")
            ports = [s.getsockname()[1] for s in conns]
        finally:
            for s in conns:
                s.close()
        for b, port in ((one_byte, ports[0]), (ordinary, ports[1])):
            self.assertEqual(self.access_of(b, port)["sni"], "default.pass.test")
        self.assertLess(user[0], 1.5 * user[1] + 0.1,
                        "worker user CPU (s): %.2f for a hello of %d one-byte records, %.2f "
                        "for one of %d bytes in ordinary records" % (user[0], len(body), user[1],
                                                                     len(ordinary_wire)))

    def test_garbage_is_refused(self):
        b, addr, servers = self.sni_setup()
        for garbage in (b"GET / HTTP/1.1\r\nHost: alpha.pass.test\r\n\r\n",
                        b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00"):   # a ServerHello
            mark = b.mark()
            s = connect(addr)
            try:
                port = s.getsockname()[1]
                s.sendall(garbage)
                t = wait_closed(s, scaled(10))
                self.assertIsNotNone(t, "connection with garbage %r still open" % garbage)
            finally:
                s.close()
            b.wait_for_log(r"^listener web: not a TLS ClientHello from 127\.0\.0\.1:%d: \S"
                           % port, start=mark)
            acc = self.access_of(b, port)
            self.assertEqual((acc["end"], acc["server"]), ("bad_request", "-"), acc)
        for srv in servers.values():
            self.assertEqual(srv.count(), 0, "%s got a connection" % srv.name)
        # still serving
        self.assertEqual(self.visit(addr, "alpha.pass.test")[0], "alpha")

    def test_alpn_routing(self):
        servers = {"h2_be": self.tls_server("beta", "h2srv"),
                   "h1_be": self.tls_server("star", "h1srv"),
                   "alpha_be": self.tls_server("alpha", "alpha"),
                   "plain_be": self.tls_server("plain", "plain")}
        b, addr = self.start(routes=[("alpha.pass.test", "alpha_be")],
                             alpn_routes=[("h2", "h2_be"), ("http/1.1", "h1_be")],
                             backends=servers)
        cases = [(None, ["h2"], "beta", "h2", "h2_be"),
                 ("other.test", ["http/1.1"], "star", "http/1.1", "h1_be"),
                 (None, ["spdy/3"], "plain", None, "plain_be"),
                 (None, None, "plain", None, "plain_be"),
                 ("alpha.pass.test", ["h2"], "alpha", "h2", "alpha_be")]   # SNI first
        for host, offer, cert, alpn, backend in cases:
            got, selected, port = self.visit(addr, host, alpn=offer)
            self.assertEqual((got, selected), (cert, alpn), "SNI %r ALPN %r" % (host, offer))
            acc = self.access_of(b, port)
            self.assertEqual(acc["backend"], backend, acc)
            self.assertEqual(acc["alpn"], offer[0] if offer else "-", acc)


if __name__ == "__main__":
    unittest.main()
