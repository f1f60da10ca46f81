#!/usr/bin/env python3
"""A latency-adding HTTP/1.1 reverse proxy for S3-compatible servers (standard library only).

  python3 benchmarks/latency_proxy.py --upstream http://127.0.0.1:5000 [--port 0] \
      [--first-byte-ms 35] [--mbps 90] [--port-file F] [--log FILE]

Every request (method, path, query, headers incl. Authorization and Host as the client sent
them, body) is forwarded to the upstream (e.g. a moto_server) and its response is returned
unchanged, but each response starts --first-byte-ms later than the upstream answered (a
fixed delay added per request) and its body is paced at --mbps megabytes (10^6 bytes) per
second, per response (0 = unpaced). Towards clients the proxy keeps connections alive; towards
the upstream it opens one connection per request (moto closes every connection anyway).

Request bodies: Content-Length bodies are forwarded byte for byte (aws-chunked payloads
included: they stay encoded, moto decodes them); HTTP `Transfer-Encoding: chunked` bodies are
de-chunked and forwarded with a Content-Length (Transfer-Encoding is never signed).
`Expect: 100-continue` is answered by the proxy and not forwarded (never signed either).

Admin endpoints (not counted, not delayed):
  GET  /_proxy/stats  -> {"requests", "bytes_out", "bytes_in", "methods": {...},
                          "connections", "errors", "first_byte_ms", "mbps"}
       bytes_out = response body bytes sent to clients, bytes_in = request body bytes received
  POST /_proxy/reset  -> zeroes the counters, answers the counters it had

`--port 0` picks a free port; the listening URL is printed on the first line of stdout
("latency proxy listening on http://127.0.0.1:PORT ...") and written to --port-file if given.
SIGTERM / SIGINT stop it with exit status 0.
"""
import argparse
import http.client
import http.server
import json
import os
import signal
import sys
import threading
import time
import urllib.parse

# Headers that describe one hop, not the message: never forwarded in either direction.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
              "upgrade", "expect", "content-length"}
CHUNK = 64 * 1024


class Stats:
    """Counters shared by the handler threads, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self._zero()

    def _zero(self):
        self.requests = self.bytes_out = self.bytes_in = self.connections = self.errors = 0
        self.methods = {}

    def request(self, method, bytes_in):
        with self.lock:
            self.requests += 1
            self.bytes_in += bytes_in
            self.methods[method] = self.methods.get(method, 0) + 1

    def add(self, name, amount=1):
        with self.lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self, reset=False):
        with self.lock:
            snap = dict(requests=self.requests, bytes_out=self.bytes_out, bytes_in=self.bytes_in,
                        methods=dict(self.methods), connections=self.connections, errors=self.errors)
            if reset:
                self._zero()
        return snap


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive towards clients
    server_version = "latency-proxy"
    # TCP_NODELAY: headers and body go out in separate writes; with Nagle's algorithm the body
    # would wait for the client's delayed ACK (~40 ms on Linux) after every response.
    disable_nagle_algorithm = True
    # Set by main():
    upstream = None  # urllib.parse.SplitResult
    first_byte_s = 0.035
    bytes_per_s = 90e6
    stats: Stats = None
    log_file = None  # --log: one line per forwarded request
    log_lock = threading.Lock()

    def log_message(self, format, *args):
        pass

    def setup(self):
        super().setup()
        self.stats.add("connections")

    # --- request side

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
            while self.rfile.readline().strip():  # trailers, up to the empty line
                pass
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self):
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        try:
            if self.path.startswith("/_proxy/"):
                return self._admin()
            self.stats.request(self.command, len(body))
            self._forward(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _handle

    # --- admin

    def _admin(self):
        if self.command == "GET" and self.path == "/_proxy/stats":
            snap = self.stats.snapshot()
        elif self.command == "POST" and self.path == "/_proxy/reset":
            snap = self.stats.snapshot(reset=True)
        else:
            return self._reply_simple(404, b'{"error": "unknown admin endpoint"}')
        snap.update(first_byte_ms=self.first_byte_s * 1000, mbps=self.bytes_per_s / 1e6)
        self._reply_simple(200, json.dumps(snap).encode())

    def _reply_simple(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # --- forwarding

    def _forward(self, body):
        headers = {}
        for name, value in self.headers.items():
            if name.lower() in HOP_BY_HOP:
                continue
            headers[name] = value if name not in headers else headers[name] + "," + value
        # The Host header (part of every SigV4 signature) goes upstream as the client sent it;
        # http.client adds none of its own when one is given.
        if body or self.command in ("PUT", "POST", "PATCH"):
            headers["Content-Length"] = str(len(body))
        started = time.perf_counter()
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port or 80, timeout=300)
        try:
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
            except OSError as err:
                self.stats.add("errors")
                msg = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ServiceUnavailable</Code>"
                       f"<Message>latency proxy: upstream unreachable: {err}</Message></Error>").encode()
                time.sleep(self.first_byte_s)
                return self._reply_simple(503, msg, "application/xml")
            sent = self._relay(response)
            if self.log_file:
                line = (f"{time.time():.3f} {self.command} {self.path} "
                        f"range={self.headers.get('Range', '-')} in={len(body)} -> {response.status} "
                        f"out={sent} {1000 * (time.perf_counter() - started):.1f}ms\n")
                with self.log_lock:
                    self.log_file.write(line)
                    self.log_file.flush()
        finally:
            conn.close()

    def _relay(self, response):
        kept, length = [], None
        for name, value in response.getheaders():
            lower = name.lower()
            if lower == "content-length":
                length = value
            elif lower not in HOP_BY_HOP:
                kept.append((name, value))
        no_body = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
        # Without a Content-Length (chunked upstream answer) the body is read first, so the client
        # still gets a Content-Length and the connection can stay open.
        data = None
        if not no_body and length is None:
            data = response.read()
            length = str(len(data))
        time.sleep(self.first_byte_s)
        self.send_response_only(response.status, response.reason)  # keeps upstream's Date/Server
        for name, value in kept:
            self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", length)
        elif no_body:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if no_body:
            return 0
        start, sent = time.perf_counter(), 0
        while True:
            if data is not None:
                block = memoryview(data)[sent:sent + CHUNK]
            else:
                block = response.read(CHUNK)
            if not block:
                break
            self.wfile.write(block)
            sent += len(block)
            self.stats.add("bytes_out", len(block))
            if self.bytes_per_s > 0:
                ahead = start + sent / self.bytes_per_s - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
        self.wfile.flush()
        return sent


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:5000 (a moto_server)")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--first-byte-ms", type=float, default=35.0, help="delay added to every response")
    p.add_argument("--mbps", type=float, default=90.0, help="body pace per response in MB/s; 0 = unpaced")
    p.add_argument("--port-file", help="write the chosen port here once listening")
    p.add_argument("--log", help="append one line per forwarded request to this file ('-' = stderr)")
    a = p.parse_args()
    upstream = urllib.parse.urlsplit(a.upstream)
    if upstream.scheme != "http" or not upstream.hostname:
        p.error("--upstream must be an http://host:port URL")
    Handler.upstream = upstream
    Handler.first_byte_s = a.first_byte_ms / 1000
    Handler.bytes_per_s = a.mbps * 1e6
    Handler.stats = Stats()
    if a.log:
        Handler.log_file = sys.stderr if a.log == "-" else open(a.log, "a")
    server = http.server.ThreadingHTTPServer((a.host, a.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    # Exit 0 on SIGTERM: scripts that `wait` for it under `set -e` must not fail.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"latency proxy listening on http://{a.host}:{port} -> {a.upstream} "
          f"(+{a.first_byte_ms:g} ms first byte, {a.mbps:g} MB/s per response)", flush=True)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(a.port_file + ".tmp", a.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
