"""The TLS key log ([global] tls_keylog_file): baton appends the secrets of
its TLS connections in the NSS key log format, the very lines the client's
own OpenSSL writes for the same connection (Python's
SSLContext.keylog_filename), one whole line per write; the file is created
0600, its use is logged as a warning, and a path that cannot be appended
to refuses a reload."""

import os
import re
import ssl
import stat
import unittest

from baton_harness import (PKITestCase, client_context, recv_exact, render_config,
                           tls_connect, wait_until)

LINE_RX = re.compile(r"^([A-Z0-9_]+) ([0-9a-f]{64}) ([0-9a-f]+)$")
TLS13_TRAFFIC = ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                 "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0")


def read_keylog(path):
    """{client random: {label: secret}} of a key log; every line must be
    whole and well formed (lines of concurrent writers never mix)."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        text = f.read()
    if text and not text.endswith("\n"):
        raise AssertionError("%s ends in the middle of a line: %r" % (path, text[-80:]))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = LINE_RX.match(line)
        if m is None:
            raise AssertionError("%s: not a key log line: %r" % (path, line))
        out.setdefault(m.group(2), {})[m.group(1)] = m.group(3)
    return out


class TLSKeylogTest(PKITestCase):

    def keylog_config(self, echo, path):
        certs = ("www-rsa", "www-ecdsa")
        return self.make_config([echo], glob={"tls_keylog_file": path}, listener={
            "tls": "on",
            "tls_cert": [self.pki.certs[c]["cert"] for c in certs],
            "tls_key": [self.pki.certs[c]["key"] for c in certs]})

    def client_secrets(self, addr, client_log, **ctx_kw):
        """One echo round trip; the connection's {label: secret} as the
        client's OpenSSL logged them, and its client random."""
        ctx = client_context(cafile=self.pki.cas["Test CA"]["cert"], **ctx_kw)
        ctx.keylog_filename = client_log
        s = tls_connect(addr, ctx, server_hostname="www.example.test")
        try:
            s.sendall(b"keylog")
            self.assertEqual(recv_exact(s, 6), b"keylog")
        finally:
            s.close()
        logged = read_keylog(client_log)
        self.assertEqual(len(logged), 1, logged)
        (random, secrets), = logged.items()
        os.unlink(client_log)
        return random, secrets

    def test_secrets_match_the_clients(self):
        echo = self.echo_server()
        path = os.path.join(self.tmp, "keys.log")
        b = self.start_baton(self.keylog_config(echo, path))
        b.wait_for_log(r"^tls_keylog_file %s: the secrets of every TLS connection are "
                       r"written there" % re.escape(path))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        addr = b.listener_addr("web")
        client_log = os.path.join(self.tmp, "client.keys")
        cases = [("TLSv1.3", {}, TLS13_TRAFFIC),
                 ("TLSv1.2", {"max_version": ssl.TLSVersion.TLSv1_2}, ("CLIENT_RANDOM",))]
        for version, ctx_kw, labels in cases:
            with self.subTest(version=version):
                random, want = self.client_secrets(addr, client_log, **ctx_kw)
                self.assertTrue(set(labels) <= set(want), want)
                ours = {}

                def logged():
                    ours.clear()
                    ours.update(read_keylog(path).get(random, {}))
                    return set(labels) <= set(ours)

                wait_until(logged, 10, what="baton's key log lines for client random %s"
                           % random)
                # the same secrets on both sides, and nothing the client
                # did not derive too
                self.assertEqual(ours, {k: want[k] for k in ours})

    def test_reload_with_a_key_log_that_cannot_be_opened_is_refused(self):
        echo = self.echo_server()
        path = os.path.join(self.tmp, "keys.log")
        cfg = self.keylog_config(echo, path)
        b = self.start_baton(cfg)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        pid, gen = b.current_worker()
        bad_path = os.path.join(self.tmp, "gone", "keys.log")
        bad = dict(cfg, **{"global": dict(cfg["global"], tls_keylog_file=bad_path)})
        text = render_config(bad)
        line = text.splitlines().index("tls_keylog_file = %s" % bad_path) + 1
        with open(b.config_path, "w") as f:
            f.write(text)
        r = b.ctl("reload", timeout=60)
        self.assertEqual(r.returncode, 1, "stdout=%r stderr=%r" % (r.stdout, r.stderr))
        self.assertIn("%s:%d: tls_keylog_file %s: cannot open for appending: No such file or "
                      "directory" % (b.config_path, line, bad_path), r.stdout + r.stderr)
        self.assertEqual(b.current_worker(), (pid, gen))
        # still serving
        self.client_secrets(b.listener_addr("web"), os.path.join(self.tmp, "client.keys"))


if __name__ == "__main__":
    unittest.main()
