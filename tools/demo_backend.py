#!/usr/bin/env python3
"""A tiny HTTP backend for trying baton: answers every GET with its own name.

usage: demo_backend.py NAME PORT [NAME PORT ...]
"""
import http.server
import sys
import threading


def serve(name, port):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = f"hello from demo server {name} (port {port})\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    print(f"demo server {name} listening on 127.0.0.1:{port}", flush=True)
    srv.serve_forever()


def main(argv):
    if len(argv) < 3 or len(argv) % 2 == 0:
        sys.exit(__doc__)
    pairs = list(zip(argv[1::2], argv[2::2]))
    threads = [threading.Thread(target=serve, args=(n, int(p)), daemon=True) for n, p in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main(sys.argv)
