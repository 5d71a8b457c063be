"""[global] busy_poll: after a turn that did I/O, a loop polls without
sleeping for that long before it sleeps.  Bytes must be relayed intact with
it, on one loop and on several, and a worker with nothing to do must go back
to sleep: a loop that kept polling would use a whole CPU while idle."""

import threading
import time
import unittest

from baton_harness import (BatonTestCase, proc_cpu_seconds, pseudo_random,
                           send_and_half_close, sha256_hex)


class BusyPollTest(BatonTestCase):

    def relay_intact(self, addr, n=12):
        errors = []

        def one(i):
            data = pseudo_random((1, 5000, 300000)[i % 3], b"busy-%d" % i)
            got = send_and_half_close(addr, data, timeout=60)
            if sha256_hex(got) != sha256_hex(data):
                errors.append("stream %d: %d of %d bytes, or different bytes" %
                              (i, len(got), len(data)))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        self.assertEqual(errors, [])

    def cpu_while_idle(self, pid, seconds=1.0):
        """CPU seconds pid used over `seconds` of wall time."""
        u0, s0 = proc_cpu_seconds(pid)
        time.sleep(seconds)
        u1, s1 = proc_cpu_seconds(pid)
        return (u1 - u0) + (s1 - s0)

    def check(self, threads):
        b, addr = self.proxy([self.echo_server()],
                             glob={"threads": threads, "busy_poll": "1000us"})
        self.relay_intact(addr)
        pid = b.current_worker()[0]
        # The last connection's close is work too, followed by 1 ms of
        # polling; then the worker must sleep (a loop that never stopped
        # polling would use about 1 s of CPU here, each loop).
        used = self.cpu_while_idle(pid)
        self.assertLess(used, 0.25, "an idle worker with busy_poll used %.2f s of CPU in 1 s"
                        % used)
        # And it still wakes up for new work.
        self.relay_intact(addr, n=3)

    def test_one_loop(self):
        self.check(1)

    def test_several_loops(self):
        self.check(2)


if __name__ == "__main__":
    unittest.main()
