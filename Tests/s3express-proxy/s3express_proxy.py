"""A small S3 Express One Zone emulator for integration tests, in front of a moto_server.

moto has no S3 Express support, so this proxy plays the S3 Express parts itself and forwards
plain S3 requests to a moto_server that does not check signatures.

What it emulates:
  * directory-bucket names (`<base>--<az-id>--x-s3`), path-style requests only;
  * its own SigV4 verification (service `s3express`) against the base keys for the control
    plane (CreateSession, CreateBucket, DeleteBucket) and against a session's secret for every
    other (zonal) request, which must carry a signed `x-amz-s3session-token`;
  * CreateSession (`GET /<bucket>?session`): ReadWrite / ReadOnly sessions with a TTL, that
    can be expired on demand;
  * the ListObjectsV2 rules of directory buckets: a prefix must end in `/`, no `start-after`,
    only `/` as delimiter, and results in no particular order (the `<Contents>` are shuffled).

What it does not emulate: virtual-hosted addressing, request-date skew checks, streaming
(aws-chunked) payload signatures, presigned URLs, ListDirectoryBuckets, bucket policies,
checksum rules, or any difference between S3 Express and S3 in object semantics (those come
from moto as they are).

Admin endpoints (unsigned): GET /_proxy/stats, POST /_proxy/expire-sessions,
POST /_proxy/session-seconds/<n>.
"""
import argparse
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import random
import re
import secrets
import signal
import string
import sys
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass
from xml.sax.saxutils import escape as xml_escape

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]*--[a-z]+[0-9]+-az[0-9]+--x-s3$")
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request\s*,"
    r"\s*SignedHeaders=([a-z0-9;-]+)\s*,\s*Signature=([0-9a-f]{64})$")
CONTENTS_RE = re.compile(rb"<Contents>.*?</Contents>", re.DOTALL)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection",
              "te", "trailer", "upgrade", "expect"}
XML_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class S3Error(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Session:
    access_key: str
    secret: str
    bucket: str
    mode: str
    expires: float


class State:
    """Sessions and counters, shared by the handler threads; everything under one lock."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.sessions = {}  # token -> Session
        self.ttl = args.session_seconds
        self.stats = dict(sessions_created=0, expired_rejections=0, signature_rejections=0,
                          requests_forwarded=0, listings_shuffled=0, connections_accepted=0)

    def count(self, name):
        with self.lock:
            self.stats[name] += 1

    def new_session(self, bucket, mode):
        alnum = string.ascii_uppercase + string.digits
        session = Session(access_key="ASIA" + "".join(secrets.choice(alnum) for _ in range(16)),
                          secret=secrets.token_urlsafe(30), bucket=bucket, mode=mode, expires=0)
        token = secrets.token_urlsafe(150)
        with self.lock:
            session.expires = time.time() + self.ttl
            self.sessions[token] = session
            self.stats["sessions_created"] += 1
        return token, session

    def expire_all(self):
        with self.lock:
            now = time.time()
            for session in self.sessions.values():
                session.expires = min(session.expires, now - 1)
            return len(self.sessions)


# ---------------------------------------------------------------- SigV4 verification

def _hmac(key, text):
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def canonical_query(raw_query):
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append(tuple(urllib.parse.quote(urllib.parse.unquote(x), safe="~")
                           for x in (name, value)))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def verify_signature(handler, auth, secret, region):
    """Checks a parsed Authorization (see parse_authorization) against the request in handler."""
    signed = auth["signed_headers"].split(";")
    for required in ("host", "x-amz-date"):
        if required not in signed:
            raise S3Error(403, "AccessDenied", f"The '{required}' header must be signed.")
    amz_date = handler.headers.get("x-amz-date", "")
    if amz_date[:8] != auth["date"]:
        raise S3Error(403, "SignatureDoesNotMatch",
                      "The credential date does not match the x-amz-date header.")
    header_lines = []
    for name in signed:
        values = handler.headers.get_all(name)
        if values is None:
            raise S3Error(403, "SignatureDoesNotMatch", f"Signed header '{name}' is missing.")
        value = ",".join(re.sub(" +", " ", v.strip()) for v in values)
        header_lines.append(f"{name}:{value}\n")
    canonical = "\n".join([handler.command, handler.raw_path, canonical_query(handler.raw_query),
                           "".join(header_lines), auth["signed_headers"],
                           handler.headers.get("x-amz-content-sha256", "")])
    scope = f"{auth['date']}/{region}/{auth['service']}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = ("AWS4" + secret).encode("utf-8")
    for part in (auth["date"], region, auth["service"], "aws4_request"):
        key = _hmac(key, part)
    expected = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, auth["signature"]):
        raise S3Error(403, "SignatureDoesNotMatch", "The request signature we calculated does "
                      "not match the signature you provided. Check your key and signing method.")


def parse_authorization(header, region):
    match = AUTH_RE.match(header.strip())
    if not match:
        raise S3Error(400, "AuthorizationHeaderMalformed",
                      "The authorization header is malformed or not AWS4-HMAC-SHA256.")
    access_key, date, req_region, service, signed, signature = match.groups()
    for what, got, expected in (("service", service, "s3express"), ("region", req_region, region)):
        if got != expected:
            raise S3Error(400, "AuthorizationHeaderMalformed",
                          f"The {what} '{got}' is wrong; expecting '{expected}'.")
    return dict(access_key=access_key, date=date, service=service, signed_headers=signed,
                signature=signature)


# ---------------------------------------------------------------- HTTP handler

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "s3express-proxy"
    state: State = None  # set in main

    def log_message(self, format, *args):
        pass

    def setup(self):
        super().setup()
        self.state.count("connections_accepted")  # one per TCP connection: shows keep-alive

    # --- plumbing

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers, up to the empty line
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status, headers, body, reason=None, content_length=None):
        self.send_response(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)) if content_length is None
                         else content_length)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_error(self, err):
        request_id = secrets.token_hex(8).upper()
        body = (f"{XML_HEADER}<Error><Code>{err.code}</Code>"
                f"<Message>{xml_escape(err.message)}</Message>"
                f"<RequestId>{request_id}</RequestId></Error>").encode("utf-8")
        self._send(err.status, [("Content-Type", "application/xml"),
                                ("x-amz-request-id", request_id)], body)

    def _send_json(self, obj):
        self._send(200, [("Content-Type", "application/json")], json.dumps(obj).encode())

    def _handle(self):
        self.raw_path, _, self.raw_query = self.path.partition("?")
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return self._send_error(S3Error(400, "IncompleteBody", "Could not read the body."))
        try:
            if self.raw_path.startswith("/_proxy/"):
                return self._admin()
            self._s3(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except S3Error as err:
            if err.code in ("SignatureDoesNotMatch", "InvalidAccessKeyId"):
                self.state.count("signature_rejections")
            if err.code == "ExpiredToken":
                self.state.count("expired_rejections")
            self._send_error(err)
        except Exception:  # noqa: BLE001 - report it, keep serving
            traceback.print_exc(file=sys.stderr)
            self._send_error(S3Error(500, "InternalError", "The proxy failed on this request."))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    # --- admin

    def _admin(self):
        path = self.raw_path
        if self.command == "GET" and path == "/_proxy/stats":
            with self.state.lock:
                stats = dict(self.state.stats)
            return self._send_json(stats)
        if self.command == "POST" and path == "/_proxy/expire-sessions":
            return self._send_json({"expired": self.state.expire_all()})
        match = re.fullmatch(r"/_proxy/session-seconds/(\d+)", path)
        if self.command == "POST" and match:
            with self.state.lock:
                self.state.ttl = int(match.group(1))
            return self._send_json({"session_seconds": int(match.group(1))})
        raise S3Error(404, "NotFound", "Unknown admin endpoint.")

    # --- S3

    def _s3(self, body):
        args = self.state.args
        bucket, _, key = self.raw_path.lstrip("/").partition("/")
        if not BUCKET_RE.match(bucket):
            raise S3Error(400, "InvalidBucketName", "The bucket name is not a valid directory "
                          "bucket name (<base>--<az-id>--x-s3, path-style requests only).")
        query = urllib.parse.parse_qs(self.raw_query, keep_blank_values=True)
        create_session = self.command == "GET" and not key and "session" in query
        control = not key and not self.raw_query and self.command in ("PUT", "DELETE")
        header = self.headers.get("Authorization")
        if not header:
            raise S3Error(403, "AccessDenied", "Anonymous requests are not allowed.")
        auth = parse_authorization(header, args.region)
        if "x-amz-security-token" in self.headers:
            raise S3Error(400, "InvalidArgument",
                          "x-amz-security-token is not supported by S3 Express One Zone.")
        token = self.headers.get("x-amz-s3session-token")
        if create_session or control:
            if token is not None:
                raise S3Error(400, "InvalidArgument", "This request must not carry a session "
                              "token; sign it with your base credentials.")
            if auth["access_key"] != args.access_key:
                raise S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided "
                              "does not exist in our records.")
            verify_signature(self, auth, args.secret_key, args.region)
        else:
            if token is None:
                raise S3Error(403, "AccessDenied", "Zonal requests need a session token "
                              "(x-amz-s3session-token) from CreateSession.")
            if "x-amz-s3session-token" not in auth["signed_headers"].split(";"):
                raise S3Error(403, "AccessDenied", "x-amz-s3session-token must be signed.")
            with self.state.lock:
                session = self.state.sessions.get(token)
            if session is None:
                raise S3Error(403, "InvalidToken", "The provided token is malformed or "
                              "otherwise invalid.")
            if auth["access_key"] != session.access_key:
                raise S3Error(403, "InvalidAccessKeyId", "The access key id does not match "
                              "the session token.")
            if time.time() >= session.expires:
                raise S3Error(400, "ExpiredToken", "The provided token has expired.")
            verify_signature(self, auth, session.secret, args.region)
            if session.bucket != bucket:
                raise S3Error(403, "AccessDenied", "The session was created for another bucket.")
            if session.mode == "ReadOnly" and self.command in ("PUT", "POST", "DELETE"):
                raise S3Error(403, "AccessDenied", "The session is ReadOnly.")
        payload_hash = self.headers.get("x-amz-content-sha256")
        if payload_hash is None:
            raise S3Error(400, "InvalidRequest",
                          "Missing required header for this request: x-amz-content-sha256")
        if payload_hash != "UNSIGNED-PAYLOAD" and payload_hash != hashlib.sha256(body).hexdigest():
            raise S3Error(400, "XAmzContentSHA256Mismatch", "The provided "
                          "'x-amz-content-sha256' header does not match what was computed.")

        if create_session:
            return self._create_session(bucket)
        if control and self.command == "PUT":
            # moto would read an S3 Express CreateBucketConfiguration as a missing or wrong
            # LocationConstraint; the directory-bucket configuration means nothing to it.
            body = b"" if args.region == "us-east-1" else (
                "<CreateBucketConfiguration><LocationConstraint>"
                f"{args.region}</LocationConstraint></CreateBucketConfiguration>").encode()
        listing = self.command == "GET" and not key and query.get("list-type") == ["2"]
        if listing:
            self._check_listing(query)
        status, reason, headers, answer = self._forward(body)
        self._reply(status, reason, headers, self._shuffle(answer) if listing and status == 200
                    else answer)

    def _check_listing(self, query):
        prefix = query.get("prefix", [""])[0]
        if prefix and not prefix.endswith("/"):
            raise S3Error(400, "InvalidArgument",
                          "Prefixes must end in a delimiter '/' for directory buckets.")
        if "start-after" in query:
            raise S3Error(400, "InvalidArgument",
                          "start-after is not supported for directory buckets.")
        if query.get("delimiter", ["/"])[0] != "/":
            raise S3Error(400, "InvalidArgument",
                          "Only '/' is supported as a delimiter for directory buckets.")

    def _create_session(self, bucket):
        mode = self.headers.get("x-amz-create-session-mode", "ReadWrite")
        if mode not in ("ReadWrite", "ReadOnly"):
            raise S3Error(400, "InvalidArgument",
                          "x-amz-create-session-mode must be ReadWrite or ReadOnly.")
        status, _, _, _ = self._upstream("HEAD", "/" + bucket, {}, b"")
        if status == 404:
            raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist.")
        if status != 200:
            raise S3Error(503, "ServiceUnavailable", f"Upstream answered {status} to HEAD.")
        token, session = self.state.new_session(bucket, mode)
        expiration = datetime.datetime.fromtimestamp(session.expires, datetime.timezone.utc)
        body = (f'{XML_HEADER}<CreateSessionResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<Credentials><SessionToken>{token}</SessionToken>"
                f"<SecretAccessKey>{session.secret}</SecretAccessKey>"
                f"<AccessKeyId>{session.access_key}</AccessKeyId>"
                f"<Expiration>{expiration.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration>"
                "</Credentials></CreateSessionResult>").encode("utf-8")
        self._send(200, [("Content-Type", "application/xml"),
                         ("x-amz-request-id", secrets.token_hex(8).upper())], body)

    # --- upstream

    def _upstream(self, method, target, headers, body):
        upstream = urllib.parse.urlsplit(self.state.args.upstream)
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port or 80, timeout=120)
        try:
            headers = dict(headers, Host=upstream.netloc, **{"Content-Length": str(len(body))})
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, response.reason, response.getheaders(), data
        except OSError as err:
            raise S3Error(503, "ServiceUnavailable", f"Upstream unreachable: {err}") from err
        finally:
            conn.close()

    def _forward(self, body):
        headers = {}
        for name, value in self.headers.items():
            lower = name.lower()
            if lower in HOP_BY_HOP or lower in ("host", "x-amz-s3session-token"):
                continue
            headers[name] = value if name not in headers else headers[name] + "," + value
        target = self.raw_path + ("?" + self.raw_query if self.raw_query else "")
        self.state.count("requests_forwarded")
        return self._upstream(self.command, target, headers, body)

    def _shuffle(self, body):
        blocks = [m.group(0) for m in CONTENTS_RE.finditer(body)]
        if len(blocks) < 2:
            return body
        random.shuffle(blocks)
        shuffled = iter(blocks)
        self.state.count("listings_shuffled")
        return CONTENTS_RE.sub(lambda _: next(shuffled), body)

    def _reply(self, status, reason, headers, body):
        """Upstream's answer; for HEAD its Content-Length is kept, otherwise recomputed."""
        length, kept = None, []
        for name, value in headers:
            lower = name.lower()
            if lower == "content-length":
                length = value if self.command == "HEAD" else None
            elif lower not in HOP_BY_HOP and lower not in ("server", "date"):
                kept.append((name, value))
        self._send(status, kept, body, reason, length)


def main():
    parser = argparse.ArgumentParser(description="S3 Express One Zone emulating proxy for moto.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:5000")
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--session-seconds", type=int, default=300)
    args = parser.parse_args()
    Handler.state = State(args)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    # Exit 0 on SIGTERM: scripts that `wait` for it under `set -e` must not fail.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"s3express proxy listening on http://127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
