"""Protocol tolerance across releases: a peer of a newer release may send
what this one does not know.  baton-testpeer (proxy/testpeer.h) is such a
peer.  Its worker answers the master's offer of capabilities with an unknown
HELLO extension, sends a message of an unknown type after READY and, when
its environment asks, one flagged must-understand after HELLO.  Its master
sends each new worker an unknown type before START and after, the first
flagged must-understand when asked.  The production master is upgraded to it
in place: unknown extensions and types are skipped with one warning each
while traffic flows, and a must-understand message refuses the reload (the
running generation keeps serving)."""

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
ENV_MASTER_MUST = "BATON_TESTPEER_MASTER_MUST_UNDERSTAND"


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


def wait_transfers(traffic, what, n=5):
    """Waits until n more transfers succeeded (or one failed)."""
    done = traffic.ok
    wait_until(lambda: traffic.ok >= done + n or traffic.failures, 60,
               what="transfers " + what)


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

    def refused_reload(self, b, addr, why):
        """A reload under sha256-checked traffic must be refused with a
        reason matching `why`, and the traffic never notice.  Returns the
        log mark taken before it."""
        mark = b.mark()
        traffic = HashedTraffic(addr)
        try:
            r = b.ctl("reload", timeout=60)
            self.assertNotEqual(r.returncode, 0, "the reload was accepted: %r" % r.stdout)
            self.assertEqual(r.stdout, "")
            self.assertRegex(r.stderr, r"^reload failed: " + why + "$")
            b.wait_for_log(r"^reload failed: .*; the running generation keeps serving$",
                           start=mark)
            wait_transfers(traffic, "after the refused reload")
        finally:
            ok, failures = traffic.stop()
        self.assertEqual(failures, [], "transfers failed around the refused reload")
        self.assertGreater(ok, 0)
        return mark

    def assert_transfer(self, addr, size, seed):
        self.assertIsNone(transfer(addr, size, seed), "echo through baton changed the bytes")

    def test_unknown_extension_and_type_skipped(self):
        echo = self.echo_server()
        b, exe = self.start_production([echo])
        addr = b.listener_addr("web")
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
            wait_transfers(traffic, "after the upgrade")
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

        # Now the master is the test peer: the next worker (this tree's
        # worker code) skips its two unknown messages, in start-up and after.
        mark = b.mark()
        traffic = HashedTraffic(addr)
        try:
            g3, w3, out = self.reload_ok(b)
            skip = (r"^worker generation %d: skipped message type %d \(\d+ bytes\) from master "
                    r"%d, unknown to this worker \(baton %s\)$"
                    % (g3, TYPE, b.pid, re.escape(self.vt)))
            b.wait_for_log(skip, start=mark, count=2)
            wait_transfers(traffic, "after the second reload")
        finally:
            ok, failures = traffic.stop()
        self.assertEqual(failures, [], "transfers failed during the second reload")
        self.assertEqual(len(b.find_log(skip, start=mark)), 2)
        active = [int(w["pid"]) for w in b.status()["worker"] if w.get("state") == "active"]
        self.assertEqual(active, [w3])
        self.assert_transfer(addr, 150 * 1024, b"last")

    def test_must_understand_refuses_the_reload(self):
        echo = self.echo_server()
        b, exe = self.start_production([echo], env={ENV_MUST: "1"})
        addr = b.listener_addr("web")
        w1, g1 = b.current_worker()
        install_binary(TESTPEER_BIN, exe)
        mark = self.refused_reload(
            b, addr, r"new worker \d+ generation %d killed by signal 9 \(\w+\): it sent message "
            r"type %d flagged must-understand, unknown to this master \(baton %s\)"
            % (g1 + 1, TYPE_MUST, re.escape(self.v)))
        b.wait_for_log(r"^worker \d+ generation %d: it sent message type %d flagged "
                       r"must-understand, unknown to this master \(baton %s\); stopping it$"
                       % (g1 + 1, TYPE_MUST, re.escape(self.v)), start=mark)
        # The old generation serves on, under the old master binary.
        st = b.status()
        self.assertEqual(st["baton"].get("version"), self.v)
        self.assertEqual([(int(w["pid"]), w["generation"], w["state"], w["version"])
                          for w in st["worker"]], [(w1, str(g1), "active", self.v)])
        self.assertTrue(pid_alive(w1))
        self.assertFalse(b.find_log(r"re-executing", start=mark))
        self.assert_transfer(addr, 150 * 1024, b"after")

    def test_worker_refuses_must_understand_from_master(self):
        """A worker given a message it must understand and does not says so
        in FAILED and exits 1: the reload is refused with its reason."""
        echo = self.echo_server()
        b, exe = self.start_production([echo], env={ENV_MASTER_MUST: "1"})
        addr = b.listener_addr("web")
        install_binary(TESTPEER_BIN, exe)
        g2, w2, out = self.reload_ok(b)
        self.assertIn("now runs baton %s" % self.vt, out)
        self.refused_reload(
            b, addr, r"new worker \d+ generation %d exited with status 1: waiting for "
            r"listeners: master %d sent message type %d flagged must-understand, unknown to "
            r"this worker \(baton %s\)" % (g2 + 1, b.pid, TYPE_MUST, re.escape(self.vt)))
        st = b.status()
        self.assertEqual([(int(w["pid"]), w["state"]) for w in st["worker"]], [(w2, "active")])
        self.assert_transfer(addr, 150 * 1024, b"after")


if __name__ == "__main__":
    unittest.main()
