#!/usr/bin/env bash
# Installs what is missing, builds baton, starts two demo HTTP backends and
# runs baton in front of them on examples/baton.ini (127.0.0.1:8080).
# Sends a few requests through it so you see traffic flow; Ctrl-C stops all.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/deps.sh"
"$root/tools/build.sh" "$root/build/release" -DCMAKE_BUILD_TYPE=RelWithDebInfo

baton=$root/build/release/baton
conf=$root/examples/baton.ini
"$baton" -t -c "$conf"

python3 "$root/tools/demo_backend.py" app1 9000 app2 9001 &
backends=$!
baton_pid=
cleanup() {
    [ -n "$baton_pid" ] && kill "$baton_pid" 2>/dev/null && wait "$baton_pid" 2>/dev/null
    kill "$backends" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$baton" -c "$conf" &
baton_pid=$!

python3 - <<'PY'
import socket, time
# the demo servers and baton start in the background: wait for all three
for port, what in ((9000, "demo server app1"), (9001, "demo server app2"), (8080, "baton")):
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                raise SystemExit("%s did not start listening on 127.0.0.1:%d" % (what, port))
            time.sleep(0.1)
for i in range(4):
    with socket.create_connection(("127.0.0.1", 8080), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    print("through baton:", reply.split(b"\r\n\r\n", 1)[-1].decode().strip())
PY
echo
echo "baton is running on 127.0.0.1:8080 in front of two demo servers (weights 1 and 3)."
echo "Try: curl http://127.0.0.1:8080/   and   $baton -s status -c $conf"
echo "Press Ctrl-C to stop."
wait "$baton_pid"
