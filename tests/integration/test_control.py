"""The master's control socket and its reload guards: one command per
connection, idle and greedy clients, a client cap, a reload that would move
the socket, and a respawn pending from a crash when a reload completes."""

import os
import re
import signal
import socket
import time
import unittest

from baton_harness import (BatonTestCase, parse_status_text, pid_alive, render_config,
                           status_text, wait_until)


class ControlTest(BatonTestCase):

    def request(self, b, payload, half_close=False, timeout=20):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # blocking connect: a full accept queue makes it wait, not fail
        s.connect(self.control_path())
        s.settimeout(timeout)
        reply = b""
        try:
            try:
                s.sendall(payload)
                if half_close:
                    s.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass   # answered and closed before taking it all: read the answer
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return reply
                reply += chunk
        except ConnectionResetError:
            # the master closes after its answer; bytes it never read reset us
            return reply
        finally:
            s.close()

    def test_command_then_half_close_gets_the_answer(self):
        b, _ = self.proxy([self.echo_server()])
        reply = self.request(b, b"status\n", half_close=True)
        self.assertTrue(reply.startswith(b"OK\n"), reply)
        self.assertIn(b"worker generation=", reply)

    def test_bytes_after_the_command_are_not_read(self):
        b, _ = self.proxy([self.echo_server()])
        mark = b.mark()
        # junk (and more commands) behind the first command: one answer only
        reply = self.request(b, b"status\nstop\n" + b"x" * (64 << 10))
        self.assertTrue(reply.startswith(b"OK\n"), reply[:100])
        self.assertEqual(reply.count(b"OK\n"), 1, reply[:200])
        self.assertIsNone(b.proc.poll(), "the master acted on a second command")
        self.assertIn("worker generation=", status_text(b))
        self.assertFalse(b.find_log(r"stopping", start=mark))

    def test_idle_client_is_closed(self):
        b, _ = self.proxy([self.echo_server()])
        mark = b.mark()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.control_path())
        try:
            self.assertEqual(s.recv(100), b"", "the master kept a silent client")
        finally:
            s.close()
        b.wait_for_log(r"control socket: client sent no command in time; closed", start=mark)
        self.assertIn("worker generation=", status_text(b))

    def test_client_cap(self):
        b, _ = self.proxy([self.echo_server()])
        mark = b.mark()
        held = []
        try:
            for _ in range(64):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.control_path())
                held.append(s)
            # accepted after the 64 queued before it: one too many
            reply = self.request(b, b"status\n", timeout=10)
            self.assertTrue(reply.startswith(b"ERR too many control clients"), reply[:80])
            b.wait_for_log(r"control socket: 64 clients connected; refusing one more", start=mark)
        finally:
            for s in held:
                s.close()
        wait_until(lambda: status_text(b).find("worker generation=") >= 0, 10,
                   what="status once the idle clients are gone")

    def test_reload_cannot_move_the_control_socket(self):
        srv = self.echo_server()
        cfg = self.make_config([srv])
        b = self.start_baton(cfg)
        pid, gen = b.current_worker()
        mark = b.mark()
        cfg["global"]["control"] = self.control_path("elsewhere")
        with open(b.config_path, "w") as f:
            f.write(render_config(cfg))
        b.send_signal(signal.SIGHUP)
        b.wait_for_log(r"reload refused: configuration rejected", start=mark)
        rx = re.compile(r"%s: \[global\] control changed from .* the control socket cannot move"
                        % re.escape(b.config_path))

        def logged():
            with b.cond:
                return rx.search("\n".join(b.lines[mark:]))
        # the reason is the message's second line, read a moment later
        wait_until(logged, 10, what="the reason of the refused reload")
        self.assertFalse(os.path.exists(self.control_path("elsewhere")))
        # still answering where it always was
        reply = self.request(b, b"status\n")
        self.assertTrue(reply.startswith(b"OK\n"), reply[:100])
        self.assertEqual(b.current_worker(), (pid, gen))

    def test_reload_during_respawn_backoff_leaves_one_generation(self):
        b, _ = self.proxy([self.echo_server()])
        first, gen = b.current_worker()
        mark = b.mark()
        os.kill(first, signal.SIGKILL)
        m = b.wait_for_log(r"^worker (\d+) generation %d ready" % (gen + 1), start=mark)
        second = int(m.group(1))
        # dies within a second of starting: the next start is delayed
        os.kill(second, signal.SIGKILL)
        b.wait_for_log(r"master: starting a new worker in \d+ ms", start=mark)
        r = b.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # well past the longest first back-off (200 ms)
        b.wait_for_log(r"^reload complete", start=mark)
        wait_until(lambda: b.find_log(r"^worker \d+ generation %d ready" % (gen + 2),
                                      start=mark), 10, what="the reload's generation")
        time.sleep(1.0)   # not a wait for a result: the back-off timer's moment passes
        st = parse_status_text(status_text(b))
        active = [w for w in st["worker"] if w.get("state") == "active"]
        self.assertEqual(len(active), 1, st["worker"])
        self.assertFalse(b.find_log(r"^worker \d+ generation %d starting" % (gen + 3),
                                    start=mark), "a respawn started after the reload")

    def test_stop_with_no_worker_alive_is_answered(self):
        """`stop` while no worker is alive (respawn back-off after quick
        crashes) ends the master at once; the client still gets its answer."""
        b, _ = self.proxy([self.echo_server()], glob={"drain_timeout": "1s"})
        first, gen = b.current_worker()
        mark = b.mark()
        os.kill(first, signal.SIGKILL)
        m = b.wait_for_log(r"^worker (\d+) generation %d ready" % (gen + 1), start=mark)
        os.kill(int(m.group(1)), signal.SIGKILL)
        b.wait_for_log(r"master: starting a new worker in \d+ ms", start=mark)
        r = b.ctl("stop")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "stopping"), r.stderr)
        self.assertEqual(b.wait_exit(), 0)

    def test_wedged_draining_worker_is_killed(self):
        """A draining worker that cannot end itself (stopped here with
        SIGSTOP) is killed by the master after drain_timeout plus grace."""
        echo = self.echo_server()
        b, addr = self.proxy([echo], glob={"drain_timeout": "1s"})
        old, gen = b.current_worker()
        held = socket.create_connection(addr)
        try:
            wait_until(lambda: echo.count() >= 1, 10, what="the held connection")
            r = b.ctl("reload")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            os.kill(old, signal.SIGSTOP)
            b.wait_for_log(r"^worker %d generation %d still running \d+ ms after it was told "
                           r"to drain; killing it" % (old, gen), timeout=30)
            wait_until(lambda: not pid_alive(old), 10, what="the wedged worker to be gone")
        finally:
            held.close()
        st = parse_status_text(status_text(b))
        self.assertEqual([w["state"] for w in st["worker"]], ["active"], st["worker"])


if __name__ == "__main__":
    unittest.main()
