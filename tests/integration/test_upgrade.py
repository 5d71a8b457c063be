"""Hot restart: binary upgrade by re-exec in place, rollback when the new
generation fails (bad configuration, a binary that exits, crashes or never
gets ready), listeners added and removed by a reload, listening sockets kept
across reloads, and draining of the old generation."""

import os
import re
import socket
import subprocess
import threading
import time
import unittest

from baton_harness import (BATON_BIN, BATON_NEXT_BIN, T_EXIT, BatonTestCase,
                           binary_version, connect, install_binary, install_script,
                           pid_alive, pseudo_random, recv_exact, recv_until_eof,
                           render_config, scaled, sha256_hex, socket_inodes,
                           start_baton_command, tcp_listen_inode, wait_closed,
                           wait_until)


def echo_ok(s, msg, timeout=15):
    s.sendall(msg)
    return recv_exact(s, len(msg), timeout) == msg


def echo_once(addr, msg=b"ping"):
    """One short connection: round trip, half-close, clean EOF."""
    s = connect(addr)
    try:
        s.sendall(msg)
        got = recv_exact(s, len(msg))
        s.shutdown(socket.SHUT_WR)
        rest = recv_until_eof(s)
        return got + rest
    finally:
        s.close()


def finish_echo(s, msg=b"last words"):
    """Round trip on an open echo connection, then half-close and EOF."""
    s.sendall(msg)
    got = recv_exact(s, len(msg))
    s.shutdown(socket.SHUT_WR)
    return got + recv_until_eof(s)


def no_core_dumps():
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_CORE,
                           (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    except (ImportError, ValueError, OSError):
        pass


class UpgradeBase(BatonTestCase):

    def start_copied(self, servers, **kw):
        """baton started from a private copy of BATON_BIN in the temp dir
        (so the file can be replaced); returns (baton, config dict, exe)."""
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir, exist_ok=True)
        exe = os.path.join(bindir, "baton")
        install_binary(BATON_BIN, exe)
        cfg = self.make_config(servers, **kw)
        b = start_baton_command(self, cfg, binary=exe)
        return b, cfg, exe

    def rewrite(self, b, cfg):
        with open(b.config_path, "w") as f:
            f.write(render_config(cfg))

    def reload_ok(self, b):
        """-s reload must succeed; returns (generation, worker pid, stdout)."""
        r = b.ctl("reload", timeout=60)
        self.assertEqual(r.returncode, 0, "reload: stdout=%r stderr=%r" % (r.stdout, r.stderr))
        m = re.search(r"^reloaded: generation (\d+) worker pid (\d+)$", r.stdout, re.M)
        self.assertIsNotNone(m, "reload output: %r" % r.stdout)
        return int(m.group(1)), int(m.group(2)), r.stdout

    def the_worker(self, b):
        """The single worker in status (asserts there is exactly one)."""
        st = b.status()
        self.assertEqual(len(st["worker"]), 1, st["worker"])
        return st["worker"][0]


class BinaryUpgradeTest(UpgradeBase):

    def setUp(self):
        super().setUp()
        if not BATON_NEXT_BIN or not os.path.isfile(BATON_NEXT_BIN):
            self.skipTest("BATON_NEXT_BIN not set")

    def test_binary_upgrade(self):
        v, vn = binary_version(BATON_BIN), binary_version(BATON_NEXT_BIN)
        self.assertEqual(vn, v + "-next")
        echo = self.echo_server()
        b, cfg, exe = self.start_copied([echo], glob={"drain_timeout": "60s", "handoff": "drain"})
        addr = b.listener_addr("web")
        w1, g1 = b.current_worker()
        st = b.status()
        self.assertEqual(st["baton"].get("version"), v)
        self.assertEqual(st["master"].get("pid"), str(b.pid))
        self.assertEqual([(w["pid"], w["version"]) for w in st["worker"]], [(str(w1), v)])
        self.assertEqual(echo_once(addr, b"before"), b"before")
        held = connect(addr)
        try:
            self.assertTrue(echo_ok(held, b"opened before the upgrade"))
            wait_until(lambda: b.status()["worker"][0].get("connections") == "1", 15,
                       interval=0.1, what="status showing the held connection")
            install_binary(BATON_NEXT_BIN, exe)
            mark = b.mark()
            g2, w2, out = self.reload_ok(b)
            self.assertEqual(g2, g1 + 1)
            self.assertNotEqual(w2, w1)
            m = re.search(r"^master pid (\d+) now runs baton (\S+)$", out, re.M)
            self.assertIsNotNone(m, "no 'now runs' line in %r" % out)
            self.assertEqual(int(m.group(1)), b.pid)
            self.assertEqual(m.group(2), vn)
            self.assertIsNone(b.proc.poll(), "master exited")
            b.wait_for_log(r"^master %d resumed as baton %s\b" % (b.pid, re.escape(vn)),
                           start=mark)
            # the master now runs the file at its path, not a deleted image
            self.assertEqual(os.readlink("/proc/%d/exe" % b.pid), os.path.realpath(exe))
            st = b.status()
            self.assertEqual(st["baton"].get("version"), vn)
            self.assertEqual(st["master"].get("pid"), str(b.pid))
            ws = {int(w["pid"]): w for w in st["worker"]}
            self.assertEqual(set(ws), {w1, w2}, st["worker"])
            self.assertEqual(ws[w2].get("version"), vn)
            self.assertEqual(ws[w2].get("state"), "active")
            self.assertEqual(ws[w2].get("generation"), str(g2))
            self.assertEqual(ws[w1].get("version"), v)
            self.assertEqual(ws[w1].get("state"), "draining")
            # new connections flow (through the new worker)
            self.assertEqual(echo_once(addr, b"after"), b"after")
            # the connection opened before still works and completes
            self.assertTrue(pid_alive(w1))
            self.assertTrue(echo_ok(held, b"still served by the old worker"))
            self.assertEqual(finish_echo(held), b"last words")
        finally:
            held.close()
        wait_until(lambda: not pid_alive(w1), 20, interval=0.05,
                   what="old worker %d to exit" % w1)
        w = self.the_worker(b)
        self.assertEqual((w.get("pid"), w.get("state"), w.get("version")), (str(w2), "active", vn))
        # the re-executed master keeps working: a plain reload, no re-exec
        g3, w3, out = self.reload_ok(b)
        self.assertEqual(g3, g2 + 1)
        self.assertNotIn("now runs", out)
        wait_until(lambda: not pid_alive(w2), 20, interval=0.05,
                   what="worker %d to exit" % w2)
        w = self.the_worker(b)
        self.assertEqual((w.get("pid"), w.get("version")), (str(w3), vn))
        self.assertEqual(echo_once(addr, b"third"), b"third")
        self.assertEqual(b.status()["master"].get("pid"), str(b.pid))


class RollbackTest(UpgradeBase):

    def check_still_serving(self, b, addr, w1, g1, version):
        self.assertIsNone(b.proc.poll(), "master exited")
        self.assertEqual(echo_once(addr, b"old generation"), b"old generation")
        w = self.the_worker(b)
        self.assertEqual((w.get("pid"), w.get("generation"), w.get("state")),
                         (str(w1), str(g1), "active"))
        st = b.status()
        self.assertEqual(st["baton"].get("version"), version)
        self.assertEqual(st["master"].get("pid"), str(b.pid))
        self.assertTrue(pid_alive(w1))

    def failed_reload(self, script, expect, glob=None):
        """Installs a broken 'binary' (shell script), reloads: must fail with
        `expect` (regex) and leave generation 1 serving; then the good binary
        is restored and a further reload succeeds."""
        no_core_dumps()
        v = binary_version(BATON_BIN)
        echo = self.echo_server()
        b, cfg, exe = self.start_copied([echo], glob=glob)
        addr = b.listener_addr("web")
        w1, g1 = b.current_worker()
        held = connect(addr)
        try:
            self.assertTrue(echo_ok(held, b"held"))
            install_script(exe, script)
            mark = b.mark()
            t0 = time.monotonic()
            r = b.ctl("reload", timeout=60)
            self.assertEqual(r.returncode, 1, "stdout=%r stderr=%r" % (r.stdout, r.stderr))
            m = re.search(r"reload failed: new worker (\d+) generation (\d+) " + expect,
                          r.stderr)
            self.assertIsNotNone(m, "stderr: %r" % r.stderr)
            bad_pid, bad_gen = int(m.group(1)), int(m.group(2))
            self.assertEqual(bad_gen, g1 + 1)
            self.assertNotIn("reloaded:", r.stdout)
            b.wait_for_log(r"^reload failed: .*; the running generation keeps serving$",
                           start=mark)
            wait_until(lambda: not pid_alive(bad_pid), 10, interval=0.05,
                       what="failed worker %d to be gone" % bad_pid)
            self.check_still_serving(b, addr, w1, g1, v)
            self.assertTrue(echo_ok(held, b"held after the failed reload"))
            self.assertEqual(b.find_log(r"^worker \d+ generation \d+ ready", start=mark), [])
        finally:
            held.close()
        # the good binary back: a further reload works (and re-executes the
        # master from the restored file, same version)
        install_binary(BATON_BIN, exe)
        g, w, out = self.reload_ok(b)
        self.assertGreater(g, bad_gen)
        self.assertNotEqual(w, w1)
        wait_until(lambda: not pid_alive(w1), 20, interval=0.05,
                   what="generation %d worker to exit" % g1)
        wk = self.the_worker(b)
        self.assertEqual((wk.get("pid"), wk.get("state"), wk.get("version")),
                         (str(w), "active", v))
        self.assertEqual(echo_once(addr, b"after restore"), b"after restore")
        self.assertEqual(b.status()["master"].get("pid"), str(b.pid))
        return time.monotonic() - t0

    def test_binary_exits_1(self):
        self.failed_reload("#!/bin/sh\nexit 1\n", r"exited with status 1\b")

    def test_binary_segfaults(self):
        self.failed_reload("#!/bin/sh\nkill -SEGV $$\n",
                           r"killed by signal 11 \(Segmentation fault\)")

    def test_binary_never_ready(self):
        took = self.failed_reload("#!/bin/sh\nexec sleep 60\n",
                                  r"killed by signal 9 \(Killed\): not ready within 1000 ms",
                                  glob={"upgrade_timeout": "1s"})
        self.assertLess(took, scaled(30))

    def test_invalid_config_refused(self):
        v = binary_version(BATON_BIN)
        echo = self.echo_server()
        b, cfg, exe = self.start_copied([echo])
        addr = b.listener_addr("web")
        w1, g1 = b.current_worker()
        good = render_config(cfg)
        bad = good + "\n[listener extra]\nbind = 127.0.0.1:0\nbackend = nowhere\n"
        with open(b.config_path, "w") as f:
            f.write(bad)
        nlines = len(bad.splitlines())
        mark = b.mark()
        r = b.ctl("reload")
        self.assertEqual(r.returncode, 1, "stdout=%r stderr=%r" % (r.stdout, r.stderr))
        self.assertIn("reload refused: configuration rejected:", r.stderr)
        m = re.search(r"^%s:(\d+): .*nowhere" % re.escape(b.config_path), r.stderr, re.M)
        self.assertIsNotNone(m, "no FILE:LINE: error naming the bad backend in %r" % r.stderr)
        self.assertGreater(int(m.group(1)), len(good.splitlines()))
        self.assertLessEqual(int(m.group(1)), nlines)
        b.wait_for_log(r"^reload refused: configuration rejected:", start=mark)
        wait_until(lambda: any("%s:%s:" % (b.config_path, m.group(1)) in l and "nowhere" in l
                               for l in b.tail(50)), 10,
                   what="the FILE:LINE error in the master's log")
        # nothing started, nothing bound, nothing changed
        self.assertEqual(b.find_log(r"^worker \d+ generation \d+ starting", start=mark), [])
        self.assertEqual(b.find_log(r"^listener \S+ bound to", start=mark), [])
        self.check_still_serving(b, addr, w1, g1, v)
        # fixed file: reload works
        with open(b.config_path, "w") as f:
            f.write(good)
        g, w, _ = self.reload_ok(b)
        self.assertEqual(g, g1 + 1)
        wait_until(lambda: not pid_alive(w1), 20, interval=0.05,
                   what="generation %d worker to exit" % g1)
        self.assertEqual(self.the_worker(b).get("pid"), str(w))
        self.assertEqual(echo_once(addr, b"fixed"), b"fixed")

    def test_reload_while_starting_refused(self):
        """A second reload while the first one's worker is still starting is
        refused; the first then fails on its own (never ready)."""
        echo = self.echo_server()
        b, cfg, exe = self.start_copied([echo], glob={"upgrade_timeout": "3s"})
        addr = b.listener_addr("web")
        w1, g1 = b.current_worker()
        install_script(exe, "#!/bin/sh\nexec sleep 60\n")
        mark = b.mark()
        first = subprocess.Popen([BATON_BIN, "-s", "reload", "-c", b.config_path],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, universal_newlines=True)
        try:
            m = b.wait_for_log(r"^worker (\d+) generation %d starting" % (g1 + 1), start=mark)
            starting = int(m.group(1))
            r = b.ctl("reload")
            self.assertEqual(r.returncode, 1, "stdout=%r stderr=%r" % (r.stdout, r.stderr))
            self.assertIn("a reload is already in progress", r.stderr)
            st = b.status()
            states = {int(w["pid"]): w.get("state") for w in st["worker"]}
            self.assertEqual(states, {w1: "active", starting: "starting"})
            out, err = first.communicate(timeout=scaled(30))
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(10)
        self.assertEqual(first.returncode, 1, "stdout=%r stderr=%r" % (out, err))
        self.assertRegex(err, r"reload failed: new worker %d generation %d killed by "
                              r"signal 9 \(Killed\): not ready within 3000 ms" % (starting, g1 + 1))
        wait_until(lambda: not pid_alive(starting), 10, interval=0.05,
                   what="never-ready worker to be gone")
        self.assertEqual(self.the_worker(b).get("pid"), str(w1))
        self.assertEqual(echo_once(addr), b"ping")
        install_binary(BATON_BIN, exe)
        self.reload_ok(b)


class ListenerReloadTest(UpgradeBase):

    def test_listener_added(self):
        echo = self.echo_server()
        b, cfg, exe = self.start_copied([echo])
        web = b.listener_addr("web")
        cfg["listener api"] = {"bind": "127.0.0.1:0", "backend": "app"}
        self.rewrite(b, cfg)
        mark = b.mark()
        self.reload_ok(b)
        m = b.wait_for_log(r"^listener api bound to (\S+)$", start=mark)
        host, _, port = m.group(1).rpartition(":")
        api = (host, int(port))
        self.assertNotEqual(api, web)
        self.assertEqual(echo_once(api, b"via api"), b"via api")
        self.assertEqual(echo_once(web, b"via web"), b"via web")
        # web was not re-bound
        self.assertEqual(b.find_log(r"^listener web bound to", start=mark), [])
        ls = {l["name"]: l["address"] for l in b.status()["listener"]}
        self.assertEqual(ls, {"web": "%s:%d" % web, "api": "%s:%d" % api})

    def test_listener_removed(self):
        echo = self.echo_server()
        cfg = self.make_config([echo], glob={"drain_timeout": "60s"})
        cfg["listener api"] = {"bind": "127.0.0.1:0", "backend": "app"}
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir)
        exe = os.path.join(bindir, "baton")
        install_binary(BATON_BIN, exe)
        b = start_baton_command(self, cfg, binary=exe)
        web, api = b.listener_addr("web"), b.listener_addr("api")
        w1, g1 = b.current_worker()
        api_ino = tcp_listen_inode(api)
        self.assertIsNotNone(api_ino)
        held = connect(api)
        try:
            self.assertTrue(echo_ok(held, b"held on api"))
            del cfg["listener api"]
            self.rewrite(b, cfg)
            mark = b.mark()
            g2, w2, _ = self.reload_ok(b)
            closed = b.wait_for_log(r"^listener (\S*) on %s:%d closed$" % api, start=mark)
            self.assertNotIn(api_ino, socket_inodes(b.pid).values(),
                             "master still holds the removed listener's socket")
            self.assertEqual(echo_once(web, b"web stays"), b"web stays")
            # the connection accepted on the removed listener finishes on
            # the draining worker
            self.assertTrue(echo_ok(held, b"held after removal"))
            self.assertEqual(finish_echo(held), b"last words")
        finally:
            held.close()
        wait_until(lambda: not pid_alive(w1), 20, interval=0.05,
                   what="old worker %d to exit" % w1)
        with self.assertRaises(ConnectionRefusedError):
            connect(api, timeout=5).close()
        self.assertIsNone(tcp_listen_inode(api))
        self.assertEqual(echo_once(web, b"web still"), b"web still")
        ls = {l["name"]: l["address"] for l in b.status()["listener"]}
        self.assertEqual(ls, {"web": "%s:%d" % web})
        self.assertEqual(closed.group(0), "listener api on %s:%d closed" % api,
                         "the log names the wrong listener")

    def socket_kept(self, upgrade):
        echo = self.echo_server()
        b, cfg, exe = self.start_copied([echo])
        web = b.listener_addr("web")
        ino = tcp_listen_inode(web)
        self.assertIsNotNone(ino, "no listening socket on %s:%d" % web)
        fds = [fd for fd, i in socket_inodes(b.pid).items() if i == ino]
        self.assertEqual(len(fds), 1, "master fds for socket:[%d]: %r" % (ino, fds))
        for round_ in range(2):
            if upgrade and round_ == 0:
                install_binary(BATON_NEXT_BIN, exe)
            else:
                cfg["global"]["log_level"] = "debug" if round_ else "info"
                self.rewrite(b, cfg)
            mark = b.mark()
            _, w, out = self.reload_ok(b)
            if upgrade and round_ == 0:
                self.assertIn("now runs baton", out)
            self.assertEqual(b.find_log(r"^listener web bound to", start=mark), [],
                             "listener web was bound again")
            self.assertEqual(tcp_listen_inode(web), ino,
                             "the listening socket on %s:%d changed" % web)
            self.assertIn(ino, socket_inodes(b.pid).values(),
                          "master no longer holds socket:[%d]" % ino)
            self.assertIn(ino, socket_inodes(w).values(),
                          "new worker %d does not use socket:[%d]" % (w, ino))
            ls = {l["name"]: l["address"] for l in b.status()["listener"]}
            self.assertEqual(ls, {"web": "%s:%d" % web})
            self.assertEqual(echo_once(web, b"same socket"), b"same socket")

    def test_listener_keeps_socket(self):
        self.socket_kept(upgrade=False)

    def test_listener_keeps_socket_across_binary_upgrade(self):
        if not BATON_NEXT_BIN or not os.path.isfile(BATON_NEXT_BIN):
            self.skipTest("BATON_NEXT_BIN not set")
        self.socket_kept(upgrade=True)


class DrainTest(UpgradeBase):

    def test_long_transfer_survives_reload(self):
        sink = self.sink_server()
        # The drain path itself: with handoff = live (the default) the
        # transfer moves instead, and whether the old worker reads the
        # master's drain request before its handoff ends is a race
        # (test_handoff_streams covers moving).
        b, cfg, exe = self.start_copied([sink], glob={"drain_timeout": "60s", "handoff": "drain"})
        addr = b.listener_addr("web")
        w1, g1 = b.current_worker()
        size = 32 << 20
        data = pseudo_random(size, b"drain-transfer")
        s = connect(addr, timeout=60)
        reloaded = threading.Event()
        progress = {"sent": 0, "error": None, "sent_during": 0}
        first = 8 << 20
        chunk = 32 << 10
        reserve = 4 << 20      # sent only after the reload completed

        def sender():
            view = memoryview(data)
            try:
                s.sendall(view[:first])
                progress["sent"] = first
                # keep trickling data while the reload runs (bounded)
                deadline = time.monotonic() + scaled(60)
                while (not reloaded.is_set() and progress["sent"] < size - reserve and
                       time.monotonic() < deadline):
                    s.sendall(view[progress["sent"]:progress["sent"] + chunk])
                    progress["sent_during"] += chunk
                    progress["sent"] += chunk
                    reloaded.wait(0.01)
                s.sendall(view[progress["sent"]:])
                progress["sent"] = size
                s.shutdown(socket.SHUT_WR)
            except Exception as e:
                progress["error"] = repr(e)

        t = threading.Thread(target=sender, daemon=True)
        try:
            t.start()
            sink.wait(lambda x: x.conns and x.conns[0].get("received_bytes", 0) >= first // 2,
                      what="upload under way")
            wait_until(lambda: progress["sent"] > first or progress["error"], 30,
                       what="the sender to trickle")
            mark = b.mark()
            g2, w2, _ = self.reload_ok(b)
            sent_at_reload = progress["sent"]
            reloaded.set()
            # The old worker drains with the transfer open.  (Asked through
            # the log, not `status`: the rest of the transfer can end, and the
            # old worker exit, before a status request would be answered.)
            b.wait_for_log(r"^worker generation %d: draining \(asked by master\), 1 "
                           r"connection\(s\) open" % g1, start=mark)
            # the transfer had not finished when the reload completed
            self.assertLessEqual(sent_at_reload, size - reserve,
                            "transfer finished before the reload; it did not span it")
            reply = recv_until_eof(s, timeout=60)
            t.join(scaled(60))
            self.assertFalse(t.is_alive())
            self.assertIsNone(progress["error"])
        finally:
            s.close()
        self.assertEqual(reply.decode("ascii", "replace"), sha256_hex(data))
        with sink.lock:
            self.assertEqual(sink.conns[0].get("received_bytes"), size)
        self.assertGreater(progress["sent_during"], 0)
        wait_until(lambda: not pid_alive(w1), 20, interval=0.05,
                   what="old worker %d to exit" % w1)
        acc = b.wait_access(1, pred=lambda a: a.get("bytes_in") == str(size))
        self.assertEqual(len(acc), 1)
        self.assertIn(acc[0]["end"], ("client_close", "server_close"))
        self.assertEqual(acc[0]["bytes_out"], "64")

    def test_drain_timeout_cuts_connection(self):
        echo = self.echo_server()
        b, cfg, exe = self.start_copied([echo], glob={"drain_timeout": "1s", "handoff": "drain"},
                                        listener={"idle_timeout": "0"})
        addr = b.listener_addr("web")
        w1, g1 = b.current_worker()
        old = connect(addr)
        new = None
        try:
            self.assertTrue(echo_ok(old, b"old"))
            mark = b.mark()
            g2, w2, _ = self.reload_ok(b)
            t0 = time.monotonic()
            # the old worker learns asynchronously that it must stop
            # accepting; open the second connection once it has
            b.wait_for_log(r"^worker generation %d: draining" % g1, start=mark)
            new = connect(addr)
            self.assertTrue(echo_ok(new, b"new"))
            self.assertTrue(echo_ok(old, b"old still open while draining"))
            took = wait_closed(old, scaled(15))
            self.assertIsNotNone(took, "connection not closed after drain_timeout")
            self.assertGreaterEqual(time.monotonic() - t0, 0.5,
                                    "connection closed long before drain_timeout")
            wait_until(lambda: not pid_alive(w1), 15, interval=0.05,
                       what="old worker %d to exit" % w1)
            acc = b.wait_access(1, start=mark, pred=lambda a: a.get("end") == "drain_timeout")
            self.assertEqual(len(acc), 1, acc)
            self.assertEqual(acc[0]["bytes_in"], str(3 + len(b"old still open while draining")))
            # the line was written by the old worker
            lines = [l for l in b.tail(10000) if "end=drain_timeout" in l]
            self.assertEqual(len(lines), 1)
            self.assertIn("baton[%d]" % w1, lines[0])
            # the connection on the new generation is untouched
            self.assertTrue(echo_ok(new, b"new after the drain"))
            self.assertEqual(finish_echo(new), b"last words")
        finally:
            old.close()
            if new is not None:
                new.close()
        self.assertEqual(self.the_worker(b).get("pid"), str(w2))


if __name__ == "__main__":
    unittest.main()
