"""Live connection handoff (handoff = live): at a reload, established plain
TCP and passthrough connections move to the new generation with their
state, and the old worker exits at once.

Every stream is checked byte for byte; the old worker's exit is asserted;
each connection gets exactly one access-log line, from whichever
generation ends it, with handoffs=N."""

import os
import re
import resource
import signal
import socket
import ssl
import time
import unittest

from baton_harness import (BatonTestCase, connect, pid_alive,
                           pseudo_random, recv_exact, recv_until_eof, render_config,
                           sha256_hex, tcp_rx_bytes, tcp_unread, wait_status, wait_until)


def echo_ok(s, msg, timeout=15):
    s.sendall(msg)
    return recv_exact(s, len(msg), timeout) == msg


def write_config(b, cfg):
    with open(b.config_path, "w") as f:
        f.write(render_config(cfg))


def client_hello(sni="app.example"):
    """The bytes of a real TLS ClientHello (Python's ssl), with SNI."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class LiveHandoffTest(BatonTestCase):

    def reload(self, b):
        r = b.ctl("reload", timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"^reloaded: generation (\d+) worker pid (\d+)$", r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        return int(m.group(1)), int(m.group(2))

    def reload_moved(self, b, old_pid, old_gen, moved, drain=0):
        """Reloads; the old worker hands `moved` connections over, leaves
        `drain` and (with none left) exits within a bound."""
        mark = b.mark()
        gen, pid = self.reload(b)
        m = b.wait_for_log(r"^worker generation %d: handoff: (\d+) connection\(s\) moved to "
                           r"generation %d, (\d+) left to drain, in (\d+) ms, CPU (\d+) ms$"
                           % (old_gen, gen), start=mark)
        self.assertEqual((int(m.group(1)), int(m.group(2))), (moved, drain))
        # The taker says what it adopted, and what that cost it.
        t = b.wait_for_log(r"^worker generation %d: handoff: (\d+) connection\(s\) adopted from "
                           r"generation %d in (\d+) ms, CPU (\d+) ms$" % (gen, old_gen),
                           start=mark)
        self.assertEqual(int(t.group(1)), moved)
        self.assertLessEqual(int(t.group(3)), int(t.group(2)) * 4 + 10)
        if drain == 0:
            wait_until(lambda: not pid_alive(old_pid), 5, interval=0.01,
                       what="old worker %d to exit after the handoff" % old_pid)
        return gen, pid

    def test_connections_move_with_counts_and_one_access_line(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo], glob={"threads": 2})
        pid, gen = b.current_worker()
        socks = [connect(addr) for _ in range(6)]
        sent = [0] * len(socks)
        try:
            for rnd in range(3):
                for i, s in enumerate(socks):
                    msg = pseudo_random(1000 + i * 100, "r%d-%d" % (rnd, i))
                    self.assertTrue(echo_ok(s, msg), "stream %d round %d" % (i, rnd))
                    sent[i] += len(msg)
                if rnd < 2:
                    gen, pid = self.reload_moved(b, pid, gen, len(socks))
            st, _ = wait_status(b, lambda st, sv: st["worker"] and
                                st["worker"][0].get("adopted") == str(len(socks)),
                                what="the new generation's adopted count")
            self.assertEqual([(w["generation"], w["state"]) for w in st["worker"]],
                             [(str(gen), "active")])
            self.assertEqual(st["worker"][0]["handed_over"], "0")
            self.assertEqual(st["worker"][0]["orphans"], "0")
        finally:
            for s in socks:
                s.close()
        # The old workers have exited (reload_moved): any line of theirs is
        # in already, so the count is final once the last one arrives.
        b.wait_access(len(socks))
        acc = b.access_lines()
        self.assertEqual(len(acc), len(socks), acc)
        self.assertEqual(sorted(int(a["bytes_in"]) for a in acc), sorted(sent))
        self.assertEqual({a["handoffs"] for a in acc}, {"2"})
        self.assertEqual({a["server"] for a in acc}, {"echo"})

    def test_orphans_when_server_and_listener_are_removed(self):
        echo, other = self.echo_server("echo"), self.echo_server("other")
        cfg = self.make_config([echo], glob={"threads": 1})
        cfg["listener side"] = {"bind": "127.0.0.1:0", "backend": "app2"}
        cfg["backend app2"] = {"server": other.server_line()}
        b = self.start_baton(cfg)
        addr = b.listener_addr("web")
        pid, gen = b.current_worker()
        s = connect(addr)
        try:
            self.assertTrue(echo_ok(s, b"before"))
            # the next configuration has neither listener web nor server echo
            new = {"global": cfg["global"], "listener side": cfg["listener side"],
                   "backend app2": cfg["backend app2"]}
            write_config(b, new)
            gen, pid = self.reload_moved(b, pid, gen, 1)
            payload = pseudo_random(200000, "orphan")
            s.sendall(payload)
            self.assertEqual(recv_exact(s, len(payload)), payload)
            wait_status(b, lambda st, sv: st["worker"][0].get("orphans") == "1",
                        what="one orphan")
            # and it moves on again as an orphan
            gen, pid = self.reload_moved(b, pid, gen, 1)
            self.assertTrue(echo_ok(s, b"after two moves"))
        finally:
            s.close()
        a = b.wait_access(1)[0]
        self.assertEqual((a["listener"], a["backend"], a["server"], a["handoffs"]),
                         ("web", "app", "echo", "2"))

    def test_threads_changed(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo], glob={"threads": 1})
        pid, gen = b.current_worker()
        socks = [connect(addr) for _ in range(12)]
        try:
            for threads in (3, 2, 1):
                cfg = self.make_config([echo], glob={"threads": threads})
                write_config(b, cfg)
                gen, pid = self.reload_moved(b, pid, gen, len(socks))
                for i, s in enumerate(socks):
                    self.assertTrue(echo_ok(s, b"t%d-%d" % (threads, i)))
        finally:
            for s in socks:
                s.close()

    def test_pending_bytes_and_half_close_move(self):
        """A download the client does not read (megabytes queued in baton
        and the kernel) and a half-closed upload move intact."""
        size = 24 << 20
        src = self.source_server(size, seed=b"bulk", half_close=True)
        b, addr = self.proxy([src], glob={"threads": 1})
        pid, gen = b.current_worker()
        s = connect(addr)
        try:
            src.wait_conns(1)
            # The client reads nothing yet: wait until its receive queue
            # stops growing, so the rest of the 24 MiB waits in baton.
            sizes = [-1]

            def full():
                sizes.append(tcp_rx_bytes(s.getsockname()))
                return sizes[-1] > 0 and sizes[-1] == sizes[-2]
            wait_until(full, 15, interval=0.05, what="the client's receive queue to fill")
            up = pseudo_random(300000, "upload")
            s.sendall(up)
            s.shutdown(socket.SHUT_WR)
            gen, pid = self.reload_moved(b, pid, gen, 1)
            got = recv_until_eof(s, timeout=60, hash_only=True)
        finally:
            s.close()
        self.assertEqual(got, (size, sha256_hex(src.data)))
        src.wait_done(1)
        with src.lock:
            info = src.conns[0]
        self.assertEqual(info.get("received_sha256"), sha256_hex(up))

    def test_setup_phases_move(self):
        """A PROXY header or a ClientHello half sent when the reload comes is
        finished in the new generation, parsed with its configuration."""
        echo = self.echo_server()
        cfg = self.make_config([echo], listener={"accept_proxy": "on"}, glob={"threads": 1})
        cfg["listener tls"] = {"bind": "127.0.0.1:0", "backend": "app", "tls": "passthrough"}
        b = self.start_baton(cfg)
        addr, taddr = b.listener_addr("web"), b.listener_addr("tls")
        pid, gen = b.current_worker()
        header = b"PROXY TCP4 192.0.2.7 192.0.2.8 4711 443\r\n"
        hello = client_hello()
        p, t = connect(addr), connect(taddr)
        try:
            p.sendall(header[:17])
            t.sendall(hello[:40])
            # baton has read both halves: they travel in the handoff's state
            wait_until(lambda: tcp_unread(addr) == 0 and tcp_unread(taddr) == 0, 10,
                       what="baton to read the partial header and ClientHello")
            gen, pid = self.reload_moved(b, pid, gen, 2)
            p.sendall(header[17:] + b"after the header")
            self.assertEqual(recv_exact(p, 16), b"after the header")
            t.sendall(hello[40:])
            self.assertEqual(recv_exact(t, len(hello)), hello)
        finally:
            p.close()
            t.close()
        acc = b.wait_access(2)
        by = {a["listener"]: a for a in acc}
        self.assertEqual(by["web"]["client"], "192.0.2.7:4711")
        self.assertEqual(by["tls"]["sni"], "app.example")
        self.assertEqual({a["handoffs"] for a in acc}, {"1"})

    def test_taker_killed_never_corrupts(self):
        """The new generation killed at any moment of the transfer: every
        connection goes on intact in one generation, or (only if the dead
        one had taken it) is closed; no byte is ever wrong."""
        echo = self.echo_server()
        b, addr = self.proxy([echo], glob={"threads": 2, "access_log": "off"})
        pid, gen = b.current_worker()
        for delay in (0.0, 0.003, 0.03):
            socks = [connect(addr) for _ in range(300)]
            try:
                for i, s in enumerate(socks):
                    self.assertTrue(echo_ok(s, b"pre-%d" % i))
                new_gen, new_pid = self.reload(b)
                time.sleep(delay)   # where in the transfer the kill lands, not a wait
                os.kill(new_pid, signal.SIGKILL)
                ok = cut = 0
                for i, s in enumerate(socks):
                    msg = b"post-%d-%s" % (i, b"x" * (i % 50))
                    try:
                        s.sendall(msg)
                        got = recv_exact(s, len(msg), timeout=30)
                    except (ConnectionError, socket.timeout, AssertionError, OSError):
                        cut += 1
                        continue
                    self.assertEqual(got, msg, "connection %d corrupted" % i)
                    ok += 1
                print("\nkilled %.3fs after the reload: %d went on, %d cut" % (delay, ok, cut))
                # a replacement serves again
                b.wait_for_log(r"^worker \d+ generation %d ready" % (new_gen + 1), timeout=30)
                pid, gen = b.current_worker()
            finally:
                for s in socks:
                    s.close()
            wait_status(b, lambda st, sv: len(st["worker"]) == 1, 60,
                        what="one generation left")
        self.assertEqual(b.find_log(r"runtime error|AddressSanitizer"), [])

    def test_taker_out_of_descriptors(self):
        """A new worker that runs out of descriptors refuses what it cannot
        take: those connections stay and drain in the old one, intact."""
        echo = self.echo_server()
        b, addr = self.proxy([echo], glob={"threads": 1, "drain_timeout": "60s"})
        pid, gen = b.current_worker()
        socks = [connect(addr) for _ in range(200)]
        try:
            for i, s in enumerate(socks):
                self.assertTrue(echo_ok(s, b"a%d" % i))
            # workers the master starts from now on get at most 160 descriptors
            resource.prlimit(b.pid, resource.RLIMIT_NOFILE, (160, 160))
            mark = b.mark()
            new_gen, new_pid = self.reload(b)
            m = b.wait_for_log(r"^worker generation %d: handoff: (\d+) connection\(s\) moved to "
                               r"generation %d, (\d+) left to drain" % (gen, new_gen),
                               start=mark, timeout=30)
            moved, left = int(m.group(1)), int(m.group(2))
            self.assertGreater(moved, 0)
            self.assertGreater(left, 0)
            self.assertEqual(moved + left, len(socks))
            for i, s in enumerate(socks):
                self.assertTrue(echo_ok(s, b"b%d" % i), "connection %d" % i)
            self.assertTrue(pid_alive(pid), "the old worker drains what stayed")
        finally:
            for s in socks:
                s.close()
        wait_until(lambda: not pid_alive(pid), 30, what="old worker to finish draining")

    def test_handoff_drain_keeps_todays_behaviour(self):
        echo = self.echo_server()
        b, addr = self.proxy([echo], glob={"handoff": "drain", "drain_timeout": "60s"})
        pid, gen = b.current_worker()
        s = connect(addr)
        try:
            self.assertTrue(echo_ok(s, b"one"))
            mark = b.mark()
            self.reload(b)
            b.wait_for_log(r"^worker generation %d: draining" % gen, start=mark)
            self.assertTrue(echo_ok(s, b"two"))
            self.assertTrue(pid_alive(pid))
            self.assertEqual(b.find_log(r"handoff:", start=mark), [])
        finally:
            s.close()
        wait_until(lambda: not pid_alive(pid), 15, what="old worker to exit once idle")


if __name__ == "__main__":
    unittest.main()
