"""The binary that runs is always a proven one: the master re-executes
exactly the file its new worker generation was started from (not whatever
was installed at the path meanwhile), a worker that crashes is replaced from
the serving generation's binary (not a broken file left at the path by a
refused upgrade), a new binary must pass a dry run on the master's state
before the master re-executes into it, and the deadline for killing a wedged
draining worker survives re-executions."""

import os
import shlex
import signal
import threading
import time
import unittest

from baton_harness import (BATON_BIN, BATON_NEXT_BIN, binary_version, connect,
                           install_binary, install_script, pid_alive, wait_until)
from test_regressions import stop_process
from test_upgrade import UpgradeBase, echo_ok, echo_once


class ProvenBinaryTest(UpgradeBase):

    def setUp(self):
        super().setUp()
        if not BATON_NEXT_BIN or not os.path.isfile(BATON_NEXT_BIN):
            self.skipTest("BATON_NEXT_BIN not set")
        self.v, self.vn = binary_version(BATON_BIN), binary_version(BATON_NEXT_BIN)

    def reload_async(self, b):
        """Starts `-s reload` in a thread; returns a function giving its result."""
        box = {}
        t = threading.Thread(target=lambda: box.setdefault("r", b.ctl("reload", timeout=90)))
        t.start()

        def result():
            t.join(120)
            self.assertIn("r", box, "the reload client did not finish")
            return box["r"]
        return result

    def test_second_install_during_upgrade_is_not_executed(self):
        """A wrapper holds the new worker's start-up until a second, broken
        install has landed at the path; the master must still re-execute
        the file the worker proved, and stay up."""
        echo = self.echo_server()
        b, cfg, exe = self.start_copied([echo])
        addr = b.listener_addr("web")
        gate, started = os.path.join(self.tmp, "gate"), os.path.join(self.tmp, "started")
        install_script(exe, ': > %s\nwhile [ ! -e %s ]; do sleep 0.02; done\nexec %s "$@"\n'
                       % (shlex.quote(started), shlex.quote(gate),
                          shlex.quote(BATON_NEXT_BIN)))
        result = self.reload_async(b)
        # The new worker runs the wrapper: the file it was started from.
        wait_until(lambda: os.path.exists(started), 30, what="the new worker to start")
        # The second install: a file that executes fine and then exits.
        install_script(exe, "exit 3\n")
        with open(gate, "w"):
            pass
        r = result()
        self.assertEqual(r.returncode, 0, "reload: %r %r" % (r.stdout, r.stderr))
        self.assertRegex(r.stdout, r"(?m)^master pid %d now runs baton %s$"
                         % (b.pid, self.vn.replace(".", r"\.")))
        self.assertTrue(pid_alive(b.pid), "the master died")
        st = b.status()
        self.assertEqual(st["baton"].get("version"), self.vn)
        self.assertEqual(echo_once(addr, b"after"), b"after")
        # The broken file is only tried by the next reload, and refused.
        r = b.ctl("reload", timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertTrue(pid_alive(b.pid), "the master died at the refused reload")
        self.assertEqual(echo_once(addr, b"still"), b"still")

    def test_respawn_after_refused_upgrade_runs_serving_binary(self):
        """A refused upgrade leaves a broken file at the path; a crash of the
        serving worker must be repaired from the binary it ran."""
        echo = self.echo_server()
        b, cfg, exe = self.start_copied([echo])
        addr = b.listener_addr("web")
        install_script(exe, "exit 3\n")
        r = b.ctl("reload", timeout=60)
        self.assertNotEqual(r.returncode, 0, "the broken binary was accepted: %r" % r.stdout)
        w1, g1 = b.current_worker()
        mark = b.mark()
        os.kill(w1, signal.SIGKILL)
        b.wait_for_log(r"^worker (?!%d)\d+ generation \d+ ready" % w1, start=mark, timeout=30)
        w2, g2 = b.current_worker()
        self.assertNotEqual(w2, w1)
        self.assertEqual(echo_once(addr, b"repaired"), b"repaired")
        self.assertEqual([w["version"] for w in b.status()["worker"]], [self.v])

    def test_dry_run_refusal_keeps_the_master(self):
        """A binary whose worker runs but which cannot resume the master's
        state (here: a wrapper that fails only the dry run) never replaces
        the running master."""
        echo = self.echo_server()
        b, cfg, exe = self.start_copied([echo])
        addr = b.listener_addr("web")
        install_script(exe, 'case "$1" in --check-master-state) echo "no: test" >&2; '
                       'exit 4;; esac\nexec %s "$@"\n' % shlex.quote(BATON_NEXT_BIN))
        mark = b.mark()
        r = b.ctl("reload", timeout=60)
        self.assertEqual(r.returncode, 0, "reload: %r %r" % (r.stdout, r.stderr))
        self.assertIn("the master kept its old binary", r.stdout)
        b.wait_for_log(r"^master: the new binary cannot resume this master \(dry run: exited "
                       r"with status 4\); keeping the running binary", start=mark)
        self.assertFalse(b.find_log(r"re-executing", start=mark))
        st = b.status()
        self.assertEqual(st["baton"].get("version"), self.v)
        # The generation the reload replaced may still be listed while it
        # exits; what matters is which binary serves.
        active = [w["version"] for w in st["worker"] if w.get("state") == "active"]
        self.assertEqual(active, [self.vn], st["worker"])
        self.assertEqual(echo_once(addr, b"kept"), b"kept")

    def test_drain_deadline_survives_reexec(self):
        """A wedged draining worker is killed drain_timeout + 10 s after it
        was told to drain, however many times the master re-executes in
        between (each re-exec used to start the clock again)."""
        echo = self.echo_server()
        b, cfg, exe = self.start_copied([echo], glob={"drain_timeout": "1s"})
        addr = b.listener_addr("web")
        held = connect(addr)
        self.addCleanup(held.close)
        self.assertTrue(echo_ok(held, b"held by the first worker"))
        w1, g1 = b.current_worker()
        stop_process(self, w1)
        bins = [BATON_NEXT_BIN, BATON_BIN]
        reexecs, t0 = 0, time.monotonic()
        # The deadline is 11 s after the first reload; re-executions come
        # every couple of seconds, well inside it, for up to 40 s.
        while pid_alive(w1) and time.monotonic() - t0 < 40:
            install_binary(bins[reexecs % 2], exe)
            _, _, out = self.reload_ok(b)
            self.assertIn("now runs baton", out)
            reexecs += 1
            time.sleep(0.2)   # pacing only: a few upgrades a second are plenty
        self.assertFalse(pid_alive(w1), "the wedged worker outlived %d re-executions" % reexecs)
        self.assertGreaterEqual(reexecs, 3)
        b.wait_for_log(r"^worker %d generation %d still running \d+ ms after it was told to "
                       r"drain; killing it" % (w1, g1))
        self.assertEqual(echo_once(addr, b"after"), b"after")


if __name__ == "__main__":
    unittest.main()
