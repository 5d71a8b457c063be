"""1000 concurrent client connections through one worker."""

import errno
import hashlib
import selectors
import socket
import time
import unittest

from baton_harness import BatonTestCase, parse_kv, raise_nofile, scaled

N = 1000


class ConcurrencyTest(BatonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # client sockets + in-process echo server sockets + slack; the baton
        # child processes inherit this limit (they need ~2*N).
        got = raise_nofile(4 * N + 512)
        if got is not None and got < 2 * N + 256:
            raise unittest.SkipTest("RLIMIT_NOFILE too low (%d) for %d connections"
                                    % (got, N))

    def test_1000_concurrent_echo(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo], glob={"max_connections": 100000})

        payloads = []
        for i in range(N):
            size = 100 + (i * 7919) % 16000
            seed = hashlib.sha256(b"conc-%d" % i).digest()
            body = hashlib.shake_256(seed).digest(size)
            payloads.append(b"conn-%04d:" % i + body)

        sel = selectors.DefaultSelector()
        state = {}   # sock -> dict
        socks = []
        try:
            for i in range(N):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                rc = s.connect_ex(addr)
                if rc not in (0, errno.EINPROGRESS):
                    s.close()
                    self.fail("connect %d failed: %s" % (i, errno.errorcode.get(rc, rc)))
                socks.append(s)
                st = {"i": i, "sent": 0, "recv": bytearray(), "connected": False}
                state[s] = st
                sel.register(s, selectors.EVENT_WRITE, st)

            done = 0
            failures = []
            deadline = time.monotonic() + scaled(90)
            while done < N:
                left = deadline - time.monotonic()
                if left <= 0:
                    pending = [(st["i"], st["connected"], st["sent"], len(st["recv"]),
                                len(payloads[st["i"]]))
                               for st in state.values() if not st.get("finished")]
                    self.fail("deadline: %d/%d connections finished; failures %s; "
                              "pending (i, connected, sent, received, size): %s"
                              % (done, N, failures[:10], pending[:10]))
                for key, ev in sel.select(min(left, 1.0)):
                    s, st = key.fileobj, key.data
                    p = payloads[st["i"]]
                    if ev & selectors.EVENT_WRITE:
                        if not st["connected"]:
                            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                            if err:
                                failures.append((st["i"], "connect: %s" % errno.errorcode.get(err, err)))
                                sel.unregister(s)
                                done += 1
                                st["finished"] = True
                                continue
                            st["connected"] = True
                        try:
                            n = s.send(p[st["sent"]:st["sent"] + 65536])
                            st["sent"] += n
                        except (BlockingIOError, InterruptedError):
                            pass
                        except OSError as e:
                            failures.append((st["i"], "send: %r" % e))
                            sel.unregister(s)
                            done += 1
                            st["finished"] = True
                            continue
                    if ev & selectors.EVENT_READ:
                        try:
                            chunk = s.recv(65536)
                        except (BlockingIOError, InterruptedError):
                            chunk = None
                        except OSError as e:
                            failures.append((st["i"], "recv: %r" % e))
                            sel.unregister(s)
                            done += 1
                            st["finished"] = True
                            continue
                        if chunk == b"":
                            failures.append((st["i"], "EOF after %d of %d bytes"
                                             % (len(st["recv"]), len(p))))
                            sel.unregister(s)
                            done += 1
                            st["finished"] = True
                            continue
                        if chunk:
                            st["recv"] += chunk
                    if len(st["recv"]) >= len(p):
                        if bytes(st["recv"]) != p:
                            failures.append((st["i"], "echo mismatch"))
                        sel.unregister(s)   # keep it open: all stay concurrent
                        done += 1
                        st["finished"] = True
                        continue
                    want = selectors.EVENT_READ
                    if st["connected"] and st["sent"] < len(p):
                        want |= selectors.EVENT_WRITE
                    if not st["connected"]:
                        want = selectors.EVENT_WRITE
                    if want != key.events:
                        sel.modify(s, want, st)

            self.assertEqual(failures[:20], [], "%d failed connections" % len(failures))
            # All N are open at the same time, end to end.
            echo.wait(lambda e: e.active >= N, what="%d concurrent backend connections" % N)
            r = b.ctl("status")
            self.assertEqual(r.returncode, 0, r.stderr)
            m = [l for l in r.stdout.splitlines() if l.startswith("listener name=web ")]
            self.assertTrue(m, r.stdout)
            self.assertEqual(parse_kv(m[0]).get("connections"), str(N), m[0])
        finally:
            sel.close()
            for s in socks:
                s.close()
        # Every connection is logged once it ends, and the backend sees all close.
        echo.wait(lambda e: e.active == 0, timeout=30, what="all backend connections closed")
        acc = b.wait_access(N, timeout=30)
        self.assertEqual(len(acc), N)
        self.assertEqual(echo.count(), N)


if __name__ == "__main__":
    unittest.main()
