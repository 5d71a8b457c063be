"""Upgrades across releases: the previous release (tests/previous-release,
built from this repository's history by tools/build-previous.sh) is upgraded
in place to this tree and back, with live traffic.  Going up, the master
follows the new binary.  Going back, the old release serves as the worker,
but it cannot resume this master's state (it does not know the dry run), so
the master keeps the newer binary: never a master that cannot resume."""

import os
import subprocess
import unittest

from baton_harness import (BATON_BIN, BATON_SOURCE_DIR, ClientLoop, PKITestCase, binary_version,
                           client_context, connect, install_binary, pseudo_random, recv_exact,
                           start_baton_command, tls_connect)
from test_upgrade import UpgradeBase, echo_ok, echo_once

PREVIOUS_DIR = os.environ.get("BATON_PREVIOUS_DIR", "")


def previous_rev(key):
    """A commit named in tests/previous-release (`key=SHA`)."""
    with open(os.path.join(BATON_SOURCE_DIR, "tests", "previous-release")) as f:
        for line in f:
            if line.startswith(key + "="):
                return line.split("=", 1)[1].strip()
    raise AssertionError("tests/previous-release names no %s" % key)


def build_previous(key="commit"):
    """Path of the previous release's binary (or of another commit named in
    tests/previous-release), built (once) by the project script; raises
    SkipTest only when the clone has no history."""
    script = os.path.join(BATON_SOURCE_DIR, "tools", "build-previous.sh")
    where = PREVIOUS_DIR if key == "commit" else PREVIOUS_DIR + "-" + key
    r = subprocess.run([script, where, previous_rev(key)], capture_output=True, text=True,
                       timeout=900)
    if r.returncode == 3:
        raise unittest.SkipTest(r.stderr.strip())
    if r.returncode != 0:
        raise AssertionError("building the previous release failed:\n" + r.stderr)
    return r.stdout.strip().splitlines()[-1]


class Traffic(ClientLoop):
    """Short echo connections, one after another, until stopped (bounded
    by `limit` seconds); every failure is recorded."""

    def __init__(self, addr, limit=120):
        self.addr = addr
        super().__init__(self.echo, limit)

    def echo(self, n):
        msg = pseudo_random(512 + n % 4096, seed=b"x%d" % n)
        got = echo_once(self.addr, msg)
        if got != msg:
            return "connection %d: %d bytes back, expected %d" % (n, len(got), len(msg))
        return None


class CrossVersionTest(UpgradeBase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not PREVIOUS_DIR:
            raise unittest.SkipTest("BATON_PREVIOUS_DIR not set (run through ctest)")
        cls.previous = build_previous()

    def test_previous_release_up_and_back(self):
        v_prev, v_cur = binary_version(self.previous), binary_version(BATON_BIN)
        self.assertNotEqual(v_prev, v_cur, "the previous release must report another version")
        echo = self.echo_server()
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir, exist_ok=True)
        exe = os.path.join(bindir, "baton")
        install_binary(self.previous, exe)
        cfg = self.make_config([echo], glob={"drain_timeout": "120s"})
        b = start_baton_command(self, cfg, binary=exe)
        addr = b.listener_addr("web")
        self.assertEqual(b.status()["baton"].get("version"), v_prev)
        held = connect(addr)
        self.addCleanup(held.close)
        self.assertTrue(echo_ok(held, b"held across both upgrades"))
        traffic = Traffic(addr)
        try:
            # Up: the previous master re-executes into this tree's binary.
            install_binary(BATON_BIN, exe)
            _, _, out = self.reload_ok(b)
            self.assertRegex(out, r"(?m)^master pid %d now runs baton %s$"
                             % (b.pid, v_cur.replace(".", r"\.")))
            st = b.status()
            self.assertEqual(st["baton"].get("version"), v_cur)
            self.assertTrue(echo_ok(held, b"after the upgrade"))
            # Back: the old release serves as the worker; the master stays.
            install_binary(self.previous, exe)
            mark = b.mark()
            r = b.ctl("reload", timeout=60)
            self.assertEqual(r.returncode, 0, "reload: %r %r" % (r.stdout, r.stderr))
            self.assertRegex(r.stdout, r"^reloaded: generation \d+ worker pid \d+ "
                             r"\(the master kept its old binary\)$")
            b.wait_for_log(r"^master: the new binary cannot resume this master \(dry run: ",
                           start=mark)
            st = b.status()
            self.assertEqual(st["baton"].get("version"), v_cur)
            active = [w for w in st["worker"] if w.get("state") == "active"]
            self.assertEqual([w["version"] for w in active], [v_prev])
            self.assertTrue(echo_ok(held, b"after going back"))
            # And up again.
            install_binary(BATON_BIN, exe)
            self.reload_ok(b)
            active = [w for w in b.status()["worker"] if w.get("state") == "active"]
            self.assertEqual([w["version"] for w in active], [v_cur])
        finally:
            ok, failures = traffic.stop()
        self.assertEqual(failures, [], "failed connections during the upgrades")
        # Both releases understood every message the other sent.
        bad = [m.string for m in b.find_log(r"bad [A-Z_]+( from master)?:")]
        self.assertEqual(bad, [], "messages one release could not read from the other")
        self.assertGreater(ok, 0)
        self.assertTrue(echo_ok(held, b"last words"))


class TLSCapabilityTest(PKITestCase, UpgradeBase):
    """0.2.x moves plain connections but not TLS state (no HANDOFF_CAP_TLS):
    across that boundary, in either direction, a TLS connection stays with
    the worker that has it and drains there, intact; between two releases
    that both have the capability it moves."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not PREVIOUS_DIR:
            raise unittest.SkipTest("BATON_PREVIOUS_DIR not set (run through ctest)")
        cls.conns_release = build_previous("conns_commit")

    def tls_echo(self, s, msg):
        s.sendall(msg)
        return recv_exact(s, len(msg), 20) == msg

    def handoff_line(self, b, mark):
        m = b.wait_for_log(r"handoff: \d+ connection\(s\) moved to generation \d+, "
                           r"\d+ left to drain", start=mark)
        return m.string

    def test_tls_drains_across_the_capability_and_moves_within_it(self):
        v_prev, v_cur = binary_version(self.conns_release), binary_version(BATON_BIN)
        self.assertNotEqual(v_prev, v_cur)
        echo = self.echo_server()
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir, exist_ok=True)
        exe = os.path.join(bindir, "baton")
        install_binary(self.conns_release, exe)
        listener = {"tls": "on", "tls_cert": self.pki.certs["www-ecdsa"]["cert"],
                    "tls_key": self.pki.certs["www-ecdsa"]["key"]}
        cfg = self.make_config([echo], listener=listener, glob={"drain_timeout": "120s"})
        b = start_baton_command(self, cfg, binary=exe)
        addr = b.listener_addr("web")
        ctx = client_context(cafile=self.pki.cas["Test CA"]["cert"])
        old = tls_connect(addr, ctx, server_hostname="www.example.test", timeout=20)
        self.addCleanup(old.close)
        self.assertTrue(self.tls_echo(old, b"on 0.2"))

        # Up to this tree: the 0.2 worker cannot give TLS state; it keeps the
        # connection and drains it.
        install_binary(BATON_BIN, exe)
        mark = b.mark()
        self.reload_ok(b)
        line = self.handoff_line(b, mark)
        self.assertRegex(line, r"handoff: 0 connection\(s\) moved to generation \d+, 1 left "
                               r"to drain")
        self.assertTrue(self.tls_echo(old, b"still served by 0.2"))

        # Within the capability: a TLS connection moves.
        new = tls_connect(addr, ctx, server_hostname="www.example.test", timeout=20)
        self.addCleanup(new.close)
        self.assertTrue(self.tls_echo(new, b"on this tree"))
        mark = b.mark()
        self.reload_ok(b)
        self.assertRegex(self.handoff_line(b, mark), r"handoff: 1 connection\(s\) moved")
        self.assertTrue(self.tls_echo(new, b"moved"))

        # Back to 0.2: the taker cannot take TLS state, so nothing is sent
        # that it would refuse; the connection drains where it is.
        install_binary(self.conns_release, exe)
        mark = b.mark()
        r = b.ctl("reload", timeout=60)
        self.assertEqual(r.returncode, 0, "reload: %r %r" % (r.stdout, r.stderr))
        self.assertRegex(self.handoff_line(b, mark), r"handoff: 0 connection\(s\) moved to "
                                                     r"generation \d+, 1 left to drain")
        self.assertEqual([m.string for m in b.find_log(r"refused", start=mark)], [])
        self.assertTrue(self.tls_echo(new, b"still here"))
        self.assertTrue(self.tls_echo(old, b"and the first one"))
        for s in (old, new):
            s.unwrap()
            s.close()
        acc = b.wait_access(2)
        self.assertEqual(sorted(a["handoffs"] for a in acc), ["0", "1"], acc)
        bad = [m.string for m in b.find_log(r"bad [A-Z_]+( from master)?:")]
        self.assertEqual(bad, [], "messages one release could not read from the other")


if __name__ == "__main__":
    unittest.main()
