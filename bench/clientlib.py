"""Shared by the benchmark's connection holders (idle_conns.py,
idle_tls_conns.py, half_open_tls.py): descriptors, signals, holding."""
import resource
import signal
import time


def prepare(n):
    """Raises RLIMIT_NOFILE for n sockets (within the hard limit).  Returns a
    list that SIGTERM and SIGINT append to: non-empty means stop."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        want = n + 64 if hard == resource.RLIM_INFINITY else min(n + 64, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    return stop


def hold(socks, seconds, stop):
    """Keeps socks open until `seconds` have passed or a signal came, then
    closes them all."""
    deadline = time.monotonic() + seconds
    while not stop and time.monotonic() < deadline:
        time.sleep(0.05)
    for s in socks:
        s.close()
