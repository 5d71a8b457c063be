"""Master/worker process model: status, worker respawn, stop, quit, signals,
access log file."""

import os
import re
import signal
import socket
import time
import unittest

from baton_harness import (BatonTestCase, T_EXIT, connect, parse_access, parse_kv,
                           pid_alive, proc_state, pseudo_random, readable_within,
                           recv_exact, recv_until_eof, run_baton, scaled, sha256_hex,
                           wait_closed, wait_until)


def parse_status(text):
    """status output -> {'baton': {...}, 'master': {...}, 'worker': [...],
    'listener': [...]}"""
    out = {"worker": [], "listener": []}
    for line in text.splitlines():
        if not line.strip():
            continue
        kind, _, rest = line.partition(" ")
        kv = parse_kv(rest)
        if kind in ("worker", "listener"):
            out[kind].append(kv)
        else:
            out[kind] = kv
    return out


def echo_ok(s, msg, timeout=15):
    s.sendall(msg)
    return recv_exact(s, len(msg), timeout) == msg


class StatusTest(BatonTestCase):

    def test_status_fields(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo])
        wpid, gen = b.current_worker()
        c1, c2 = connect(addr), connect(addr)
        try:
            self.assertTrue(echo_ok(c1, b"1"))
            self.assertTrue(echo_ok(c2, b"2"))
            version = run_baton(["-v"]).stdout.split()[1]

            def status_with_two():
                r = b.ctl("status")
                self.assertEqual(r.returncode, 0, "stderr: %s" % r.stderr)
                st = parse_status(r.stdout)
                ws = st["worker"]
                if ws and ws[0].get("connections") == "2":
                    return st
                return None
            st = wait_until(status_with_two, 15, interval=0.2,
                            what="status showing 2 connections")
            self.assertEqual(st["baton"].get("version"), version)
            self.assertEqual(st["master"].get("pid"), str(b.pid))
            self.assertRegex(st["master"].get("uptime", ""), r"^\d+")
            self.assertEqual(os.path.realpath(st["master"].get("config", "")),
                             os.path.realpath(b.config_path))
            self.assertEqual(len(st["worker"]), 1, st["worker"])
            w = st["worker"][0]
            self.assertEqual(w.get("pid"), str(wpid))
            self.assertEqual(w.get("generation"), str(gen))
            self.assertEqual(w.get("state"), "active")
            self.assertEqual(w.get("connections"), "2")
            self.assertEqual(w.get("total"), "2")
            self.assertEqual(len(st["listener"]), 1, st["listener"])
            l = st["listener"][0]
            self.assertEqual(l.get("name"), "web")
            self.assertEqual(l.get("address"), "%s:%d" % addr)
            self.assertEqual(l.get("connections"), "2")
            self.assertEqual(l.get("total"), "2")
        finally:
            c1.close()
            c2.close()
        # counts go down after close, total stays
        def status_with_zero():
            st = parse_status(b.ctl("status").stdout)
            ls = st["listener"]
            return st if ls and ls[0].get("connections") == "0" else None
        st = wait_until(status_with_zero, 15, interval=0.2,
                        what="status showing 0 connections")
        self.assertEqual(st["listener"][0].get("total"), "2")
        self.assertEqual(st["worker"][0].get("total"), "2")


class WorkerRespawnTest(BatonTestCase):

    def test_sigkill_worker_respawn_and_queued_client(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo])
        old, gen = b.current_worker()
        self.assertNotEqual(old, b.pid)
        self.assertTrue(pid_alive(old))
        # a connection open at the time of the kill is lost, that is expected
        mark = b.mark()
        os.kill(old, signal.SIGKILL)
        # wait (bounded, tight polling) until the worker is really dead so the
        # next connect falls in the gap, not into the dying worker
        wait_until(lambda: not pid_alive(old), 10, interval=0.001,
                   what="worker %d to die" % old)
        s = connect(addr)   # must be queued by the kernel, not refused
        ready_before = bool(b.find_log(r"^worker \d+ generation %d ready" % (gen + 1),
                                       start=mark))
        try:
            s.sendall(b"during the gap")
            self.assertEqual(recv_exact(s, 14, 20), b"during the gap")
        finally:
            s.close()
        b.wait_for_log(r"^worker %d generation %d killed by signal 9\b" % (old, gen),
                       start=mark)
        m = b.wait_for_log(r"^worker (\d+) generation (\d+) ready", start=mark)
        new = int(m.group(1))
        self.assertNotEqual(new, old)
        self.assertEqual(int(m.group(2)), gen + 1)
        self.assertTrue(pid_alive(new))
        self.assertEqual(b.proc.poll(), None, "master died")
        # status reports the new worker
        r = b.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = parse_status(r.stdout)
        self.assertEqual([w.get("pid") for w in st["worker"]], [str(new)])
        if ready_before:
            # informational: the respawn beat our connect; the test still
            # verified service, but not the queued-in-gap path this time
            print("note: new worker was ready before the client connected")

    def test_worker_abort_respawn(self):
        """A worker dying of another signal (SIGABRT) is logged and respawned."""
        try:
            import resource
            resource.setrlimit(resource.RLIMIT_CORE,
                               (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
        except (ImportError, ValueError, OSError):
            pass
        echo = self.echo_server()
        b, addr = self.proxy([echo])
        old, gen = b.current_worker()
        mark = b.mark()
        os.kill(old, signal.SIGABRT)
        b.wait_for_log(r"^worker %d generation %d (killed by signal 6|exited with status \d+)"
                       % (old, gen), start=mark)
        m = b.wait_for_log(r"^worker (\d+) generation %d ready" % (gen + 1), start=mark)
        self.assertNotEqual(int(m.group(1)), old)
        s = connect(addr)
        try:
            self.assertTrue(echo_ok(s, b"after respawn"))
        finally:
            s.close()


class StopTest(BatonTestCase):

    def test_control_stop(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo])
        wpid, _ = b.current_worker()
        s = connect(addr)
        try:
            self.assertTrue(echo_ok(s, b"x"))
            t0 = time.monotonic()
            r = b.ctl("stop")
            self.assertEqual(r.returncode, 0, "stdout=%r stderr=%r" % (r.stdout, r.stderr))
            rc = b.wait_exit(10)
            elapsed = time.monotonic() - t0
            self.assertEqual(rc, 0)
            self.assertLess(elapsed, scaled(5.0), "stop took %.1fs" % elapsed)
            # the open client connection was closed
            self.assertIsNotNone(wait_closed(s, scaled(5)))
        finally:
            s.close()
        b.wait_for_log(r"^master exiting")
        b.finish()
        self.assertFalse(pid_alive(wpid))
        # nothing listens any more
        with self.assertRaises(ConnectionRefusedError):
            connect(addr).close()
        # and the control socket is gone / status says no master
        r = run_baton(["-s", "status", "-c", b.config_path])
        self.assertEqual(r.returncode, 1)

    def test_sigterm_fast(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo])
        wpid, _ = b.current_worker()
        s = connect(addr)
        try:
            self.assertTrue(echo_ok(s, b"x"))
            t0 = time.monotonic()
            b.send_signal(signal.SIGTERM)
            rc = b.wait_exit(10)
            self.assertEqual(rc, 0)
            self.assertLess(time.monotonic() - t0, scaled(5.0))
            self.assertIsNotNone(wait_closed(s, scaled(5)))
        finally:
            s.close()
        b.wait_for_log(r"^master exiting")
        b.finish()
        self.assertFalse(pid_alive(wpid))

    def test_sigint_fast(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo])
        b.send_signal(signal.SIGINT)
        rc = b.wait_exit(10)
        self.assertEqual(rc, 0)
        b.finish()

    def graceful(self, trigger):
        """An in-progress upload survives a graceful stop; new connections are
        refused once the listener is closed; the master exits 0 afterwards."""
        sink = self.sink_server()
        b, addr = self.proxy([sink], glob={"drain_timeout": "30s"})
        wpid, _ = b.current_worker()
        data = pseudo_random(4 << 20, b"graceful")
        half = len(data) // 2
        s = connect(addr, timeout=30)
        try:
            s.sendall(data[:half])
            sink.wait(lambda x: x.conns and x.conns[0].get("received_bytes", 0) > 0,
                      what="upload started")
            trigger(b)

            def refused():
                try:
                    c = connect(addr, timeout=2)
                except ConnectionRefusedError:
                    return True
                c.close()
                return False
            wait_until(refused, 15, interval=0.05, what="listener to close")
            self.assertIsNone(b.proc.poll(),
                              "master exited while a connection was still open")
            s.sendall(data[half:])
            s.shutdown(socket.SHUT_WR)
            reply = recv_until_eof(s, timeout=30)
        finally:
            s.close()
        self.assertEqual(reply.decode("ascii", "replace"), sha256_hex(data))
        rc = b.wait_exit(20)
        self.assertEqual(rc, 0)
        b.wait_for_log(r"^master exiting")
        b.finish()
        self.assertFalse(pid_alive(wpid))
        # (probe connections made while waiting for the listener to close may
        # have been served too; they carry no data)
        acc = [a for a in b.access_lines() if int(a["bytes_in"]) == len(data)]
        self.assertEqual(len(acc), 1, b.access_lines())
        self.assertEqual(int(acc[0]["bytes_out"]), 64)

    def test_control_quit_graceful(self):
        def trigger(b):
            r = b.ctl("quit")
            self.assertEqual(r.returncode, 0, "stdout=%r stderr=%r" % (r.stdout, r.stderr))
        self.graceful(trigger)

    def test_sigquit_graceful(self):
        self.graceful(lambda b: b.send_signal(signal.SIGQUIT))

    def test_quit_drain_timeout(self):
        """An idle connection is cut at drain_timeout; master still exits 0."""
        echo = self.echo_server()
        b, addr = self.proxy([echo], glob={"drain_timeout": "1s"},
                             listener={"idle_timeout": "0"})
        s = connect(addr)
        try:
            self.assertTrue(echo_ok(s, b"x"))
            t0 = time.monotonic()
            r = b.ctl("quit")
            self.assertEqual(r.returncode, 0, r.stderr)
            t = wait_closed(s, scaled(10))
            self.assertIsNotNone(t, "connection not closed after drain_timeout")
            self.assertGreaterEqual(time.monotonic() - t0, 0.8,
                                    "connection closed before drain_timeout")
        finally:
            s.close()
        rc = b.wait_exit(15)
        self.assertEqual(rc, 0)
        acc = b.wait_access(1)
        self.assertEqual(acc[0]["end"], "drain_timeout")
        b.finish()


class AccessLogFileTest(BatonTestCase):

    def test_access_log_file(self):
        sink = self.sink_server()
        path = os.path.join(self.tmp, "access.log")
        b, addr = self.proxy([sink], glob={"access_log": path})
        sizes = [0, 1000, 123457]
        for n in sizes:
            s = connect(addr)
            try:
                data = pseudo_random(n, b"acc-%d" % n)
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(recv_until_eof(s).decode(), sha256_hex(data))
            finally:
                s.close()

        def lines():
            try:
                with open(path) as f:
                    ls = [parse_access(l) for l in f.read().splitlines()]
            except FileNotFoundError:
                return None
            return ls if len(ls) >= len(sizes) else None
        ls = wait_until(lines, 15, interval=0.05, what="3 lines in %s" % path)
        self.assertEqual(len(ls), len(sizes), ls)
        self.assertNotIn(None, ls, "a line in the access log is not an access line")
        by_in = {int(a["bytes_in"]): a for a in ls}
        self.assertEqual(sorted(by_in), sizes)
        for n in sizes:
            a = by_in[n]
            self.assertEqual(int(a["bytes_out"]), 64, a)
            self.assertEqual(a["listener"], "web")
            self.assertEqual(a["backend"], "app")
            self.assertEqual(a["server"], sink.name)
            self.assertRegex(a["client"], r"^127\.0\.0\.1:\d+$")
            self.assertRegex(a["duration_ms"], r"^\d+$")
            self.assertIn(a["end"], ("client_close", "server_close"))
        # nothing of it on stderr
        self.assertEqual(b.access_lines(), [])

    def test_access_log_off(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo], glob={"access_log": "off"})
        s = connect(addr)
        try:
            self.assertTrue(echo_ok(s, b"x"))
        finally:
            s.close()
        echo.wait(lambda e: e.active == 0, what="backend connection closed")
        b.stop()
        self.assertEqual(b.access_lines(), [])


if __name__ == "__main__":
    unittest.main()
