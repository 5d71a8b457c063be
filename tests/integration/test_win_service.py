"""baton.exe as a Windows service under Wine's service manager:
-k install, start (RUNNING: the master serves -s status), restart (control
128: the master reloads, a new generation appears), stop, uninstall."""

import os
import unittest

from baton_harness import (BatonTestCase, WINDOWS, host_path, proc_files, render_config,
                           run_baton, wait_until, wine_cmdline)


def service_processes(name):
    """Linux PIDs of the wine processes running service name's master
    (`baton.exe --service -n NAME -c FILE`, its command line in argv)."""
    def master(cmd):
        return "--service" in cmd and "-n" in cmd and cmd[cmd.index("-n") + 1:][:1] == [name]
    return {p for p, _ in proc_files("cmdline") if master(wine_cmdline(p))}


@unittest.skipUnless(WINDOWS, "Windows mode only (BATON_WINDOWS_EXE)")
class WinServiceTest(BatonTestCase):

    def k(self, *args, want=0):
        r = run_baton(["-k"] + list(args) + ["-n", self.name], timeout=90)
        self.assertEqual(r.returncode, want, "-k %s: %r %r" % (" ".join(args), r.stdout, r.stderr))
        return r

    def status_generations(self):
        r = run_baton(["-s", "status", "-c", self.config])
        if r.returncode != 0:
            return None
        return [int(w.split("generation=")[1].split()[0])
                for w in r.stdout.splitlines() if w.startswith("worker ")]

    def test_install_start_restart_stop_uninstall(self):
        self.name = "baton-it-%d" % os.getpid()
        echo = self.echo_server()
        self.config = os.path.join(self.tmp, "svc.ini")
        cfg = self.make_config([echo])
        cfg["global"]["access_log"] = host_path(os.path.join(self.tmp, "access.log"))
        with open(self.config, "w") as f:
            f.write(render_config(cfg))

        self.k("install", "-c", self.config)
        self.addCleanup(run_baton, ["-k", "uninstall", "-n", self.name], timeout=90)
        self.k("start")
        self.addCleanup(run_baton, ["-k", "stop", "-n", self.name], timeout=90)
        # RUNNING once the first worker serves: the control pipe answers
        self.assertEqual(wait_until(self.status_generations, 30, interval=0.2,
                                    what="status of the service's master"), [1])
        masters = service_processes(self.name)
        self.assertEqual(len(masters), 1, masters)

        # control 128 through ControlService: the master reloads
        self.k("restart")
        wait_until(lambda: self.status_generations() == [2], 30, interval=0.2,
                   what="generation 2 alone after -k restart")

        self.k("stop")
        wait_until(lambda: not service_processes(self.name), 20, interval=0.1,
                   what="the service's master gone after -k stop")
        self.assertIsNone(self.status_generations())
        self.k("uninstall")
        # gone from the service manager: starting it is refused
        self.k("start", want=1)


if __name__ == "__main__":
    unittest.main()
