#!/usr/bin/env python3
"""HTTP/1.1 load generator that records completions and errors per time bucket.

Usage: reload_load.py --port P --start EPOCH --duration S
                      [--ka 64] [--close 16] [--bucket 0.5] [--timeout 2] [--path /small]

Runs in one process, one thread, on epoll with non-blocking sockets:
  --ka N     N keep-alive connections, each sending the next GET as soon as
             the previous response is complete (like wrk);
  --close N  N connections that send "Connection: close", close after the
             response and connect again (a new TCP connection per request).
The load starts at wall-clock time EPOCH (time.time(); so a driver that
issues reloads can put its marks on the same axis) and stops DURATION
seconds later.  Prints one line per bucket:

  t_start ok_ka ok_close connect read write timeout non2xx

where t_start is seconds since EPOCH, ok_* are responses completed (status
2xx) in that bucket, and the error columns count, as wrk does: connect
(connect() failed), read (reset, or EOF before a full response), write
(send failed), timeout (no full response within --timeout s), non2xx.
A last line "total ..." has the sums.  Used by bench/reload.sh.
"""
import argparse
import errno
import resource
import select
import socket
import sys
import time

CONNECTING, WAITING = 1, 2


class Conn:
    __slots__ = ("sock", "fd", "close", "state", "buf", "deadline")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--start", type=float, required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--ka", type=int, default=64)
    ap.add_argument("--close", type=int, default=16)
    ap.add_argument("--bucket", type=float, default=0.5)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--path", default="/small")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 and (hard == resource.RLIM_INFINITY or hard >= 4096):
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))

    req_ka = f"GET {a.path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    req_close = f"GET {a.path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode()
    nb = int(a.duration / a.bucket) + 1
    ok_ka = [0] * nb
    ok_cl = [0] * nb
    e_conn = [0] * nb
    e_read = [0] * nb
    e_write = [0] * nb
    e_tmo = [0] * nb
    e_non2xx = [0] * nb

    ep = select.epoll()
    conns = {}
    addr = (a.host, a.port)

    def bucket(now):
        i = int((now - a.start) / a.bucket)
        return min(max(i, 0), nb - 1)

    def drop(c):
        try:
            ep.unregister(c.fd)
        except OSError:
            pass
        conns.pop(c.fd, None)
        c.sock.close()

    def open_conn(close, now):
        c = Conn()
        c.close = close
        c.buf = b""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sock, c.fd = s, s.fileno()
        c.deadline = now + a.timeout
        rc = s.connect_ex(addr)
        if rc not in (0, errno.EINPROGRESS):
            e_conn[bucket(now)] += 1
            s.close()
            return False
        c.state = CONNECTING
        conns[c.fd] = c
        ep.register(c.fd, select.EPOLLOUT)
        return True

    def send_req(c, now):
        try:
            c.sock.send(req_close if c.close else req_ka)
        except OSError:
            e_write[bucket(now)] += 1
            drop(c)
            return False
        c.state = WAITING
        c.buf = b""
        c.deadline = now + a.timeout
        ep.modify(c.fd, select.EPOLLIN)
        return True

    def response_done(c):
        """-> (complete, status) for what is in c.buf."""
        h = c.buf.find(b"\r\n\r\n")
        if h < 0:
            return False, 0
        head = c.buf[:h]
        try:
            status = int(head[9:12])
        except ValueError:
            status = 0
        clen = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                clen = int(line[15:])
                break
        return len(c.buf) - h - 4 >= clen, status

    pending = []  # connections to (re)open: close flags

    now = time.time()
    if a.start > now:
        time.sleep(a.start - now)
    end = a.start + a.duration
    now = time.time()
    for _ in range(a.ka):
        pending.append(False)
    for _ in range(a.close):
        pending.append(True)
    next_sweep = now + 0.05

    while True:
        now = time.time()
        if now >= end:
            break
        retry = []
        for close in pending:
            if not open_conn(close, now):
                retry.append(close)
        pending = retry
        wait = 0.001 if pending else min(0.05, max(0.0, end - now))
        events = ep.poll(wait)
        now = time.time()
        for fd, ev in events:
            c = conns.get(fd)
            if c is None:
                continue
            if c.state == CONNECTING:
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    e_conn[bucket(now)] += 1
                    drop(c)
                    pending.append(c.close)
                    continue
                if not send_req(c, now):
                    pending.append(c.close)
                continue
            # WAITING
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = None
            if not data:  # reset or EOF before a complete response
                e_read[bucket(now)] += 1
                drop(c)
                pending.append(c.close)
                continue
            c.buf += data
            done, status = response_done(c)
            if not done:
                continue
            b = bucket(now)
            if 200 <= status < 300:
                if c.close:
                    ok_cl[b] += 1
                else:
                    ok_ka[b] += 1
            else:
                e_non2xx[b] += 1
            if c.close:
                drop(c)
                pending.append(True)
            elif not send_req(c, now):
                pending.append(False)
        if now >= next_sweep:
            next_sweep = now + 0.05
            for c in list(conns.values()):
                if now > c.deadline:
                    if c.state == CONNECTING:
                        e_conn[bucket(now)] += 1
                    else:
                        e_tmo[bucket(now)] += 1
                    drop(c)
                    pending.append(c.close)

    for c in list(conns.values()):
        drop(c)
    out = sys.stdout
    for i in range(nb):
        if a.start + i * a.bucket >= end:
            break
        out.write(f"{i * a.bucket:.2f} {ok_ka[i]} {ok_cl[i]} {e_conn[i]} {e_read[i]} "
                  f"{e_write[i]} {e_tmo[i]} {e_non2xx[i]}\n")
    out.write(f"total {sum(ok_ka)} {sum(ok_cl)} {sum(e_conn)} {sum(e_read)} {sum(e_write)} "
              f"{sum(e_tmo)} {sum(e_non2xx)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
