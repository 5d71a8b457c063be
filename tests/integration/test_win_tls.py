"""baton.exe under Wine: TLS termination with SNI (two certificates, each
name gets its own), and the bytes behind it intact."""

import ssl
import unittest

from baton_harness import (WINDOWS, WinPKITestCase, client_context,
                           der_subject, pseudo_random, recv_exact,
                           sha256_hex, tls_connect, win_tls_listener)


@unittest.skipUnless(WINDOWS, "Windows mode only (BATON_WINDOWS_EXE)")
class WinTLSTest(WinPKITestCase):

    def start_tls(self, servers):
        cfg = self.make_config(servers, listener=win_tls_listener(self.pki, ["alpha", "beta"]))
        b = self.start_baton(cfg)
        return b, b.listener_addr("web")

    def test_sni_selects_certificate(self):
        b, addr = self.start_tls([self.hold_server()])
        ctx = client_context(self.ca)
        for host, want in (("alpha.win.test", "alpha"), ("beta.win.test", "beta"),
                           ("x.beta.win.test", "beta")):
            s = tls_connect(addr, ctx, server_hostname=host)
            try:
                der = s.getpeercert(binary_form=True)
            finally:
                s.close()
            self.assertEqual(der, self.pki.certs[want]["der"],
                             "SNI %r got %s" % (host, der_subject(der)))
        # a name neither certificate holds: the first one, which the client refuses
        with self.assertRaises(ssl.SSLCertVerificationError):
            tls_connect(addr, ctx, server_hostname="gamma.win.test").close()

    def test_tls_echo_intact(self):
        b, addr = self.start_tls([self.echo_server()])
        s = tls_connect(addr, client_context(self.ca), server_hostname="alpha.win.test")
        try:
            # rounds small enough for the socket buffers: no side waits on the other
            for i in range(16):
                data = pseudo_random(32768, b"win-tls-%d" % i)
                s.sendall(data)
                self.assertEqual(sha256_hex(recv_exact(s, len(data))), sha256_hex(data))
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()
