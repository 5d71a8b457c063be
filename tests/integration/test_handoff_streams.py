"""Long-lived connections of every kind (tests/integration/streams.py) stay
intact, byte for byte in each direction, across ten reloads that alternate
configuration reloads and binary upgrades; and the same checks do report
connections a short drain_timeout cuts (the negative control: the clients
can fail).

Today's binary drains: the old worker keeps its connections until they end
(drain_timeout is long here).  With the live handoff engine, run with
BATON_TEST_HANDOFF=live: the configuration then says `handoff = live`, and
each old worker must log its handoff line and exit at once.  The negative
control always asks for drain mode (it writes `handoff = drain` whenever
the key exists)."""

import os
import re
import unittest

from baton_harness import (BATON_BIN, BATON_NEXT_BIN, HANDOFF_MODE, HANDOFF_RE, PKITestCase,
                           client_context, install_binary, pid_alive, render_config,
                           server_context, start_baton_command, wait_until, handoff_global)
from streams import (CorruptingServer, GateServer, KINDS, Params, StreamServer, StreamSet,
                     TLSStreamServer)

# connections per kind: enough of each to see one go wrong, few enough for
# a shared two-core machine (and an ASan build)
COUNTS = {"echo": 6, "idle": 6, "half_client": 2, "half_server": 2, "slow": 2, "bulk": 1,
          "tls": 3, "proxy_partial": 2, "hello_partial": 2,
          # one: its gate admits one connection per SYN retransmission round
          "connecting": 1}
PASS_HOST = "default.pass.test"
# still in setup (PROXY header, ClientHello, server connect) during the reloads
SETUP_KINDS = ("proxy_partial", "hello_partial", "connecting")
ESTABLISHED = sum(n for k, n in COUNTS.items() if k not in SETUP_KINDS)
RELOADS = 50


class HandoffStreamsTest(PKITestCase):

    def setUp(self):
        super().setUp()
        if not BATON_NEXT_BIN or not os.path.isfile(BATON_NEXT_BIN):
            self.skipTest("BATON_NEXT_BIN not set")
        self.params = Params(bulk_rate=3 << 20, bulk_min=24 << 20)
        self.srv = StreamServer(params=self.params)
        self.addCleanup(self.srv.close)
        self.tls_srv = TLSStreamServer(server_context(self.pki.certs["plain"]))
        self.addCleanup(self.tls_srv.close)
        self.gate = GateServer(self.srv)
        self.addCleanup(self.gate.close)

    def config(self, drain_timeout, mode=None, comment=""):
        g = {"threads": 2, "control": self.control_path(), "log_level": "info",
             "access_log": "stderr", "drain_timeout": drain_timeout}
        g.update(handoff_global(mode))
        text = render_config({
            "global": g,
            "listener plain": {"bind": "127.0.0.1:0", "backend": "plain"},
            "listener proxied": {"bind": "127.0.0.1:0", "backend": "plain",
                                 "accept_proxy": "on", "proxy_timeout": "120s"},
            "listener pass": {"bind": "127.0.0.1:0", "backend": "tls", "tls": "passthrough",
                              "tls_handshake_timeout": "120s"},
            "listener gated": {"bind": "127.0.0.1:0", "backend": "gated"},
            "backend plain": {"server": self.srv.server_line()},
            # its connects stay in progress until the gate opens at stop
            "backend gated": {"server": self.gate.server_line(), "connect_timeout": "120s",
                              "retries": 0},
            "backend tls": {"server": self.tls_srv.server_line()},
        })
        return text + ("# %s\n" % comment if comment else "")

    def start(self, drain_timeout, mode=None):
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir, exist_ok=True)
        exe = os.path.join(bindir, "baton")
        install_binary(BATON_BIN, exe)
        b = start_baton_command(self, self.config(drain_timeout, mode), binary=exe)
        streams = StreamSet(plain=b.listener_addr("plain"), proxy=b.listener_addr("proxied"),
                            tls=b.listener_addr("pass"), gated=b.listener_addr("gated"),
                            gate=self.gate, server=self.srv,
                            tls_server=self.tls_srv, params=self.params,
                            client_ctx=client_context(cafile=self.pki.cas["Test CA"]["cert"]),
                            server_hostname=PASS_HOST)
        self.addCleanup(streams.close)
        for kind in KINDS:
            streams.start(kind, COUNTS[kind])
        # every stream under way: bytes flowed (or, for the setup kinds, the
        # partial handshake is in baton's hands: it accepted them)
        streams.wait_progress(
            lambda p: all(p.get(k, {}).get("conns") == COUNTS[k] for k in KINDS) and
            all(p[k]["up"] + p[k]["down"] > 0 for k in ("echo", "half_client", "half_server",
                                                         "slow", "bulk", "tls")),
            30, "every stream under way")
        wait_until(lambda: self.accepted(b) >= sum(COUNTS.values()), 30,
                   what="baton holding every connection")
        return b, exe, streams

    @staticmethod
    def accepted(b):
        st = b.status()
        return sum(int(w.get("connections", 0)) for w in st["worker"])

    def reload(self, b, what):
        r = b.ctl("reload", timeout=90)
        self.assertEqual(r.returncode, 0, "%s: stdout=%r stderr=%r" % (what, r.stdout, r.stderr))
        m = re.search(r"^reloaded: generation (\d+) worker pid (\d+)$", r.stdout, re.M)
        self.assertIsNotNone(m, "%s: %r" % (what, r.stdout))
        return int(m.group(1)), r.stdout

    def test_streams_intact_across_reloads_and_upgrades(self):
        b, exe, streams = self.start("120s")
        before = streams.progress()
        bins = [BATON_NEXT_BIN, BATON_BIN]
        for i in range(RELOADS):
            old_pid, old_gen = b.current_worker()
            mark = b.mark()
            if i % 2:
                install_binary(bins[(i // 2) % 2], exe)
                gen, out = self.reload(b, "upgrade %d" % i)
                self.assertIn("now runs baton", out, "upgrade %d did not re-execute" % i)
            else:
                with open(b.config_path, "w") as f:
                    f.write(self.config("120s", comment="reload %d" % i))
                gen, out = self.reload(b, "reload %d" % i)
            if HANDOFF_MODE == "live":
                # every established connection moves; those still in setup
                # may stay behind to drain, and a worker left with none
                # exits at once
                m = b.wait_for_log(HANDOFF_RE, start=mark)
                self.assertEqual(int(m.group("gen")), gen, m.group(0))
                self.assertGreaterEqual(int(m.group("moved")), ESTABLISHED, m.group(0))
                if m.group("left") == "0":
                    wait_until(lambda: not pid_alive(old_pid), 2,
                               what="worker %d to exit after its handoff" % old_pid)
            p = streams.progress()
            failed = {k: v["failed"] for k, v in p.items() if v["failed"]}
            self.assertFalse(failed, "streams broken after reload %d: %s; %s"
                             % (i, failed, streams.verify()[:5]))
        # the streams kept flowing through the reloads
        streams.wait_progress(
            lambda p: all(p[k]["up"] > before[k]["up"] for k in ("echo", "half_server", "tls"))
            and p["bulk"]["down"] > before["bulk"]["down"]
            and p["half_client"]["down"] > before["half_client"]["down"],
            20, "the streams to move on after the reloads")
        # the gated streams' connects were in progress through every reload
        self.assertFalse([k for k in self.srv.records if k[0] == "connecting"],
                         "a connection reached the gated backend before its gate opened")
        streams.stop()
        failures = streams.verify()
        self.assertEqual(failures, [], "%d connection(s) not intact:\n%s"
                         % (len(failures), "\n".join(failures)))
        if HANDOFF_MODE == "live":
            # the plain listener's streams were established through every reload
            lines = b.wait_access(sum(COUNTS[k] for k in ("echo", "idle", "half_client",
                                                          "half_server", "slow", "bulk")),
                                  pred=lambda a: a.get("listener") == "plain")
            self.assertEqual({a.get("handoffs") for a in lines}, {str(RELOADS)}, lines)

    def test_negative_control_short_drain_cuts_are_reported(self):
        """drain_timeout 1 s in drain mode: the old worker cuts every stream,
        and the clients must say so for each connection."""
        b, exe, streams = self.start("1s", mode="drain")
        old_pid, _ = b.current_worker()
        self.reload(b, "reload")
        wait_until(lambda: not pid_alive(old_pid), 20, what="the old worker to exit")
        b.wait_for_log(r"drain_timeout|drain timeout", timeout=5)
        streams.stop(timeout=30)
        failures = streams.verify()
        total = sum(COUNTS.values())
        self.assertEqual(len(failures), total,
                         "expected every connection reported as cut, got:\n%s"
                         % "\n".join(failures))
        for kind in KINDS:
            self.assertTrue([f for f in failures if f.startswith(kind + " #")],
                            "no failure reported for kind %s" % kind)


class StreamChecksTest(unittest.TestCase):
    """The checks themselves, without baton: a byte changed on the way is
    reported with its stream and offset, in both directions of an echo."""

    def test_changed_byte_is_reported_with_its_offset(self):
        p = Params(slow_bytes=1 << 20, bulk_min=2 << 20)
        srv = CorruptingServer({("echo", 1): 500}, params=p)
        self.addCleanup(srv.close)
        streams = StreamSet(plain=srv.addr, server=srv, params=p)
        self.addCleanup(streams.close)
        streams.start("echo", 3)
        streams.start("half_server", 1)
        streams.wait_progress(
            lambda q: min(q.get(k, {}).get("up", 0) for k in ("echo", "half_server")) > 2000,
            20, "the streams under way")
        streams.stop()
        failures = streams.verify()
        self.assertEqual(len(failures), 1, failures)
        self.assertRegex(failures[0], r"^echo #1: .*down: first difference at offset 500; "
                                      r"up: first difference at offset 500; up: sent \d+ bytes")


if __name__ == "__main__":
    unittest.main()
