#!/usr/bin/env python3
"""Soak test: baton under mixed traffic while it is reloaded, upgraded and
has its worker killed, for a given time.  Run by bench/soak.sh.

usage: soak.py --baton BIN --baton-next BIN --dir DIR [--seconds 1800] ...

Traffic (client threads, each one connection at a time): a plain listener,
a TLS-terminating one (baton holds the certificate) and a passthrough one
(routed by SNI to a Python TLS echo server), all in front of loopback echo
backends.  A request is one client connection: connect (and TLS handshake),
1 to 20 exchanges of 1 B to 16 KiB (now and then a 1 to 4 MiB transfer),
each echoed and checked by sha256 against what was sent, then a half-close
and a clean EOF (passthrough: a close).  It fails on a connect or handshake error, a reset, an
early EOF, wrong or extra bytes, or 30 s without progress.

Chaos (one action at a time): `baton -s reload` every --reload-every s (the
file changes each time), a binary upgrade every --upgrade-every s (the file
at the master's path alternates between baton and baton-next, then a
reload; the master must re-execute into the other version), and a SIGKILL
of the active worker every --kill-every s.

Verdict (exit status 1 on any violation):
  * 0 failed requests, except those cut by a worker kill: before each kill
    the worker is stopped (SIGSTOP) and the client ports of the connections
    it holds are read from /proc; a failed request is "cut by the kill" only
    if its client port is among them and it was in flight then.  Any other
    failure is a violation: requests that start while a reload or an
    upgrade runs, or after a kill, must succeed (and some must, after every
    kill).
  * every reload, upgrade and kill has the expected outcome; no error or
    warn line in baton's log but those a worker kill causes.
  * descriptors flat: the master's and the largest worker's descriptor
    counts in the last window (--window s) at most --fd-slack (a worker: 6
    more per client thread, for the connections in flight) above the first
    window's; and,
    with the load stopped and the old generations gone, the master and its
    one worker hold exactly as many descriptors as at the start (idle).
  * memory flat: RSS of the master and of the largest worker in the last
    window at most --rss-growth percent plus --rss-slack KiB above the first
    window's; idle RSS at the end likewise against the idle RSS at the start.
  * the master stops cleanly at the end, leaving no process behind.
"""

import argparse
import hashlib
import os
import random
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import baton_harness as H  # noqa: E402

IO_TIMEOUT = 30.0
CHUNK = 64 << 10
# What a worker kill makes baton log; any other error or warn line is a finding.
EXPECTED = {"error": [re.compile(r"^worker \d+ generation \d+ killed by signal 9\b")],
            "warn": [re.compile(r"^worker \d+ generation \d+: channel: "
                                r"Connection reset by peer$")]}


def now():
    return time.monotonic()


def log(msg):
    sys.stderr.write("[soak %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------
# traffic

class Request(object):
    __slots__ = ("kind", "start", "end", "port", "ok", "error", "nbytes")

    def __init__(self, kind):
        self.kind = kind
        self.start = now()
        self.end = None
        self.port = None
        self.ok = False
        self.error = None
        self.nbytes = 0


class Target(object):
    """How a client reaches one listener."""

    def __init__(self, kind, addr, ctx=None, sni=None):
        self.kind, self.addr, self.ctx, self.sni = kind, addr, ctx, sni


def exchange(sock, data):
    """Sends data in chunks, each read back before the next (no deadlock on
    full buffers); True if what came back hashes like what was sent."""
    sent, got = hashlib.sha256(data), hashlib.sha256()
    view = memoryview(data)
    for off in range(0, len(data), CHUNK):
        piece = view[off:off + CHUNK]
        sock.sendall(piece)
        got.update(H.recv_exact(sock, len(piece), IO_TIMEOUT))
    return sent.digest() == got.digest()


def one_request(target, rng, rec):
    sock = H.connect(target.addr, timeout=IO_TIMEOUT)
    rec.port = sock.getsockname()[1]
    try:
        if target.ctx is not None:
            sock = target.ctx.wrap_socket(sock, server_hostname=target.sni)
        for _ in range(rng.choice((1, 1, 1, 2, 3, 5, 20))):
            big = rng.random() < 0.005
            size = rng.randint(1 << 20, 4 << 20) if big else rng.randint(1, 16384)
            if not exchange(sock, os.urandom(size)):
                raise AssertionError("echo differs from what was sent (sha256)")
            rec.nbytes += size
        if target.kind == "pass":
            # The TLS server is Python's: a FIN without close_notify makes
            # OpenSSL 3 answer with an alert, so the end is just a close.
            return
        # The end: a half-close (a FIN, no close_notify) and a clean EOF.
        socket.socket.shutdown(sock, socket.SHUT_WR)
        sock.settimeout(IO_TIMEOUT)
        tail = sock.recv(16)
        if tail:
            raise AssertionError("%d unexpected bytes after the echo" % len(tail))
    finally:
        sock.close()


class Clients(object):
    def __init__(self, targets, per_target, pause):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.records = []
        self.threads = []
        self.pause = pause
        for t in targets:
            for i in range(per_target):
                self.threads.append(threading.Thread(
                    target=self.run, args=(t, random.Random("%s-%d" % (t.kind, i))),
                    name="client-%s-%d" % (t.kind, i), daemon=True))

    def start(self):
        for t in self.threads:
            t.start()

    def run(self, target, rng):
        while not self.stop.is_set():
            rec = Request(target.kind)
            try:
                one_request(target, rng, rec)
                rec.ok = True
            except Exception as e:   # every kind of failure is recorded
                rec.error = "%s: %s" % (type(e).__name__, e)
            rec.end = now()
            with self.lock:
                self.records.append(rec)
            self.stop.wait(self.pause)

    def finish(self, timeout):
        self.stop.set()
        deadline = now() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - now()))
        return [t.name for t in self.threads if t.is_alive()]

    def snapshot(self):
        with self.lock:
            return list(self.records)


# --------------------------------------------------------------------------
# processes: descriptors, memory, sockets

def children(pid):
    out = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def fds(pid):
    try:
        return H.fd_count(pid)
    except OSError:
        return None


def all_stopped(pid):
    """Every thread of pid is stopped (state T)."""
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return False
    return all(H.proc_state(int(t)) == "T" for t in tasks)


def tcp_table():
    """{inode: (local port, remote port)} of every TCP socket."""
    out = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    local, remote, inode = cols[1], cols[2], int(cols[9])
                    out[inode] = (int(local.rsplit(":", 1)[1], 16),
                                  int(remote.rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return out


class Sampler(object):
    """Every `every` s: descriptors and RSS of the master and its workers."""

    def __init__(self, master_pid, every):
        self.pid = master_pid
        self.every = every
        self.samples = []   # (t, master fds, master rss, [(pid, fds, rss)] workers)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="sampler", daemon=True)

    def take(self):
        workers = []
        for c in children(self.pid):
            f, r = fds(c), rss_kb(c)
            if f is not None and r is not None:
                workers.append((c, f, r))
        return (now(), fds(self.pid), rss_kb(self.pid), workers)

    def run(self):
        while not self.stop.is_set():
            s = self.take()
            if s[1] is not None and s[2] is not None and s[3]:
                self.samples.append(s)
            self.stop.wait(self.every)

    def start(self):
        self.thread.start()

    def finish(self):
        self.stop.set()
        self.thread.join(10)


# --------------------------------------------------------------------------
# the soak

class Soak(object):
    def __init__(self, a):
        self.a = a
        self.violations = []
        self.kills = []        # (t, pid, set of client ports)
        self.counts = {"reload": 0, "upgrade": 0, "kill": 0}
        self.actions = []      # (reload or upgrade, start, end)
        self.exe = os.path.join(a.dir, "bin", "baton")
        # Private copies: a rebuild during the run changes nothing here.
        self.binaries = [os.path.join(a.dir, "bin", n) for n in ("baton.first", "baton.second")]
        os.makedirs(os.path.dirname(self.exe), exist_ok=True)
        for src, dst in zip((a.baton, a.baton_next), self.binaries):
            H.install_binary(src, dst)
        self.versions = [H.binary_version(b) for b in self.binaries]
        H.BATON_BIN = self.binaries[0]   # for `baton -s`
        self.current = 0       # index of the binary at the master's path
        self.reload_no = 0

    def violation(self, msg):
        log("VIOLATION: " + msg)
        self.violations.append(msg)

    # ---- set-up
    def backends(self):
        pki = H.TestPKI(os.path.join(self.a.dir, "pki"))
        ca = pki.ca("Soak CA")
        self.front = pki.leaf("front", ["front.soak.test"], ca)
        back = pki.leaf("back", ["back.soak.test"], ca)
        self.cafile = ca["cert"]
        self.echo = [H.EchoServer(name="echo%d" % i) for i in range(2)]
        self.tls_echo = [H.ProtoEchoServer(ctx=H.server_context(back), name="tlsecho%d" % i)
                         for i in range(2)]

    def config(self):
        return "\n".join([
            "# soak: reload %d" % self.reload_no,
            "[global]",
            "threads = 2",
            "control = %s" % os.path.join(self.a.dir, "baton.sock"),
            "log_level = info",
            "access_log = off",
            "drain_timeout = 120s",
            "",
            "[listener plain]",
            "bind = 127.0.0.1:0",
            "backend = echo",
            "",
            "[listener tls]",
            "bind = 127.0.0.1:0",
            "backend = echo",
            "tls = on",
            "tls_cert = %s" % self.front["cert"],
            "tls_key = %s" % self.front["key"],
            "",
            "[listener pass]",
            "bind = 127.0.0.1:0",
            "backend = tlsecho",
            "tls = passthrough",
            "",
            "[backend echo]",
        ] + ["server = %s" % s.server_line() for s in self.echo] + [
            "",
            "[backend tlsecho]",
        ] + ["server = %s" % s.server_line() for s in self.tls_echo] + [""])

    def start_baton(self):
        H.install_binary(self.binaries[0], self.exe)
        self.b = H.BatonCommand(self.a.dir, self.config(), binary=self.exe)
        self.b.start(timeout=60)
        self.addrs = {n: self.b.listener_addr(n) for n in ("plain", "tls", "pass")}
        self.ports = {a[1] for a in self.addrs.values()}
        ctx = H.client_context(cafile=self.cafile)
        self.targets = [Target("plain", self.addrs["plain"]),
                        Target("tls", self.addrs["tls"], ctx, "front.soak.test"),
                        Target("pass", self.addrs["pass"], ctx, "back.soak.test")]

    def warm_up(self):
        """A few requests of each kind, one at a time: all must succeed."""
        rng = random.Random("warm-up")
        for t in self.targets:
            for _ in range(5):
                rec = Request(t.kind)
                try:
                    one_request(t, rng, rec)
                except Exception as e:
                    raise SystemExit("soak: warm-up request to the %s listener failed: %s: %s"
                                     % (t.kind, type(e).__name__, e))

    def idle_figures(self, what):
        """With no load: waits for a single worker, then (master fds, rss,
        worker fds, rss)."""
        def one_worker():
            ws = children(self.b.pid)
            return ws if len(ws) == 1 else None
        try:
            w = H.wait_until(one_worker, 180, interval=0.2,
                             what="the old generations to exit (%s)" % what)[0]
        except AssertionError as e:
            self.violation("%s: %s; workers: %s" % (what, e, children(self.b.pid)))
            return None
        time.sleep(0.5)   # a status poll or control client may be in flight
        figs = (fds(self.b.pid), rss_kb(self.b.pid), fds(w), rss_kb(w))
        log("%s: master %d fds %d KiB, worker %d: %d fds %d KiB"
            % (what, figs[0], figs[1], w, figs[2], figs[3]))
        return figs

    # ---- chaos
    def ctl(self, command, timeout):
        """`baton -s COMMAND`; None if it did not finish in time."""
        try:
            return self.b.ctl(command, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def status(self):
        r = self.ctl("status", 30)
        if r is None:
            raise AssertionError("status: no answer in 30 s")
        if r.returncode != 0:
            raise AssertionError("status: exit %d: %s" % (r.returncode, r.stderr.strip()))
        return H.parse_status_text(r.stdout)

    def reload(self, what):
        self.reload_no += 1
        with open(self.b.config_path, "w") as f:
            f.write(self.config())
        t = now()
        r = self.ctl("reload", 90)
        self.actions.append((what, t, now()))
        if r is None:
            self.violation("%s %d: no answer in 90 s" % (what, self.reload_no))
            return None
        if r.returncode != 0 or "reloaded: generation" not in r.stdout:
            self.violation("%s %d: exit %d, stdout %r, stderr %r" % (
                what, self.reload_no, r.returncode, r.stdout.strip(), r.stderr.strip()))
            return None
        return r.stdout, now() - t

    def do_reload(self):
        if self.reload("reload") is not None:
            self.counts["reload"] += 1

    def do_upgrade(self):
        nxt = 1 - self.current
        H.install_binary(self.binaries[nxt], self.exe)
        self.current = nxt
        out = self.reload("upgrade")
        if out is None:
            return
        want = "master pid %d now runs baton %s" % (self.b.pid, self.versions[nxt])
        if want not in out[0]:
            self.violation("upgrade to %s: %r not in %r" % (self.versions[nxt], want, out[0]))
            return
        try:
            v = self.status()["baton"].get("version")
        except AssertionError as e:
            self.violation("after the upgrade: %s" % e)
            return
        if v != self.versions[nxt]:
            self.violation("after the upgrade status says version %s, not %s" %
                           (v, self.versions[nxt]))
            return
        self.counts["upgrade"] += 1
        log("upgrade %d: master %d runs baton %s (%.2fs)" % (
            self.counts["upgrade"], self.b.pid, v, out[1]))

    def active_worker(self):
        for w in self.status()["worker"]:
            if w.get("state") == "active":
                return int(w["pid"]), int(w.get("uptime", "0s").rstrip("s") or 0)
        return None, 0

    def held_client_ports(self, pid):
        """Client ports of the connections the (stopped) worker holds."""
        inodes = set(H.socket_inodes(pid).values())
        return {remote for inode, (local, remote) in tcp_table().items()
                if inode in inodes and local in self.ports and remote != 0}

    def do_kill(self):
        try:
            pid, uptime = self.active_worker()
            if pid is not None and uptime < 2:
                # Not a crash loop in the master's eyes (a worker dying
                # within 1 s of its start is restarted with a delay).
                time.sleep(2)
                pid, uptime = self.active_worker()
        except AssertionError as e:
            self.violation("before a kill: %s" % e)
            return
        if pid is None:
            self.violation("before a kill: no active worker in status")
            return
        os.kill(pid, signal.SIGSTOP)
        try:
            # kill() returns before every thread has stopped: one could
            # still accept a connection.
            H.wait_until(lambda: all_stopped(pid), 5, interval=0.001,
                         what="worker %d to stop" % pid)
            t = now()
            ports = self.held_client_ports(pid)
        except AssertionError as e:
            t, ports = now(), set()
            self.violation("kill of worker %d: %s" % (pid, e))
        finally:
            os.kill(pid, signal.SIGKILL)
        self.kills.append((t, pid, ports))
        self.counts["kill"] += 1

        def replaced():
            p, _ = self.active_worker()
            return p is not None and p != pid
        try:
            H.wait_until(replaced, 30, interval=0.1, what="a new worker after the kill")
        except AssertionError as e:
            self.violation("kill of worker %d: %s" % (pid, e))
        log("kill %d: worker %d held %d client connection(s)" % (
            self.counts["kill"], pid, len(ports)))

    def chaos(self, clients):
        a = self.a
        t0 = now()
        end = t0 + a.seconds
        due = {"upgrade": t0 + a.upgrade_every / 2.0, "kill": t0 + a.kill_every / 2.0,
               "reload": t0 + a.reload_every}
        every = {"upgrade": a.upgrade_every, "kill": a.kill_every}
        actions = {"upgrade": self.do_upgrade, "kill": self.do_kill, "reload": self.do_reload}
        next_progress = t0 + 60
        while now() < end:
            if now() >= next_progress:
                self.progress(clients, now() - t0)
                next_progress += 60
            ready = [k for k in ("upgrade", "kill", "reload") if due[k] <= now()]
            if not ready:
                time.sleep(max(0.0, min(min(due.values()), end, next_progress) - now()))
                continue
            k = ready[0]
            actions[k]()
            if k == "reload":
                due[k] = now() + a.reload_every
            else:
                due[k] += every[k]
        return now() - t0

    def progress(self, clients, elapsed):
        recs = clients.snapshot()
        failed = sum(1 for r in recs if not r.ok)
        log("%4.0fs: %d requests (%d failed, those kills cut included), %d reloads, "
            "%d upgrades, %d kills" % (
            elapsed, len(recs), failed, self.counts["reload"], self.counts["upgrade"],
            self.counts["kill"]))

    # ---- verdict
    def judge_requests(self, recs):
        cut, bad = 0, []
        for r in recs:
            if r.ok:
                continue
            if r.port is not None and any(r.port in ports and r.start <= t <= r.end
                                          for t, _, ports in self.kills):
                cut += 1
            else:
                bad.append(r)
        for r in bad[:20]:
            self.violation("failed %s request (port %s, %.1fs into the run, %.2fs long): %s"
                           % (r.kind, r.port, r.start - self.t0, r.end - r.start, r.error))
        if len(bad) > 20:
            self.violation("... and %d more failed requests" % (len(bad) - 20))
        for t, pid, _ in self.kills:
            after = [r for r in recs if r.start > t and r.start < t + 15]
            if not any(r.ok for r in after):
                self.violation("no request started within 15 s after the kill of worker %d "
                               "succeeded" % pid)
        return cut, len(bad)

    def window_stats(self, samples):
        """(master fds, master rss, max worker fds, max worker rss) medians
        and maxima of a window of samples."""
        mf = [s[1] for s in samples]
        mr = [s[2] for s in samples]
        wf = [max(w[1] for w in s[3]) for s in samples]
        wr = [max(w[2] for w in s[3]) for s in samples]
        return {"master_fds": max(mf), "worker_fds": max(wf),
                "master_rss": statistics.median(mr), "worker_rss": statistics.median(wr)}

    def judge_flat(self, samples, duration):
        a = self.a
        if not samples:
            self.violation("no descriptor/memory samples")
            return None
        t0 = samples[0][0]
        window = min(a.window, duration / 4.0)
        first = [s for s in samples if s[0] - t0 <= window]
        last = [s for s in samples if s[0] >= samples[-1][0] - window]
        f, l = self.window_stats(first), self.window_stats(last)
        # A worker's count moves with the connections in flight: each can
        # take two sockets and two splice pipes.
        slack = {"master_fds": a.fd_slack,
                 "worker_fds": a.fd_slack + 6 * len(self.targets) * a.clients}
        for k in ("master_fds", "worker_fds"):
            if l[k] > f[k] + slack[k]:
                self.violation("%s grew: at most %d in the first %.0f s, %d in the last "
                               "(slack %d)" % (k, f[k], window, l[k], slack[k]))
        for k in ("master_rss", "worker_rss"):
            limit = f[k] * (1 + a.rss_growth / 100.0) + a.rss_slack
            if l[k] > limit:
                self.violation("%s grew: median %d KiB in the first %.0f s, %d KiB in the "
                               "last (limit %d)" % (k, f[k], window, l[k], limit))
        return f, l, window

    def judge_idle(self, before, after):
        a = self.a
        if before is None or after is None:
            return
        names = ("master fds", "master RSS KiB", "worker fds", "worker RSS KiB")
        for i in (0, 2):
            if after[i] != before[i]:
                self.violation("idle %s: %d at the start, %d at the end" %
                               (names[i], before[i], after[i]))
        for i in (1, 3):
            if after[i] > before[i] * (1 + a.rss_growth / 100.0) + a.rss_slack:
                self.violation("idle %s: %d at the start, %d at the end" %
                               (names[i], before[i], after[i]))

    def judge_log(self):
        """Counts baton's warn and error lines by kind (numbers masked); the
        unexpected ones are violations."""
        seen, bad = {}, []
        with self.b.cond:
            lines = list(self.b.lines)
        for line in lines:
            m = H.LOG_RE.match(line)
            if m is None or m.group("level") not in EXPECTED:
                continue
            key = "%s: %s" % (m.group("level"), re.sub(r"\d+", "N", m.group("msg")))
            seen[key] = seen.get(key, 0) + 1
            if not any(rx.search(m.group("msg")) for rx in EXPECTED[m.group("level")]):
                bad.append("%s: %s" % (m.group("level"), m.group("msg")))
        for msg in bad[:10]:
            self.violation("in baton's log: %s" % msg)
        if len(bad) > 10:
            self.violation("... and %d more unexpected log lines" % (len(bad) - 10))
        return seen

    def run(self):
        a = self.a
        self.backends()
        self.start_baton()
        log("baton %s (master %d) and %s: listeners %s" % (
            self.versions[0], self.b.pid, self.versions[1],
            ", ".join("%s %s" % (k, H.format_addr(v)) for k, v in self.addrs.items())))
        self.warm_up()
        before = self.idle_figures("idle at the start")
        clients = Clients(self.targets, a.clients, a.pause)
        sampler = Sampler(self.b.pid, a.sample_every)
        self.t0 = now()
        sampler.start()
        clients.start()
        try:
            duration = self.chaos(clients)
        finally:
            stuck = clients.finish(IO_TIMEOUT * 3)
            sampler.finish()
        if stuck:
            self.violation("client threads still running: %s" % stuck)
        recs = clients.snapshot()
        after = self.idle_figures("idle at the end")
        cut, bad = self.judge_requests(recs)
        flat = self.judge_flat(sampler.samples, duration)
        self.judge_idle(before, after)
        logged = self.judge_log()
        try:
            self.b.stop(timeout=60)
        except AssertionError as e:
            self.violation("stopping baton: %s" % e)
        self.report(recs, cut, bad, flat, before, after, logged, duration)
        return 1 if self.violations else 0

    def report(self, recs, cut, bad, flat, before, after, logged, duration):
        print("soak: %.0f s, baton %s <-> %s, %d client threads" % (
            duration, self.versions[0], self.versions[1], len(self.targets) * self.a.clients))
        for kind in ("plain", "tls", "pass"):
            rs = [r for r in recs if r.kind == kind]
            print("soak: %-5s %7d requests, %7d ok, %6.1f MiB checked" % (
                kind, len(rs), sum(1 for r in rs if r.ok),
                sum(r.nbytes for r in rs if r.ok) / 1048576.0))
        for what in ("reload", "upgrade"):
            spans = [(t0, t1) for w, t0, t1 in self.actions if w == what]
            during = sum(1 for r in recs if any(r.start < t1 and r.end > t0 for t0, t1 in spans))
            if spans:
                took = sorted(t1 - t0 for t0, t1 in spans)
                print("soak: %d %ss took %.0f ms median, %.0f ms max; %d requests ran while "
                      "one did" % (len(spans), what, 1000 * statistics.median(took),
                                   1000 * took[-1], during))
        held = sum(len(p) for _, _, p in self.kills)
        print("soak: %d reloads, %d upgrades, %d worker kills (%d connections held, %d "
              "requests cut by them); %d other failed requests" % (
                  self.counts["reload"], self.counts["upgrade"], self.counts["kill"], held,
                  cut, bad))
        if flat is not None:
            f, l, window = flat
            print("soak: first/last %.0f s: master fds %d/%d, largest worker fds %d/%d, "
                  "master RSS %d/%d KiB, largest worker RSS %d/%d KiB" % (
                      window, f["master_fds"], l["master_fds"], f["worker_fds"],
                      l["worker_fds"], f["master_rss"], l["master_rss"], f["worker_rss"],
                      l["worker_rss"]))
        if before is not None and after is not None:
            print("soak: idle start/end: master fds %d/%d, RSS %d/%d KiB; worker fds %d/%d, "
                  "RSS %d/%d KiB" % (before[0], after[0], before[1], after[1], before[2],
                                     after[2], before[3], after[3]))
        for k, n in sorted(logged.items(), key=lambda x: -x[1])[:10]:
            print("soak: log x%d: %s" % (n, k))
        if self.violations:
            print("soak: FAILED, %d violation(s):" % len(self.violations))
            for v in self.violations:
                print("soak:   " + v)
        else:
            print("soak: OK")

    def close(self):
        b = getattr(self, "b", None)
        if b is not None and b.proc is not None and b.proc.poll() is None:
            try:
                b.stop(timeout=30)
            except AssertionError:
                pass
        for s in getattr(self, "echo", []) + getattr(self, "tls_echo", []):
            s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baton", required=True)
    ap.add_argument("--baton-next", required=True)
    ap.add_argument("--dir", required=True, help="scratch directory")
    ap.add_argument("--seconds", type=float, default=1800)
    ap.add_argument("--reload-every", type=float, default=3)
    ap.add_argument("--upgrade-every", type=float, default=60)
    ap.add_argument("--kill-every", type=float, default=45)
    ap.add_argument("--clients", type=int, default=2, help="client threads per listener")
    ap.add_argument("--pause", type=float, default=0.05, help="between a thread's requests")
    ap.add_argument("--sample-every", type=float, default=2)
    ap.add_argument("--window", type=float, default=60)
    ap.add_argument("--fd-slack", type=int, default=8,
                    help="the master's; a worker's is 6 more per client thread")
    ap.add_argument("--rss-growth", type=float, default=25)
    ap.add_argument("--rss-slack", type=int, default=4096)
    a = ap.parse_args()
    soak = Soak(a)

    def on_signal(sig, frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        return soak.run()
    finally:
        soak.close()


if __name__ == "__main__":
    sys.exit(main())
