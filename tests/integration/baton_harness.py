"""Shared helpers for baton's integration tests (Python 3 standard library only).

Environment:
  BATON_BIN         path to the baton binary under test (required)
  BATON_SOURCE_DIR  repository root (optional; used to find sample files)
  BATON_TEST_TIMEOUT_SCALE  multiply every deadline (optional, default 1)
  BATON_TEST_HANDOFF  live (default) or drain: the handoff mode to test
  BATON_WINDOWS_EXE  path of baton.exe: the harness's Windows mode (below)
  BATON_WINE         the wine command for that mode (default "wine"); WINEPREFIX
                     names the Wine session tools/win-test.sh started

Windows mode (BATON_WINDOWS_EXE set; tests/integration/test_win_*.py): baton
runs as `wine baton.exe` with Windows paths (Z:\\...), its stdin/stdout/stderr
files or /dev/null (never a pipe of ours: a Wine process that starts Wine's
services would hold it open), its control through `baton.exe -s` (the named
pipe), its stop through `-s stop` or Ctrl-C (kill -INT of the wine process).
Linux-only checks (/proc of baton's processes, sanitizer reports, descriptor
counts) raise unittest.SkipTest with the reason.

Every wait in here is bounded by a deadline; nothing synchronises on a bare
sleep.  Backend servers are Python threads bound to 127.0.0.1:0 (or [::1]:0).
"""

import atexit
import errno
import hashlib
import os
import re
import select
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BATON_WINDOWS_EXE = os.environ.get("BATON_WINDOWS_EXE", "")
WINDOWS = bool(BATON_WINDOWS_EXE)
WINE = os.environ.get("BATON_WINE", "") or "wine"
BATON_BIN = BATON_WINDOWS_EXE or os.environ.get("BATON_BIN", "")
BATON_SOURCE_DIR = os.environ.get(
    "BATON_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
SCALE = float(os.environ.get("BATON_TEST_TIMEOUT_SCALE", "1") or "1")

# Default deadlines (seconds).  Generous: the binary may run under ASan.
T_START = 20.0      # baton up and worker ready
T_WAIT = 15.0       # a log line / a condition
T_EXIT = 20.0       # a process exits
T_IO = 20.0         # a single client I/O operation


def scaled(t):
    return t * SCALE


# --------------------------------------------------------------------------
# Windows mode

def win_path(path):
    """The Windows name Wine gives a Linux path: drive Z: is the root."""
    return "Z:" + os.path.abspath(path).replace("/", "\\")


def host_path(path):
    """A path as baton under test must read it (in a config or on its command
    line): Windows form in Windows mode, unchanged on Linux."""
    return win_path(path) if WINDOWS else path


def baton_argv(args):
    """The command line running baton with args; in Windows mode through wine,
    with the value of -c in Windows form."""
    args = list(args)
    if not WINDOWS:
        return [BATON_BIN] + args
    for i in range(len(args) - 1):
        if args[i] == "-c" and args[i + 1].startswith("/"):
            args[i + 1] = win_path(args[i + 1])
    return [WINE, BATON_WINDOWS_EXE] + args


def linux_only(what):
    """Refuses a Linux-only check in Windows mode (the test is skipped)."""
    if WINDOWS:
        raise unittest.SkipTest("%s: Linux only, not checked for baton.exe under Wine" % what)


def wine_processes(marker):
    """Linux PIDs of the Wine processes whose environment holds
    BATON_TEST_INSTANCE=marker (a master started by Baton in Windows mode and
    the workers it started: Wine gives a child the Windows environment)."""
    want = ("BATON_TEST_INSTANCE=%s" % marker).encode()
    return {p for p, env in proc_files("environ")
            if want in env.split(b"\0") and pid_alive(p)}


def proc_files(name):
    """(pid, contents) of /proc/PID/name for every process that can be read."""
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open("/proc/%s/%s" % (e, name), "rb") as f:
                yield int(e), f.read()
        except OSError:
            continue


def wine_cmdline(pid):
    """The command line of a Wine process as a list (Wine puts the Windows
    program's in argv); [] if it is gone."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def known_failure(reason):
    """unittest.expectedFailure for a Windows test that fails because of an
    engine defect not fixed yet (reason says which); once it is fixed the
    test's unexpected success fails the run, so the mark must go.
    BATON_TEST_NO_XFAIL=1 runs such tests as ordinary ones (to see why they
    fail, or whether a fix made them pass)."""
    def mark(fn):
        if os.environ.get("BATON_TEST_NO_XFAIL", "") == "1":
            return fn
        fn.__doc__ = ((fn.__doc__ or "") + "\nExpected to fail until fixed: " + reason).strip()
        return unittest.expectedFailure(fn)
    return mark


def win_tls_listener(pki, names):
    """[listener] entries for TLS termination with the certificates `names`
    of pki, their paths in the form baton reads."""
    return {"tls": "on",
            "tls_cert": [host_path(pki.certs[n]["cert"]) for n in names],
            "tls_key": [host_path(pki.certs[n]["key"]) for n in names]}


def reload_ok(testcase, b, timeout=60):
    """`-s reload` that must succeed; returns (generation, worker pid)."""
    r = b.ctl("reload", timeout=timeout)
    testcase.assertEqual(r.returncode, 0, r.stdout + r.stderr)
    m = re.search(r"^reloaded: generation (\d+) worker pid (\d+)$", r.stdout, re.M)
    testcase.assertIsNotNone(m, r.stdout)
    return int(m.group(1)), int(m.group(2))


def config_error_re(path, line, what):
    """A regex for the `FILE:LINE: message` baton prints for a bad config at
    path (in the form baton was given it), whose message names `what`."""
    return r"(?m)^%s:%d: .*%s" % (re.escape(host_path(path)), line, re.escape(what))


# --------------------------------------------------------------------------
# small utilities

LOG_RE = re.compile(
    r"^(?P<ts>\S+) baton\[(?P<pid>\d+)\] (?P<level>error|warn|info|debug): (?P<msg>.*)$")
SANITIZER_RE = re.compile(
    r"ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|"
    r"runtime error: |SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer)")


def pseudo_random(n, seed=b"baton"):
    """n deterministic pseudo-random bytes for a seed."""
    if isinstance(seed, str):
        seed = seed.encode()
    if n == 0:
        return b""
    return hashlib.shake_256(seed).digest(n)


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def format_addr(addr):
    """(host, port) -> '127.0.0.1:80' / '[::1]:80'."""
    host, port = addr[0], addr[1]
    if ":" in host:
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


def parse_addr(text):
    """'127.0.0.1:80' / '[::1]:80' -> (host, port)."""
    m = re.match(r"^\[([^\]]+)\]:(\d+)$", text)
    if m:
        return (m.group(1), int(m.group(2)))
    host, _, port = text.rpartition(":")
    return (host, int(port))


def has_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


_closed_ports = {}


def closed_port(host="127.0.0.1"):
    """An address on which nothing listens (connect is refused).  The port
    stays bound, never listening, until reclaim_port() (a test reviving the
    server there) or the end of the test process: closed, it could be handed
    to the next bind to port 0 (a listener of baton's own, which then
    answers the 'dead' server's health checks)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.bind((host, 0))
    addr = (host, s.getsockname()[1])
    _closed_ports[addr] = s
    return addr


def reclaim_port(addr):
    """Frees a closed_port() address for a server to bind it."""
    s = _closed_ports.pop(tuple(addr), None)
    if s is not None:
        s.close()


@atexit.register
def _release_closed_ports():
    for addr in list(_closed_ports):
        reclaim_port(addr)


def connect(addr, timeout=None, source=None):
    """Blocking TCP connection to addr with a socket timeout."""
    fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(scaled(timeout if timeout is not None else T_IO))
    if source is not None:
        s.bind((source, 0))
    try:
        s.connect(tuple(addr[:2]))
    except BaseException:
        s.close()
        raise
    return s


def recv_exact(sock, n, timeout=None):
    """Exactly n bytes; raises AssertionError on EOF or deadline."""
    deadline = time.monotonic() + scaled(timeout if timeout is not None else T_IO)
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out after %d of %d bytes" % (len(buf), n))
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(n - len(buf), 1 << 20))
        except socket.timeout:
            raise AssertionError("timed out after %d of %d bytes" % (len(buf), n))
        if not chunk:
            raise AssertionError("EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def send_and_half_close(addr, data, timeout=None):
    """Connects to addr, sends data, shuts the write side and returns all
    that comes back until EOF."""
    s = connect(addr, timeout=timeout)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return recv_until_eof(s, timeout=timeout)
    finally:
        s.close()


def echo_duplex(addr, data, timeout=None):
    """One connection to an echo path: sends data (then half-closes) from a
    thread while reading what comes back, so neither direction waits for
    the other's buffers.  Returns (nbytes, sha256hex) received; raises what
    the sender hit."""
    s = connect(addr, timeout=timeout)
    errors = []

    def send():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(e)
    t = threading.Thread(target=send, daemon=True)
    t.start()
    try:
        got = recv_until_eof(s, timeout=timeout, hash_only=True)
    finally:
        t.join(scaled(timeout if timeout is not None else T_IO))
        s.close()
    if errors:
        raise errors[0]
    return got


class ClientLoop(object):
    """Runs one(n) for n = 0, 1, ... in a thread until stopped, bounded by
    `limit` seconds.  one returns None for success or a failure text;
    OSError and AssertionError count as failures too."""

    def __init__(self, one, limit=120):
        self.one, self.limit = one, limit
        self.ok, self.failures = 0, []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        end = time.monotonic() + self.limit
        n = 0
        while not self.stopping.is_set() and time.monotonic() < end:
            try:
                failure = self.one(n)
            except (OSError, AssertionError) as e:
                failure = "connection %d: %s" % (n, e)
            if failure is None:
                self.ok += 1
            else:
                self.failures.append(failure)
            n += 1

    def stop(self):
        """Stops the loop; returns (successes, failures)."""
        self.stopping.set()
        self.thread.join(60)
        return self.ok, self.failures


def recv_until_eof(sock, timeout=None, hash_only=False):
    """Read until EOF.  Returns bytes, or (nbytes, sha256hex) with hash_only.
    Raises AssertionError on deadline, lets ConnectionResetError through."""
    deadline = time.monotonic() + scaled(timeout if timeout is not None else T_IO)
    h = hashlib.sha256()
    buf = bytearray()
    n = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no EOF before deadline (%d bytes read)" % n)
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            raise AssertionError("no EOF before deadline (%d bytes read)" % n)
        if not chunk:
            break
        n += len(chunk)
        if hash_only:
            h.update(chunk)
        else:
            buf += chunk
    if hash_only:
        return n, h.hexdigest()
    return bytes(buf)


def wait_closed(sock, timeout):
    """Waits until the peer closes (EOF or reset).  Returns the elapsed time,
    or None if the connection is still open at the deadline.  Data received
    meanwhile is discarded."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return None
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start
        if not chunk:
            return time.monotonic() - start


def readable_within(sock, timeout):
    """True if sock becomes readable (data or EOF) within timeout."""
    sel = selectors.DefaultSelector()
    try:
        sel.register(sock, selectors.EVENT_READ)
        return bool(sel.select(timeout))
    finally:
        sel.close()


def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Polls pred() until true or deadline; returns pred's value or raises."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


def parse_kv(text):
    """'a=1 b=x' -> {'a': '1', 'b': 'x'}"""
    out = {}
    for tok in text.split():
        if "=" in tok:
            k, _, v = tok.partition("=")
            out[k] = v
    return out


ACCESS_RE = re.compile(r"\baccess (client=\S+ .*)$")


def parse_access(line):
    """An access-log line (stderr or file form) -> dict, or None."""
    m = ACCESS_RE.search(line)
    if not m:
        return None
    return parse_kv(m.group(1))


# --------------------------------------------------------------------------
# processes

def proc_state(pid):
    """Process state letter from /proc, or None if it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    rest = data.rsplit(")", 1)[1].split()
    return rest[0]


def proc_cpu_seconds(pid):
    """(user, system) CPU seconds pid has used so far (/proc/PID/stat)."""
    linux_only("CPU time from /proc")
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    hz = os.sysconf("SC_CLK_TCK")
    return int(rest[11]) / hz, int(rest[12]) / hz


def proc_rss_kb(pid):
    """Resident memory of pid in KiB (VmRSS of /proc/PID/status)."""
    linux_only("resident memory from /proc")
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def sanitizer_runtime(pid):
    """True if pid runs under AddressSanitizer (its runtime is mapped), whose
    allocator keeps and returns memory in its own way."""
    linux_only("sanitizer runtime")
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    if os.path.isdir("/proc"):
        st = proc_state(pid)
        return st is not None and st not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def descendants(pid):
    """PIDs of all living descendants of pid (Linux /proc scan)."""
    children = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return set()
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % e) as f:
                data = f.read()
        except OSError:
            continue
        try:
            rest = data.rsplit(")", 1)[1].split()
            ppid = int(rest[1])
        except (IndexError, ValueError):
            continue
        if rest[0] in ("Z", "X"):
            continue
        children.setdefault(ppid, []).append(int(e))
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, ()):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def run_baton(args, timeout=None, **kw):
    """Runs the baton binary to completion (CLI modes); returns CompletedProcess
    with text stdout/stderr."""
    timeout = scaled(timeout if timeout is not None else T_EXIT)
    if WINDOWS:
        return _run_wine(baton_argv(args), timeout, **kw)
    return subprocess.run([BATON_BIN] + list(args), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, **kw)


def _run_wine(argv, timeout, **kw):
    """subprocess.run for a wine command: its output goes to files, not to
    pipes a Wine service could keep open (then read back)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                           timeout=timeout, **kw)
        texts = []
        for f in (out, err):
            f.seek(0)
            texts.append(f.read().decode("utf-8", "replace").replace("\r\n", "\n"))
    return subprocess.CompletedProcess(argv, r.returncode, texts[0], texts[1])


def render_config(cfg):
    """Config text from a str (returned as is) or a dict of sections:
    {'global': {...}, 'listener web': {...}, 'backend app': {'server': [...]}}
    List values become repeated keys."""
    if isinstance(cfg, str):
        return cfg
    lines = []
    for section, body in cfg.items():
        lines.append("[%s]" % section)
        for k, v in body.items():
            vals = v if isinstance(v, (list, tuple)) else [v]
            for x in vals:
                lines.append("%s = %s" % (k, x))
        lines.append("")
    return "\n".join(lines)


class Baton(object):
    """A running `baton -c FILE` master with its stderr collected."""

    def __init__(self, tmpdir, config, name="baton", extra_env=None):
        self.tmpdir = tmpdir
        self.name = name
        self.config_path = os.path.join(tmpdir, name + ".ini")
        self.log_path = os.path.join(tmpdir, name + ".stderr.log")
        text = render_config(config)
        with open(self.config_path, "w") as f:
            f.write(text)
        self.config_text = text
        self.lines = []            # stderr lines, decoded
        self.raw_lines = []        # the same lines as bytes, newline included
        self.cond = threading.Condition()
        self.eof = False
        self.seen_pids = set()     # PIDs that wrote log lines
        self.known_children = set()
        self.proc = None
        self.reader = None
        self.extra_env = extra_env
        self.stopped = False

    # ---- lifecycle
    def start(self, wait_ready=True, timeout=T_START):
        env = dict(os.environ)
        # ASan: make leaks and errors visible but do not abort on leaks of
        # the CLI helper processes; the harness scans stderr for reports.
        if self.extra_env:
            env.update(self.extra_env)
        self.stdout_file = open(os.path.join(self.tmpdir, self.name + ".stdout.log"), "wb")
        if WINDOWS:
            return self._start_wine(env, wait_ready, timeout)
        self.proc = subprocess.Popen([BATON_BIN, "-c", self.config_path],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.stdout_file,
                                     stderr=subprocess.PIPE, env=env)
        self.logfile = open(self.log_path, "w")
        self.reader = threading.Thread(target=self._read, name="baton-stderr",
                                       daemon=True)
        self.reader.start()
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=T_START):
        return self.wait_for_log(r"^worker (\d+) generation (\d+) ready", timeout)

    def _start_wine(self, env, wait_ready, timeout):
        """Windows mode: wine baton.exe, stderr to log_path (appended to by
        the master and its workers alike), which _tail reads."""
        self.marker = "%s-%d" % (self.log_path, os.getpid())
        env["BATON_TEST_INSTANCE"] = self.marker
        self.stderr_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(baton_argv(["-c", self.config_path]),
                                     stdin=subprocess.DEVNULL, stdout=self.stdout_file,
                                     stderr=self.stderr_file, env=env)
        self.logfile = None
        self.reader = threading.Thread(target=self._tail, name="baton-stderr",
                                       daemon=True)
        self.reader.start()
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def _add_line(self, raw):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if WINDOWS:
            line = line.rstrip("\r")    # msvcrt's text mode
        m = LOG_RE.match(line)
        with self.cond:
            self.lines.append(line)
            self.raw_lines.append(raw)
            if m:
                self.seen_pids.add(int(m.group("pid")))
            self.cond.notify_all()
        if self.logfile is None:
            return
        try:
            self.logfile.write(line + "\n")
            self.logfile.flush()
        except ValueError:
            pass

    def _read(self):
        f = self.proc.stderr
        try:
            for raw in iter(f.readline, b""):
                self._add_line(raw)
        finally:
            with self.cond:
                self.eof = True
                self.cond.notify_all()

    def _tail(self):
        """Follows log_path until the master has exited and all is read."""
        try:
            with open(self.log_path, "rb") as f:
                part = b""
                while True:
                    done = self.proc.poll() is not None
                    data = f.read()
                    part += data
                    *whole, part = part.split(b"\n")
                    for raw in whole:
                        self._add_line(raw + b"\n")
                    if done:
                        if part:
                            self._add_line(part)
                        return
                    if not data:
                        time.sleep(0.02)
        finally:
            with self.cond:
                self.eof = True
                self.cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def mark(self):
        """Index of the next log line (to wait only for lines after now)."""
        with self.cond:
            return len(self.lines)

    @staticmethod
    def message(line):
        m = LOG_RE.match(line)
        return m.group("msg") if m else None

    def messages(self, start=0):
        with self.cond:
            lines = list(self.lines[start:])
        return [m for m in (self.message(l) for l in lines) if m is not None]

    def find_log(self, regex, start=0):
        """All matches (re.Match) of regex against message parts, now."""
        rx = re.compile(regex)
        out = []
        for msg in self.messages(start):
            m = rx.search(msg)
            if m:
                out.append(m)
        return out

    def wait_for_log(self, regex, timeout=T_WAIT, start=0, count=1):
        """Waits until `count` messages (from line index `start`) match regex;
        returns the last of those matches."""
        rx = re.compile(regex)
        deadline = time.monotonic() + scaled(timeout)
        with self.cond:
            while True:
                found = []
                for line in self.lines[start:]:
                    msg = self.message(line)
                    if msg is None:
                        continue
                    m = rx.search(msg)
                    if m:
                        found.append(m)
                        if len(found) >= count:
                            return m
                if self.eof:
                    raise AssertionError(
                        "baton stderr closed (exit status %r) before %d line(s) "
                        "matching %r appeared (found %d)" %
                        (self.proc.poll(), count, regex, len(found)))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "timed out after %.1fs waiting for %d log line(s) matching "
                        "%r (found %d)" % (scaled(timeout), count, regex, len(found)))
                self.cond.wait(min(left, 0.5))

    def listener_addr(self, name, timeout=T_WAIT, index=0):
        """(host, port) from `listener NAME bound to ADDR` (index-th bind)."""
        m = self.wait_for_log(r"^listener %s bound to (\S+)$" % re.escape(name),
                              timeout, count=index + 1)
        return parse_addr(m.group(1))

    def worker_pids(self):
        return [int(m.group(1)) for m in
                self.find_log(r"^worker (\d+) generation \d+ ready")]

    def current_worker(self):
        """(pid, generation) of the most recent ready worker."""
        ms = self.find_log(r"^worker (\d+) generation (\d+) ready")
        if not ms:
            raise AssertionError("no worker reported ready")
        return int(ms[-1].group(1)), int(ms[-1].group(2))

    def access_lines(self, start=0):
        out = []
        for msg in self.messages(start):
            d = parse_access(msg)
            if d is not None:
                out.append(d)
        return out

    def wait_access(self, count=1, timeout=T_WAIT, start=0, pred=None):
        """Waits until `count` access lines (matching pred) were logged."""
        def got():
            lines = [a for a in self.access_lines(start) if pred is None or pred(a)]
            return lines if len(lines) >= count else None
        return wait_until(got, timeout, interval=0.05,
                          what="%d access log line(s)" % count)

    def snapshot_children(self):
        if self.proc is not None and self.proc.poll() is None:
            self.known_children |= descendants(self.proc.pid)
            if WINDOWS:
                self.known_children |= wine_processes(self.marker)

    def ctl(self, command, timeout=T_EXIT):
        """baton -s COMMAND -c FILE"""
        self.snapshot_children()
        return run_baton(["-s", command, "-c", self.config_path], timeout=timeout)

    def status(self):
        """Parsed `-s status`; raises AssertionError unless it exits 0."""
        r = self.ctl("status")
        if r.returncode != 0:
            raise AssertionError("status: exit %d, stderr %r" % (r.returncode, r.stderr))
        return parse_status_text(r.stdout)

    def status_workers(self):
        """[(pid, generation, state)] of the workers `-s status` lists: the
        way to know baton.exe's workers (Windows PIDs, not Linux ones)."""
        return [(int(w["pid"]), int(w["generation"]), w.get("state"))
                for w in self.status()["worker"]]

    def send_signal(self, sig):
        self.snapshot_children()
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=T_EXIT):
        """Waits for the master to exit by itself; returns its status or
        raises AssertionError (after killing it) on deadline."""
        try:
            return self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.snapshot_children()
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError("baton master did not exit within %.1fs" % scaled(timeout))

    def leftover_processes(self, timeout=10.0):
        """After the master exited: PIDs of workers/children still alive once
        `timeout` elapsed.  Killed with SIGKILL (so tests do not leak them)."""
        if WINDOWS:
            # The PIDs baton.exe logs are Windows PIDs; these are Linux ones.
            pids = set(self.known_children) | wine_processes(self.marker)
        else:
            pids = set(self.known_children) | set(self.seen_pids) | set(self.worker_pids())
        # A forged log line (a test of log safety against a vulnerable
        # binary) names any PID: never init, this process, or the master.
        pids -= {0, 1, os.getpid(), self.proc.pid}
        deadline = time.monotonic() + scaled(timeout)
        alive = {p for p in pids if pid_alive(p)}
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = {p for p in alive if pid_alive(p)}
        for p in alive:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        return alive

    def sanitizer_reports(self):
        with self.cond:
            return [l for l in self.lines if SANITIZER_RE.search(l)]

    def stop(self, sig=signal.SIGTERM, timeout=T_EXIT):
        """Stops the master (SIGTERM, then SIGKILL as a last resort) and
        checks nothing is left behind.  Raises AssertionError on problems."""
        problems = []
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.snapshot_children()
            how = "signal %d" % sig
            try:
                if WINDOWS:
                    how = self._ask_stop_wine()
                else:
                    self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(scaled(timeout))
            except subprocess.TimeoutExpired:
                self.snapshot_children()
                self.proc.kill()
                self.proc.wait(10)
                problems.append("master did not exit within %.1fs of %s; "
                                "killed" % (scaled(timeout), how))
        self.finish(problems)

    def _ask_stop_wine(self):
        """Windows mode has no signals but Ctrl-C: `-s stop` through the
        control pipe, or Ctrl-C (kill -INT of the wine process) if that
        failed.  Returns what was done."""
        try:
            if self.ctl("stop").returncode == 0:
                return "-s stop"
        except subprocess.TimeoutExpired:
            pass
        self.proc.send_signal(signal.SIGINT)
        return "Ctrl-C"

    def finish(self, problems=None):
        """Post-exit checks: no leftover children, no sanitizer reports."""
        problems = list(problems or [])
        if self.stopped:
            return
        self.stopped = True
        left = self.leftover_processes()
        if left:
            problems.append("processes left after master exit: %s" % sorted(left))
        if self.reader is not None:
            self.reader.join(scaled(10))
        try:
            self.logfile.close()
        except Exception:
            pass
        for f in (self.stdout_file, getattr(self, "stderr_file", None), self.proc.stderr):
            try:
                f.close()
            except Exception:
                pass
        # Windows mode: no sanitizer build of baton.exe (mingw-w64 has none).
        reps = self.sanitizer_reports()
        if reps:
            problems.append("sanitizer reports in baton's stderr: %s" % reps[:5])
        if problems:
            raise AssertionError("; ".join(problems))

    def tail(self, n=80):
        with self.cond:
            return list(self.lines[-n:])


# --------------------------------------------------------------------------
# backend servers

class Server(object):
    """Base: a listening socket + accept thread + one thread per connection.
    Subclasses implement handle(conn, info); info is a dict recorded in
    self.conns (peer, plus whatever the handler stores)."""

    def __init__(self, host="127.0.0.1", name="srv", backlog=1024):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.name = name
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(backlog)
        self.addr = self.sock.getsockname()[:2]
        self.lock = threading.Condition()
        self.conns = []          # one info dict per accepted connection
        self.active = 0          # currently open
        self.closing = False
        self.open_socks = set()
        self.thread = threading.Thread(target=self._accept_loop,
                                       name="srv-%s" % name, daemon=True)
        self.thread.start()

    @property
    def addr_text(self):
        return format_addr(self.addr)

    def server_line(self, weight=None):
        s = "%s %s" % (self.name, self.addr_text)
        if weight is not None:
            s += " weight=%d" % weight
        return s

    def _accept_loop(self):
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            if self.closing:
                conn.close()
                return
            info = {"peer": peer, "done": False}
            with self.lock:
                self.conns.append(info)
                self.active += 1
                self.open_socks.add(conn)
                self.lock.notify_all()
            t = threading.Thread(target=self._run, args=(conn, info), daemon=True)
            t.start()

    def _run(self, conn, info):
        try:
            conn.settimeout(scaled(120))
            self.handle(conn, info)
        except Exception as e:   # recorded, the test decides
            info["error"] = repr(e)
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self.lock:
                info["done"] = True
                self.active -= 1
                self.open_socks.discard(conn)
                self.lock.notify_all()

    def handle(self, conn, info):
        raise NotImplementedError

    def wait(self, pred, timeout=T_WAIT, what="server condition"):
        """Waits until pred(self) is true (evaluated under the lock)."""
        deadline = time.monotonic() + scaled(timeout)
        with self.lock:
            while not pred(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for %s on server %s "
                                         "(%d connections, %d active)" %
                                         (what, self.name, len(self.conns), self.active))
                self.lock.wait(min(left, 0.5))

    def wait_conns(self, n, timeout=T_WAIT):
        self.wait(lambda s: len(s.conns) >= n, timeout, "%d connections" % n)

    def wait_done(self, n, timeout=T_WAIT):
        """Waits until n connections have finished (handler returned)."""
        self.wait(lambda s: sum(1 for c in s.conns if c["done"]) >= n, timeout,
                  "%d finished connections" % n)

    def count(self):
        with self.lock:
            return len(self.conns)

    def close(self):
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self.open_socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(5)


def _read_to_eof(conn, info, key="received"):
    h = hashlib.sha256()
    n = 0
    while True:
        chunk = conn.recv(1 << 20)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
        info[key + "_bytes"] = n
    info[key + "_bytes"] = n
    info[key + "_sha256"] = h.hexdigest()
    return n, h.hexdigest()


class SinkServer(Server):
    """Reads until EOF, replies with the sha256 hex digest (64 ASCII bytes) of
    what it got, then `extra` pseudo-random bytes (seed 'extra'), then closes."""

    def __init__(self, extra=0, **kw):
        self.extra = extra
        super().__init__(**kw)

    def handle(self, conn, info):
        n, hexd = _read_to_eof(conn, info)
        conn.sendall(hexd.encode())
        if self.extra:
            conn.sendall(pseudo_random(self.extra, b"extra"))
        info["replied"] = True


class SourceServer(Server):
    """Sends `size` pseudo-random bytes (seed) then either closes, or (with
    half_close) shuts down its write side and reads what the client sends
    until EOF, recording its sha256 as info['received_sha256']."""

    def __init__(self, size, seed=b"source", half_close=False, **kw):
        self.size = size
        self.seed = seed
        self.data = pseudo_random(size, seed)
        self.half_close = half_close
        super().__init__(**kw)

    def handle(self, conn, info):
        view = memoryview(self.data)
        conn.sendall(view)
        info["sent"] = len(self.data)
        if self.half_close:
            conn.shutdown(socket.SHUT_WR)
            info["half_closed"] = True
            with self.lock:
                self.lock.notify_all()
            _read_to_eof(conn, info)


class TagServer(Server):
    """Sends its name + newline, then reads until EOF (so connections stay
    open as long as the client wants) and closes."""

    def handle(self, conn, info):
        conn.sendall(self.name.encode() + b"\n")
        _read_to_eof(conn, info)


class HoldServer(Server):
    """Accepts and reads until EOF without replying."""

    def handle(self, conn, info):
        _read_to_eof(conn, info)


class ResetServer(Server):
    """Reads until EOF without replying, then resets the connection (a close
    with SO_LINGER 0 sends RST, as the kernel does for a handshake that
    completed into a full accept queue: docs/operations.md)."""

    def handle(self, conn, info):
        _read_to_eof(conn, info)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class EchoServer(object):
    """Single-threaded selectors echo server (scales to thousands of
    connections).  On client EOF it flushes, shuts down its write side and
    closes.  Tracks total and currently open connections."""

    def __init__(self, host="127.0.0.1", name="echo", backlog=4096):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.name = name
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(backlog)
        self.sock.setblocking(False)
        self.addr = self.sock.getsockname()[:2]
        self.lock = threading.Condition()
        self.total = 0
        self.active = 0
        self.max_active = 0
        self.peers = []
        self._stop = False
        self.rpipe, self.wpipe = os.pipe()
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ, None)
        self.sel.register(self.rpipe, selectors.EVENT_READ, "stop")
        self.thread = threading.Thread(target=self._loop, name="echo-" + name,
                                       daemon=True)
        self.thread.start()

    @property
    def addr_text(self):
        return format_addr(self.addr)

    def server_line(self, weight=None):
        s = "%s %s" % (self.name, self.addr_text)
        if weight is not None:
            s += " weight=%d" % weight
        return s

    def _loop(self):
        conns = {}   # sock -> [outbuf(bytearray), eof(bool)]
        try:
            while not self._stop:
                for key, ev in self.sel.select(1.0):
                    if key.data == "stop":
                        return
                    s = key.fileobj
                    if s is self.sock:
                        for _ in range(256):
                            try:
                                c, peer = self.sock.accept()
                            except (BlockingIOError, InterruptedError):
                                break
                            except OSError:
                                break
                            c.setblocking(False)
                            conns[c] = [bytearray(), False]
                            self.sel.register(c, selectors.EVENT_READ, "c")
                            with self.lock:
                                self.total += 1
                                self.active += 1
                                self.max_active = max(self.max_active, self.active)
                                self.peers.append(peer)
                                self.lock.notify_all()
                        continue
                    st = conns.get(s)
                    if st is None:
                        continue
                    closed = False
                    if ev & selectors.EVENT_READ and not st[1]:
                        try:
                            data = s.recv(65536)
                        except (BlockingIOError, InterruptedError):
                            data = None
                        except OSError:
                            data = b""
                            st[0].clear()
                        if data is not None:
                            if data:
                                st[0] += data
                            else:
                                st[1] = True
                    if st[0]:
                        try:
                            n = s.send(st[0])
                            del st[0][:n]
                        except (BlockingIOError, InterruptedError):
                            pass
                        except OSError:
                            closed = True
                    if st[1] and not st[0]:
                        closed = True
                    if closed:
                        self.sel.unregister(s)
                        try:
                            s.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                        s.close()
                        del conns[s]
                        with self.lock:
                            self.active -= 1
                            self.lock.notify_all()
                        continue
                    want = 0 if st[1] else selectors.EVENT_READ
                    if st[0]:
                        want |= selectors.EVENT_WRITE
                    # stop reading while much is pending (back-pressure)
                    if len(st[0]) > (1 << 20):
                        want &= ~selectors.EVENT_READ
                    if want == 0:
                        want = selectors.EVENT_WRITE
                    if want != key.events:
                        self.sel.modify(s, want, "c")
        finally:
            for s in list(conns):
                try:
                    s.close()
                except OSError:
                    pass

    def wait(self, pred, timeout=T_WAIT, what="echo condition"):
        deadline = time.monotonic() + scaled(timeout)
        with self.lock:
            while not pred(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for %s (total=%d active=%d)"
                                         % (what, self.total, self.active))
                self.lock.wait(min(left, 0.5))

    def count(self):
        with self.lock:
            return self.total

    def close(self):
        self._stop = True
        try:
            os.write(self.wpipe, b"x")
        except OSError:
            pass
        self.thread.join(10)
        try:
            self.sel.close()
        except Exception:
            pass
        for fd in (self.rpipe, self.wpipe):
            try:
                os.close(fd)
            except OSError:
                pass
        self.sock.close()


# --------------------------------------------------------------------------
# test case base

class BatonTestCase(unittest.TestCase):
    """Per-test temp dir, baton instances and servers cleaned up afterwards.
    On failure, prints the tail of every baton's log and keeps the temp dir."""

    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not BATON_BIN or not os.path.isfile(BATON_BIN):
            raise unittest.SkipTest("BATON_BIN not set or not a file: %r" % BATON_BIN)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="baton-it-")
        self._batons = []
        self._servers = []

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        ret = super().run(result)
        after = len(result.failures) + len(result.errors)
        batons = getattr(self, "_batons", [])
        tmp = getattr(self, "tmp", None)
        if after > before:
            for b in batons:
                sys.stderr.write("\n----- tail of %s (pid %s) stderr (%s) -----\n" %
                                 (b.name, b.proc.pid if b.proc else "-", b.log_path))
                for l in b.tail():
                    sys.stderr.write(l + "\n")
                sys.stderr.write("----- end of %s -----\n" % b.name)
            if tmp:
                sys.stderr.write("(temp dir kept: %s)\n" % tmp)
        elif tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        return ret

    # ---- servers
    def _track(self, srv):
        self._servers.append(srv)
        self.addCleanup(srv.close)
        return srv

    def echo_server(self, name="echo", host="127.0.0.1"):
        return self._track(EchoServer(host=host, name=name))

    def sink_server(self, name="sink", host="127.0.0.1", extra=0):
        return self._track(SinkServer(extra=extra, host=host, name=name))

    def source_server(self, size, seed=b"source", half_close=False, name="source",
                      host="127.0.0.1"):
        return self._track(SourceServer(size, seed=seed, half_close=half_close,
                                        host=host, name=name))

    def tag_server(self, name, host="127.0.0.1"):
        return self._track(TagServer(host=host, name=name))

    def hold_server(self, name="hold", host="127.0.0.1"):
        return self._track(HoldServer(host=host, name=name))

    def reset_server(self, name="reset", host="127.0.0.1"):
        return self._track(ResetServer(host=host, name=name))

    # ---- config + baton
    def control_path(self, name="baton"):
        return os.path.join(self.tmp, name + ".sock")

    def make_config(self, servers, listener=None, backend=None, glob=None,
                    binds=("127.0.0.1:0",), name="baton"):
        """One listener 'web' -> backend 'app' with the given servers
        (server objects, or ready-made 'NAME ADDR [weight=W]' strings)."""
        g = {"threads": 1, "control": self.control_path(name),
             "log_level": "info", "access_log": "stderr"}
        if WINDOWS:
            # The control pipe's name comes from the config path.
            del g["control"]
        g.update(glob or {})
        l = {"bind": list(binds), "backend": "app"}
        l.update(listener or {})
        b = {"server": [s if isinstance(s, str) else s.server_line() for s in servers]}
        b.update(backend or {})
        return {"global": g, "listener web": l, "backend app": b}

    def start_baton(self, config, name="baton", wait_ready=True, timeout=T_START):
        b = Baton(self.tmp, config, name=name)
        self._batons.append(b)
        self.addCleanup(b.stop)
        b.start(wait_ready=wait_ready, timeout=timeout)
        return b

    def proxy(self, servers, **kw):
        """Starts baton in front of servers; returns (baton, listener addr)."""
        b = self.start_baton(self.make_config(servers, **kw))
        return b, b.listener_addr("web")


def raise_nofile(want):
    """Raises RLIMIT_NOFILE's soft limit towards `want` (bounded by hard).
    Returns the resulting soft limit."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------------
# other users: who may control baton (added for test_control)

def other_user():
    """(uid, gid) of the unprivileged user 'nobody', to act as another user
    of the machine.  Skips the calling test unless it runs as root (only
    root can start processes as someone else)."""
    import pwd
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root to run processes as another user "
                                "(CI runs the tests as root)")
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise unittest.SkipTest("no user 'nobody' on this system")
    return pw.pw_uid, pw.pw_gid


def spare_group(exclude=()):
    """A group of the system that is neither root's nor in exclude:
    (name, gid); skips the calling test if there is none."""
    import grp
    for g in grp.getgrall():
        if g.gr_gid != 0 and g.gr_gid not in exclude:
            return g.gr_name, g.gr_gid
    raise unittest.SkipTest("no spare group on this system")


def open_to_others(testcase):
    """Lets other users reach files in the test's temp dir (search only: they
    still cannot list it) and run a copy of the baton binary from there (the
    build tree may be private).  Returns that copy's path."""
    os.chmod(testcase.tmp, 0o711)
    exe = os.path.join(testcase.tmp, "baton-for-others")
    if not os.path.exists(exe):
        shutil.copy(BATON_BIN, exe)
        os.chmod(exe, 0o755)
    return exe


def fork_as(user, fn, groups=()):
    """Forks a child that becomes user (uid, gid) with exactly the given
    supplementary groups, then runs fn(out): out is a binary file whose
    bytes reach the parent (a failure in the child is reported on it too).
    The child exits when fn returns.  Returns (pid, file to read)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            with os.fdopen(w, "wb", buffering=0) as out:
                try:
                    os.setgroups(list(groups))
                    os.setgid(user[1])
                    os.setuid(user[0])
                    fn(out)
                except BaseException as e:
                    out.write(("child error: %r" % e).encode())
                    code = 1
        finally:
            os._exit(code)
    os.close(w)
    return pid, os.fdopen(r, "rb", buffering=0)


def end_child(pid):
    """Kills (if need be) and reaps a child of fork_as."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def call_as(user, fn, groups=(), timeout=T_WAIT):
    """fork_as and wait: returns all the child reported (bytes)."""
    pid, f = fork_as(user, fn, groups)
    deadline = time.monotonic() + scaled(timeout)
    data = b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([f], [], [], left)[0]:
                raise AssertionError("child %d (uid %d) did not finish within %.1fs; reported "
                                     "%r" % (pid, user[0], scaled(timeout), data))
            chunk = f.read(65536)
            if not chunk:
                return data
            data += chunk
    finally:
        f.close()
        end_child(pid)


def run_as(user, args, groups=(), timeout=None, input=None, cwd=None):
    """Runs args to completion as user (uid, gid) with exactly the given
    supplementary groups; returns CompletedProcess with text output."""
    return subprocess.run(list(args), user=user[0], group=user[1], extra_groups=list(groups),
                          input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          universal_newlines=True, cwd=cwd or "/",
                          timeout=scaled(timeout if timeout is not None else T_EXIT))


# --------------------------------------------------------------------------
# hot restart: binary upgrade, socket activation, systemd notifications
# (added for test_upgrade, test_reload_load and test_systemd)

BATON_NEXT_BIN = os.environ.get("BATON_NEXT_BIN", "")


def binary_version(binary):
    """VERSION from `BINARY -v` ('baton VERSION')."""
    r = subprocess.run([binary, "-v"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=scaled(T_EXIT))
    parts = r.stdout.split()
    if r.returncode != 0 or len(parts) < 2 or parts[0] != "baton":
        raise AssertionError("%s -v: status %d, stdout %r, stderr %r" %
                             (binary, r.returncode, r.stdout, r.stderr))
    return parts[1]


def parse_status_text(text):
    """`baton -s status` output -> {'baton': {...}, 'master': {...},
    'worker': [{...}, ...], 'listener': [{...}, ...]}"""
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


def _replace_with(dst, writer):
    """Writes a new file next to dst (writer(f)), makes it executable and
    renames it over dst: a running binary at dst is never written into."""
    d = os.path.dirname(os.path.abspath(dst))
    fd, tmp = tempfile.mkstemp(prefix=".install-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
        os.chmod(tmp, 0o755)
        os.replace(tmp, dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def install_binary(src, dst):
    """Copies the executable src to dst by rename (new inode)."""
    def w(f):
        with open(src, "rb") as s:
            shutil.copyfileobj(s, f, 1 << 20)
    _replace_with(dst, w)


def install_script(dst, body):
    """Places a shell script at dst by rename (e.g. a 'broken binary')."""
    text = body if body.startswith("#!") else "#!/bin/sh\n" + body
    _replace_with(dst, lambda f: f.write(text.encode()))


class BatonCommand(Baton):
    """A Baton master started from another binary path and/or through a
    wrapper command.  argv(binary, config_path) -> list builds the command
    line (default: [binary, '-c', config_path]); popen_kw goes to Popen
    (pass_fds, preexec_fn, ...).  The wrapper must exec baton in place so
    that proc.pid is the master's PID."""

    def __init__(self, tmpdir, config, name="baton", extra_env=None, binary=None,
                 argv=None, popen_kw=None):
        super().__init__(tmpdir, config, name=name, extra_env=extra_env)
        self.binary = binary or BATON_BIN
        self.argv = argv
        self.popen_kw = dict(popen_kw or {})

    def start(self, wait_ready=True, timeout=T_START):
        env = dict(os.environ)
        if self.extra_env:
            env.update(self.extra_env)
        if self.argv is not None:
            cmd = list(self.argv(self.binary, self.config_path))
        else:
            cmd = [self.binary, "-c", self.config_path]
        self.stdout_file = open(os.path.join(self.tmpdir, self.name + ".stdout.log"), "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.stdout_file,
                                     stderr=subprocess.PIPE, env=env, **self.popen_kw)
        self.logfile = open(self.log_path, "w")
        self.reader = threading.Thread(target=self._read, name="baton-stderr",
                                       daemon=True)
        self.reader.start()
        if wait_ready:
            self.wait_for_log(r"^worker (\d+) generation (\d+) ready", timeout)
        return self



def start_baton_command(testcase, config, name="baton", wait_ready=True,
                        timeout=T_START, **kw):
    """Like BatonTestCase.start_baton, with BatonCommand's options (binary,
    argv, popen_kw, extra_env); stopped and checked at cleanup."""
    b = BatonCommand(testcase.tmp, config, name=name, **kw)
    testcase._batons.append(b)
    testcase.addCleanup(b.stop)
    b.start(wait_ready=wait_ready, timeout=timeout)
    return b


def fd_count(pid):
    """Number of open descriptors of pid (/proc/PID/fd)."""
    linux_only("descriptor counts")
    return len(os.listdir("/proc/%d/fd" % pid))


def socket_inodes(pid):
    """{fd: inode} for pid's socket descriptors."""
    linux_only("socket descriptors from /proc")
    out = {}
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        try:
            link = os.readlink(os.path.join(d, name))
        except OSError:
            continue
        m = re.match(r"^socket:\[(\d+)\]$", link)
        if m:
            out[int(name)] = int(m.group(1))
    return out


def _tcp_inode(addr, col, state):
    """Inode of the first TCP socket in /proc/net/tcp whose address in column
    col (1 local, 2 remote) is addr (IPv4 host, port), in state (hex)."""
    import struct
    host, port = addr[0], addr[1]
    want = "%08X:%04X" % (struct.unpack("=I", socket.inet_aton(host))[0], port)
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if len(cols) > 9 and cols[col] == want and cols[3] == state:
                return int(cols[9])
    return None


def tcp_listen_inode(addr):
    """Inode of the listening TCP socket on addr (IPv4 host, port), from
    /proc/net/tcp; None if nothing listens there."""
    return _tcp_inode(addr, 1, "0A")


def tcp_conn_inode(remote):
    """Inode of an established TCP socket whose peer is remote (IPv4 host,
    port), from /proc/net/tcp; None if there is none."""
    return _tcp_inode(remote, 2, "01")


def sockopt_of(pid, inode, level, opt):
    """getsockopt(level, opt) as an int on process pid's socket with that
    inode, through a copy of its descriptor (pidfd_getfd, Linux 5.6, needs
    the right to ptrace pid: root).  Skips the calling test where the
    kernel refuses."""
    import ctypes
    import struct
    fd = next((f for f, i in socket_inodes(pid).items() if i == inode), None)
    if fd is None:
        raise AssertionError("process %d holds no socket with inode %s" % (pid, inode))
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(434, pid, 0)                  # pidfd_open
    if pidfd < 0:
        raise unittest.SkipTest("pidfd_open: %s" % os.strerror(ctypes.get_errno()))
    try:
        copy = libc.syscall(438, pidfd, fd, 0)         # pidfd_getfd
        if copy < 0:
            raise unittest.SkipTest("pidfd_getfd: %s" % os.strerror(ctypes.get_errno()))
    finally:
        os.close(pidfd)
    try:
        s = socket.socket(fileno=copy)
        try:
            return struct.unpack("i", s.getsockopt(level, opt, 4))[0]
        finally:
            s.detach()
    finally:
        os.close(copy)


def _tcp_rx_queues(addr):
    """rx_queue (bytes not read by their owner) of every established TCP
    socket whose local address is addr (IPv4 host, port)."""
    import struct
    host, port = addr[0], addr[1]
    want = "%08X:%04X" % (struct.unpack("=I", socket.inet_aton(host))[0], port)
    out = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if len(cols) > 4 and cols[1] == want and cols[3] == "01":
                out.append(int(cols[4].split(":")[1], 16))
    return out


def tcp_unread(addr):
    """Established TCP connections to addr (IPv4 host, port) with bytes their
    owner has not read yet (rx_queue of /proc/net/tcp), accepted or not."""
    return sum(1 for q in _tcp_rx_queues(addr) if q > 0)


def tcp_rx_bytes(addr):
    """Bytes waiting unread in the established TCP socket(s) bound to addr."""
    return sum(_tcp_rx_queues(addr))


def parse_notify(data):
    """'A=1\\nB=x' -> {'A': '1', 'B': 'x'}"""
    out = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if "=" in line:
            k, _, v = line.partition("=")
            out[k] = v
    return out


class NotifyReceiver(object):
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET.
    Records (sender_pid, fields dict, raw text) per datagram; the sender's
    PID comes from SCM_CREDENTIALS."""

    def __init__(self, path):
        import struct
        self._struct = struct
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.cond = threading.Condition()
        self.messages = []
        self.closed = False
        self.thread = threading.Thread(target=self._loop, name="notify", daemon=True)
        self.thread.start()

    def _loop(self):
        ucred = self._struct.calcsize("iII")
        while True:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(
                    65536, socket.CMSG_SPACE(ucred))
            except OSError:
                break
            if self.closed:
                break
            pid = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = self._struct.unpack("iII", cdata[:ucred])[0]
            with self.cond:
                self.messages.append((pid, parse_notify(data),
                                      data.decode("utf-8", "replace")))
                self.cond.notify_all()

    def snapshot(self, start=0):
        with self.cond:
            return list(self.messages[start:])

    def wait_count(self, n, timeout=T_WAIT):
        """Waits until at least n datagrams arrived; returns all of them."""
        deadline = time.monotonic() + scaled(timeout)
        with self.cond:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for %d notify message(s); got %r"
                                         % (n, [m[2] for m in self.messages]))
                self.cond.wait(min(left, 0.5))
            return list(self.messages)

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        # a datagram to ourselves wakes the reader if shutdown did not
        try:
            w = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                w.sendto(b"", self.path)
            finally:
                w.close()
        except OSError:
            pass
        self.thread.join(5)
        self.sock.close()


# --------------------------------------------------------------------------
# TLS, PROXY protocol and health checks
# (added for test_tls, test_passthrough, test_proxy_protocol, test_health)

import ssl
import struct


def run_openssl(args, timeout=60, input_data=None):
    """Runs the openssl command-line tool; raises AssertionError on failure."""
    r = subprocess.run(["openssl"] + list(args), input=input_data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=scaled(timeout))
    if r.returncode != 0:
        raise AssertionError("openssl %s: exit %d: %s" %
                             (" ".join(args), r.returncode,
                              r.stderr.decode("utf-8", "replace")))
    return r.stdout


class TestPKI(object):
    """Test certificates made with the openssl tool into `directory`.
    ca(name) creates a self-signed CA; leaf(name, sans, ...) a certificate
    signed by a CA.  Each returns a dict: cert, key (paths), der (bytes of
    the certificate), name (its CN)."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.serial = 1000
        self.cas = {}
        self.certs = {}

    def _path(self, name, ext):
        return os.path.join(self.dir, "%s.%s" % (name, ext))

    def _key(self, name, kind):
        path = self._path(name, "key")
        if kind == "rsa":
            run_openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                         "-out", path])
        elif kind == "ec":
            run_openssl(["genpkey", "-algorithm", "EC", "-pkeyopt",
                         "ec_paramgen_curve:P-256", "-out", path])
        else:
            raise ValueError(kind)
        return path

    @staticmethod
    def _der(pem_path):
        with open(pem_path) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    def ca(self, name, kind="ec"):
        key = self._key(name, kind)
        cert = self._path(name, "pem")
        run_openssl(["req", "-x509", "-new", "-key", key, "-subj", "/CN=%s" % name,
                     "-days", "30", "-sha256", "-out", cert,
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                     "-addext", "subjectKeyIdentifier=hash"])
        d = {"name": name, "cert": cert, "key": key, "der": self._der(cert)}
        self.cas[name] = d
        return d

    def leaf(self, name, sans, ca, kind="ec", client=False):
        """A certificate with CN=name and DNS SANs `sans` (may be empty)
        signed by the CA dict `ca`."""
        key = self._key(name, kind)
        csr = self._path(name, "csr")
        cert = self._path(name, "pem")
        ext = self._path(name, "ext")
        usage = "digitalSignature,keyEncipherment" if kind == "rsa" else "digitalSignature"
        lines = ["basicConstraints=CA:FALSE",
                 "keyUsage=critical,%s" % usage,
                 "extendedKeyUsage=%s" % ("clientAuth" if client else "serverAuth"),
                 "subjectKeyIdentifier=hash",
                 "authorityKeyIdentifier=keyid:always"]
        if sans:
            lines.append("subjectAltName=" + ",".join("DNS:" + s for s in sans))
        with open(ext, "w") as f:
            f.write("\n".join(lines) + "\n")
        run_openssl(["req", "-new", "-key", key, "-subj", "/CN=%s" % name, "-out", csr])
        self.serial += 1
        run_openssl(["x509", "-req", "-in", csr, "-CA", ca["cert"], "-CAkey", ca["key"],
                     "-set_serial", str(self.serial), "-days", "30", "-sha256",
                     "-extfile", ext, "-out", cert])
        d = {"name": name, "cert": cert, "key": key, "der": self._der(cert),
             "kind": kind, "sans": list(sans)}
        self.certs[name] = d
        return d


_PKI = None


def shared_pki():
    """The standard test PKI, made once per process (removed at exit):
      CAs:     'Test CA' (servers), 'Client CA', 'Other CA'
      servers (signed by Test CA):
        www-rsa, www-ecdsa  SAN www.example.test, example.test (RSA / ECDSA)
        api                 SAN api.example.test, exact.wild.test
        wild                SAN *.wild.test
        backend             SAN backend.test
        alpha, beta         SAN alpha.pass.test / beta.pass.test
        star                SAN *.star.pass.test
        plain               SAN default.pass.test
      untrusted (signed by Other CA): rogue  SAN backend.test
      clients: client1 (Client CA), intruder (Other CA)
    Returns the TestPKI; entries in pki.cas / pki.certs by name."""
    global _PKI
    if _PKI is not None:
        return _PKI
    d = tempfile.mkdtemp(prefix="baton-pki-")
    atexit.register(shutil.rmtree, d, True)
    p = TestPKI(d)
    ca = p.ca("Test CA")
    cca = p.ca("Client CA")
    oca = p.ca("Other CA")
    p.leaf("www-rsa", ["www.example.test", "example.test"], ca, kind="rsa")
    p.leaf("www-ecdsa", ["www.example.test", "example.test"], ca, kind="ec")
    p.leaf("api", ["api.example.test", "exact.wild.test"], ca)
    p.leaf("wild", ["*.wild.test"], ca)
    p.leaf("backend", ["backend.test"], ca)
    p.leaf("alpha", ["alpha.pass.test"], ca)
    p.leaf("beta", ["beta.pass.test"], ca)
    p.leaf("star", ["*.star.pass.test"], ca)
    p.leaf("plain", ["default.pass.test"], ca)
    p.leaf("rogue", ["backend.test"], oca)
    p.leaf("client1", [], cca, client=True)
    p.leaf("intruder", [], oca, client=True)
    _PKI = p
    return p


class PKITestCase(BatonTestCase):
    """A BatonTestCase with the shared test PKI as cls.pki (skipped without
    the openssl tool)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not shutil.which("openssl"):
            raise unittest.SkipTest("the openssl command-line tool is not installed")
        cls.pki = shared_pki()


def der_subject(der):
    """'subject=CN = x' of a DER certificate, via `openssl x509`."""
    return run_openssl(["x509", "-inform", "DER", "-noout", "-subject"],
                       input_data=der).decode().strip()


def server_context(cert, ca_for_clients=None, alpn=None):
    """A Python TLS server context with the cert dict `cert`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert["cert"], cert["key"])
    if ca_for_clients:
        ctx.load_verify_locations(ca_for_clients)
        ctx.verify_mode = ssl.CERT_REQUIRED
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def client_context(cafile=None, min_version=None, max_version=None, alpn=None,
                   ciphers=None, cert=None, check_hostname=True):
    """A Python TLS client context verifying against cafile."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cafile:
        ctx.load_verify_locations(cafile)
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if ciphers:
        ctx.set_ciphers(ciphers)
    if cert:
        ctx.load_cert_chain(cert["cert"], cert["key"])
    return ctx


def tls_connect(addr, ctx, server_hostname=None, timeout=None, session=None):
    """A TCP connection to addr wrapped in TLS (handshake done)."""
    s = connect(addr, timeout=timeout)
    try:
        return ctx.wrap_socket(s, server_hostname=server_hostname, session=session)
    except BaseException:
        s.close()
        raise


def tls_shutdown_write(sslsock):
    """Half-closes the TCP connection under an SSLSocket (FIN without
    close_notify) while keeping TLS usable for reading."""
    socket.socket.shutdown(sslsock, socket.SHUT_WR)


class MemTLSClient(object):
    """A TLS client over a plain socket through ssl.MemoryBIO, so a test
    controls every byte that goes out (split ClientHello, re-framed
    records, a prefix such as a PROXY header)."""

    def __init__(self, sock, ctx, server_hostname=None, timeout=None, segment=None):
        """segment: send everything in pieces of this many bytes, each its
        own TCP segment (TCP_NODELAY and a short pause between them)."""
        self.sock = sock
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=server_hostname)
        self.timeout = scaled(timeout if timeout is not None else T_IO)
        self.segment = segment
        if segment:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def client_hello(self):
        """The first flight (the ClientHello record(s)), not sent yet."""
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.out.read()

    def _flush(self):
        data = self.out.read()
        step = self.segment or len(data)
        for off in range(0, len(data), max(step, 1)):
            if off:
                time.sleep(0.002)   # separate segments, not synchronisation
            self.sock.sendall(data[off:off + step])

    def _fill(self):
        self.sock.settimeout(self.timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError("TLS peer silent for %.1fs" % self.timeout)
        if not data:
            self.inc.write_eof()
            return False
        self.inc.write(data)
        return True

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    # lets OpenSSL raise its error for the EOF
                    self.obj.do_handshake()
                    raise AssertionError("EOF during the TLS handshake")

    def sendall(self, data):
        self.obj.write(data)
        self._flush()

    def recv(self, n=65536):
        """Plaintext; b'' at close_notify or EOF."""
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    try:
                        return self.obj.read(n)
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ssl.SSLWantReadError):
                        return b""
            except ssl.SSLZeroReturnError:
                return b""

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.recv(n - len(buf))
            if not chunk:
                raise AssertionError("EOF after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def close_notify(self):
        """Sends close_notify (then the caller may read to EOF)."""
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        self._flush()

    def getpeercert_der(self):
        return self.obj.getpeercert(binary_form=True)


def split_into_records(record_bytes, first_len):
    """Re-frames one TLS handshake record (5-byte header + body) into two
    records, the first carrying `first_len` bytes of the body."""
    typ, major, minor, length = struct.unpack("!BBBH", record_bytes[:5])
    body = record_bytes[5:5 + length]
    if len(record_bytes) != 5 + length:
        raise AssertionError("expected exactly one record (%d bytes, record length %d)"
                             % (len(record_bytes), length))
    a, b = body[:first_len], body[first_len:]
    return (struct.pack("!BBBH", typ, major, minor, len(a)) + a +
            struct.pack("!BBBH", typ, major, minor, len(b)) + b)


# ---- PROXY protocol

PP2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v1_header(src, dst):
    """'PROXY TCP4 src dst sport dport\\r\\n' for (host, port) pairs."""
    fam = "TCP6" if ":" in src[0] else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src[0], dst[0], src[1], dst[1])).encode()


def pp2_tlv(typ, value):
    if isinstance(value, str):
        value = value.encode()
    return struct.pack("!BH", typ, len(value)) + value


def proxy_v2_header(src, dst, tlvs=b""):
    """A v2 PROXY (command 0x21) TCP header for (host, port) pairs."""
    if ":" in src[0]:
        fam = 0x21
        addrs = (socket.inet_pton(socket.AF_INET6, src[0]) +
                 socket.inet_pton(socket.AF_INET6, dst[0]))
    else:
        fam = 0x11
        addrs = socket.inet_aton(src[0]) + socket.inet_aton(dst[0])
    body = addrs + struct.pack("!HH", src[1], dst[1]) + tlvs
    return PP2_SIG + struct.pack("!BBH", 0x21, fam, len(body)) + body


def parse_tlvs(data):
    """[(type, value)] of a TLV block; AssertionError unless lengths add up."""
    out, off = [], 0
    while off < len(data):
        if off + 3 > len(data):
            raise AssertionError("truncated TLV header at %d in %r" % (off, data))
        typ, ln = struct.unpack("!BH", data[off:off + 3])
        if off + 3 + ln > len(data):
            raise AssertionError("TLV 0x%02x length %d overruns the block" % (typ, ln))
        out.append((typ, data[off + 3:off + 3 + ln]))
        off += 3 + ln
    return out


def read_proxy_header(sock, timeout=None):
    """Reads exactly one PROXY header (v1 or v2) from sock, strictly.
    Returns (raw bytes, dict) where dict has version, src, dst, tlvs."""
    head = recv_exact(sock, 12, timeout)
    if head == PP2_SIG:
        rest = recv_exact(sock, 4, timeout)
        ver_cmd, fam, ln = struct.unpack("!BBH", rest)
        body = recv_exact(sock, ln, timeout) if ln else b""
        raw = head + rest + body
        if ver_cmd != 0x21:
            raise AssertionError("v2 version/command byte 0x%02x" % ver_cmd)
        if fam == 0x11:
            if ln < 12:
                raise AssertionError("v2 TCP4 body too short: %d" % ln)
            src = (socket.inet_ntoa(body[0:4]), struct.unpack("!H", body[8:10])[0])
            dst = (socket.inet_ntoa(body[4:8]), struct.unpack("!H", body[10:12])[0])
            tl = body[12:]
        elif fam == 0x21:
            if ln < 36:
                raise AssertionError("v2 TCP6 body too short: %d" % ln)
            src = (socket.inet_ntop(socket.AF_INET6, body[0:16]),
                   struct.unpack("!H", body[32:34])[0])
            dst = (socket.inet_ntop(socket.AF_INET6, body[16:32]),
                   struct.unpack("!H", body[34:36])[0])
            tl = body[36:]
        else:
            raise AssertionError("v2 family byte 0x%02x" % fam)
        return raw, {"version": 2, "src": src, "dst": dst, "tlvs": parse_tlvs(tl),
                     "addr_block": body[:len(body) - len(tl)]}
    if not head.startswith(b"PROXY "):
        raise AssertionError("no PROXY header: %r" % head)
    raw = bytearray(head)
    while not raw.endswith(b"\r\n"):
        if len(raw) >= 107:
            raise AssertionError("v1 header longer than 107 bytes: %r" % bytes(raw))
        raw += recv_exact(sock, 1, timeout)
    parts = raw[:-2].decode("ascii").split(" ")
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise AssertionError("bad v1 header %r" % bytes(raw))
    return bytes(raw), {"version": 1, "src": (parts[2], int(parts[4])),
                        "dst": (parts[3], int(parts[5])), "tlvs": []}


class ProtoEchoServer(Server):
    """Echo server that optionally reads a PROXY header first (proxy=True,
    recorded as info['proxy_raw'] / info['proxy']) and optionally speaks
    TLS (ctx = server SSLContext; records info['sni'], 'version',
    'cipher', 'alpn').  Echoes until EOF, then closes."""

    def __init__(self, ctx=None, proxy=False, **kw):
        self.ctx = ctx
        self.proxy = proxy
        if ctx is not None:
            ctx.sni_callback = self._sni
        super().__init__(**kw)

    @staticmethod
    def _sni(sslobj, name, ctx):
        try:
            sslobj.baton_sni = name
        except AttributeError:
            pass
        return None

    def handle(self, conn, info):
        if self.proxy:
            raw, parsed = read_proxy_header(conn)
            info["proxy_raw"] = raw
            info["proxy"] = parsed
        s = conn
        if self.ctx is not None:
            s = self.ctx.wrap_socket(conn, server_side=True)
            info["sni"] = getattr(s, "baton_sni", None)
            info["version"] = s.version()
            info["cipher"] = s.cipher()[0]
            info["alpn"] = s.selected_alpn_protocol()
            with self.lock:
                info["handshake"] = True
                self.lock.notify_all()
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                s.sendall(data)
            try:
                socket.socket.shutdown(s, socket.SHUT_WR)
            except OSError:
                pass
        finally:
            if s is not conn:
                s.close()


class PortTagServer(TagServer):
    """A TagServer on a given (host, port) (e.g. one a dead server had)."""

    def __init__(self, addr, name="srv", backlog=1024):
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reclaim_port(addr)
        self.sock.bind(tuple(addr))
        self.sock.listen(backlog)
        self.addr = self.sock.getsockname()[:2]
        self.lock = threading.Condition()
        self.conns = []
        self.active = 0
        self.closing = False
        self.open_socks = set()
        self.thread = threading.Thread(target=self._accept_loop,
                                       name="srv-%s" % name, daemon=True)
        self.thread.start()


def parse_server_status(text):
    """`-s status` output -> {(backend, name): {...}} from the server lines."""
    out = {}
    for line in text.splitlines():
        if line.startswith("server "):
            kv = parse_kv(line[len("server "):])
            out[(kv.get("backend"), kv.get("name"))] = kv
    return out


def status_text(b):
    r = b.ctl("status")
    if r.returncode != 0:
        raise AssertionError("status: exit %d, stderr %r" % (r.returncode, r.stderr))
    return r.stdout


def wait_status(b, pred, timeout=T_WAIT, what="status"):
    """Polls `-s status` until pred(parsed status, server dict) is true;
    returns (parsed status, servers).  Figures come from the worker about
    once a second, hence polling."""
    last = [None]

    def check():
        text = status_text(b)
        last[0] = text
        st, sv = parse_status_text(text), parse_server_status(text)
        return (st, sv) if pred(st, sv) else None
    try:
        return wait_until(check, timeout, interval=0.2, what=what)
    except AssertionError as e:
        raise AssertionError("%s; last status:\n%s" % (e, last[0]))


# --------------------------------------------------------------------------
# live connection handoff (issue 9; added for test_handoff_streams and
# bench/handoff.sh)

# `[global] handoff = live | drain`: tests run the mode BATON_TEST_HANDOFF
# names, live (the default) unless it says drain.
HANDOFF_MODE = os.environ.get("BATON_TEST_HANDOFF", "") or "live"
HANDOFF_RE = (r"^worker generation \d+: handoff: (?P<moved>\d+) connection\(s\) moved to "
              r"generation (?P<gen>\d+), (?P<left>\d+) left to drain, in (?P<ms>\d+) ms, "
              r"CPU (?P<cpu>\d+) ms$")


def handoff_global(mode=None):
    """[global] entries selecting the handoff mode (`mode`, default the one
    BATON_TEST_HANDOFF names)."""
    if HANDOFF_MODE not in ("live", "drain"):
        raise AssertionError("BATON_TEST_HANDOFF=%r: expected live or drain" % HANDOFF_MODE)
    return {"handoff": mode or HANDOFF_MODE}


# --------------------------------------------------------------------------
# Windows mode: test certificates

class WinPKITestCase(BatonTestCase):
    """Test certificates for the Windows tests, made once per class: CA
    'Win CA' (cls.ca: its file), 'alpha' (EC, alpha.win.test) and 'beta'
    (RSA, beta.win.test and *.beta.win.test)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki_dir = tempfile.mkdtemp(prefix="baton-win-pki-")
        cls.pki = TestPKI(cls.pki_dir)
        ca = cls.pki.ca("Win CA")
        cls.pki.leaf("alpha", ["alpha.win.test"], ca)
        cls.pki.leaf("beta", ["beta.win.test", "*.beta.win.test"], ca, kind="rsa")
        cls.ca = ca["cert"]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pki_dir, ignore_errors=True)
        super().tearDownClass()
