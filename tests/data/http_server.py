#!/usr/bin/env python3
"""A loopback HTTP server for the data pipeline's download tests.

Usage: http_server.py ROOT PORTFILE LOGFILE [CERT KEY]

With CERT and KEY it speaks HTTPS (a self-signed certificate in the tests,
which a verifying client must refuse).

Binds 127.0.0.1 on a free port, writes the port to PORTFILE and serves files
under ROOT with Range support. The first path component picks a behaviour:
  /files/NAME    normal (200, or 206 for "Range: bytes=N-")
  /cut/NAME      without a Range header: promises the whole file, sends half,
                 then drops the connection (an interrupted download)
  /norange/NAME  ignores Range, always 200 with the whole file
  /fail/NAME     500
  /slow/NAME     waits 1 s, then normal
  /stall/NAME    sends the headers and 10 bytes, then stalls for 30 s
Each request is appended to LOGFILE as "METHOD PATH RANGE".
"""
import http.server
import os
import socketserver
import sys
import time

ROOT, PORTFILE, LOGFILE = sys.argv[1], sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        rng = self.headers.get("Range", "-")
        with open(LOGFILE, "a") as f:
            f.write(f"GET {self.path} {rng}\n")
        parts = self.path.lstrip("/").split("/", 1)
        if len(parts) != 2 or ".." in parts[1]:
            return self.send_error(404)
        mode, name = parts
        path = os.path.join(ROOT, name)
        if mode == "fail":
            return self.send_error(500)
        if not os.path.isfile(path):
            return self.send_error(404)
        data = open(path, "rb").read()
        if mode == "slow":
            time.sleep(1)
        start = 0
        if rng != "-" and mode != "norange":
            if not rng.startswith("bytes=") or not rng.endswith("-"):
                return self.send_error(400)
            start = int(rng[6:-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if mode == "cut" and rng == "-":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "stall":
            self.wfile.write(body[:10])
            self.wfile.flush()
            time.sleep(30)
            return
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # clients that give up (stall test) are expected


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    if len(sys.argv) > 5:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[4], sys.argv[5])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = PORTFILE + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, PORTFILE)
    srv.serve_forever()


if __name__ == "__main__":
    main()
