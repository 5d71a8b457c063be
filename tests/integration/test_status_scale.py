"""Status and health past one message's worth of entries: with 1,100
servers and 300 listeners, `-s status` shows the health of the last server
and the figures of the last listener, and the health of server #1,100 is
carried over a reload (it stays DOWN without a check of the new generation
taking it down)."""

import re
import socket
import unittest

from baton_harness import (BatonTestCase, closed_port, connect, pid_alive, recv_exact,
                           recv_until_eof, render_config, wait_status, wait_until)

NSERVERS = 1100
NLISTENERS = 300


def server_name(i):
    return "s%04d" % i


def listener_name(i):
    return "l%03d" % i


class StatusScaleTest(BatonTestCase):

    def config(self, live, dead_addr, fall):
        servers = ["%s %s" % (server_name(i), live.addr_text) for i in range(1, NSERVERS)]
        servers.append("%s %s:%d" % (server_name(NSERVERS), dead_addr[0], dead_addr[1]))
        cfg = {"global": {"threads": 1, "control": self.control_path(), "log_level": "info",
                          "access_log": "off", "drain_timeout": "2s"}}
        for i in range(1, NLISTENERS + 1):
            cfg["listener %s" % listener_name(i)] = {"bind": "127.0.0.1:0", "backend": "app"}
        # One check round at start (the first runs at once), then none for an
        # hour: whatever is DOWN after a reload came from the previous
        # generation when check_fall is 2.
        cfg["backend app"] = {"server": servers, "check": "tcp", "check_interval": "1h",
                              "check_fall": fall, "check_timeout": "5s"}
        return cfg

    def echo_through(self, addr, msg):
        s = connect(addr)
        try:
            s.sendall(msg)
            self.assertEqual(recv_exact(s, len(msg)), msg)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_until_eof(s), b"")
        finally:
            s.close()

    def last_listener(self, st):
        ls = [l for l in st["listener"] if l.get("name") == listener_name(NLISTENERS)]
        self.assertEqual(len(ls), 1, st["listener"][-3:])
        return ls[0]

    def test_status_and_health_past_the_old_caps(self):
        live = self.echo_server("live")
        dead_addr = closed_port()
        cfg = self.config(live, dead_addr, fall=1)
        b = self.start_baton(cfg)
        last = b.listener_addr(listener_name(NLISTENERS))
        last_name = server_name(NSERVERS)
        down_rx = r"^backend app: server %s \(%s\) is DOWN: (.+)$" % (
            last_name, re.escape("%s:%d" % dead_addr))
        m = b.wait_for_log(down_rx)
        self.assertEqual(m.group(1), "1 consecutive failures")
        self.echo_through(last, b"through the last listener")

        def first_gen_ready(st, sv):
            return (len(sv) == NSERVERS and sv.get(("app", last_name), {}).get("state") == "down"
                    and self.last_listener(st).get("total") == "1")
        st, sv = wait_status(b, first_gen_ready, what="the last server down and the last "
                             "listener's connection in status")
        self.assertEqual(len(st["listener"]), NLISTENERS)
        unknown = [k for k, v in sv.items() if v.get("state") == "unknown"]
        self.assertEqual(unknown, [], "servers without health in status")
        self.assertEqual(sv[("app", server_name(NSERVERS - 1))].get("state"), "up")

        # Reload into check_fall = 2: the new generation's single check round
        # cannot take the server down by itself within the hour.
        w1, g1 = b.current_worker()
        with open(b.config_path, "w") as f:
            f.write(render_config(self.config(live, dead_addr, fall=2)))
        mark = b.mark()
        r = b.ctl("reload", timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        b.wait_for_log(r"^worker \d+ generation %d ready" % (g1 + 1), start=mark)
        m = b.wait_for_log(down_rx, start=mark)
        self.assertEqual(m.group(1), "as the previous generation found it")
        wait_until(lambda: not pid_alive(w1), 20, interval=0.05,
                   what="old worker %d to exit" % w1)
        self.echo_through(last, b"again, through the new generation")

        def second_gen(st, sv):
            return (len(st["worker"]) == 1 and st["worker"][0].get("generation") == str(g1 + 1)
                    and sv.get(("app", last_name), {}).get("state") == "down"
                    and self.last_listener(st).get("total") == "1")
        st, sv = wait_status(b, second_gen, what="the new generation's status")
        unknown = [k for k, v in sv.items() if v.get("state") == "unknown"]
        self.assertEqual(unknown, [], "servers without health in status")
        self.assertEqual(len(b.find_log(down_rx, mark)), 1,
                         "the new generation took the server down again by itself")


if __name__ == "__main__":
    unittest.main()
