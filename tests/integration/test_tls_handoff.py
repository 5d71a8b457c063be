"""Live handoff of TLS connections (issue 10), with independent TLS stacks:
TLS streams (tls_streams.py: Python ssl, openssl s_client, gnutls-cli,
curl, upstream TLS to openssl s_server and to a Python TLS server,
handshakes caught in the middle) stay intact, byte for byte each way,
across reloads alternating configuration reloads and binary upgrades; in
live mode every established TLS connection moves at each reload and logs
handoffs=N at its end.

The movement checks (`moved` below) are asserted after the streams' own
checks, so a baton that cannot move TLS connections yet (they drain in the
old worker) fails only on them.

Environment: BATON_TLS_RELOADS (default 50) scales the number of reloads
down, for a sanitizer build whose every reload costs several times more
CPU on a shared machine (the streams and their checks are the same);
BATON_TLS_DOWNLOAD the curl download's size in MB (default 200)."""

import os
import re
import shutil
import signal
import ssl
import time
import unittest

from baton_harness import (BATON_BIN, BATON_NEXT_BIN, HANDOFF_MODE, HANDOFF_RE, PKITestCase,
                           client_context, install_binary, pid_alive, render_config,
                           server_context, start_baton_command, wait_status, wait_until,
                           handoff_global)
from streams import CorruptingServer, Params, StreamServer, TLSStreamServer
from tls_streams import (CurlStream, GnuTLSStream, HeldFinishedStream, PacedHTTPServer,
                         PartialHelloStream, PyTLSStream, SClientStream, SServer,
                         SServerStream, TLSStreams, UpstreamPlainStream, tls_session)

RELOADS = int(os.environ.get("BATON_TLS_RELOADS", "") or "50")
DOWNLOAD = int(os.environ.get("BATON_TLS_DOWNLOAD", "") or "200") << 20
HOST = "www.example.test"
UP_HOST = "backend.test"
SUITES13 = {"a128": "TLS_AES_128_GCM_SHA256", "a256": "TLS_AES_256_GCM_SHA384",
            "chacha": "TLS_CHACHA20_POLY1305_SHA256"}
TOOLS = ("openssl", "gnutls-cli", "curl")


class TLSHandoffBase(PKITestCase):

    def setUp(self):
        super().setUp()
        if not BATON_NEXT_BIN or not os.path.isfile(BATON_NEXT_BIN):
            self.skipTest("BATON_NEXT_BIN not set")
        missing = [t for t in TOOLS if not shutil.which(t)]
        if missing:
            # tools/deps.sh installs them (CI runs it first)
            self.fail("missing tools (tools/deps.sh installs them): %s" % missing)
        self.params = Params(echo_interval=0.05)
        self.ca = self.pki.cas["Test CA"]["cert"]

    def backends(self, srv=None):
        """The servers: a plain echo StreamServer, a paced HTTP server, a
        Python TLS echo server issuing 4 tickets, two s_servers."""
        self.srv = srv or StreamServer(params=self.params)
        self.addCleanup(self.srv.close)
        self.set = TLSStreams(self.srv, self.params)
        self.addCleanup(self.set.close)
        self.http = PacedHTTPServer(DOWNLOAD, 1 << 20, self.set.stop_event,
                                    corrupt=getattr(self, "http_corrupt", None))
        self.addCleanup(self.http.close)
        ctx = server_context(self.pki.certs["backend"])
        ctx.num_tickets = 4
        self.tls_srv = TLSStreamServer(ctx, name="pytls")
        self.addCleanup(self.tls_srv.close)
        self.ss13 = SServer(self.pki.certs["backend"], self.tmp, "ss13", ["-tls1_3"])
        self.addCleanup(self.ss13.kill)
        self.ss12 = SServer(self.pki.certs["backend"], self.tmp, "ss12",
                            ["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"])
        self.addCleanup(self.ss12.kill)

    def config(self, comment="", mode=None):
        g = {"threads": 2, "control": self.control_path(), "log_level": "info",
             "access_log": "stderr", "drain_timeout": "300s"}
        g.update(handoff_global(mode))
        cert = self.pki.certs["www-ecdsa"]
        tls = {"backend": "plain", "tls": "on", "tls_cert": cert["cert"],
               "tls_key": cert["key"], "tls_handshake_timeout": "120s"}
        up = {"tls": "on", "tls_ca": self.ca, "tls_sni": UP_HOST}
        cfg = {"global": g,
               "listener tls": dict(tls, bind="127.0.0.1:0")}
        for name, suite in SUITES13.items():
            cfg["listener tls_%s" % name] = dict(tls, bind="127.0.0.1:0",
                                                 tls_min_version="1.3",
                                                 tls_ciphersuites=suite)
        cfg["listener tls_ccert"] = dict(tls, bind="127.0.0.1:0",
                                         tls_client_ca=self.pki.cas["Client CA"]["cert"],
                                         tls_verify_client="required")
        cfg["listener dl"] = dict(tls, bind="127.0.0.1:0", backend="http")
        for name in ("up_py", "up_ss13", "up_ss12"):
            cfg["listener %s" % name] = {"bind": "127.0.0.1:0", "backend": name}
        cfg["backend plain"] = {"server": self.srv.server_line()}
        cfg["backend http"] = {"server": self.http.server_line()}
        cfg["backend up_py"] = dict(up, server=self.tls_srv.server_line())
        cfg["backend up_ss13"] = dict(up, server=self.ss13.server_line("ss13"))
        cfg["backend up_ss12"] = dict(up, server=self.ss12.server_line("ss12"))
        return render_config(cfg) + ("# %s\n" % comment if comment else "")

    def start_baton(self, mode=None):
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir, exist_ok=True)
        self.exe = os.path.join(bindir, "baton")
        install_binary(BATON_BIN, self.exe)
        b = start_baton_command(self, self.config(mode=mode), binary=self.exe)
        self.addr = {n: b.listener_addr(n) for n in
                     ["tls", "tls_ccert", "dl", "up_py", "up_ss13", "up_ss12"] +
                     ["tls_%s" % n for n in SUITES13]}
        return b

    def py_ctx(self, **kw):
        return client_context(cafile=self.ca, **kw)

    # ---- the streams
    def start_streams(self, which=None):
        """Starts the streams (all, or the kinds in `which`); returns the
        names of those that are established for their whole life (they
        must move at every reload)."""
        st, a, ca, tmp = self.set, self.addr, self.ca, self.tmp
        v13, v12 = ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2
        streams = []
        self.primed = 0          # short connections made to get a session

        def add(stream, lives=True):
            if which is None or stream.kind in which:
                st.add(stream)
                if lives:
                    streams.append(stream.name)
        for i, (name, suite) in enumerate(sorted(SUITES13.items())):
            add(PyTLSStream(st, "py13_" + name, i, a["tls_" + name],
                            self.py_ctx(min_version=v13), HOST,
                            expect={"version": "TLSv1.3", "cipher": suite}))
        for i, cipher in enumerate(("ECDHE-ECDSA-AES128-GCM-SHA256",
                                    "ECDHE-ECDSA-CHACHA20-POLY1305")):
            add(PyTLSStream(st, "py12_" + ("gcm", "chacha")[i], i, a["tls"],
                            self.py_ctx(max_version=v12, ciphers=cipher), HOST,
                            expect={"version": "TLSv1.2", "cipher": cipher}))
        for i, ver in enumerate((v13, v12)):
            ctx = self.py_ctx(min_version=ver, max_version=ver)
            if which is None or "py_resumed" in which:
                sess = tls_session(a["tls"], ctx, HOST)
                self.primed += 1
                add(PyTLSStream(st, "py_resumed", i, a["tls"], ctx, HOST,
                                expect={"resumed": True}, session=lambda s=sess: s))
        add(PyTLSStream(st, "py_ccert", 0, a["tls_ccert"],
                        self.py_ctx(cert=self.pki.certs["client1"]), HOST,
                        expect={"version": "TLSv1.3"}))
        add(SClientStream(st, "sclient_ku", 0, a["tls"], ca, HOST, tmp))
        add(SClientStream(st, "sclient_mfl", 0, a["tls"], ca, HOST, tmp, keyupdates=False,
                          maxfrag=512))
        base = "NORMAL:-VERS-ALL:-CIPHER-ALL:"
        add(GnuTLSStream(st, "gnutls13", 0, a["tls"], ca, HOST, tmp,
                         base + "+VERS-TLS1.3:+AES-256-GCM", "(AES-256-GCM)", keyupdates=True))
        add(GnuTLSStream(st, "gnutls12_gcm", 0, a["tls"], ca, HOST, tmp,
                         base + "+VERS-TLS1.2:+AES-128-GCM", "(AES-128-GCM)"))
        add(GnuTLSStream(st, "gnutls12_chacha", 0, a["tls"], ca, HOST, tmp,
                         base + "+VERS-TLS1.2:+CHACHA20-POLY1305", "(CHACHA20-POLY1305)"))
        add(CurlStream(st, "curl", 0, a["dl"], ca, HOST, self.http))
        add(UpstreamPlainStream(st, "up_py", 0, a["up_py"], self.tls_srv))
        add(SServerStream(st, "up_ss13", 0, a["up_ss13"], self.ss13,
                          corrupt_at=getattr(self, "ss_corrupt", None)))
        add(SServerStream(st, "up_ss12", 0, a["up_ss12"], self.ss12, keyupdates=False))
        # in the middle of their handshakes until released: they may finish
        # in the old worker and drain there
        self.held = []
        for cls, kind in ((PartialHelloStream, "hs_half_hello"),
                          (HeldFinishedStream, "hs_held_finished")):
            if which is None or kind in which:
                add(cls(st, kind, 0, a["tls"], self.py_ctx(min_version=v13), HOST),
                    lives=False)
                self.held.append(st.streams[-1])
        return streams

    def wait_flowing(self, names, what):
        before = self.set.progress()
        self.set.wait_progress(
            lambda p: all(p[n][0] > before[n][0] and p[n][1] > before[n][1] for n in names)
            and not self.set.failed_now(), 60, what)

    def reload(self, b, i):
        """Reload i: a configuration reload (even i) or a binary upgrade."""
        if i % 2:
            install_binary((BATON_NEXT_BIN, BATON_BIN)[(i // 2) % 2], self.exe)
        else:
            with open(b.config_path, "w") as f:
                f.write(self.config(comment="reload %d" % i))
        r = b.ctl("reload", timeout=90)
        self.assertEqual(r.returncode, 0, "reload %d: %r %r" % (i, r.stdout, r.stderr))
        m = re.search(r"^reloaded: generation (\d+) worker pid (\d+)$", r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        if i % 2:
            self.assertIn("now runs baton", r.stdout, "upgrade %d did not re-execute" % i)
        return int(m.group(1)), int(m.group(2))

    def stop_and_verify(self):
        self.set.stop()
        failures = self.set.verify()
        self.assertEqual(failures, [], "%d stream(s) not intact:\n%s"
                         % (len(failures), "\n".join(failures)))


class TLSHandoffTest(TLSHandoffBase):

    def test_tls_streams_across_reloads_and_upgrades(self):
        self.backends()
        b = self.start_baton()
        lives = self.start_streams()
        for s in self.held:
            self.assertTrue(s.sent_part.wait(30), "%s did not start its handshake" % s.name)
        self.wait_flowing([n for n in lives if not n.startswith("curl")], "every stream under way")
        moved = []            # what the live handoff did not do, asserted at the end
        t0 = time.monotonic()
        for i in range(RELOADS):
            old_pid, old_gen = b.current_worker()
            mark = b.mark()
            gen, pid = self.reload(b, i)
            if HANDOFF_MODE == "live":
                m = b.wait_for_log(HANDOFF_RE, start=mark)
                # the held handshakes (replied to by gen 1) may drain there
                if int(m.group("moved")) < len(lives) or \
                        int(m.group("left")) > (len(self.held) if i == 0 else 0):
                    moved.append("reload %d: %s" % (i, m.group(0)))
                elif int(m.group("left")) == 0 and not wait_until_quiet(
                        lambda: not pid_alive(old_pid), 5):
                    moved.append("reload %d: worker %d still alive 5 s after handing all over"
                                 % (i, old_pid))
            if i == 0:
                self.set.release()
            self.set.poke()
            self.assertEqual(self.set.failed_now(), [], "streams broken after reload %d" % i)
        # every stream goes on after the last reload (KeyUpdates included)
        self.wait_flowing([n for n in lives if not n.startswith("curl")] +
                          [s.name for s in self.held], "the streams after the reloads")
        if HANDOFF_MODE == "live":
            st = b.status()
            active = [w for w in st["worker"] if w.get("state") == "active"]
            if not active or int(active[0].get("adopted", 0)) < len(lives):
                moved.append("status: the active generation adopted fewer than %d: %s"
                             % (len(lives), st["worker"]))
        print("\n%d reloads in %.1f s" % (RELOADS, time.monotonic() - t0))
        self.stop_and_verify()
        if HANDOFF_MODE != "live":
            return
        # one access line per connection (the held handshakes may have
        # drained, the sessions to resume ended before the reloads); each
        # long-lived one moved at every reload
        acc = b.wait_access(len(lives) + len(self.held) + self.primed, timeout=30)
        full = [a for a in acc if a.get("handoffs") == str(RELOADS)]
        if len(full) < len(lives):
            moved.append("access log: %d of %d long-lived connections with handoffs=%d: %s"
                         % (len(full), len(lives), RELOADS,
                            sorted("%s:handoffs=%s" % (a.get("listener"), a.get("handoffs"))
                                   for a in acc)))
        self.assertEqual(moved, [], "TLS connections did not move (issue 10):\n%s"
                         % "\n".join(moved))

    def test_new_generation_killed_mid_transfer(self):
        """The new generation SIGKILLed early in the handoff, three times: no
        stream ever gets a wrong byte; only connections it had taken over
        may be cut, and those are reported as cut."""
        self.backends()
        b = self.start_baton()
        which = ("py13_a128", "py12_chacha", "sclient_ku", "gnutls13", "up_py", "up_ss13",
                 "curl")
        lives = self.start_streams(which)
        self.wait_flowing([n for n in lives if not n.startswith("curl")], "streams under way")
        moved_total = 0
        for delay in (0.0, 0.003, 0.03):
            old_pid, old_gen = b.current_worker()
            mark = b.mark()
            gen, pid = self.reload(b, 0)
            time.sleep(delay)      # where in the transfer the kill lands, not a wait
            os.kill(pid, signal.SIGKILL)
            b.wait_for_log(r"^worker \d+ generation %d ready" % (gen + 1), timeout=30,
                           start=mark)
            if HANDOFF_MODE == "live":
                # what the dead one had taken (acknowledged): those may be cut
                m = b.wait_for_log(HANDOFF_RE.replace(r"(?P<gen>\d+)", "(?P<gen>%d)" % gen),
                                   start=mark)
                moved_total += int(m.group("moved"))
            wait_status(b, lambda st, sv: len([w for w in st["worker"]
                                               if w.get("state") == "active"]) == 1, 60,
                        what="one active generation")
            self.set.poke()
        self.set.stop()
        failures = self.set.verify()
        corrupt = [f for f in failures if "first difference" in f or "negotiated" in f]
        self.assertEqual(corrupt, [], "wrong bytes:\n%s" % "\n".join(corrupt))
        self.assertLessEqual(len(failures), moved_total,
                             "more streams cut than the killed generations had taken:\n%s"
                             % "\n".join(failures))


class TLSChecksTest(TLSHandoffBase):
    """The negative control: through baton, a backend that changes one byte
    of a stream (Python ssl, s_client, gnutls-cli, curl, s_server) must get
    exactly that stream reported, at that offset."""

    def test_changed_byte_is_reported(self):
        targets = {("py13_a128", 0): 500, ("sclient_ku", 0): 700, ("gnutls12_gcm", 0): 900}
        self.http_corrupt = {("curl", 0): 5000}
        self.ss_corrupt = 300
        self.backends(CorruptingServer(targets, params=self.params))
        self.start_baton()
        which = ("py13_a128", "py13_chacha", "sclient_ku", "gnutls12_gcm", "curl", "up_ss13",
                 "up_py")
        lives = self.start_streams(which)
        self.set.wait_progress(lambda p: all(p[n][1] > 3000 for n in lives
                                             if not n.startswith("curl")),
                               60, "the streams under way")
        self.set.stop()
        failures = self.set.verify()
        want = {"py13_a128 #0": 500, "sclient_ku #0": 700, "gnutls12_gcm #0": 900,
                "curl #0": 5000, "up_ss13 #0": 300}
        got = {f.split(":")[0]: f for f in failures}
        self.assertEqual(sorted(got), sorted(want), "\n".join(failures))
        for name, off in want.items():
            self.assertIn("down: first difference at offset %d" % off, got[name])


def wait_until_quiet(pred, timeout):
    """pred() true within timeout (seconds): True, else False."""
    try:
        wait_until(pred, timeout, interval=0.01, what="condition")
        return True
    except AssertionError:
        return False


if __name__ == "__main__":
    unittest.main()
