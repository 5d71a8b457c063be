"""Command-line interface: -v, -h, -t, unknown options, missing files,
-s without a running master, what is at the control path."""

import os
import re
import socket
import unittest

from baton_harness import (BatonTestCase, PKITestCase, open_to_others, other_user, run_as,
                           run_baton, BATON_SOURCE_DIR)

GOOD = """\
[global]
threads = 1
control = {control}
log_level = info
access_log = stderr
max_connections = 1000
drain_timeout = 30s
buffer_size = 16k

[listener web]
bind = 127.0.0.1:0
backend = app
idle_timeout = 5m
max_connections = 0

[backend app]
server = a 127.0.0.1:9000 weight=1
server = b 127.0.0.1:9001 weight=3
balance = roundrobin
connect_timeout = 3s
retries = 2
"""

# (name, text, acceptable line numbers of the first reported problem)
BAD = [
    ("unknown_key", """\
[global]
threads = 1
frobnicate = yes

[listener web]
bind = 127.0.0.1:0
backend = app

[backend app]
server = a 127.0.0.1:9000
""", {3}),
    ("bad_duration", """\
[global]
threads = 1
drain_timeout = 5x

[listener web]
bind = 127.0.0.1:0
backend = app

[backend app]
server = a 127.0.0.1:9000
""", {3}),
    ("missing_backend", """\
[global]
threads = 1

[listener web]
bind = 127.0.0.1:0
backend = nope

[backend app]
server = a 127.0.0.1:9000
""", {4, 6}),
    ("bad_address", """\
[global]
threads = 1

[listener web]
bind = 127.0.0.1:99999
backend = app

[backend app]
server = a 127.0.0.1:9000
""", {5}),
    ("bad_balance", """\
[global]
threads = 1

[listener web]
bind = 127.0.0.1:0
backend = app

[backend app]
server = a 127.0.0.1:9000
balance = fastest
""", {10}),
    ("bad_threads", """\
[global]
threads = 65

[listener web]
bind = 127.0.0.1:0
backend = app

[backend app]
server = a 127.0.0.1:9000
""", {2}),
    ("bad_log_level", """\
[global]
log_level = verbose

[listener web]
bind = 127.0.0.1:0
backend = app

[backend app]
server = a 127.0.0.1:9000
""", {2}),
    ("server_bad_weight", """\
[global]
threads = 1

[listener web]
bind = 127.0.0.1:0
backend = app

[backend app]
server = a 127.0.0.1:9000 weight=0
""", {9}),
    ("unknown_section", """\
[global]
threads = 1

[frontend web]
bind = 127.0.0.1:0

[listener web]
bind = 127.0.0.1:0
backend = app

[backend app]
server = a 127.0.0.1:9000
""", {4}),
]


class CliTest(BatonTestCase):

    def write(self, name, text):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def good_config(self):
        return self.write("good.ini", GOOD.format(control=self.control_path()))

    def test_version(self):
        r = run_baton(["-v"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^baton \d+\.\d+\.\d+\S*\s*$")

    def test_help(self):
        r = run_baton(["-h"])
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout + r.stderr
        self.assertRegex(out.lower(), r"usage")
        self.assertIn("-c", out)
        self.assertIn("-t", out)
        self.assertIn("-s", out)

    def test_unknown_option(self):
        r = run_baton(["--no-such-option"])
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr.lower(), r"usage")
        r = run_baton(["-Z"])
        self.assertNotEqual(r.returncode, 0)
        self.assertNotEqual(r.stderr.strip(), "")

    def test_service_commands_are_refused_here(self):
        """-k and --service (Windows services) exit 2 with the way to run
        baton as a service here, and start nothing."""
        p = self.good_config()
        for args in (["-k", "install", "-c", p], ["-k", "install", "-n", "edge", "-c", p],
                     ["-k", "restart"], ["-k", "stop", "-n", "edge"]):
            with self.subTest(args=args):
                r = run_baton(args)
                self.assertEqual(r.returncode, 2, "stdout=%r stderr=%r" % (r.stdout, r.stderr))
                self.assertRegex(r.stderr, r"^baton: -k %s: Windows services only; .*systemd"
                                 % args[1])
        r = run_baton(["--service", "-n", "edge", "-c", p])
        self.assertEqual(r.returncode, 2, "stdout=%r stderr=%r" % (r.stdout, r.stderr))
        self.assertRegex(r.stderr, r"^baton: --service: Windows services only")
        self.assertFalse(os.path.exists(self.control_path()), "--service started a master")

    def test_service_options_misused(self):
        """A wrong -k word, -n without -k, or -k with -s are usage errors (2)."""
        p = self.good_config()
        cases = [(["-k", "reboot"], r"unknown command 'reboot' for -k \(expected install"),
                 (["-n", "edge", "-c", p], r"-n names a Windows service"),
                 (["-k", "start", "-s", "status", "-c", p], r"-k and --service go with"),
                 (["-k", "install", "-n", "", "-c", p], r"a service name is 1 to 255"),
                 (["-k", "install", "-n", "a/b", "-c", p], r"without / or \\")]
        for args, msg in cases:
            with self.subTest(args=args):
                r = run_baton(args)
                self.assertEqual(r.returncode, 2, "stdout=%r stderr=%r" % (r.stdout, r.stderr))
                self.assertRegex(r.stderr, msg)
        self.assertFalse(os.path.exists(self.control_path()))

    def test_check_good(self):
        p = self.good_config()
        r = run_baton(["-t", "-c", p])
        self.assertEqual(r.returncode, 0, "stderr: %s" % r.stderr)
        self.assertIn("configuration OK", r.stdout)

    def test_check_sample_good_files(self):
        """Every tests/conf/good/*.ini (if the directory exists) passes -t."""
        d = os.path.join(BATON_SOURCE_DIR, "tests", "conf", "good")
        if not os.path.isdir(d):
            self.skipTest("no tests/conf/good")
        files = sorted(f for f in os.listdir(d) if f.endswith(".ini"))
        if not files:
            self.skipTest("no sample files")
        for f in files:
            with self.subTest(file=f):
                r = run_baton(["-t", "-c", os.path.join(d, f)])
                self.assertEqual(r.returncode, 0, "stderr: %s" % r.stderr)
                self.assertIn("configuration OK", r.stdout)

    def test_check_bad(self):
        for name, text, lines in BAD:
            with self.subTest(case=name):
                p = self.write(name + ".ini", text)
                r = run_baton(["-t", "-c", p])
                self.assertEqual(r.returncode, 1,
                                 "stdout=%r stderr=%r" % (r.stdout, r.stderr))
                self.assertNotIn("configuration OK", r.stdout)
                m = re.search(re.escape(p) + r":(\d+): \S", r.stderr)
                self.assertIsNotNone(m, "no '%s:LINE: message' in stderr %r" %
                                     (p, r.stderr))
                self.assertIn(int(m.group(1)), lines,
                              "wrong line in %r (expected one of %s)" %
                              (r.stderr, sorted(lines)))

    def test_check_sample_bad_files(self):
        """Every tests/conf/bad/*.ini (if the directory exists) fails -t with
        FILE:LINE: on stderr."""
        d = os.path.join(BATON_SOURCE_DIR, "tests", "conf", "bad")
        if not os.path.isdir(d):
            self.skipTest("no tests/conf/bad")
        files = sorted(f for f in os.listdir(d) if f.endswith(".ini"))
        if not files:
            self.skipTest("no sample files")
        for f in files:
            p = os.path.join(d, f)
            with self.subTest(file=f):
                r = run_baton(["-t", "-c", p])
                self.assertEqual(r.returncode, 1, "stdout=%r stderr=%r" %
                                 (r.stdout, r.stderr))
                self.assertRegex(r.stderr, re.escape(p) + r":\d+: \S")

    def test_bad_config_does_not_start(self):
        """Running (not -t) with a bad file exits 1 with FILE:LINE:."""
        name, text, lines = BAD[0]
        p = self.write("run_" + name + ".ini", text)
        r = run_baton(["-c", p])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, re.escape(p) + r":\d+: \S")

    def test_missing_config(self):
        p = os.path.join(self.tmp, "does-not-exist", "baton.ini")
        r = run_baton(["-t", "-c", p])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(p, r.stderr)
        self.assertNotIn("configuration OK", r.stdout)
        r = run_baton(["-c", p])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(p, r.stderr)

    def test_status_without_master(self):
        p = self.good_config()
        r = run_baton(["-s", "status", "-c", p])
        self.assertEqual(r.returncode, 1, "stdout=%r stderr=%r" % (r.stdout, r.stderr))
        self.assertIn(self.control_path(), r.stderr)

    def test_stop_without_master(self):
        p = self.good_config()
        for cmd in ("stop", "quit", "reload"):
            with self.subTest(cmd=cmd):
                r = run_baton(["-s", cmd, "-c", p])
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(self.control_path(), r.stderr)

    def test_control_path_that_is_not_a_socket(self):
        """Something other than a socket at the control path is refused at
        -t and at start, and left as it was."""
        target = self.write("target.txt", "precious\n")
        for kind, what in (("file", "regular file"), ("dir", "directory"),
                           ("symlink", "symbolic link")):
            with self.subTest(kind=kind):
                path = os.path.join(self.tmp, kind + ".sock")
                if kind == "file":
                    self.write(kind + ".sock", "precious\n")
                elif kind == "dir":
                    os.mkdir(path)
                else:
                    os.symlink(target, path)
                p = self.write(kind + ".ini", GOOD.format(control=path))
                want = ("%s:3: control: control socket path %s exists and is a %s, not a socket; "
                        "baton only replaces a stale control socket" % (p, path, what))
                for args in (["-t", "-c", p], ["-c", p]):
                    r = run_baton(args)
                    self.assertEqual(r.returncode, 1, "%s: stdout=%r stderr=%r"
                                     % (args, r.stdout, r.stderr))
                    self.assertIn(want, r.stderr)
                    self.assertNotIn("configuration OK", r.stdout)
                if kind == "file":
                    with open(path) as f:
                        self.assertEqual(f.read(), "precious\n")
                elif kind == "dir":
                    self.assertTrue(os.path.isdir(path))
                else:
                    self.assertEqual(os.readlink(path), target)
                with open(target) as f:
                    self.assertEqual(f.read(), "precious\n")

    def test_live_socket_at_the_control_path_is_kept(self):
        """A socket someone listens on is not taken over (nor removed); one
        nobody listens on any more is stale and replaced."""
        path = self.control_path()
        live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(live.close)
        live.bind(path)
        live.listen(1)
        p = self.write("live.ini", GOOD.format(control=path))
        r = run_baton(["-c", p])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("another baton master is running on control socket %s (pid %d, uid %d "
                      "answer there)" % (path, os.getpid(), os.geteuid()), r.stderr)
        self.assertTrue(os.path.exists(path))
        live.close()      # the file stays: a stale socket now
        self.assertTrue(os.path.exists(path))
        b = self.start_baton(self.make_config(["a 127.0.0.1:9"], glob={"control": path}))
        r = b.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_check_warns_about_a_world_writable_directory(self):
        """Another user could create the control socket's name first: -t
        says so (and still passes); a private directory draws no warning."""
        shared = os.path.join(self.tmp, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        p = self.write("shared.ini", GOOD.format(control=os.path.join(shared, "baton.sock")))
        r = run_baton(["-t", "-c", p])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)
        self.assertIn("%s:3: warning: control socket %s/baton.sock is in %s, a directory every "
                      "user can write (sticky): another user can create that name first"
                      % (p, shared, shared), r.stderr)
        os.chmod(shared, 0o755)
        r = run_baton(["-t", "-c", p])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")

    def test_check_by_a_user_who_cannot_see_the_control_path(self):
        """-t run by someone who may not look into the socket's directory
        (as /run/baton is to most users) still checks the file."""
        user = other_user()
        exe = open_to_others(self)
        private = os.path.join(self.tmp, "private")
        os.mkdir(private, 0o700)
        p = self.write("private.ini", GOOD.format(control=os.path.join(private, "baton.sock")))
        r = run_as(user, [exe, "-t", "-c", p])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)


TLS_CHECK = """\
[global]
threads = 1
control = {control}
{glob}
[listener web]
bind = 127.0.0.1:0
backend = app
tls = on
tls_cert = {cert}
tls_key = {key}
{listener}
[backend app]
server = a 127.0.0.1:9000
"""

NON_AEAD = ("warning: listener web: tls_ciphers allows non-AEAD suites (%s); connections "
            "using them cannot move at an upgrade and drain instead\n")


class CipherCheckTest(PKITestCase):
    """-t warns when a live-handoff listener's TLS 1.2 ciphers allow a
    suite that cannot move at an upgrade; a warning, not an error."""

    def check(self, name, glob="", listener=""):
        cert = self.pki.certs["www-rsa"]
        text = TLS_CHECK.format(control=self.control_path(), glob=glob, listener=listener,
                                cert=cert["cert"], key=cert["key"])
        p = os.path.join(self.tmp, name + ".ini")
        with open(p, "w") as f:
            f.write(text)
        r = run_baton(["-t", "-c", p])
        self.assertEqual(r.returncode, 0, "stdout=%r stderr=%r" % (r.stdout, r.stderr))
        self.assertEqual(r.stdout, "configuration OK\n")
        return p, r.stderr

    def test_non_aead_suites_warn(self):
        # line 11: the tls_ciphers key; the first suite OpenSSL would
        # offer, "..." when there are more
        p, err = self.check("one", listener="tls_ciphers = ECDHE-RSA-AES128-GCM-SHA256:"
                            "ECDHE-RSA-AES128-SHA")
        self.assertEqual(err, "%s:11: " % p + NON_AEAD % "ECDHE-RSA-AES128-SHA")
        p, err = self.check("more", listener="tls_min_version = 1.2\n"
                            "tls_ciphers = ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA")
        self.assertEqual(err, "%s:12: " % p + NON_AEAD % "ECDHE-RSA-AES256-SHA...")
        # OpenSSL's own default list (CBC suites included)
        p, err = self.check("default", glob="handoff = live\n",
                            listener="tls_ciphers = DEFAULT")
        self.assertRegex(err, r"^%s:12: warning: listener web: tls_ciphers allows non-AEAD "
                         r"suites \([A-Z0-9-]+-(SHA|SHA256|SHA384)\.\.\.\); " % re.escape(p))

    def test_no_warning_when_every_suite_can_move(self):
        cases = [("baton_default", "", ""),
                 ("aead_list", "", "tls_ciphers = ECDHE+AESGCM:ECDHE+CHACHA20"),
                 ("drain", "handoff = drain\n", "tls_ciphers = DEFAULT"),
                 ("tls13_only", "", "tls_min_version = 1.3\ntls_ciphers = DEFAULT")]
        for name, glob, listener in cases:
            with self.subTest(case=name):
                p, err = self.check(name, glob=glob, listener=listener)
                self.assertEqual(err, "")

    def test_tls_keylog_file_that_cannot_be_opened(self):
        """A key log path that cannot be appended to is a FILE:LINE error at
        -t and at start; a FIFO is refused without waiting for a reader."""
        cert = self.pki.certs["www-rsa"]
        fifo = os.path.join(self.tmp, "keys.fifo")
        os.mkfifo(fifo)
        cases = [(os.path.join(self.tmp, "nodir", "keys.log"),
                  "cannot open for appending: No such file or directory"),
                 (self.tmp, "cannot open for appending: Is a directory"),
                 (fifo, "not a regular file (expected a file to append TLS secrets to)")]
        for i, (path, why) in enumerate(cases):
            with self.subTest(path=path):
                text = TLS_CHECK.format(control=self.control_path(), listener="",
                                        glob="tls_keylog_file = %s\n" % path,
                                        cert=cert["cert"], key=cert["key"])
                p = os.path.join(self.tmp, "keylog%d.ini" % i)
                with open(p, "w") as f:
                    f.write(text)
                for args in (["-t", "-c", p], ["-c", p]):
                    r = run_baton(args)
                    self.assertEqual(r.returncode, 1, "%s: stdout=%r stderr=%r"
                                     % (args, r.stdout, r.stderr))
                    self.assertIn("%s:4: tls_keylog_file %s: %s\n" % (p, path, why), r.stderr)
                    self.assertNotIn("configuration OK", r.stdout)
                    self.assertFalse(os.path.exists(self.control_path()))


if __name__ == "__main__":
    unittest.main()
