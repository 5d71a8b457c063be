"""baton.exe under Wine, driven from Linux over loopback (docs/windows.md,
"Running baton.exe under Wine"): the first end-to-end test of the Windows
build, in console mode.

Run by ctest in the Windows build (tests/CMakeLists.txt), inside the Wine
session tools/win-test.sh starts (WINEPREFIX, a persistent wineserver): a
wine process started here never holds ctest's pipes, because every one gets
/dev/null and files for its standard handles.

Environment: BATON_EXE (the path of baton.exe), WINEPREFIX.

Its Wine helpers are its own (WineBaton, run_exe): the Windows mode of
baton_harness.py and the broader test_win_*.py suite are written beside it;
the portable ones come from baton_harness.
"""

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import unittest

from baton_harness import EchoServer, echo_duplex, pseudo_random, recv_exact, wait_until

EXE = os.environ.get("BATON_EXE", "")
WINE = shutil.which("wine") or ""
SCALE = float(os.environ.get("BATON_TEST_TIMEOUT_SCALE", "1") or "1")
T_START = 60.0 * SCALE   # a Wine process start costs 0.1-0.5 s, a worker two
T_WAIT = 30.0 * SCALE
MIB = 1 << 20


def win_path(path):
    """A Linux path as Wine's Z: drive names it."""
    return "Z:" + os.path.abspath(path).replace("/", "\\")


class WineBaton(object):
    """`wine baton.exe -c FILE` in console mode, its stderr in a file."""

    def __init__(self, tmpdir, config):
        self.tmpdir = tmpdir
        self.ini = os.path.join(tmpdir, "baton.ini")
        with open(self.ini, "w") as f:
            f.write(config)
        self.err_path = os.path.join(tmpdir, "baton.stderr.log")
        self.proc = None

    def start(self):
        with open(self.err_path, "wb") as err, \
                open(os.path.join(self.tmpdir, "baton.stdout.log"), "wb") as out:
            self.proc = subprocess.Popen([WINE, EXE, "-c", win_path(self.ini)],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        self.wait_log(r"worker (\d+) generation 1 ready", T_START)
        return self

    def log(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, regex, timeout=T_WAIT, count=1):
        def found():
            if self.proc.poll() is not None:
                raise AssertionError("baton.exe exited (%s) while waiting for %r:\n%s"
                                     % (self.proc.returncode, regex, self.log()))
            ms = list(re.finditer(regex, self.log(), re.M))
            return ms[count - 1] if len(ms) >= count else None
        return wait_until(found, timeout, what="log line %r" % regex)

    def port(self, listener):
        m = self.wait_log(r"listener %s bound to 127\.0\.0\.1:(\d+)" % listener)
        return int(m.group(1))

    def cli(self, *args):
        """`wine baton.exe ARGS -c FILE` to its end: (rc, stdout, stderr)."""
        return run_exe(self.tmpdir, list(args) + ["-c", win_path(self.ini)])

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(T_WAIT)


def run_exe(tmpdir, args):
    """Runs baton.exe with files for its output (never a pipe Wine could
    keep open); (rc, stdout, stderr)."""
    out_path = os.path.join(tmpdir, "cli.out")
    err_path = os.path.join(tmpdir, "cli.err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        rc = subprocess.call([WINE, EXE] + args, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=err, timeout=T_WAIT)
    with open(out_path, "rb") as out, open(err_path, "rb") as err:
        return rc, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")


@unittest.skipUnless(EXE and WINE and os.environ.get("WINEPREFIX"),
                     "needs BATON_EXE, wine and the Wine session of tools/win-test.sh")
class WineSmoke(unittest.TestCase):
    def setUp(self):
        self.tmpdir = tempfile.mkdtemp(prefix="baton-win-smoke-")
        self.addCleanup(shutil.rmtree, self.tmpdir, True)
        self.echo = EchoServer()
        self.addCleanup(self.echo.close)

    def start(self):
        config = ("[global]\nlog_level = info\ndrain_timeout = 30s\n\n"
                  "[listener web]\nbind = 127.0.0.1:0\nbackend = app\n\n"
                  "[backend app]\nserver = %s\n" % self.echo.server_line())
        b = WineBaton(self.tmpdir, config).start()
        self.addCleanup(b.stop)
        return b

    def test_proxy_status_reload_and_ctrl_c(self):
        b = self.start()
        port = b.port("web")

        # 1 MiB each way on four connections at once, intact by hash.
        results = {}

        def one(i):
            data = pseudo_random(MIB, b"conn%d" % i)
            results[i] = (echo_duplex(("127.0.0.1", port), data, T_WAIT),
                          (MIB, hashlib.sha256(data).hexdigest()))
        threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(T_WAIT * 2)
        self.assertEqual(sorted(results), [0, 1, 2, 3])
        for i, (got, want) in results.items():
            self.assertEqual(got, want, "connection %d" % i)

        # status through the control pipe.
        rc, out, err = b.cli("-s", "status")
        self.assertEqual(rc, 0, err)
        gen1 = int(re.search(r"^worker generation=1 pid=(\d+) state=active", out, re.M).group(1))
        self.assertRegex(out, r"(?m)^listener name=web address=127\.0\.0\.1:%d " % port)
        self.assertRegex(out, r"(?m)^server backend=app name=echo .*state=up")

        # A connection opened before the reload keeps working after it.
        early = socket.create_connection(("127.0.0.1", port), timeout=T_WAIT)
        self.addCleanup(early.close)
        before = pseudo_random(4096, b"before")
        early.sendall(before)
        self.assertEqual(recv_exact(early, len(before)), before)

        rc, out, err = b.cli("-s", "reload")
        self.assertEqual(rc, 0, err)
        gen2 = int(re.search(r"reloaded: generation 2 worker pid (\d+)", out).group(1))
        self.assertNotEqual(gen1, gen2)
        # Live handoff: the connection moves to the new worker (its sockets
        # duplicated for that worker's pid) and the old worker exits.
        b.wait_log(r"baton\[%d\] info: worker generation 1: handoff: 1 connection\(s\) moved "
                   r"to generation 2, 0 left to drain" % gen1)
        b.wait_log(r"worker %d generation 1 exited with status 0" % gen1)

        after = pseudo_random(MIB, b"after")
        early.sendall(after)
        self.assertEqual(recv_exact(early, len(after)), after)
        early.shutdown(socket.SHUT_WR)
        self.assertEqual(early.recv(1), b"")

        # A new connection is served by the new generation's worker.
        data = pseudo_random(MIB, b"new")
        self.assertEqual(echo_duplex(("127.0.0.1", port), data, T_WAIT),
                         (MIB, hashlib.sha256(data).hexdigest()))
        b.wait_log(r"baton\[%d\] info: access .*bytes_in=%d bytes_out=%d" % (gen2, MIB, MIB))
        rc, out, err = b.cli("-s", "status")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^worker generation=2 pid=%d state=active" % gen2)

        # Ctrl-C (SIGINT to the wine process: CTRL_C_EVENT) stops it, exit 0.
        b.proc.send_signal(signal.SIGINT)
        rc = b.proc.wait(T_WAIT)
        self.assertEqual(rc, 0, b.log())
        self.assertRegex(b.log(), r"(?m)worker %d generation 2 exited with status 0" % gen2)
        self.assertRegex(b.log(), r"(?m)master exiting\r?$")

    def test_bad_configuration(self):
        bad = os.path.join(self.tmpdir, "bad.ini")
        with open(bad, "w") as f:
            f.write("[global]\nlog_level = info\n\n[listener web]\nbind = 127.0.0.1:99999\n"
                    "backend = app\n\n[backend app]\nserver = %s\n" % self.echo.server_line())
        rc, out, err = run_exe(self.tmpdir, ["-t", "-c", win_path(bad)])
        self.assertEqual(rc, 1, out + err)
        # FILE:LINE: message, FILE as given (a terminal gets the path as
        # written; control bytes alone are escaped).
        self.assertRegex(err, r"(?m)^%s:5: bind in \[listener web\]: " % re.escape(win_path(bad)))
        self.assertEqual(self.echo.total, 0)


if __name__ == "__main__":
    unittest.main()
