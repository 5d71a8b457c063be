"""Protocol tolerance across releases: a worker of a newer release may send
what this master does not know.  baton-testpeer (proxy/testpeer.h) is such a
worker: it answers the master's offer of capabilities with an unknown HELLO
extension, sends a message of an unknown type after READY and, when its
environment asks, one flagged must-understand before READY.  The production
master is upgraded to it in place: the unknown extension and type are
skipped with one warning each while traffic flows, and the must-understand
message refuses the reload (the running generation keeps serving)."""

import os
import re
import unittest

from baton_harness import (BATON_BIN, ClientLoop, binary_version, echo_duplex,
                           install_binary, pid_alive, pseudo_random, sha256_hex,
                           start_baton_command, wait_until)
from test_upgrade import UpgradeBase

TESTPEER_BIN = os.environ.get("BATON_TESTPEER_BIN", "")
# proxy/testpeer.h
EXT_TAG, TYPE, TYPE_MUST = 0x7E57, 0x7E57, 0x7E58
ENV_MUST = "BATON_TESTPEER_MUST_UNDERSTAND"


def transfer(addr, size, seed):
    """One echo connection carrying `size` pseudo-random bytes: None if
    they came back whole (length and sha256), else what differed."""
    data = pseudo_random(size, seed=seed)
    got, want = echo_duplex(addr, data), (size, sha256_hex(data))
    if got != want:
        return "%d bytes sha256 %s back, sent %d bytes sha256 %s" % (got + want)
    return None


class HashedTraffic(ClientLoop):
    """Echo transfers of 1 KiB to 192 KiB, one after another, each checked
    by length and sha256, until stopped (bounded by `limit` seconds)."""

    def __init__(self, addr, limit=120):
        self.addr = addr
        super().__init__(self.transfer, limit)

    def transfer(self, n):
        failure = transfer(self.addr, 1024 + (n * 37 * 1024) % (192 * 1024), b"t%d" % n)
        return None if failure is None else "transfer %d: %s" % (n, failure)


class ProtocolToleranceTest(UpgradeBase):

    def setUp(self):
        super().setUp()
        if not TESTPEER_BIN or not os.path.isfile(TESTPEER_BIN):
            self.skipTest("BATON_TESTPEER_BIN not set (run through ctest)")
        self.v, self.vt = binary_version(BATON_BIN), binary_version(TESTPEER_BIN)
        self.assertEqual(self.vt, self.v + "-testpeer")

    def start_production(self, servers, env=None):
        """The production binary from a private path (replaced later)."""
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir, exist_ok=True)
        exe = os.path.join(bindir, "baton")
        install_binary(BATON_BIN, exe)
        cfg = self.make_config(servers, glob={"drain_timeout": "60s"})
        b = start_baton_command(self, cfg, binary=exe, extra_env=env)
        return b, exe

    def assert_transfer(self, addr, size, seed):
        self.assertIsNone(transfer(addr, size, seed), "echo through baton changed the bytes")

    def test_unknown_extension_and_type_skipped(self):
        echo = self.echo_server()
        b, exe = self.start_production([echo])
        addr = b.listener_addr("web")
        w1, g1 = b.current_worker()
        self.assert_transfer(addr, 100 * 1024, b"before")
        traffic = HashedTraffic(addr)
        try:
            install_binary(TESTPEER_BIN, exe)
            mark = b.mark()
            g2, w2, out = self.reload_ok(b)
            self.assertRegex(out, r"(?m)^master pid %d now runs baton %s$"
                             % (b.pid, re.escape(self.vt)))
            ext = (r"^worker %d generation %d: skipped 1 HELLO extension\(s\) unknown to this "
                   r"master \(the first: tag %d\)$" % (w2, g2, EXT_TAG))
            typ = (r"^worker %d generation %d: skipped message type %d \(\d+ bytes\), unknown "
                   r"to this master \(baton [^)]+\)$" % (w2, g2, TYPE))
            b.wait_for_log(ext, start=mark)
            b.wait_for_log(typ, start=mark)
            b.wait_for_log(r"^master %d resumed as baton %s\b" % (b.pid, re.escape(self.vt)),
                           start=mark)
            # Traffic keeps flowing through the new worker, which stays up.
            done = traffic.ok
            wait_until(lambda: traffic.ok >= done + 5 or traffic.failures, 60,
                       what="transfers after the upgrade")
            self.assertTrue(pid_alive(w2), "the worker that sent the unknown message died")
            st = b.status()
            self.assertEqual(st["baton"].get("version"), self.vt)
            active = [(int(w["pid"]), w["version"]) for w in st["worker"]
                      if w.get("state") == "active"]
            self.assertEqual(active, [(w2, self.vt)])
        finally:
            ok, failures = traffic.stop()
        self.assertEqual(failures, [], "transfers failed during the upgrade")
        self.assertGreater(ok, 0)
        self.assert_transfer(addr, 150 * 1024, b"after")
        # Each was warned about once, and nothing was taken as broken.
        self.assertEqual(len(b.find_log(ext, start=mark)), 1)
        self.assertEqual(len(b.find_log(typ, start=mark)), 1)
        self.assertEqual(b.find_log(r"malformed|bad HELLO|must-understand|stopping it",
                                    start=mark), [])
        self.assertEqual(b.find_log(r"^worker %d generation %d (exited|killed)" % (w2, g2),
                                    start=mark), [])

    def test_must_understand_refuses_the_reload(self):
        echo = self.echo_server()
        b, exe = self.start_production([echo], env={ENV_MUST: "1"})
        addr = b.listener_addr("web")
        w1, g1 = b.current_worker()
        traffic = HashedTraffic(addr)
        try:
            install_binary(TESTPEER_BIN, exe)
            mark = b.mark()
            r = b.ctl("reload", timeout=60)
            self.assertNotEqual(r.returncode, 0, "the reload was accepted: %r" % r.stdout)
            self.assertEqual(r.stdout, "")
            self.assertRegex(r.stderr, r"^reload failed: new worker \d+ generation %d .*: it "
                             r"sent message type %d flagged must-understand, unknown to this "
                             r"master \(baton %s\)$" % (g1 + 1, TYPE_MUST, re.escape(self.v)))
            b.wait_for_log(r"^worker \d+ generation %d: it sent message type %d flagged "
                           r"must-understand, unknown to this master \(baton %s\); stopping it$"
                           % (g1 + 1, TYPE_MUST, re.escape(self.v)), start=mark)
            b.wait_for_log(r"^reload failed: .*; the running generation keeps serving$",
                           start=mark)
            done = traffic.ok
            wait_until(lambda: traffic.ok >= done + 5 or traffic.failures, 60,
                       what="transfers after the refused reload")
        finally:
            ok, failures = traffic.stop()
        self.assertEqual(failures, [], "transfers failed around the refused reload")
        self.assertGreater(ok, 0)
        # The old generation serves on, under the old master binary.
        st = b.status()
        self.assertEqual(st["baton"].get("version"), self.v)
        self.assertEqual([(int(w["pid"]), w["generation"], w["state"], w["version"])
                          for w in st["worker"]], [(w1, str(g1), "active", self.v)])
        self.assertTrue(pid_alive(w1))
        self.assertFalse(b.find_log(r"re-executing", start=mark))
        self.assert_transfer(addr, 150 * 1024, b"after")


if __name__ == "__main__":
    unittest.main()
