"""Reload (-s reload / SIGHUP): new configuration served by a new worker on
the same listening sockets; open connections finish on the old worker; a
bad configuration leaves the running worker serving."""

import os
import signal
import socket
import unittest

from baton_harness import (BatonTestCase, connect, pid_alive, render_config,
                           sha256_hex, wait_until)
from test_backend import read_tag


class ReloadTest(BatonTestCase):

    def one_tag(self, addr):
        s = connect(addr)
        try:
            return read_tag(s)
        finally:
            s.close()

    def rewrite(self, b, cfg):
        with open(b.config_path, "w") as f:
            f.write(render_config(cfg))

    def reload_changes_backend(self, trigger):
        old_srv = self.tag_server("old")
        new_srv = self.tag_server("new")
        cfg = self.make_config([old_srv])
        b = self.start_baton(cfg)
        addr = b.listener_addr("web")
        old_pid, gen = b.current_worker()
        held = connect(addr)
        try:
            self.assertEqual(read_tag(held), "old")
            mark = b.mark()
            cfg["backend app"]["server"] = [new_srv.server_line()]
            self.rewrite(b, cfg)
            trigger(b)
            m = b.wait_for_log(r"^worker (\d+) generation %d ready" % (gen + 1), start=mark)
            new_pid = int(m.group(1))
            self.assertNotEqual(new_pid, old_pid)
            # Same listening address, new configuration in effect.  The old
            # worker may accept for a few more milliseconds after the new one
            # reported ready (it learns asynchronously that it must stop), so
            # wait (bounded) for the switch, then it must be stable.
            wait_until(lambda: self.one_tag(addr) == "new", 15, interval=0.01,
                       what="new connections to reach the new server")
            for _ in range(5):
                self.assertEqual(self.one_tag(addr), "new")
            # the connection opened before the reload still works end to end
            held.sendall(b"still here")
            held.shutdown(socket.SHUT_WR)
            old_srv.wait(lambda x: x.conns[0]["done"], what="held connection finished")
            with old_srv.lock:
                self.assertEqual(old_srv.conns[0].get("received_sha256"),
                                 sha256_hex(b"still here"))
        finally:
            held.close()
        # the old worker goes away once its connection is finished
        wait_until(lambda: not pid_alive(old_pid), 20, interval=0.05,
                   what="old worker %d to exit" % old_pid)
        self.assertIsNone(b.proc.poll(), "master exited")
        r = b.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("pid=%d" % new_pid, r.stdout)
        self.assertNotIn("pid=%d " % old_pid, r.stdout + " ")
        self.assertIn("address=%s:%d" % addr, r.stdout)

    def test_control_reload(self):
        def trigger(b):
            r = b.ctl("reload")
            self.assertEqual(r.returncode, 0, "stdout=%r stderr=%r" % (r.stdout, r.stderr))
        self.reload_changes_backend(trigger)

    def test_sighup_reload(self):
        self.reload_changes_backend(lambda b: b.send_signal(signal.SIGHUP))

    def test_bad_reload_keeps_running(self):
        srv = self.tag_server("old")
        cfg = self.make_config([srv])
        b = self.start_baton(cfg)
        addr = b.listener_addr("web")
        pid, gen = b.current_worker()
        with open(b.config_path, "a") as f:
            f.write("\n[global]\nno_such_key = 1\n")
        r = b.ctl("reload")
        self.assertNotEqual(r.returncode, 0, "reload of a bad file reported success")
        self.assertIn(b.config_path, r.stdout + r.stderr)
        self.assertEqual(self.one_tag(addr), "old")
        self.assertEqual(b.current_worker(), (pid, gen))
        self.assertTrue(pid_alive(pid))
        # a good reload afterwards still works
        self.rewrite(b, cfg)
        r = b.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        b.wait_for_log(r"^worker \d+ generation %d ready" % (gen + 1))
        wait_until(lambda: not pid_alive(pid), 20, interval=0.05,
                   what="generation %d worker to exit" % gen)
        self.assertEqual(self.one_tag(addr), "old")


if __name__ == "__main__":
    unittest.main()
