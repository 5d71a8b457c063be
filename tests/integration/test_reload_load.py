"""Reloads under continuous load: no connection fails, none is reset or cut
short, every request gets its own bytes back; keep-alive streams stay on
their (draining) worker across many reloads; a storm of concurrent reload
commands leaves exactly one generation and no leaked processes or fds."""

import errno
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

from baton_harness import (BATON_BIN, BatonTestCase, connect, fd_count, pid_alive,
                           pseudo_random, raise_nofile, recv_exact, scaled,
                           start_baton_command, wait_until)

RELOADS = 50
SPACING = 0.2           # seconds between the end of one reload and the next
LOAD_LIMIT = 150.0      # hard bound on any load loop (seconds)


def _short_pause():
    """Pacing of each short-connection thread (not a synchronisation).
    Each closed connection leaves a TIME_WAIT port behind; without
    tcp_tw_reuse (loopback reuse is the default since Linux 4.19) the
    ephemeral range would run out at full speed."""
    try:
        with open("/proc/sys/net/ipv4/tcp_tw_reuse") as f:
            reuse = int(f.read().strip() or "0")
    except (OSError, ValueError):
        reuse = 0
    return 0.004 if reuse else 0.05


SHORT_PAUSE = _short_pause()


class Load(object):
    """Bounded load against addr: `short` threads doing one round trip per
    connection (connect, send, read the echo, half-close, EOF, close), and
    keep-alive streams doing round trips on one connection each."""

    def __init__(self, addr, short=6, limit=LOAD_LIMIT):
        self.addr = addr
        self.stop = threading.Event()
        self.deadline = time.monotonic() + scaled(limit)
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []        # (kind, detail)
        self.threads = []
        self.streams = []
        for i in range(short):
            t = threading.Thread(target=self._short, args=(i,), daemon=True,
                                 name="short-%d" % i)
            self.threads.append(t)

    def start(self):
        for t in self.threads:
            t.start()

    def fail(self, kind, detail):
        with self.lock:
            if len(self.failures) < 1000:
                self.failures.append((kind, detail))

    def running(self):
        return not self.stop.is_set() and time.monotonic() < self.deadline

    def _short(self, idx):
        n = 0
        while self.running():
            n += 1
            size = 1 + (n * 7919 + idx * 104729) % 3000
            payload = b"%d:%d:" % (idx, n) + pseudo_random(size, b"short-%d-%d" % (idx, n))
            try:
                s = connect(self.addr, timeout=20)
            except OSError as e:
                self.fail("connect", "%s: %r" % (errno.errorcode.get(e.errno, e.errno), e))
                continue
            try:
                s.sendall(payload)
                got = recv_exact(s, len(payload), 20)
                if got != payload:
                    self.fail("mismatch", "conn %d/%d: wrong bytes" % (idx, n))
                    continue
                s.shutdown(socket.SHUT_WR)
                s.settimeout(scaled(20))
                tail = s.recv(16)
                if tail != b"":
                    self.fail("extra", "conn %d/%d: %r after the echo" % (idx, n, tail))
                    continue
                with self.lock:
                    self.ok += 1
            except (ConnectionResetError, BrokenPipeError) as e:
                self.fail("reset", "conn %d/%d: %r" % (idx, n, e))
            except AssertionError as e:
                self.fail("short_read", "conn %d/%d: %s" % (idx, n, e))
            except OSError as e:
                self.fail("error", "conn %d/%d: %r" % (idx, n, e))
            finally:
                s.close()
            self.stop.wait(SHORT_PAUSE)

    def open_stream(self, tag):
        """Connects now (in the caller) and starts round trips on it."""
        st = Stream(self, tag)
        self.streams.append(st)
        st.thread.start()
        return st

    def finish(self, timeout=60):
        self.stop.set()
        for t in self.threads:
            t.join(scaled(timeout))
        for st in self.streams:
            st.close(timeout)
        return [t.name for t in self.threads if t.is_alive()]


class Stream(object):
    """One keep-alive connection doing echo round trips until told to stop;
    then it half-closes and checks that everything came back."""

    def __init__(self, load, tag):
        self.load = load
        self.tag = tag
        self.sock = connect(load.addr, timeout=20)
        self.stop = threading.Event()
        self.rounds = 0
        self.bytes = 0
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="stream-" + tag)

    def _run(self):
        n = 0
        try:
            while not self.stop.is_set() and time.monotonic() < self.load.deadline:
                n += 1
                msg = pseudo_random(1 + (n * 31) % 4096, b"%s-%d" % (self.tag.encode(), n))
                self.sock.sendall(msg)
                got = recv_exact(self.sock, len(msg), 20)
                if got != msg:
                    raise AssertionError("round %d: wrong bytes" % n)
                self.rounds += 1
                self.bytes += len(msg)
                # a short pause keeps many streams from starving the
                # short-connection threads (this is pacing, not syncing)
                self.stop.wait(0.002)
            # end of stream: the echo server closes after our EOF
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(scaled(20))
            tail = self.sock.recv(16)
            if tail != b"":
                raise AssertionError("%r after the last round" % tail)
        except Exception as e:
            self.error = "stream %s after %d rounds: %r" % (self.tag, self.rounds, e)
        finally:
            self.sock.close()

    def close(self, timeout=60):
        self.stop.set()
        self.thread.join(scaled(timeout))
        if self.thread.is_alive():
            self.error = self.error or "stream %s did not finish" % self.tag


def sighup_pending(pid):
    """True if SIGHUP is still pending (not yet delivered) for pid."""
    bit = 1 << (signal.SIGHUP - 1)
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("SigPnd:", "ShdPnd:")):
                if int(line.split()[1], 16) & bit:
                    return True
    return False


class ReloadLoadTest(BatonTestCase):

    def setUp(self):
        super().setUp()
        raise_nofile(8192)

    def start(self, drain="120s", handoff="drain"):
        echo = self.echo_server()
        cfg = self.make_config([echo], glob={"drain_timeout": drain, "access_log": "off",
                                             "threads": 2, "handoff": handoff})
        b = start_baton_command(self, cfg)
        return b, b.listener_addr("web"), echo

    def status(self, b):
        return b.status()

    def check_load(self, load):
        stuck = load.finish()
        self.assertEqual(stuck, [], "load threads did not finish")
        kinds = {}
        for k, _ in load.failures:
            kinds[k] = kinds.get(k, 0) + 1
        self.assertEqual(load.failures, [],
                         "%d failures (%r) out of %d ok connections; first: %r" %
                         (len(load.failures), kinds, load.ok, load.failures[:10]))
        errs = [st.error for st in load.streams if st.error]
        self.assertEqual(errs, [])
        for st in load.streams:
            self.assertGreater(st.rounds, 0, "stream %s made no round trip" % st.tag)

    def test_50_reloads_under_load(self):
        b, addr, echo = self.start()
        w0, g0 = b.current_worker()
        load = Load(addr, short=6)
        try:
            # streams opened before the first reload, then one more every 10
            # reloads; each stays on the worker that accepted it
            first_streams = [load.open_stream("s%d" % i) for i in range(4)]
            load.start()
            wait_until(lambda: load.ok >= 50 and all(s.rounds > 5 for s in first_streams),
                       30, what="load running")
            mark = b.mark()
            replied = []
            stream_gen = {}          # stream tag -> generation active when opened
            for s in first_streams:
                stream_gen[s.tag] = g0
            gen = g0
            t0 = time.monotonic()
            for i in range(RELOADS):
                if i and i % 10 == 0:
                    # make sure the current generation took over accepting
                    b.wait_for_log(r"^worker generation %d: draining" % (gen - 1), start=mark)
                    st = load.open_stream("r%d" % i)
                    stream_gen[st.tag] = gen
                    # served (hence accepted by generation `gen`) before the
                    # next reload
                    wait_until(lambda: st.rounds > 0 or st.error, 20,
                               what="stream %s to start" % st.tag)
                r = b.ctl("reload", timeout=60)
                self.assertEqual(r.returncode, 0, "reload %d: stdout=%r stderr=%r" %
                                 (i + 1, r.stdout, r.stderr))
                m = re.search(r"^reloaded: generation (\d+) worker pid (\d+)$", r.stdout, re.M)
                self.assertIsNotNone(m, r.stdout)
                gen = int(m.group(1))
                replied.append((gen, int(m.group(2))))
                self.assertIsNone(b.proc.poll(), "master exited")
                time.sleep(SPACING)      # spacing between reloads, not a sync
            reload_time = time.monotonic() - t0
            ok_during = load.ok
            # workers that still hold streams are draining, with the streams
            def draining_ok():
                ws = {int(w["generation"]): w for w in self.status(b)["worker"]}
                for g in set(stream_gen.values()):
                    n = sum(1 for v in stream_gen.values() if v == g)
                    w = ws.get(g)
                    if w is None or w.get("state") != "draining" or \
                            w.get("connections") != str(n):
                        return None
                return ws
            ws = wait_until(draining_ok, 20, interval=0.2,
                            what="draining workers holding exactly their streams")
            self.assertEqual(ws[gen]["state"], "active")
            alive = [s.tag for s in load.streams if s.thread.is_alive()]
            self.assertEqual(len(alive), len(load.streams), "a stream ended early")
        finally:
            self.check_load(load)
        print("\n%d reloads in %.1fs under load: %d short connections, %d stream "
              "round trips" % (RELOADS, reload_time, ok_during,
                               sum(s.rounds for s in load.streams)))
        self.assertGreater(ok_during, RELOADS, "too little load to mean anything")
        # generations 2..51 with distinct new worker PIDs, as replied
        ready = [(int(m.group(2)), int(m.group(1))) for m in
                 b.find_log(r"^worker (\d+) generation (\d+) ready", start=mark)]
        self.assertEqual(ready, replied)
        self.assertEqual([g for g, _ in replied], list(range(g0 + 1, g0 + 1 + RELOADS)))
        pids = {p for _, p in replied}
        self.assertEqual(len(pids), RELOADS)
        self.assertNotIn(w0, pids)
        self.assertNotIn(b.pid, pids)
        # streams closed: every old worker exits, one generation remains
        last_pid = replied[-1][1]
        old = [w0] + [p for _, p in replied[:-1]]
        wait_until(lambda: not any(pid_alive(p) for p in old), 30, interval=0.1,
                   what="old workers to exit")
        st = self.status(b)
        self.assertEqual(st["master"].get("pid"), str(b.pid))
        self.assertEqual([(w["pid"], w["state"], w["generation"]) for w in st["worker"]],
                         [(str(last_pid), "active", str(gen))])
        self.assertEqual(b.find_log(r"end=drain_timeout|reload failed|killed by signal",
                                    start=mark), [])

    def test_50_live_reloads_under_load(self):
        """handoff = live: at each of 50 reloads under load, every stream
        moves to the new generation and goes on, and the old worker exits
        while the streams are still open."""
        b, addr, echo = self.start(handoff="live")
        prev, gen = b.current_worker()
        load = Load(addr, short=6)
        mark = b.mark()
        try:
            streams = [load.open_stream("s%d" % i) for i in range(8)]
            load.start()
            wait_until(lambda: load.ok >= 50 and all(s.rounds > 5 for s in streams),
                       30, what="load running")
            for i in range(RELOADS):
                r = b.ctl("reload", timeout=60)
                self.assertEqual(r.returncode, 0, "reload %d: stdout=%r stderr=%r" %
                                 (i + 1, r.stdout, r.stderr))
                m = re.search(r"^reloaded: generation (\d+) worker pid (\d+)$", r.stdout, re.M)
                self.assertIsNotNone(m, r.stdout)
                wait_until(lambda: not pid_alive(prev), 10, interval=0.02,
                           what="worker %d to exit after handing over (reload %d)" %
                           (prev, i + 1))
                gen, prev = int(m.group(1)), int(m.group(2))
                before = [s.rounds for s in streams]
                wait_until(lambda: all(s.rounds > n for s, n in zip(streams, before)) or
                           any(s.error for s in streams), 20,
                           what="every stream to go on after reload %d" % (i + 1))
                self.assertEqual([s.error for s in streams if s.error], [])
            st = self.status(b)
            self.assertEqual([(w["pid"], w["state"], w["generation"]) for w in st["worker"]],
                             [(str(prev), "active", str(gen))])
            self.assertGreaterEqual(int(st["worker"][0]["connections"]), len(streams))
        finally:
            self.check_load(load)
        self.assertEqual(b.find_log(r"end=drain_timeout|reload failed|killed by signal|"
                                    r"refused|failed:", start=mark), [])
        self.assertEqual(len(b.find_log(r"handoff: \d+ connection\(s\) moved", start=mark)),
                         RELOADS)

    def storm(self, fire):
        b, addr, echo = self.start()
        w0, g0 = b.current_worker()
        wait_until(lambda: len(self.status(b)["worker"]) == 1, 10, what="one worker")
        fds_before = fd_count(b.pid)
        load = Load(addr, short=2)
        try:
            stream = load.open_stream("storm")
            load.start()
            wait_until(lambda: load.ok >= 20 and stream.rounds > 5, 30, what="load running")
            mark = b.mark()
            results = fire(b)

            # settled: every reload that was accepted has completed, none is
            # starting, and (for signals) every signal sent was handled
            def settled():
                if sighup_pending(b.pid):
                    return None
                # a round trip through the master's event loop after every
                # signal was delivered; it answers from its current state
                st = self.status(b)
                if any(w.get("state") == "starting" for w in st["worker"]):
                    return None
                active = [w["pid"] for w in st["worker"] if w.get("state") == "active"]
                done = b.find_log(r"^reload complete: generation (\d+) "
                                  r"\(worker (\d+)\) is active", start=mark)
                started = b.find_log(r"^worker (\d+) generation \d+ starting", start=mark)
                if not done or len(started) != len(done) or active != [done[-1].group(2)]:
                    return None
                if results is None:
                    asked = len(b.find_log(r"^master: SIGHUP: reloading", start=mark))
                    refused = len(b.find_log(r"^reload refused: a reload is already in "
                                             r"progress", start=mark))
                    if asked != len(done) + refused:
                        return None
                return done, started
            done, started = wait_until(settled, 60, interval=0.1,
                                       what="the storm's reloads to settle")
        finally:
            self.check_load(load)
        self.assertIsNone(b.proc.poll(), "master exited")
        self.assertEqual(b.find_log(r"^reload failed", start=mark), [])
        if results is not None:
            self.assertEqual(len(done), results.count("ok"))
        last_gen, last_pid = int(done[-1].group(1)), int(done[-1].group(2))
        others = [w0] + [int(m.group(1)) for m in started if int(m.group(1)) != last_pid]
        wait_until(lambda: not any(pid_alive(p) for p in others), 30, interval=0.1,
                   what="all but the last worker to exit")
        st = self.status(b)
        self.assertEqual([(w["pid"], w["state"], w["generation"]) for w in st["worker"]],
                         [(str(last_pid), "active", str(last_gen))])
        self.assertEqual(st["master"].get("pid"), str(b.pid))
        # every descriptor the storm made the master open is closed again
        try:
            wait_until(lambda: fd_count(b.pid) == fds_before, 15, interval=0.1,
                       what="master fd count back to %d" % fds_before)
        except AssertionError:
            self.fail("master has %d fds after the storm, %d before: %r" %
                      (fd_count(b.pid), fds_before,
                       sorted(os.readlink("/proc/%d/fd/%s" % (b.pid, f))
                              for f in os.listdir("/proc/%d/fd" % b.pid))))
        # and it still serves and reloads
        s = connect(addr)
        try:
            s.sendall(b"after the storm")
            self.assertEqual(recv_exact(s, 15), b"after the storm")
        finally:
            s.close()
        r = b.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        return len(done)

    def test_reload_command_storm(self):
        def fire(b):
            procs = []
            try:
                for _ in range(RELOADS):
                    procs.append(subprocess.Popen(
                        [BATON_BIN, "-s", "reload", "-c", b.config_path],
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, universal_newlines=True))
                results = []
                for p in procs:
                    out, err = p.communicate(timeout=scaled(60))
                    if p.returncode == 0 and re.search(
                            r"^reloaded: generation \d+ worker pid \d+$", out, re.M):
                        results.append("ok")
                    elif p.returncode == 1 and "a reload is already in progress" in err:
                        results.append("busy")
                    else:
                        results.append("bad: rc=%s out=%r err=%r" % (p.returncode, out, err))
            finally:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
                        p.wait(10)
            bad = [x for x in results if x not in ("ok", "busy")]
            self.assertEqual(bad, [])
            self.assertEqual(len(results), RELOADS)
            print("\nstorm: %d reloaded, %d refused as in progress" %
                  (results.count("ok"), results.count("busy")))
            return results
        self.storm(fire)

    def test_sighup_storm(self):
        def fire(b):
            for _ in range(RELOADS):
                b.send_signal(signal.SIGHUP)
            return None
        n = self.storm(fire)
        print("\nSIGHUP storm: %d reloads went through" % n)


if __name__ == "__main__":
    unittest.main()
