"""Self-test of s3express_proxy.py: starts a moto_server and the proxy on free ports, then drives
the proxy with a small SigV4 signing client of its own (independent of the proxy's verifier).

Usage: python3 Tests/s3express-proxy/selftest.py     (exits non-zero if a check fails)
"""
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REGION = "us-east-1"
BASE_KEY, BASE_SECRET = "express-test-key", "selftest-secret-0123456789"
BUCKET = "vecgo-st--use1-az4--x-s3"
OTHER_BUCKET = "vecgo-other--use1-az4--x-s3"

results = []


def check(name, condition, detail=""):
    results.append((name, bool(condition)))
    print(("PASS " if condition else "FAIL ") + name + ("" if condition else f"  -- {detail}"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- SigV4 signing client

def encode_key(key):
    """Object key to a URI path: every byte percent-encoded except unreserved and '/'."""
    return urllib.parse.quote(key, safe="/-_.~")


def encode_query(pairs):
    """[(name, value or None)] -> raw query; a None value is sent as a bare name."""
    out = []
    for name, value in pairs:
        name = urllib.parse.quote(name, safe="-_.~")
        out.append(name if value is None else name + "=" + urllib.parse.quote(value, safe="-_.~"))
    return "&".join(out)


def signing_key(secret, date, region, service):
    key = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign(method, host, path, query_pairs, headers, body, access_key, secret, token=None,
         payload_hash=None, service="s3express", region=REGION):
    """Returns the headers to send (with Authorization)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    headers = {k.lower(): v for k, v in headers.items()}
    headers["host"] = host
    headers["x-amz-date"] = amz_date
    headers["x-amz-content-sha256"] = payload_hash or hashlib.sha256(body).hexdigest()
    if token is not None:
        headers["x-amz-s3session-token"] = token
    names = sorted(headers)
    canonical_headers = "".join(f"{n}:{' '.join(str(headers[n]).split())}\n" for n in names)
    encoded = sorted((urllib.parse.quote(n, safe="-_.~"),
                      urllib.parse.quote(v or "", safe="-_.~")) for n, v in query_pairs)
    canonical_query = "&".join(f"{n}={v}" for n, v in encoded)
    canonical_request = "\n".join([method, path, canonical_query, canonical_headers,
                                   ";".join(names), headers["x-amz-content-sha256"]])
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    signature = hmac.new(signing_key(secret, date, region, service), string_to_sign.encode(),
                         hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return headers


class Client:
    def __init__(self, port):
        self.port = port
        self.host = f"127.0.0.1:{port}"

    def request(self, method, path, query=(), headers=None, body=b"", creds=None,
                conn=None, tamper=None, send_target=None, **sign_args):
        """creds: (access_key, secret, token or None). Returns (status, headers, body)."""
        creds = creds or (BASE_KEY, BASE_SECRET, None)
        signed = sign(method, self.host, path, list(query), headers or {}, body,
                      creds[0], creds[1], creds[2], **sign_args)
        if tamper:
            tamper(signed)
        target = send_target or path + ("?" + encode_query(query) if query else "")
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, target, body=body, headers=signed)
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            if own:
                conn.close()

    def admin(self, method, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=b"" if method == "POST" else None)
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()


def error_code(body):
    match = re.search(rb"<Code>([^<]*)</Code>", body)
    return match.group(1).decode() if match else None


def session(client, bucket=BUCKET, mode=None, creds=None):
    headers = {"x-amz-create-session-mode": mode} if mode else {}
    status, _, body = client.request("GET", "/" + bucket, [("session", None)], headers,
                                     creds=creds)
    if status != 200:
        return status, body
    text = body.decode()
    get = lambda tag: re.search(f"<{tag}>([^<]*)</{tag}>", text).group(1)  # noqa: E731
    return status, (get("AccessKeyId"), get("SecretAccessKey"), get("SessionToken"),
                    get("Expiration"))


# ---------------------------------------------------------------- the checks

def run_checks(client):
    obj = lambda key, bucket=BUCKET: f"/{bucket}/{encode_key(key)}"  # noqa: E731

    status, _, body = client.request("PUT", "/" + BUCKET)
    check("CreateBucket", status == 200, (status, body))
    status, _, body = client.request("PUT", "/" + OTHER_BUCKET)
    check("CreateBucket (second)", status == 200, (status, body))
    status, _, body = client.request("PUT", "/plain-bucket")
    check("plain bucket name -> 400 InvalidBucketName",
          status == 400 and error_code(body) == "InvalidBucketName", (status, body))

    status, result = session(client)
    check("CreateSession", status == 200 and result[0].startswith("ASIA"), (status, result))
    creds = result[:3]
    expires = datetime.datetime.strptime(result[3], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    ttl = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    check("CreateSession expires in about 300 s", 290 < ttl <= 301, ttl)
    check("CreateSession expiration is ISO 8601 UTC",
          re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result[3]), result[3])
    status, body = session(client, "nothere--use1-az4--x-s3")
    check("CreateSession on a missing bucket -> 404 NoSuchBucket",
          status == 404 and error_code(body) == "NoSuchBucket", (status, body))

    status, _, body = client.request("PUT", obj("dir/hello.txt"), body=b"hello", creds=creds)
    check("PUT object", status == 200, (status, body))
    status, _, body = client.request("GET", obj("dir/hello.txt"), creds=creds)
    check("GET object", status == 200 and body == b"hello", (status, body))
    status, headers, body = client.request("HEAD", obj("dir/hello.txt"), creds=creds)
    check("HEAD object", status == 200 and headers.get("content-length") == "5" and body == b"",
          (status, headers))
    status, _, body = client.request("DELETE", obj("dir/hello.txt"), creds=creds)
    check("DELETE object", status == 204, (status, body))
    status, _, body = client.request("GET", obj("dir/hello.txt"), creds=creds)
    check("GET deleted object -> 404 NoSuchKey",
          status == 404 and error_code(body) == "NoSuchKey", (status, body))

    status1, _, _ = client.request("PUT", obj("cond"), headers={"If-None-Match": "*"},
                                   body=b"1", creds=creds)
    status2, _, body = client.request("PUT", obj("cond"), headers={"If-None-Match": "*"},
                                      body=b"2", creds=creds)
    check("conditional PUT If-None-Match: * -> 200 then 412",
          status1 == 200 and status2 == 412, (status1, status2, body))

    for key in ("with space/a b.txt", "plus+and=equals", "ünïcødé/日本語 ✓", "tilde~star*"):
        status, _, body = client.request("PUT", obj(key), body=key.encode(), creds=creds)
        status_get, _, got = client.request("GET", obj(key), creds=creds)
        check(f"key {key!r} PUT+GET", status == 200 and status_get == 200
              and got == key.encode(), (status, status_get, body, got))

    status, _, body = client.request("PUT", obj("unsigned"), body=b"x", creds=creds,
                                     payload_hash="UNSIGNED-PAYLOAD")
    check("PUT with UNSIGNED-PAYLOAD", status == 200, (status, body))
    status, _, body = client.request("PUT", obj("bad-hash"), body=b"x", creds=creds,
                                     payload_hash="0" * 64)
    check("wrong x-amz-content-sha256 -> 400 XAmzContentSHA256Mismatch",
          status == 400 and error_code(body) == "XAmzContentSHA256Mismatch", (status, body))

    signed = sign("PUT", client.host, obj("chunked"), [], {"Transfer-Encoding": "chunked"},
                  b"abcdef", *creds)
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
    try:
        conn.request("PUT", obj("chunked"), body=iter([b"abc", b"def"]), headers=signed,
                     encode_chunked=True)
        response = conn.getresponse()
        status = response.status
        response.read()  # the connection stays usable after a chunked body:
        status_get, _, got = client.request("GET", obj("chunked"), creds=creds, conn=conn)
    finally:
        conn.close()
    check("chunked PUT, then GET on the same connection",
          status == 200 and status_get == 200 and got == b"abcdef", (status, status_get, got))

    # Multipart passes through.
    status, _, body = client.request("POST", obj("mp/big"), [("uploads", None)], creds=creds)
    upload = re.search(rb"<UploadId>([^<]*)</UploadId>", body)
    check("CreateMultipartUpload", status == 200 and upload, (status, body))
    upload_id = upload.group(1).decode() if upload else ""
    status, headers, body = client.request(
        "PUT", obj("mp/big"), [("partNumber", "1"), ("uploadId", upload_id)], body=b"part-1",
        creds=creds)
    etag = headers.get("etag", "")
    check("UploadPart", status == 200 and etag, (status, body))
    complete = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag>"
                "</Part></CompleteMultipartUpload>").encode()
    status, _, body = client.request("POST", obj("mp/big"), [("uploadId", upload_id)],
                                     body=complete, creds=creds)
    status_get, _, got = client.request("GET", obj("mp/big"), creds=creds)
    check("CompleteMultipartUpload", status == 200 and got == b"part-1", (status, body, got))

    # Listings: all keys, in an order that changes.
    for i in range(20):
        client.request("PUT", obj(f"list/k{i:02d}"), body=b"v", creds=creds)
    status, _, body = client.request("GET", "/" + BUCKET, [("list-type", "2")], creds=creds)
    keys = [urllib.parse.unquote(k) for k in re.findall(r"<Key>([^<]*)</Key>", body.decode())]
    check("ListObjectsV2 prefix '' lists every key",
          status == 200 and {f"list/k{i:02d}" for i in range(20)} <= set(keys)
          and "ünïcødé/日本語 ✓" in keys and len(keys) == len(set(keys)), (status, keys))
    orders = set()
    for _ in range(5):
        status, _, body = client.request("GET", "/" + BUCKET,
                                         [("list-type", "2"), ("prefix", "list/")], creds=creds)
        listed = re.findall(rb"<Key>([^<]*)</Key>", body)
        orders.add(tuple(listed))
    check("ListObjectsV2 prefix 'list/' has 20 keys, order differs between calls",
          status == 200 and len(listed) == 20 and len(orders) > 1, (status, len(orders)))
    status, _, body = client.request("GET", "/" + BUCKET, [("list-type", "2"),
                                                            ("prefix", "abc")], creds=creds)
    check("ListObjectsV2 prefix 'abc' -> 400 InvalidArgument",
          status == 400 and error_code(body) == "InvalidArgument", (status, body))
    status, _, body = client.request("GET", "/" + BUCKET, [("list-type", "2"),
                                                            ("start-after", "a")], creds=creds)
    check("ListObjectsV2 start-after -> 400 InvalidArgument",
          status == 400 and error_code(body) == "InvalidArgument", (status, body))

    # Authentication failures.
    status, body = session(client, creds=(BASE_KEY, "wrong-secret", None))
    check("CreateSession with a wrong secret -> 403 SignatureDoesNotMatch",
          status == 403 and error_code(body) == "SignatureDoesNotMatch", (status, body))
    status, body = session(client, creds=("nobody", BASE_SECRET, None))
    check("CreateSession with an unknown key -> 403 InvalidAccessKeyId",
          status == 403 and error_code(body) == "InvalidAccessKeyId", (status, body))

    def tamper(headers):
        auth = headers["authorization"]
        last = "0" if auth[-1] != "0" else "1"
        headers["authorization"] = auth[:-1] + last
    status, _, body = client.request("GET", obj("cond"), creds=creds, tamper=tamper)
    check("tampered signature -> 403 SignatureDoesNotMatch",
          status == 403 and error_code(body) == "SignatureDoesNotMatch", (status, body))
    status, _, body = client.request("GET", "/" + BUCKET, [("list-type", "2"),
                                                            ("prefix", "list/")], creds=creds,
                                     send_target=f"/{BUCKET}?list-type=2&prefix=dir%2F")
    check("query changed after signing -> 403 SignatureDoesNotMatch",
          status == 403 and error_code(body) == "SignatureDoesNotMatch", (status, body))
    status, _, body = client.request("GET", obj("plus+and=equals"), creds=creds,
                                     send_target=f"/{BUCKET}/plus+and=equals")
    check("path sent unencoded after signing encoded -> 403 SignatureDoesNotMatch",
          status == 403 and error_code(body) == "SignatureDoesNotMatch", (status, body))
    status, _, body = client.request("GET", obj("cond"), creds=(creds[0], creds[1], "bogus"))
    check("unknown session token -> 403 InvalidToken",
          status == 403 and error_code(body) == "InvalidToken", (status, body))
    status, _, body = client.request("GET", obj("cond"), creds=(creds[0], creds[1], None))
    check("zonal request without session token -> 403", status == 403, (status, body))
    status, _, body = client.request("GET", obj("cond"), creds=creds,
                                     headers={"x-amz-security-token": "t"})
    check("x-amz-security-token -> 400 InvalidArgument",
          status == 400 and error_code(body) == "InvalidArgument", (status, body))
    status, _, body = client.request("GET", obj("cond"), creds=creds, service="s3")
    check("service 's3' instead of 's3express' -> rejected", status in (400, 403), status)
    status, _, body = client.request("GET", obj("cond", OTHER_BUCKET), creds=creds)
    check("session used on another bucket -> 403 AccessDenied",
          status == 403 and error_code(body) == "AccessDenied", (status, body))

    # ReadOnly sessions.
    status, result = session(client, mode="ReadOnly")
    ro = result[:3]
    status, _, body = client.request("GET", obj("cond"), creds=ro)
    check("ReadOnly session GET", status == 200 and body == b"1", (status, body))
    status, _, body = client.request("PUT", obj("ro"), body=b"x", creds=ro)
    check("ReadOnly session PUT -> 403 AccessDenied",
          status == 403 and error_code(body) == "AccessDenied", (status, body))

    # Keep-alive: several requests (error, HEAD, GET) over one connection.
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
    try:
        answers = [client.request("GET", obj("cond"), creds=creds, conn=conn)[0]]
        sock = conn.sock
        answers.append(client.request("GET", obj("nothing-here"), creds=creds, conn=conn)[0])
        answers.append(client.request("HEAD", obj("cond"), creds=creds, conn=conn)[0])
        answers.append(client.request("GET", obj("cond"), creds=creds, conn=conn)[0])
        check("keep-alive: four requests over one connection",
              answers == [200, 404, 200, 200] and conn.sock is sock, answers)
    finally:
        conn.close()

    # Session lifetime.
    client.admin("POST", "/_proxy/session-seconds/1")
    status, short = session(client)
    client.admin("POST", "/_proxy/session-seconds/300")
    time.sleep(1.3)
    status, _, body = client.request("GET", obj("cond"), creds=short[:3])
    check("session past its TTL -> 400 ExpiredToken",
          status == 400 and error_code(body) == "ExpiredToken", (status, body))
    expired = client.admin("POST", "/_proxy/expire-sessions")
    status, _, body = client.request("GET", obj("cond"), creds=creds)
    check("expire-sessions -> 400 ExpiredToken with its message",
          status == 400 and error_code(body) == "ExpiredToken"
          and b"The provided token has expired." in body and expired.get("expired", 0) >= 3,
          (status, body, expired))
    status, fresh = session(client)
    status, _, body = client.request("GET", obj("cond"), creds=fresh[:3])
    check("a new session works after expire-sessions", status == 200, (status, body))

    # DeleteBucket (control plane) after emptying the other bucket, and stats.
    status, _, body = client.request("DELETE", "/" + OTHER_BUCKET)
    check("DeleteBucket", status == 204, (status, body))
    stats = client.admin("GET", "/_proxy/stats")
    check("stats counted", stats["sessions_created"] >= 4 and stats["expired_rejections"] >= 2
          and stats["signature_rejections"] >= 3 and stats["requests_forwarded"] > 20
          and stats["listings_shuffled"] >= 5, stats)


def main():
    moto_port, proxy_port = free_port(), free_port()
    logdir = tempfile.mkdtemp(prefix="s3express-selftest-")
    moto_log = open(os.path.join(logdir, "moto.log"), "w")
    proxy_log = open(os.path.join(logdir, "proxy.log"), "w")
    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=moto_log, stderr=subprocess.STDOUT)
    proxy = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "s3express_proxy.py"), "--port", str(proxy_port),
         "--upstream", f"http://127.0.0.1:{moto_port}", "--access-key", BASE_KEY,
         "--secret-key", BASE_SECRET], stdout=subprocess.PIPE, stderr=proxy_log, text=True)
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", moto_port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        ready = proxy.stdout.readline().strip()
        check("proxy prints its ready line",
              ready == f"s3express proxy listening on http://127.0.0.1:{proxy_port}", ready)
        run_checks(Client(proxy_port))
    except Exception as err:  # noqa: BLE001
        check("self-test ran to the end", False, repr(err))
        raise
    finally:
        proxy.terminate()
        moto.terminate()
        proxy_status = proxy.wait(10)
        moto.wait(10)
        moto_log.close()
        proxy_log.close()
    stderr = open(os.path.join(logdir, "proxy.log")).read()
    check("proxy exits 0 on SIGTERM", proxy_status == 0, proxy_status)
    check("proxy wrote nothing to stderr", stderr == "", stderr[-2000:])
    check("secret never in proxy output", BASE_SECRET not in stderr)
    failed = [name for name, ok in results if not ok]
    print(f"\n{len(results) - len(failed)}/{len(results)} checks passed"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
