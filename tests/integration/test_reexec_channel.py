"""A master that re-executes itself keeps track of a worker generation
whose channel had already closed while its process was not yet reaped (the
soak saw it: a draining worker exiting in the moment of an upgrade).  Before,
the new image dropped it ("lost its channel"): an untracked child, never
logged when it ended, and an active generation lost that way would never be
replaced."""

import os
import re
import sys
import unittest

from baton_harness import (BATON_BIN, BATON_NEXT_BIN, BatonTestCase, binary_version,
                           fd_count, install_binary, install_script, pid_alive,
                           start_baton_command, wait_until)
from test_upgrade import echo_once

# Runs a worker as its own child and closes its copy of the channel, so the
# worker's death closes the channel while the master's child (this wrapper)
# lives on until RELEASE exists.  Every other role execs the real binary.
WRAPPER = """#!%(python)s
import os, sys, time
REAL, RELEASE = %(real)r, %(release)r
if sys.argv[1:2] == ["--worker"]:
    pid = os.fork()
    if pid == 0:
        os.execv(REAL, [REAL] + sys.argv[1:])
    os.close(int(sys.argv[2]))
    os.waitpid(pid, 0)
    deadline = time.monotonic() + 120
    while not os.path.exists(RELEASE) and time.monotonic() < deadline:
        time.sleep(0.02)
    sys.exit(0)
os.execv(REAL, [REAL] + sys.argv[1:])
"""


def child_pids(pid):
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as f:
            out += [int(x) for x in f.read().split()]
    return out


class ReexecLostChannelTest(BatonTestCase):

    def setUp(self):
        super().setUp()
        if not BATON_NEXT_BIN or not os.path.isfile(BATON_NEXT_BIN):
            self.skipTest("BATON_NEXT_BIN not set")

    def reload_ok(self, b):
        r = b.ctl("reload", timeout=60)
        self.assertEqual(r.returncode, 0, "reload: stdout=%r stderr=%r" % (r.stdout, r.stderr))
        return r.stdout

    def test_generation_without_channel_survives_reexec(self):
        v, vn = binary_version(BATON_BIN), binary_version(BATON_NEXT_BIN)
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir)
        exe, real = os.path.join(bindir, "baton"), os.path.join(bindir, "real")
        release = os.path.join(self.tmp, "release")
        install_binary(BATON_BIN, exe)
        install_binary(BATON_BIN, real)
        echo = self.echo_server()
        cfg = self.make_config([echo], glob={"drain_timeout": "60s"})
        b = start_baton_command(self, cfg, binary=exe)
        addr = b.listener_addr("web")

        # Generation 2 runs through the wrapper; the master re-executes
        # through it too, into `real`; its install path stays `exe`.
        install_script(exe, WRAPPER % {"python": sys.executable, "real": real,
                                       "release": release})
        out = self.reload_ok(b)
        self.assertIn("master pid %d now runs baton %s" % (b.pid, v), out)
        st = b.status()
        self.assertEqual(st["master"].get("binary"), exe)
        gen2 = [w for w in st["worker"] if w.get("generation") == "2"]
        self.assertEqual([w.get("state") for w in gen2], ["active"], st["worker"])
        wrapper = int(gen2[0]["pid"])
        worker = wait_until(lambda: child_pids(wrapper), 15, what="the wrapped worker")[0]
        self.assertEqual(echo_once(addr, b"through generation 2"), b"through generation 2")

        # The worker dies; its channel closes, the master's child lives on.
        fds = fd_count(b.pid)
        os.kill(worker, 9)
        wait_until(lambda: fd_count(b.pid) < fds, 15, interval=0.01,
                   what="the master to close generation 2's channel")
        self.assertTrue(pid_alive(wrapper))

        # An upgrade now: generation 3 from the new binary, then the master
        # re-executes with generation 2 still unreaped and channel-less.
        install_binary(BATON_NEXT_BIN, exe)
        mark = b.mark()
        out = self.reload_ok(b)
        self.assertIn("master pid %d now runs baton %s" % (b.pid, vn), out)
        b.wait_for_log(r"^master %d resumed as baton %s\b" % (b.pid, re.escape(vn)),
                       start=mark)
        self.assertEqual(b.find_log(r"lost its channel", mark), [])
        ws = {w.get("generation"): w for w in b.status()["worker"]}
        self.assertIn("2", ws, "generation 2 is no longer tracked: %s" % ws)
        self.assertEqual((ws["2"].get("pid"), ws["2"].get("state")), (str(wrapper), "draining"))
        self.assertEqual(ws["3"].get("state"), "active")
        self.assertEqual(echo_once(addr, b"through generation 3"), b"through generation 3")

        # Its end is seen and logged like any worker's.
        with open(release, "w"):
            pass
        b.wait_for_log(r"^worker %d generation 2 exited with status 0$" % wrapper, start=mark)
        wait_until(lambda: [w.get("generation") for w in b.status()["worker"]] == ["3"], 15,
                   interval=0.1, what="only generation 3 in status")


if __name__ == "__main__":
    unittest.main()
