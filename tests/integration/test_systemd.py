"""systemd integration without systemd: sd_notify datagrams on NOTIFY_SOCKET
(READY, RELOADING + MONOTONIC_USEC, READY after a reload, STOPPING) and
socket activation (LISTEN_PID / LISTEN_FDS)."""

import fcntl
import os
import re
import socket
import time
import unittest

from baton_harness import (BATON_BIN, BATON_NEXT_BIN, BatonTestCase, NotifyReceiver,
                           binary_version, connect, install_binary, install_script,
                           pid_alive, recv_exact, render_config, socket_inodes,
                           start_baton_command, tcp_listen_inode, wait_until)


def echo_once(addr, msg=b"ping"):
    s = connect(addr)
    try:
        s.sendall(msg)
        got = recv_exact(s, len(msg))
        s.shutdown(socket.SHUT_WR)
        s.settimeout(20)
        if s.recv(16) != b"":
            raise AssertionError("data after the echo")
        return got
    finally:
        s.close()


def monotonic_usec():
    return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1000000)


class NotifyTest(BatonTestCase):

    def setUp(self):
        super().setUp()
        self.notify = NotifyReceiver(os.path.join(self.tmp, "notify.sock"))
        self.addCleanup(self.notify.close)

    def start_notified(self, servers, glob=None):
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir, exist_ok=True)
        exe = os.path.join(bindir, "baton")
        install_binary(BATON_BIN, exe)
        cfg = self.make_config(servers, glob=glob)
        b = start_baton_command(self, cfg, binary=exe,
                                extra_env={"NOTIFY_SOCKET": self.notify.path})
        return b, cfg, exe

    def check_senders(self, b, msgs):
        """systemd (NotifyAccess=main) only listens to the main PID."""
        for pid, fields, raw in msgs:
            self.assertEqual(pid, b.pid, "notification %r sent by pid %r, not the master %d"
                             % (raw, pid, b.pid))

    def test_notify_sequence(self):
        echo = self.echo_server()
        b, cfg, exe = self.start_notified([echo])
        addr = b.listener_addr("web")
        w1, g1 = b.current_worker()
        msgs = self.notify.wait_count(1)
        first = msgs[0][1]
        self.assertEqual(first.get("READY"), "1", msgs[0][2])
        self.assertEqual(first.get("MAINPID"), str(b.pid), msgs[0][2])
        self.assertRegex(first.get("STATUS", ""), r"^serving: generation %d \(worker %d\)$"
                         % (g1, w1))
        self.assertEqual(echo_once(addr), b"ping")

        # a good reload: RELOADING=1 with the time, then READY=1
        n = len(self.notify.snapshot())
        before = monotonic_usec()
        r = b.ctl("reload")
        after = monotonic_usec()
        self.assertEqual(r.returncode, 0, r.stderr)
        g2, w2 = map(int, re.search(r"generation (\d+) worker pid (\d+)", r.stdout).groups())
        msgs = self.notify.wait_count(n + 2)
        rel, ready = msgs[n][1], msgs[n + 1][1]
        self.assertEqual(rel.get("RELOADING"), "1", msgs[n][2])
        self.assertEqual(rel.get("STATUS"), "reloading", msgs[n][2])
        self.assertNotIn("READY", rel)
        usec = int(rel.get("MONOTONIC_USEC", "-1"))
        self.assertTrue(before <= usec <= after,
                        "MONOTONIC_USEC=%d not within the reload [%d, %d]" % (usec, before, after))
        self.assertEqual(ready.get("READY"), "1", msgs[n + 1][2])
        self.assertEqual(ready.get("STATUS"), "serving: generation %d (worker %d)" % (g2, w2))
        self.assertNotIn("RELOADING", ready)

        # a refused reload (bad file) never started: systemd must not be
        # left in 'reloading' -- whatever is sent, the last word is READY
        n = len(self.notify.snapshot())
        with open(b.config_path, "a") as f:
            f.write("\n[global]\nno_such_key = 1\n")
        r = b.ctl("reload")
        self.assertEqual(r.returncode, 1)
        with open(b.config_path, "w") as f:
            f.write(render_config(cfg))

        # a failed reload (the new worker exits): RELOADING, then READY
        # with 'last reload failed'
        install_script(exe, "#!/bin/sh\nexit 1\n")
        r = b.ctl("reload")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("reload failed", r.stderr)
        msgs = self.notify.wait_count(n + 2)
        tail = msgs[n:]
        kinds = [("RELOADING" if "RELOADING" in f else "READY" if "READY" in f else raw)
                 for _, f, raw in tail]
        # the refused reload may or may not have sent RELOADING/READY; the
        # failed one must end with RELOADING, READY(last reload failed)
        self.assertGreaterEqual(len(tail), 2)
        self.assertEqual(kinds[-2:], ["RELOADING", "READY"], [m[2] for m in tail])
        self.assertEqual(tail[-1][1].get("STATUS"), "serving (last reload failed)")
        self.assertTrue(pid_alive(w2))
        self.assertEqual(echo_once(addr), b"ping")

        # stop: STOPPING=1
        n = len(self.notify.snapshot())
        b.stop()
        msgs = self.notify.wait_count(n + 1)
        self.assertEqual(msgs[n][1].get("STOPPING"), "1", msgs[n][2])
        self.assertEqual(len(msgs), n + 1, [m[2] for m in msgs[n:]])
        self.check_senders(b, msgs)
        # overall order
        kinds = [("READY" if "READY" in f else "RELOADING" if "RELOADING" in f
                  else "STOPPING" if "STOPPING" in f else raw) for _, f, raw in msgs]
        self.assertEqual(kinds[:3], ["READY", "RELOADING", "READY"])
        self.assertEqual(kinds[-3:], ["RELOADING", "READY", "STOPPING"])

    def test_notify_binary_upgrade(self):
        """A reload that re-executes the master also ends in READY=1, sent
        from the same (main) PID; the environment is not leaked to workers."""
        if not BATON_NEXT_BIN or not os.path.isfile(BATON_NEXT_BIN):
            self.skipTest("BATON_NEXT_BIN not set")
        echo = self.echo_server()
        b, cfg, exe = self.start_notified([echo])
        addr = b.listener_addr("web")
        self.notify.wait_count(1)
        w1, _ = b.current_worker()
        with open("/proc/%d/environ" % w1, "rb") as f:
            self.assertNotIn(b"NOTIFY_SOCKET=", f.read())
        n = len(self.notify.snapshot())
        install_binary(BATON_NEXT_BIN, exe)
        r = b.ctl("reload", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("now runs baton %s" % binary_version(BATON_NEXT_BIN), r.stdout)
        msgs = self.notify.wait_count(n + 2)
        self.assertIn("RELOADING", msgs[n][1], msgs[n][2])
        self.assertEqual(msgs[-1][1].get("READY"), "1", [m[2] for m in msgs[n:]])
        self.assertFalse(any("RELOADING" in f for _, f, _r in msgs[n + 1:]),
                         [m[2] for m in msgs[n:]])
        self.assertEqual(echo_once(addr), b"ping")
        # the re-executed master still notifies: a plain reload, then stop
        n = len(self.notify.snapshot())
        r = b.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        msgs = self.notify.wait_count(n + 2)
        self.assertEqual([("RELOADING" in f, f.get("READY")) for _, f, _r in msgs[n:n + 2]],
                         [(True, None), (False, "1")])
        n = len(msgs)
        b.stop()
        msgs = self.notify.wait_count(n + 1)
        self.assertEqual(msgs[n][1].get("STOPPING"), "1")
        self.check_senders(b, msgs)


def listening_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    return s


class SocketActivationTest(BatonTestCase):

    def start_activated(self, cfg, socks, listen_pid="$$"):
        """Starts baton as a service manager would: the sockets as fds
        3, 4, ..., LISTEN_FDS=n and LISTEN_PID=the master's pid."""
        fds = [s.fileno() for s in socks]
        n = len(fds)

        def preexec():
            # out of the way first (F_DUPFD: >= 100), then into place; dup2
            # leaves 3.. inheritable, everything else of ours is CLOEXEC
            tmp = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
            for i, fd in enumerate(tmp):
                os.dup2(fd, 3 + i)
            for fd in tmp:
                os.close(fd)

        def argv(binary, config_path):
            return ["/bin/sh", "-c",
                    'LISTEN_PID=%s LISTEN_FDS=%d exec "$0" -c "$1"' % (listen_pid, n),
                    binary, config_path]
        b = start_baton_command(self, cfg, argv=argv,
                                popen_kw={"close_fds": False, "preexec_fn": preexec})
        return b

    def test_socket_activation(self):
        echo = self.echo_server()
        passed = listening_socket()
        unused = listening_socket()
        try:
            port = passed.getsockname()[1]
            addr = ("127.0.0.1", port)
            ino = os.fstat(passed.fileno()).st_ino
            unused_addr = unused.getsockname()[:2]
            unused_ino = os.fstat(unused.fileno()).st_ino
            self.assertEqual(tcp_listen_inode(addr), ino)
            cfg = self.make_config([echo], binds=("127.0.0.1:%d" % port,))
            b = self.start_activated(cfg, [passed, unused])
        finally:
            passed.close()
            unused.close()
        b.wait_for_log(r"^listener web: using the socket for 127\.0\.0\.1:%d passed by the "
                       r"service manager$" % port)
        b.wait_for_log(r"^passed socket 127\.0\.0\.1:%d \(\S+\) matches no configured bind; "
                       r"closing it$" % unused_addr[1])
        self.assertEqual(b.listener_addr("web"), addr)
        # the very socket we made, now held by the master only
        self.assertIn(ino, socket_inodes(b.pid).values())
        self.assertEqual(tcp_listen_inode(addr), ino)
        self.assertEqual(echo_once(addr, b"activated"), b"activated")
        # the unmatched one is closed: nothing listens there any more
        self.assertNotIn(unused_ino, socket_inodes(b.pid).values())
        self.assertIsNone(tcp_listen_inode(unused_addr))
        with self.assertRaises(ConnectionRefusedError):
            connect(unused_addr, timeout=5).close()
        # workers do not inherit the activation environment
        w1, _ = b.current_worker()
        with open("/proc/%d/environ" % w1, "rb") as f:
            env = f.read().split(b"\0")
        self.assertFalse([e for e in env if e.startswith((b"LISTEN_PID=", b"LISTEN_FDS="))],
                         env)
        # a reload keeps the passed socket
        mark = b.mark()
        r = b.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(b.find_log(r"^listener web bound to", start=mark), [])
        self.assertEqual(tcp_listen_inode(addr), ino)
        self.assertEqual(echo_once(addr, b"after reload"), b"after reload")
        b.stop()
        with self.assertRaises(ConnectionRefusedError):
            connect(addr, timeout=5).close()

    def test_listen_pid_mismatch_ignored(self):
        """LISTEN_FDS meant for another process is ignored: baton binds
        itself and leaves the descriptor alone."""
        echo = self.echo_server()
        cfg = self.make_config([echo])
        b = start_baton_command(self, cfg, extra_env={"LISTEN_PID": "1", "LISTEN_FDS": "1"})
        addr = b.listener_addr("web")
        self.assertEqual(b.find_log(r"passed by the service manager|passed socket|"
                                    r"passed descriptor"), [])
        self.assertEqual(echo_once(addr), b"ping")

    def test_listen_pid_mismatch_fds_not_inherited(self):
        """A socket passed to another process (LISTEN_PID is not ours) is
        neither used nor handed on to the workers."""
        echo = self.echo_server()
        other = listening_socket()
        try:
            ino = os.fstat(other.fileno()).st_ino
            b = self.start_activated(self.make_config([echo]), [other], listen_pid="1")
        finally:
            other.close()
        addr = b.listener_addr("web")
        self.assertEqual(echo_once(addr), b"ping")
        self.assertEqual(b.find_log(r"passed by the service manager|passed socket"), [])
        w, _ = b.current_worker()
        self.assertNotIn(ino, socket_inodes(w).values(), "the worker inherited fd 3")


if __name__ == "__main__":
    unittest.main()
