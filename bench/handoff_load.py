#!/usr/bin/env python3
"""Live connections for bench/handoff.sh (Python 3 standard library; the
streams of tests/integration/streams.py).

  handoff_load.py server --port-file F
      the echo backend (one thread, any number of connections); writes its
      port to F and runs until SIGTERM.
  handoff_load.py client --port P --conns N --busy B --base ID
                         --ready-file F --stop-file S --result-file R
      opens N connections to 127.0.0.1:P, B of them echo streams that keep
      sending (every echoed byte checked against what was sent), the rest
      idle (one echoed message at the end); writes "ready" to F once all are
      connected and every busy one has had an echo back, then runs until S
      exists (at most --max-seconds), stops every stream, checks it and
      writes a JSON summary to R.  Exit status 0 if every connection was
      intact, 1 if not, 2 on a set-up failure.
"""
import argparse
import json
import os
import resource
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from streams import Params, StreamServer, StreamSet  # noqa: E402


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def params(a):
    return Params(echo_interval=a.interval, echo_max=a.msg)


def run_server(a):
    srv = StreamServer(params=params(a), name="handoff-srv")
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.addr[1])
    os.replace(tmp, a.port_file)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    srv.close()
    return 0


def run_client(a):
    streams = StreamSet(plain=("127.0.0.1", a.port), params=params(a), id_base=a.base)
    streams.start("echo", a.busy)
    streams.start("idle", a.conns - a.busy)
    deadline = time.monotonic() + a.setup_seconds
    while True:
        p = streams.progress()
        conn = sum(v["connected"] for v in p.values())
        failed = sum(v["failed"] for v in p.values())
        busy_ok = a.busy == 0 or p.get("echo", {}).get("down", 0) > 0
        if conn == a.conns and busy_ok:
            break
        if failed or time.monotonic() > deadline:
            print("client %d: %d of %d connected, %d failed at set-up: %s"
                  % (a.base, conn, a.conns, failed, streams.verify()[:3]), file=sys.stderr)
            return 2
        time.sleep(0.05)
    with open(a.ready_file, "w") as f:
        f.write("ready %d\n" % a.conns)
    end = time.monotonic() + a.max_seconds
    while not os.path.exists(a.stop_file) and time.monotonic() < end:
        time.sleep(0.05)
    before = streams.progress()
    streams.stop(timeout=60)
    failures = streams.verify()
    p = streams.progress()
    out = {"conns": a.conns, "busy": a.busy,
           "busy_failed": sum(1 for f in failures if f.startswith("echo ")),
           "idle_failed": sum(1 for f in failures if f.startswith("idle ")),
           "echo_bytes": p.get("echo", {}).get("down", 0),
           "echo_bytes_at_stop": before.get("echo", {}).get("down", 0),
           "failures": failures[:20]}
    with open(a.result_file, "w") as f:
        json.dump(out, f)
    streams.close()
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=("server", "client"))
    ap.add_argument("--port-file")
    ap.add_argument("--port", type=int)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--busy", type=int, default=100)
    ap.add_argument("--base", type=int, default=0)
    ap.add_argument("--interval", type=float, default=0.1, help="s between a busy stream's writes")
    ap.add_argument("--msg", type=int, default=256, help="bytes per write, 1..msg")
    ap.add_argument("--ready-file")
    ap.add_argument("--stop-file")
    ap.add_argument("--result-file")
    ap.add_argument("--setup-seconds", type=float, default=120)
    ap.add_argument("--max-seconds", type=float, default=300)
    a = ap.parse_args()
    raise_nofile()
    if a.role == "server":
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])
        return run_server(a)
    return run_client(a)


if __name__ == "__main__":
    sys.exit(main())
