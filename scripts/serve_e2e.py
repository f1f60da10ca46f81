#!/usr/bin/env python3
"""End-to-end check of `vecgo serve` against an S3 endpoint (moto): one writer and two reader
processes on one prefix, driven with a real HTTP client.

- a write through the writer becomes visible on both readers after their refresh;
- a malformed request of each kind gets a 4xx JSON error, and every server keeps serving;
- SIGTERM on the writer commits its pending writes (counted after a restart);
- docs/openapi.json is a valid OpenAPI 3 document.

Usage: serve_e2e.py --bin .build/debug/vecgo --endpoint http://127.0.0.1:PORT
"""
import argparse, json, math, os, random, signal, socket, subprocess, sys, time, urllib.error, urllib.request

DIM = 8


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def call(port, method, path, body=None, raw=None, timeout=30):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if r.headers.get("Content-Type", "").startswith("application/json") else text)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text


class Server:
    def __init__(self, args, name, *extra):
        self.name, self.port = name, free_port()
        self.log = open(os.path.join(args.log_dir, f"serve-{name}.log"), "w")
        cmd = [args.bin, "serve", args.url, "--endpoint", args.endpoint, "--port", str(self.port), *extra]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, seconds=60):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if call(self.port, "GET", "/readyz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{self.name} not ready after {seconds} s; see {self.log.name}")

    def stop(self, sig=signal.SIGTERM, seconds=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise SystemExit(f"{self.name} did not exit within {seconds} s of {sig.name}")


def vec(rng):
    return [rng.uniform(-1, 1) for _ in range(DIM)]


def expect(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", default=f"vecgo-serve-{random.randrange(1 << 30)}")
    ap.add_argument("--log-dir", default=os.environ.get("TMPDIR", "/tmp"))
    args = ap.parse_args()
    args.url = f"s3://{args.bucket}/serve/"
    urllib.request.urlopen(urllib.request.Request(f"{args.endpoint}/{args.bucket}", method="PUT")).read()
    rng = random.Random(13)
    servers = []
    try:
        writer = Server(args, "writer", "--writer", "--create-dimension", str(DIM))
        servers.append(writer)
        writer.wait_ready()
        rows = [{"key": f"k{i}", "vector": vec(rng), "metadata": {"i": i, "even": i % 2 == 0}} for i in range(200)]
        st, body = call(writer.port, "POST", "/v1/upsert", {"rows": rows, "commit": True})
        expect(st == 200 and body["version"] >= 1, f"first upsert: {st} {body}")
        readers = [Server(args, f"reader{i}", "--refresh-interval", "0.5") for i in (1, 2)]
        servers += readers
        for r in readers:
            r.wait_ready()
            st, info = call(r.port, "GET", "/v1/info")
            expect(st == 200 and info["rows"] == 200 and info["dimension"] == DIM and info["readOnly"], f"{r.name} info {info}")
        print(f"writer on :{writer.port}, readers on :{readers[0].port} and :{readers[1].port}, 200 rows")

        # A write through the writer becomes visible on both readers after their refresh.
        probe = vec(rng)
        st, body = call(writer.port, "POST", "/v1/upsert", {"rows": [{"key": "fresh", "vector": probe, "metadata": {"new": True}}], "commit": True})
        expect(st == 200, f"upsert fresh: {body}")
        committed = body["version"]
        for r in readers:
            deadline, seen = time.time() + 30, False
            while time.time() < deadline and not seen:
                st, res = call(r.port, "POST", "/v1/search", {"vector": probe, "k": 1, "include": ["metadata"]})
                seen = st == 200 and res["results"] and res["results"][0].get("key") == "fresh"
                if not seen:
                    time.sleep(0.1)
            expect(seen, f"{r.name} did not see the write of version {committed}")
            st, info = call(r.port, "GET", "/v1/info")
            expect(info["version"] >= committed, f"{r.name} version {info['version']} < {committed}")
        print(f"write of version {committed} visible on both readers")

        # Filtered search on a reader.
        st, res = call(readers[0].port, "POST", "/v1/search", {"vector": probe, "k": 5, "include": ["metadata"],
                                                               "filter": {"eq": {"field": "even", "value": True}}})
        expect(st == 200 and len(res["results"]) == 5 and all(h["metadata"]["even"] for h in res["results"]), f"filtered {res}")

        # Malformed requests: 4xx JSON errors, and the servers keep serving.
        big = b'{"vector": [' + b"0," * (5 << 20) + b'0]}'
        bad = [
            ("bad JSON", b'{"vector": [1, 2', 400, "invalidArgument"),
            ("missing vector", json.dumps({"k": 3}).encode(), 400, "invalidArgument"),
            ("wrong dimension", json.dumps({"vector": [1, 2]}).encode(), 400, "dimensionMismatch"),
            ("NaN", b'{"vector": [NaN, 0, 0, 0, 0, 0, 0, 0]}', 400, "invalidArgument"),
            ("k out of range", json.dumps({"vector": [0] * DIM, "k": 100000}).encode(), 400, "invalidArgument"),
            ("bad filter", json.dumps({"vector": [0] * DIM, "filter": {"eq": {}}}).encode(), 400, "invalidArgument"),
            ("body too large", big, 413, "payloadTooLarge"),
        ]
        for s in servers:
            for what, raw, status, code in bad:
                try:
                    st, body = call(s.port, "POST", "/v1/search", raw=raw)
                except (ConnectionError, urllib.error.URLError) as e:
                    # A server may close the connection after answering 413 before the client finished sending.
                    expect(status == 413, f"{s.name} {what}: {e}")
                    continue
                expect(st == status and isinstance(body, dict) and body.get("error", {}).get("code") == code,
                       f"{s.name} {what}: {st} {body}")
                expect("Traceback" not in json.dumps(body) and "Swift." not in json.dumps(body), f"{s.name} {what}: {body}")
                st, ok = call(s.port, "POST", "/v1/search", {"vector": probe, "k": 3})
                expect(st == 200 and len(ok["results"]) == 3, f"{s.name} after {what}: {st} {ok}")
        for r in readers:
            st, body = call(r.port, "POST", "/v1/upsert", {"rows": [{"vector": [0] * DIM}]})
            expect(st == 403 and body["error"]["code"] == "readOnly", f"{r.name} write: {st} {body}")
        print(f"{len(bad)} malformed request kinds answered 4xx on all 3 servers, which kept serving; readers refuse writes with 403")

        # /metrics on a reader after its queries.
        st, text = call(readers[0].port, "GET", "/metrics")
        for series in ("vecgo_query_duration_seconds_bucket", 'vecgo_tier_hits_total{tier="ram"}', "vecgo_remote_requests_total",
                       "vecgo_remote_bytes_total", "vecgo_commits_total"):
            expect(series in text, f"{series} missing from /metrics")

        # SIGTERM on the writer commits its pending writes.
        pending = [{"key": f"p{i}", "vector": vec(rng)} for i in range(25)]
        st, body = call(writer.port, "POST", "/v1/upsert", {"rows": pending})
        expect(st == 200 and body["pending"] == 25, f"pending upsert {body}")
        rc = writer.stop(signal.SIGTERM)
        expect(rc == 0, f"writer exited with {rc} after SIGTERM")
        writer2 = Server(args, "writer2", "--writer")
        servers.append(writer2)
        writer2.wait_ready()
        st, info = call(writer2.port, "GET", "/v1/info")
        expect(info["rows"] == 226, f"after SIGTERM and restart: {info['rows']} rows, expected 226")
        print(f"SIGTERM committed 25 pending rows: {info['rows']} rows at version {info['version']} after restart")
        for s in servers:
            if s.proc.poll() is None:
                expect(s.stop() == 0, f"{s.name} did not exit cleanly on SIGTERM")
    finally:
        for s in servers:
            if s.proc.poll() is None:
                s.proc.kill()
    try:
        from openapi_spec_validator import validate
        validate(json.load(open(os.path.join(os.path.dirname(__file__), "..", "docs", "openapi.json"))))
        print("docs/openapi.json is a valid OpenAPI 3 document")
    except ImportError:
        print("openapi-spec-validator not installed; the document was checked by the Swift tests only")
    print("serve e2e: ok")


if __name__ == "__main__":
    main()
