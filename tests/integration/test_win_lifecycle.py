"""baton.exe under Wine: the master's care of its workers.  A worker that
dies is replaced and the new one serves; a second Ctrl-C during a graceful
stop ends the drain at once (the first one leaves established connections
working)."""

import os
import signal
import unittest

from baton_harness import (BatonTestCase, WINDOWS, connect, pseudo_random, recv_exact,
                           wait_status, wait_until, wine_cmdline, wine_processes)


def echo_ok(s, msg):
    s.sendall(msg)
    if recv_exact(s, len(msg)) != msg:
        raise AssertionError("echo: %d bytes differ" % len(msg))


def the_worker(b):
    """(Windows pid, generation) of b's only worker, from `-s status`."""
    st, _ = wait_status(b, lambda st, sv: len(st["worker"]) == 1, what="one worker")
    w = st["worker"][0]
    return int(w["pid"]), int(w["generation"])


@unittest.skipUnless(WINDOWS, "Windows mode only (BATON_WINDOWS_EXE)")
class WinLifecycleTest(BatonTestCase):

    def test_dead_worker_is_replaced(self):
        b, addr = self.proxy([self.echo_server()])
        s = connect(addr)
        echo_ok(s, b"before")
        s.close()
        old_pid, _ = the_worker(b)
        wine_pids = {p for p in wine_processes(b.marker) - {b.proc.pid}
                     if "--worker" in wine_cmdline(p)}
        self.assertEqual(len(wine_pids), 1, wine_pids)
        # The worker's process ends with no say of its own, as a crash.
        os.kill(wine_pids.pop(), signal.SIGKILL)
        wait_status(b, lambda st, sv: len(st["worker"]) == 1 and
                    int(st["worker"][0]["pid"]) != old_pid,
                    what="a new worker in place of %d" % old_pid)
        b.wait_for_log(r"worker %d generation \d+ " % old_pid)
        s = connect(addr)
        msg = pseudo_random(65536, b"after")
        echo_ok(s, msg)
        s.close()

    def test_second_ctrl_c_ends_the_drain(self):
        b, addr = self.proxy([self.echo_server()], glob={"drain_timeout": "120s"})
        held = connect(addr)
        echo_ok(held, b"held")
        b.send_signal(signal.SIGINT)   # Ctrl-C under Wine
        b.wait_for_log(r"graceful stop")
        # Draining: the established connection is still served.
        echo_ok(held, b"still served while draining")
        b.send_signal(signal.SIGINT)
        b.wait_for_log(r"fast stop")
        self.assertEqual(b.wait_exit(timeout=30), 0)
        held.settimeout(10)
        try:
            rest = held.recv(1)
        except OSError:
            rest = b""
        self.assertEqual(rest, b"")
        held.close()
        wait_until(lambda: not wine_processes(b.marker), 30, what="no process of baton left")


if __name__ == "__main__":
    unittest.main()
