#!/usr/bin/env python3
"""Measure how long a proxy takes from "reload issued" to "a new worker accepts".

Usage: reload_probe.py --port P --master PID --count 20 [--gap 0.3]
                       (--signal USR2 | -- reload command ...)

For each of --count reloads:
  1. note the master's child processes (the current workers);
  2. t0: issue the reload: send the signal to the master, or start the
     command (not waiting for it);
  3. probe in a loop, every ~2 ms: connect to 127.0.0.1:P, send
     "GET /small", read the whole response, then find which process holds
     the accepted socket (a sock_diag netlink lookup of this connection gives
     the inode, the master's children's /proc/PID/fd give the owner);
  4. stop when the owner is a child that was not there before the reload.
Printed per reload: "reload I cmd_ms C spawn_ms S serve_ms A pid N", where
C is when the command returned (0 for a signal), S when a new child of the
master was first seen and A when a probe was first served by a new child,
all in ms since t0.  Then waits --gap seconds (and for the command) before
the next reload.  Last line: "median cmd_ms C spawn_ms S serve_ms A".
Used by bench/reload.sh.
"""
import argparse
import glob
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

REQ = b"GET /small HTTP/1.1\r\nHost: bench\r\n\r\n"


def children(master):
    kids = set()
    for f in glob.glob(f"/proc/{master}/task/*/children"):
        try:
            with open(f) as fh:
                kids.update(int(x) for x in fh.read().split())
        except OSError:
            pass
    return kids


def server_inode(port, cport):
    """Inode of the accepted socket 127.0.0.1:port <- 127.0.0.1:cport, by an exact
    sock_diag (netlink) lookup: reading /proc/net/tcp instead takes tens of ms
    when the namespace holds many sockets (TIME_WAIT from other loads)."""
    lo = socket.inet_aton("127.0.0.1") + bytes(12)
    req = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF)
    req += struct.pack(">HH", port, cport) + lo + lo + struct.pack("=III", 0, 0xFFFFFFFF, 0xFFFFFFFF)
    msg = struct.pack("=IHHII", 16 + len(req), 20, 1, 1, 0) + req  # SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4) as nl:  # NETLINK_SOCK_DIAG
        nl.settimeout(1.0)
        nl.send(msg)
        data = nl.recv(65536)
    length, mtype = struct.unpack_from("=IH", data, 0)
    if mtype != 20 or length < 16 + 88:
        return None
    return struct.unpack_from("=I", data, 16 + 4 + 48 + 16)[0]


def owner_of(port, cport, pids):
    """pid among pids holding the server side of 127.0.0.1:port <- 127.0.0.1:cport."""
    inode = server_inode(port, cport)
    if not inode:
        return None
    want = f"socket:[{inode}]"
    for p in pids:
        try:
            for fd in os.listdir(f"/proc/{p}/fd"):
                try:
                    if os.readlink(f"/proc/{p}/fd/{fd}") == want:
                        return p
                except OSError:
                    pass
        except OSError:
            pass
    return None


def probe(port):
    """Connect, GET, read the response; keep the socket open.  -> (sock, cport) or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(REQ)
        buf = b""
        while b"\r\n\r\n" not in buf or not buf.endswith(b"ok\n"):
            d = s.recv(4096)
            if not d:
                raise OSError("eof")
            buf += d
    except OSError:
        s.close()
        return None
    return s, s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--master", type=int, required=True)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--gap", type=float, default=0.3)
    ap.add_argument("--signal")
    ap.add_argument("--limit", type=float, default=10.0)
    ap.add_argument("cmd", nargs="*")
    a = ap.parse_args()

    cmds, spawns, serves = [], [], []
    for i in range(1, a.count + 1):
        old = children(a.master)
        t0 = time.monotonic()
        proc = None
        if a.signal:
            os.kill(a.master, getattr(signal, "SIG" + a.signal))
            cmd_ms = 0.0
        else:
            proc = subprocess.Popen(a.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            cmd_ms = None
        spawn_ms = serve_ms = None
        newpid = None
        while time.monotonic() - t0 < a.limit:
            now_ms = (time.monotonic() - t0) * 1000
            if proc is not None and cmd_ms is None and proc.poll() is not None:
                cmd_ms = now_ms
            kids = children(a.master)
            if spawn_ms is None and kids - old:
                spawn_ms = now_ms
            r = probe(a.port)
            if r is not None:
                s, cport = r
                got = owner_of(a.port, cport, kids)
                served_ms = (time.monotonic() - t0) * 1000
                s.close()
                if got is not None and got not in old:
                    serve_ms, newpid = served_ms, got
                    if spawn_ms is None:
                        spawn_ms = served_ms
                    break
            time.sleep(0.002)
        if proc is not None:
            try:
                _, err = proc.communicate(timeout=a.limit)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if cmd_ms is None:
                cmd_ms = (time.monotonic() - t0) * 1000
            if proc.returncode != 0:
                print(f"reload {i}: command failed ({proc.returncode}): {err.decode().strip()}",
                      file=sys.stderr)
        if serve_ms is None:
            print(f"reload {i}: no new worker served a probe within {a.limit}s", file=sys.stderr)
            return 1
        cmds.append(cmd_ms)
        spawns.append(spawn_ms)
        serves.append(serve_ms)
        print(f"reload {i} cmd_ms {cmd_ms:.1f} spawn_ms {spawn_ms:.1f} serve_ms {serve_ms:.1f} pid {newpid}",
              flush=True)
        time.sleep(a.gap)
    print(f"median cmd_ms {statistics.median(cmds):.1f} spawn_ms {statistics.median(spawns):.1f} "
          f"serve_ms {statistics.median(serves):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
