"""baton.exe under Wine (Windows mode of the harness): proxying with
sha256-checked transfers both ways, and a bad configuration refused with
FILE:LINE.  Run by tools/win-test.sh (tests/CMakeLists.txt, WIN32 part)."""

import os
import unittest

from baton_harness import (BatonTestCase, WINDOWS, config_error_re, connect, echo_duplex,
                           host_path, pseudo_random, recv_until_eof,
                           run_baton, send_and_half_close, sha256_hex)


@unittest.skipUnless(WINDOWS, "Windows mode only (BATON_WINDOWS_EXE)")
class WinProxyTest(BatonTestCase):

    def test_transfers_both_ways(self):
        size = 4 << 20
        sink = self.sink_server()
        source = self.source_server(size, seed=b"win-down")
        echo = self.echo_server()
        b = self.start_baton(self.make_config([sink], glob={"splice": "off"}))
        up_addr = b.listener_addr("web")
        data = pseudo_random(size, b"win-up")
        # client -> server: the sink answers with the hash of what it got
        got = send_and_half_close(up_addr, data)
        self.assertEqual(got[:64].decode(), sha256_hex(data))
        b.stop()

        b2 = self.start_baton(self.make_config([source]), name="down")
        s = connect(b2.listener_addr("web"))
        try:
            n, h = recv_until_eof(s, hash_only=True)
        finally:
            s.close()
        self.assertEqual((n, h), (size, sha256_hex(source.data)))
        b2.stop()

        b3 = self.start_baton(self.make_config([echo]), name="echo")
        self.assertEqual(echo_duplex(b3.listener_addr("web"), data), (size, sha256_hex(data)))
        st = b3.status()
        self.assertEqual([w["state"] for w in st["worker"]], ["active"], st)


@unittest.skipUnless(WINDOWS, "Windows mode only (BATON_WINDOWS_EXE)")
class WinBadConfigTest(BatonTestCase):

    def test_check_reports_file_line(self):
        path = os.path.join(self.tmp, "bad.ini")
        with open(path, "w") as f:
            f.write("[global]\nthreads = 1\n\n[listener web]\nbind = 127.0.0.1:0\n"
                    "backend = nowhere\nbogus_key = 1\n")
        r = run_baton(["-t", "-c", path])
        self.assertEqual(r.returncode, 1, (r.stdout, r.stderr))
        self.assertRegex(r.stderr, config_error_re(path, 7, "bogus_key"))
        self.assertRegex(r.stderr, r":6: .*nowhere")

    def test_file_named_as_given(self):
        path = os.path.join(self.tmp, "bad.ini")
        with open(path, "w") as f:
            f.write("[global]\nthreads = 0\n")
        r = run_baton(["-t", "-c", path])
        self.assertEqual(r.returncode, 1, (r.stdout, r.stderr))
        self.assertRegex(r.stderr, config_error_re(path, 2, "threads"))

    def test_bad_config_does_not_start(self):
        path = os.path.join(self.tmp, "bad2.ini")
        with open(path, "w") as f:
            f.write("[global]\nthreads = many\n")
        r = run_baton(["-c", path])
        self.assertEqual(r.returncode, 1, (r.stdout, r.stderr))
        self.assertRegex(r.stderr, config_error_re(path, 2, "threads"))

    def test_good_config_checks(self):
        echo = self.echo_server()
        path = os.path.join(self.tmp, "good.ini")
        with open(path, "w") as f:
            f.write("[global]\nthreads = 1\n[listener web]\nbind = 127.0.0.1:0\n"
                    "backend = app\n[backend app]\nserver = %s\n" % echo.server_line())
        r = run_baton(["-t", "-c", path])
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "configuration OK"), r.stderr)


if __name__ == "__main__":
    unittest.main()
