"""The master's control socket and its reload guards: one command per
connection, idle, dribbling and greedy clients, a client cap, whole-line
commands, who may control baton (both ends check the other's credentials),
a reload that would move the socket, and a respawn pending from a crash when
a reload completes."""

import os
import re
import select
import signal
import socket
import stat
import time
import unittest

from baton_harness import (BatonTestCase, call_as, end_child, fork_as, open_to_others,
                           other_user, parse_status_text, pid_alive, render_config, run_as,
                           run_baton, scaled, spare_group, status_text, wait_until)

def raw_client(path, payload):
    """A control client for call_as: sends payload, reports the answer (or
    b"connect-error ERRNO")."""
    def run(out):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(20)
            try:
                s.connect(path)
            except OSError as e:
                out.write(b"connect-error %d" % e.errno)
                return
            reply = b""
            try:
                s.sendall(payload)
            except OSError:
                pass
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
            except ConnectionResetError:
                pass
            out.write(reply)
    return run


def squatter(path):
    """Another user's server at the control path, for fork_as: answers every
    client like a master would, and reports one line "got HEX" with what
    each client sent."""
    def run(out):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        os.chmod(path, 0o777)
        s.listen(8)
        out.write(b"ready\n")
        while True:
            c, _ = s.accept()
            c.settimeout(5)
            got = b""
            try:
                while not got.endswith(b"\n"):
                    chunk = c.recv(100)
                    if not chunk:
                        break
                    got += chunk
                c.sendall(b"OK\nbaton version=squatter\nreloaded: generation 9 worker pid 1\n")
            except OSError:
                pass
            out.write(b"got " + got.hex().encode() + b"\n")
            c.close()
    return run


# Log lines of a command that ran.
RAN = r"^master: (fast|graceful) stop|^reload: |^control socket: (stop|quit|reload) from"


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
            self.assertEqual(s.recv(100), b"ERR no complete command line within 5000 ms\n")
            self.assertEqual(s.recv(100), b"", "the master kept a silent client")
        finally:
            s.close()
        b.wait_for_log(r"control socket: client pid %d uid %d sent no complete command within "
                       r"5000 ms; closed" % (os.getpid(), os.geteuid()), start=mark)
        self.assertIn("worker generation=", status_text(b))

    def test_dribbling_client_is_cut_at_the_deadline(self):
        """A byte every 0.4 s never lets an idle timer fire; the whole
        command still has to arrive within 5 s of the connection."""
        b, _ = self.proxy([self.echo_server()])
        mark = b.mark()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.control_path())
        start = time.monotonic()
        reply, closed_at, status = b"", None, None
        try:
            while closed_at is None and time.monotonic() < start + scaled(20):
                try:
                    s.send(b"s")
                    if select.select([s], [], [], 0.4)[0]:
                        chunk = s.recv(4096)
                        reply += chunk
                        if not chunk:
                            closed_at = time.monotonic()
                except (BrokenPipeError, ConnectionResetError):
                    closed_at = time.monotonic()
                if status is None:
                    # others are served meanwhile
                    status = b.ctl("status")
        finally:
            s.close()
        self.assertIsNotNone(closed_at, "a client dribbling a byte every 0.4 s kept its slot "
                                        "for 20 s")
        self.assertLess(closed_at - start, 5 + scaled(5))
        self.assertEqual(reply, b"ERR no complete command line within 5000 ms\n")
        b.wait_for_log(r"control socket: client pid %d uid %d sent no complete command within "
                       r"5000 ms; closed" % (os.getpid(), os.geteuid()), start=mark)
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertIn("worker generation=", status.stdout)

    def test_a_command_is_the_whole_line(self):
        """Anything but exactly a command word on the line is refused, with
        the reason, and nothing runs."""
        b, _ = self.proxy([self.echo_server()])
        worker = b.current_worker()
        mark = b.mark()
        cases = [
            (b"stop\x00junk\n", False, "ERR command line 'stop\\x00junk' contains a NUL byte at "
                                       "offset 4 (a command is the whole line; expected status, "
                                       "stop, quit or reload)\n"),
            (b"status\x00junk\n", False, "contains a NUL byte at offset 6"),
            (b"reload\x00\n", False, "contains a NUL byte at offset 6"),
            (b"stop junk\n", False, "ERR unknown command 'stop junk' (a command is the whole "
                                    "line; expected status, stop, quit or reload)\n"),
            (b"quitx\n", False, "unknown command 'quitx'"),
            (b"\xff\xfestop\n", False, "command line '\\xff\\xfestop' contains byte 0xff at "
                                     "offset 0 (a command is plain ASCII"),
            (b"stop\r\r\n", False, "contains byte 0x0d at offset 4"),
            (b"stop" + b"x" * 300, False, "ERR command line too long (more than 256 bytes "
                                         "before a newline)\n"),
            (b"stop", True, "ERR command line not terminated by a newline\n"),
        ]
        for payload, half_close, want in cases:
            with self.subTest(payload=payload[:20]):
                reply = self.request(b, payload, half_close=half_close)
                self.assertTrue(reply.startswith(b"ERR "), reply)
                if want.startswith("ERR "):
                    self.assertEqual(reply.decode("ascii"), want)
                else:
                    self.assertIn(want, reply.decode("ascii"))
        self.assertIsNone(b.proc.poll(), "the master acted on a refused line")
        self.assertEqual(b.current_worker(), worker)
        self.assertEqual(b.find_log(RAN, start=mark), [])
        b.wait_for_log(r"^control socket: client pid %d uid %d: command line 'stop\\x00junk' "
                       r"contains a NUL byte at offset 4 .*; nothing run$"
                       % (os.getpid(), os.geteuid()), start=mark)
        self.assertIn("worker generation=", status_text(b))

    def test_client_refuses_a_squatter(self):
        """Another user got to the control path first (a directory all can
        write): `baton -s` sends it nothing and believes nothing."""
        user = other_user()
        open_to_others(self)
        shared = os.path.join(self.tmp, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        path = os.path.join(shared, "baton.sock")
        cfg = os.path.join(self.tmp, "squatted.ini")
        with open(cfg, "w") as f:
            f.write(render_config(self.make_config(["a 127.0.0.1:9"],
                                                   glob={"control": path})))
        pid, reports = fork_as(user, squatter(path))
        try:
            self.assertEqual(reports.readline(), b"ready\n", "the squatter could not start")
            for cmd in ("status", "reload"):
                r = run_baton(["-s", cmd, "-c", cfg])
                self.assertEqual(r.returncode, 1, "stdout=%r stderr=%r" % (r.stdout, r.stderr))
                self.assertIn("baton: refusing control socket %s: it is served by uid %d "
                              "(pid %d), expected root (uid 0) or this user (uid %d)"
                              % (path, user[0], pid, os.geteuid()), r.stderr)
                self.assertNotIn("squatter", r.stdout + r.stderr)
                self.assertNotIn("reloaded", r.stdout + r.stderr)
                # it heard nothing from the client
                self.assertEqual(reports.readline(), b"got \n")
        finally:
            reports.close()
            end_child(pid)

    def test_master_refuses_another_user(self):
        """The master serves root and its own user only (no control_group),
        even when the socket file's mode would let others connect."""
        user = other_user()
        open_to_others(self)
        b, _ = self.proxy([self.echo_server()])
        path = self.control_path()
        self.assertEqual(stat.S_IMODE(os.lstat(path).st_mode), 0o600)
        os.chmod(path, 0o666)
        worker = b.current_worker()
        mark = b.mark()
        for payload in (b"status\n", b"stop\n", b"reload\n"):
            self.assertEqual(call_as(user, raw_client(path, payload)).decode(),
                             "ERR permission denied: uid %d may not control this baton "
                             "(allowed: root and uid %d; see control_group)\n"
                             % (user[0], os.geteuid()))
        b.wait_for_log(r"^control socket: refused client pid \d+ uid %d gid %d: permission "
                       r"denied" % user, start=mark, count=3)
        self.assertIsNone(b.proc.poll(), "the master obeyed another user")
        self.assertEqual(b.current_worker(), worker)
        self.assertEqual(b.find_log(RAN, start=mark), [])
        self.assertIn("worker generation=", status_text(b))

    def test_control_group_members_may_control(self):
        """control_group: the socket is 0660 and the group's; a member (by a
        supplementary group) may control baton, others may not; a reload
        without the key takes the socket back."""
        user = other_user()
        exe = open_to_others(self)
        group, gid = spare_group(exclude=(user[1],))
        srv = self.echo_server()
        cfg = self.make_config([srv], glob={"control_group": group})
        b = self.start_baton(cfg)
        path = self.control_path()
        st = os.lstat(path)
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_gid), (0o660, gid))
        r = run_as(user, [exe, "-s", "status", "-c", b.config_path], groups=[gid])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("worker generation=", r.stdout)
        # not a member: the file's mode stops it, and so would the master
        r = run_as(user, [exe, "-s", "status", "-c", b.config_path])
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("cannot connect to control socket %s: Permission denied" % path, r.stderr)
        os.chmod(path, 0o666)
        self.assertEqual(call_as(user, raw_client(path, b"status\n")).decode(),
                         "ERR permission denied: uid %d may not control this baton (allowed: "
                         "root, uid %d, and members of group %s)\n"
                         % (user[0], os.geteuid(), group))
        # the group goes away with a reload: so does the member's access
        mark = b.mark()
        del cfg["global"]["control_group"]
        with open(b.config_path, "w") as f:
            f.write(render_config(cfg))
        r = b.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        b.wait_for_log(r"^control socket %s: mode 0600$" % re.escape(path), start=mark)
        self.assertEqual(stat.S_IMODE(os.lstat(path).st_mode), 0o600)
        r = run_as(user, [exe, "-s", "status", "-c", b.config_path], groups=[gid])
        self.assertEqual(r.returncode, 1, r.stdout)

    def test_cli_finds_the_socket_with_the_loader(self):
        """`baton -s` reads the control path as the master does: [ global ]
        is [global]; a file broken elsewhere still names the socket (with a
        warning); one broken in [global] names none, and none is guessed."""
        srv = self.echo_server()
        good = render_config(self.make_config([srv])).replace("[global]", "[ global ]")
        b = self.start_baton(good)
        r = b.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("worker generation=", r.stdout)
        with open(b.config_path, "a") as f:
            f.write("\n[listener extra]\nbind = 127.0.0.1:0\nbackend = nowhere\n")
        r = b.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("worker generation=", r.stdout)
        self.assertIn("baton: warning: %s is not valid" % b.config_path, r.stderr)
        self.assertRegex(r.stderr, r"%s:\d+: .*nowhere" % re.escape(b.config_path))
        with open(b.config_path, "w") as f:
            f.write(good.replace("threads = 1", "threads = 1000"))
        r = b.ctl("status")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertEqual(r.stdout, "")
        self.assertRegex(r.stderr, r"%s:\d+: threads" % re.escape(b.config_path))
        self.assertIn("baton: cannot tell which control socket %s names" % b.config_path,
                      r.stderr)

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
        """A reload while a respawn waits out its back-off ends with one
        generation, and once the reload is complete nothing more starts:
        the pending respawn is cancelled (or, if its moment came first,
        superseded by the reload's generation)."""
        b, _ = self.proxy([self.echo_server()])
        victim, gen = b.current_worker()
        mark = b.mark()
        # each dies within a second of starting: back-offs of 200, 400, 800 ms
        for n in range(1, 4):
            os.kill(victim, signal.SIGKILL)
            b.wait_for_log(r"master: starting a new worker in \d+ ms", start=mark, count=n)
            if n < 3:
                m = b.wait_for_log(r"^worker (\d+) generation %d ready" % (gen + n), start=mark)
                victim = int(m.group(1))
        r = b.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        b.wait_for_log(r"^reload complete", start=mark)
        time.sleep(1.0)   # not a wait for a result: the back-off timer's moment passes
        st = parse_status_text(status_text(b))
        active = [w for w in st["worker"] if w.get("state") == "active"]
        self.assertEqual(len(active), 1, st["worker"])
        msgs = b.messages(mark)
        done = next(i for i, msg in enumerate(msgs) if msg.startswith("reload complete"))
        self.assertEqual([msg for msg in msgs[done:]
                          if re.match(r"worker \d+ generation \d+ starting", msg)], [],
                         "a respawn started after the reload")

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
        b, addr = self.proxy([echo], glob={"drain_timeout": "1s", "handoff": "drain"})
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
