#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 reverse proxy for S3-compatible servers (standard library only).

  python3 torture/fault_proxy.py --upstream http://127.0.0.1:5000 [--port 0] [--port-file F]
      [--seed 1] [--fault-rate 0.10] [--weights slowdown=1,internal=1,...]
      [--flip-get 0.01] [--flip-list 0.01] [--slow-ms 800] [--lost-as either|reset|500]
  python3 torture/fault_proxy.py --selftest

Every request is forwarded to the upstream (a moto_server) like benchmarks/latency_proxy.py does
(headers as the client sent them, Host included, so signatures stay valid; one upstream
connection per request), except that with probability --fault-rate one fault is injected. The
fault kind is drawn among the kinds that apply to the request, in proportion to --weights:

  slowdown      answer 503 SlowDown without forwarding              (every request)
  internal      answer 500 InternalError without forwarding         (every request)
  reset         reset the connection without forwarding             (every request)
  slow          forward, answer correctly after --slow-ms            (every request)
  truncate      forward, send the headers (Content-Length kept) and
                only part of the body, then close                   (GET and LIST with a body)
  lost_put      forward (the object lands), then reset the connection
                or answer 500 instead of the real answer (--lost-as) (PUT without a condition)
  lost_conditional_put   the same for If-None-Match / If-Match PUTs (create-if-absent commits)

Independently, a successful GET body has one byte flipped with probability --flip-get
(flip_get), and a successful LIST body (ListObjectsV2) with probability --flip-list
(flip_list: the byte is taken inside a <Key> when there is one, so an entry is damaged). The
Content-Length stays right, so only checksums can tell.

The random draws come from one generator seeded by --seed (the order of concurrent requests
still varies from run to run).

Admin endpoints (never faulted, not counted):
  GET  /_proxy/stats   -> {"requests", "by_class": {...}, "faults": {kind: n}, "lost_as": {...},
                           "config": {...}}
  POST /_proxy/config  <- JSON with any of fault_rate, flip_get, flip_list, slow_ms, lost_as,
                          weights ({kind: weight}); answers the new config
  POST /_proxy/reset   -> zeroes the counters, answers the counters it had

`--port 0` picks a free port, printed on stdout's first line and written to --port-file.
SIGTERM / SIGINT stop it with exit status 0. --selftest runs the proxy against an in-process
fake upstream and shows that every fault kind happens and does what it says (exit 1 if not).
"""
import argparse
import http.client
import http.server
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

# Headers that describe one hop, not the message: never forwarded in either direction.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
              "upgrade", "expect", "content-length"}
KINDS = ["slowdown", "internal", "reset", "slow", "truncate", "lost_put", "lost_conditional_put"]
FLIPS = ["flip_get", "flip_list"]
KEY_RE = re.compile(rb"<Key>([^<]+)</Key>")


def classify(method, path, headers):
    """The request class: list, get, head, put, conditional_put, delete, post or other."""
    split = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
    if method == "GET":
        # ListObjectsV2 (and v1) address the bucket itself: GET /bucket?list-type=2&prefix=...
        bucket_only = split.path.strip("/").count("/") == 0
        return "list" if "list-type" in query or (bucket_only and "prefix" in query) else "get"
    if method == "PUT":
        conditional = headers.get("If-None-Match") is not None or headers.get("If-Match") is not None
        return "conditional_put" if conditional else "put"
    return {"HEAD": "head", "DELETE": "delete", "POST": "post"}.get(method, "other")


def applicable(cls):
    """The fault kinds that can hit a request of this class."""
    kinds = ["slowdown", "internal", "reset", "slow"]
    if cls in ("get", "list"):
        kinds.append("truncate")
    if cls == "put":
        kinds.append("lost_put")
    if cls == "conditional_put":
        kinds.append("lost_conditional_put")
    return kinds


class Faults:
    """The fault configuration, the seeded generator and the counters, under one lock."""

    def __init__(self, seed, fault_rate, weights, flip_get, flip_list, slow_ms, lost_as):
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.config = dict(seed=seed, fault_rate=fault_rate, weights=dict(weights), flip_get=flip_get,
                           flip_list=flip_list, slow_ms=slow_ms, lost_as=lost_as)
        self._zero()

    def _zero(self):
        self.requests = 0
        self.by_class = {}
        self.faults = {k: 0 for k in KINDS + FLIPS}
        self.lost_as = {"reset": 0, "500": 0}
        self.upstream_errors = 0

    def configure(self, changes):
        with self.lock:
            for name, value in changes.items():
                if name == "weights":
                    unknown = set(value) - set(KINDS)
                    if unknown:
                        raise ValueError(f"unknown fault kinds {sorted(unknown)}")
                    self.config["weights"].update({k: float(v) for k, v in value.items()})
                elif name == "lost_as":
                    if value not in ("either", "reset", "500"):
                        raise ValueError("lost_as is either, reset or 500")
                    self.config[name] = value
                elif name in ("fault_rate", "flip_get", "flip_list", "slow_ms"):
                    self.config[name] = float(value)
                else:
                    raise ValueError(f"unknown setting {name}")
            return json.loads(json.dumps(self.config))

    def draw(self, cls):
        """Counts the request and returns the fault kind to inject (or None)."""
        with self.lock:
            self.requests += 1
            self.by_class[cls] = self.by_class.get(cls, 0) + 1
            if self.rng.random() >= self.config["fault_rate"]:
                return None
            kinds = [k for k in applicable(cls) if self.config["weights"].get(k, 0) > 0]
            total = sum(self.config["weights"][k] for k in kinds)
            if total <= 0:
                return None
            u = self.rng.random() * total
            for k in kinds:
                u -= self.config["weights"][k]
                if u < 0:
                    return k
            return kinds[-1]

    def flip(self, cls):
        """Whether to flip a byte of this successful response body."""
        rate = self.config["flip_get"] if cls == "get" else self.config["flip_list"] if cls == "list" else 0
        with self.lock:
            return rate > 0 and self.rng.random() < rate

    def randint(self, lo, hi):
        with self.lock:
            return self.rng.randint(lo, hi)

    def lost_mode(self):
        with self.lock:
            mode = self.config["lost_as"]
            if mode == "either":
                mode = "reset" if self.rng.random() < 0.5 else "500"
            self.lost_as[mode] += 1
            return mode

    def count(self, kind):
        with self.lock:
            self.faults[kind] += 1

    def snapshot(self, reset=False):
        with self.lock:
            snap = dict(requests=self.requests, by_class=dict(self.by_class), faults=dict(self.faults),
                        lost_as=dict(self.lost_as), upstream_errors=self.upstream_errors,
                        config=json.loads(json.dumps(self.config)))
            if reset:
                self._zero()
            return snap


def flip_byte(body, cls, faults):
    """The body with one byte changed (inside a <Key> for a listing, when it has one)."""
    data = bytearray(body)
    start, end = 0, len(data)
    if cls == "list":
        keys = list(KEY_RE.finditer(body))
        if keys:
            m = keys[faults.randint(0, len(keys) - 1)]
            start, end = m.start(1), m.end(1)
    i = faults.randint(start, end - 1)
    data[i] ^= 1 << faults.randint(0, 7)
    return bytes(data)


def s3_error(code, message):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive towards clients
    server_version = "fault-proxy"
    disable_nagle_algorithm = True
    upstream = None  # urllib.parse.SplitResult, set by serve()
    faults: Faults = None

    def log_message(self, format, *args):
        pass

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():
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
                return self._admin(body)
            cls = classify(self.command, self.path, self.headers)
            kind = self.faults.draw(cls)
            if kind == "slowdown":
                self.faults.count(kind)
                return self._reply(503, s3_error("SlowDown", "Please reduce your request rate."), "application/xml")
            if kind == "internal":
                self.faults.count(kind)
                return self._reply(500, s3_error("InternalError", "We encountered an internal error. Please try again."),
                                   "application/xml")
            if kind == "reset":
                self.faults.count(kind)
                return self._reset()
            if kind == "slow":
                self.faults.count(kind)
                time.sleep(self.faults.config["slow_ms"] / 1000)
            self._forward(cls, kind, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _handle

    def _admin(self, body):
        if self.command == "GET" and self.path == "/_proxy/stats":
            return self._reply(200, json.dumps(self.faults.snapshot()).encode())
        if self.command == "POST" and self.path == "/_proxy/reset":
            return self._reply(200, json.dumps(self.faults.snapshot(reset=True)).encode())
        if self.command == "POST" and self.path == "/_proxy/config":
            try:
                config = self.faults.configure(json.loads(body or b"{}"))
            except (ValueError, TypeError, AttributeError) as err:
                return self._reply(400, json.dumps({"error": str(err)}).encode())
            return self._reply(200, json.dumps(config).encode())
        return self._reply(404, b'{"error": "unknown admin endpoint"}')

    def _reply(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self):
        """Closes the client connection with a TCP reset (SO_LINGER 0), answering nothing."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drops the file's reference so close() really closes the socket
        self.connection.close()

    def _forward(self, cls, kind, body):
        headers = {}
        for name, value in self.headers.items():
            if name.lower() in HOP_BY_HOP:
                continue
            headers[name] = value if name not in headers else headers[name] + "," + value
        if body or self.command in ("PUT", "POST", "PATCH"):
            headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port or 80, timeout=300)
        try:
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except OSError as err:
                with self.faults.lock:
                    self.faults.upstream_errors += 1
                return self._reply(503, s3_error("ServiceUnavailable", f"fault proxy: upstream unreachable: {err}"),
                                   "application/xml")
        finally:
            conn.close()
        if kind in ("lost_put", "lost_conditional_put"):
            # The request landed upstream; its answer is lost.
            self.faults.count(kind)
            if self.faults.lost_mode() == "reset":
                return self._reset()
            return self._reply(500, s3_error("InternalError", "We encountered an internal error. Please try again."),
                               "application/xml")
        no_body = self.command == "HEAD" or response.status in (204, 304)
        ok = 200 <= response.status < 300
        if ok and data and cls in ("get", "list") and self.faults.flip(cls):
            self.faults.count("flip_" + cls)
            data = flip_byte(data, cls, self.faults)
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        if no_body:
            length = response.getheader("Content-Length") if self.command == "HEAD" else "0"
            self.send_header("Content-Length", length or "0")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if no_body:
            return
        if kind == "truncate" and len(data) >= 2:
            self.faults.count(kind)
            self.wfile.write(data[:self.faults.randint(0, len(data) - 1)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)


def serve(upstream, faults, host="127.0.0.1", port=0):
    """A started proxy server (in a daemon thread) and its port."""
    handler = type("BoundHandler", (Handler,), dict(upstream=urllib.parse.urlsplit(upstream), faults=faults))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def parse_weights(text):
    weights = {k: 1.0 for k in KINDS}
    for part in filter(None, (text or "").split(",")):
        name, _, value = part.partition("=")
        if name not in weights:
            raise SystemExit(f"unknown fault kind '{name}' in --weights (kinds: {', '.join(KINDS)})")
        weights[name] = float(value)
    return weights


# --- self-test: a fake upstream and one request per fault kind

class FakeUpstream(http.server.BaseHTTPRequestHandler):
    """Stores PUT bodies, serves them on GET, lists them on GET /bucket?list-type=2."""
    protocol_version = "HTTP/1.0"
    objects = {}
    received = []
    lock = threading.Lock()

    def log_message(self, format, *args):
        pass

    def do_PUT(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            self.received.append(("PUT", self.path))
            exists = self.path in self.objects
            if self.headers.get("If-None-Match") == "*" and exists:
                return self._send(412, b"<Error><Code>PreconditionFailed</Code></Error>")
            self.objects[self.path] = body
        self._send(200, b"")

    def do_GET(self):
        with self.lock:
            self.received.append(("GET", self.path))
            split = urllib.parse.urlsplit(self.path)
            if "list-type" in split.query:
                keys = sorted(p.split("/", 2)[2] for p in self.objects if p.startswith(split.path.rstrip("/") + "/"))
                xml = "".join(f"<Contents><Key>{k}</Key><Size>1</Size></Contents>" for k in keys)
                return self._send(200, f"<ListBucketResult>{xml}</ListBucketResult>".encode())
            body = self.objects.get(self.path)
        if body is None:
            return self._send(404, b"<Error><Code>NoSuchKey</Code></Error>")
        self._send(200, body)

    def _send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def selftest():
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeUpstream)
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    faults = Faults(seed=1, fault_rate=0, weights={k: 1.0 for k in KINDS}, flip_get=0, flip_list=0, slow_ms=300,
                    lost_as="either")
    _, port = serve(f"http://127.0.0.1:{upstream.server_address[1]}", faults)
    failures = []

    def request(method, path, body=None, headers=None):
        """(status, body) or the exception the client saw."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException) as err:
            return err
        finally:
            conn.close()

    def only(kind, **config):
        weights = {k: (1.0 if k == kind else 0.0) for k in KINDS}
        faults.configure(dict(dict(fault_rate=1.0 if kind else 0.0, flip_get=0, flip_list=0, lost_as="either"),
                              weights=weights, **config))

    def check(name, condition, detail):
        print(f"  {'ok  ' if condition else 'FAIL'} {name}: {detail}")
        if not condition:
            failures.append(name)

    payload = bytes(range(256)) * 40
    only(None)
    check("pass-through", request("PUT", "/b/obj", payload) == (200, b"") and request("GET", "/b/obj") == (200, payload),
          "no fault: PUT then GET returns the bytes")
    request("PUT", "/b/MANIFEST-00000000000000000001.bin", b"m")

    only("slowdown")
    r = request("GET", "/b/obj")
    check("slowdown", not isinstance(r, Exception) and r[0] == 503 and b"SlowDown" in r[1], f"{r if isinstance(r, Exception) else r[0]}")
    only("internal")
    r = request("GET", "/b/obj")
    check("internal", not isinstance(r, Exception) and r[0] == 500 and b"InternalError" in r[1], f"{r if isinstance(r, Exception) else r[0]}")
    only("reset")
    before = len(FakeUpstream.received)
    r = request("PUT", "/b/not-landed", b"x")
    check("reset", isinstance(r, (ConnectionResetError, http.client.RemoteDisconnected))
          and len(FakeUpstream.received) == before and "/b/not-landed" not in FakeUpstream.objects,
          f"client saw {r!r}; upstream got nothing")
    only("slow", slow_ms=300)
    started = time.monotonic()
    r = request("GET", "/b/obj")
    waited = time.monotonic() - started
    check("slow", r == (200, payload) and waited >= 0.3, f"intact body after {waited * 1000:.0f} ms (at least 300)")
    only("truncate")
    r = request("GET", "/b/obj")
    check("truncate", isinstance(r, http.client.IncompleteRead), f"client saw {type(r).__name__}")
    for mode in ("reset", "500"):
        only("lost_put", lost_as=mode)
        r = request("PUT", f"/b/lost-{mode}", b"landed")
        seen = r[0] if not isinstance(r, Exception) else type(r).__name__
        check(f"lost_put ({mode})", (r[0] == 500 if mode == "500" else isinstance(r, Exception))
              and FakeUpstream.objects.get(f"/b/lost-{mode}") == b"landed", f"client saw {seen}; the object landed")
        only("lost_conditional_put", lost_as=mode)
        r = request("PUT", f"/b/cond-{mode}", b"landed", {"If-None-Match": "*"})
        seen = r[0] if not isinstance(r, Exception) else type(r).__name__
        check(f"lost_conditional_put ({mode})", (r[0] == 500 if mode == "500" else isinstance(r, Exception))
              and FakeUpstream.objects.get(f"/b/cond-{mode}") == b"landed", f"client saw {seen}; the object landed")
        r = request("PUT", f"/b/cond-{mode}", b"again", {"If-None-Match": "*"})
    only("lost_put")
    r = request("PUT", "/b/cond-only", b"x", {"If-None-Match": "*"})
    check("lost_put spares conditional puts", r == (200, b""), f"{r!r}")
    only(None, flip_get=1.0)
    r = request("GET", "/b/obj")
    diff = [i for i in range(len(payload)) if not isinstance(r, Exception) and r[1][i] != payload[i]]
    check("flip_get", not isinstance(r, Exception) and r[0] == 200 and len(r[1]) == len(payload) and len(diff) == 1,
          f"same length, {len(diff)} byte differs")
    only(None)
    clean = request("GET", "/b?list-type=2&prefix=")
    only(None, flip_list=1.0)
    r = request("GET", "/b?list-type=2&prefix=")
    diff = [i for i in range(len(clean[1])) if not isinstance(r, Exception) and r[1][i] != clean[1][i]]
    in_key = bool(diff) and any(m.start(1) <= diff[0] < m.end(1) for m in KEY_RE.finditer(clean[1]))
    check("flip_list", not isinstance(r, Exception) and len(diff) == 1 and in_key, f"{len(diff)} byte differs, inside a <Key>: {in_key}")

    only(None)
    stats = json.loads(request("GET", "/_proxy/stats")[1])
    missing = [k for k in KINDS + FLIPS if stats["faults"][k] < 1]
    check("stats", not missing, f"faults counted: {stats['faults']}, lost answers as {stats['lost_as']}")
    # The mix at a given rate: every kind happens, about rate x requests are faulted.
    faults.configure(dict(fault_rate=0.5, flip_get=0.1, slow_ms=10, weights={k: 1.0 for k in KINDS}, lost_as="either"))
    faults.snapshot(reset=True)
    for i in range(400):
        request("PUT", f"/b/mix-{i % 10}", b"y", {"If-None-Match": "*"} if i % 3 == 0 else {}) if i % 2 else request("GET", "/b/obj")
    stats = faults.snapshot()
    faulted = sum(stats["faults"][k] for k in KINDS)
    check("mixed rates", all(stats["faults"][k] > 0 for k in KINDS + ["flip_get"]) and 120 < faulted < 280,
          f"{faulted} of 400 requests faulted at rate 0.5: {stats['faults']}")
    upstream.shutdown()
    print("fault proxy self-test: " + ("all fault kinds seen" if not failures else f"FAILED {failures}"))
    return 1 if failures else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", help="e.g. http://127.0.0.1:5000 (a moto_server)")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port-file", help="write the chosen port here once listening")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fault-rate", type=float, default=0.10, help="probability that a request is faulted")
    p.add_argument("--weights", default="", help="relative weights per kind, e.g. slowdown=2,slow=0.5 (default 1 each)")
    p.add_argument("--flip-get", type=float, default=0.0, help="probability of a flipped byte in a GET body")
    p.add_argument("--flip-list", type=float, default=0.0, help="probability of a flipped byte in a LIST body")
    p.add_argument("--slow-ms", type=float, default=800.0, help="delay of a slow answer")
    p.add_argument("--lost-as", default="either", choices=["either", "reset", "500"])
    p.add_argument("--selftest", action="store_true", help="show that every fault kind happens, then exit")
    a = p.parse_args()
    if a.selftest:
        sys.exit(selftest())
    if not a.upstream or urllib.parse.urlsplit(a.upstream).scheme != "http":
        p.error("--upstream must be an http://host:port URL")
    faults = Faults(a.seed, a.fault_rate, parse_weights(a.weights), a.flip_get, a.flip_list, a.slow_ms, a.lost_as)
    server, port = serve(a.upstream, faults, a.host, a.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"fault proxy listening on http://{a.host}:{port} -> {a.upstream} (faults {a.fault_rate:g}, "
          f"flips GET {a.flip_get:g} LIST {a.flip_list:g}, seed {a.seed})", flush=True)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(a.port_file + ".tmp", a.port_file)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
