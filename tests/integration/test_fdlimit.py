"""Running out of file descriptors: logged, no busy loop, and service recovers."""

import os
import resource
import time
import unittest

from baton_harness import BatonTestCase, connect, readable_within, recv_exact, scaled


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime


def echoes(sock, msg, timeout):
    try:
        sock.sendall(msg)
        return readable_within(sock, timeout) and recv_exact(sock, len(msg), timeout) == msg
    except OSError:
        return False


class FdLimitTest(BatonTestCase):

    def test_out_of_descriptors_logged_no_spin_recovers(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo])
        worker, _ = b.current_worker()
        # Room for about ten proxied connections (two descriptors each).
        in_use = len(os.listdir("/proc/%d/fd" % worker))
        limit = in_use + 20
        resource.prlimit(worker, resource.RLIMIT_NOFILE, (limit, limit))

        conns, served = [], []
        stuck = None
        for i in range(40):
            s = connect(addr)
            conns.append(s)
            if echoes(s, b"%d;" % i, scaled(1.0)):
                served.append(s)
            else:
                stuck = s
                break
        self.assertIsNotNone(stuck, "the descriptor limit was never reached")
        self.assertGreaterEqual(len(served), 5)
        b.wait_for_log(r"Too many open files")

        # Out of descriptors, the worker must wait, not spin on the listener.
        ticks = cpu_ticks(worker)
        time.sleep(1.0)
        used = cpu_ticks(worker) - ticks
        hz = os.sysconf("SC_CLK_TCK")
        self.assertLess(used, 0.3 * hz, "worker used %d/%d CPU ticks in 1 s while "
                        "out of descriptors" % (used, hz))

        # Free some descriptors: new clients are served again.
        for s in served[:4]:
            s.close()
        deadline = time.monotonic() + scaled(10)
        ok = False
        while time.monotonic() < deadline and not ok:
            s = connect(addr)
            conns.append(s)
            ok = echoes(s, b"again", scaled(1.0))
        self.assertTrue(ok, "service did not recover after descriptors were freed")
        for s in conns:
            s.close()


if __name__ == "__main__":
    unittest.main()
