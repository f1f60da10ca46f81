#!/usr/bin/env python3
"""LanceDB peer of the cold-query benchmark: writes .fvecs vectors as a LanceDB table on an
S3-compatible endpoint, builds its index, then measures open, the cold first query, warm
queries and recall@k from a fresh process.

  pip install lancedb pylance numpy
  python3 benchmarks/lancedb_peer.py --base B.fvecs --queries Q.fvecs --groundtruth G.ivecs \
      --endpoint http://127.0.0.1:PORT --bucket BUCKET [--prefix P] --index ivf_pq|ivf_flat|flat \
      [--nprobes 20] [--refine-factor R] [--k 10] [--max-queries N] [--json]

Steps:
  1. deletes every object under s3://BUCKET/PREFIX (creating the bucket if needed), then writes
     the base vectors (column `vector`, row number in `id`) as table `vectors` of the LanceDB
     database s3://BUCKET/PREFIX (timed: write_s), and builds the index (timed: index_s):
     IVF_PQ with num_partitions = sqrt(N) and num_sub_vectors = dim/8 (8 dimensions per code),
     IVF_FLAT with sqrt(N) partitions, or none for `flat` (every query scans all rows);
  2. starts this script again in a fresh process (`--phase read`), so no cache of the writer
     survives, which times connect + open_table (open_ms), the first query (cold_first_query_ms),
     one pass over all queries (recall, and the warm-up), then a second pass (warm_p50_ms,
     warm_p99_ms).
When --endpoint is benchmarks/latency_proxy.py, the proxy's counters (GET /_proxy/stats) are
read around each step: *_requests and *_bytes (bytes sent by the proxy; for writes, *_bytes_in).
Without the proxy those keys are null.

Storage options given to LanceDB (object_store): aws_endpoint, allow_http, fixed test keys
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, default "testing"), region us-east-1, path-style
requests. Rust-side log lines are limited to errors unless LANCE_LOG / LANCEDB_LOG are set.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
import urllib.request

os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("LANCEDB_LOG", "error")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fvecs import read_fvecs, read_ivecs  # noqa: E402

TABLE = "vectors"


# ---------------------------------------------------------------- helpers

def storage_options(a):
    return {
        "aws_endpoint": a.endpoint,
        "allow_http": "true",
        "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        "aws_region": "us-east-1",
        "aws_virtual_hosted_style_request": "false",
    }


def db_uri(a):
    return f"s3://{a.bucket}/{a.prefix.strip('/')}"


def proxy_stats(a):
    """The latency proxy's counters, or None when --endpoint is not the proxy."""
    try:
        with urllib.request.urlopen(a.endpoint.rstrip("/") + "/_proxy/stats", timeout=5) as r:
            stats = json.load(r)
        return stats if isinstance(stats, dict) and "requests" in stats else None
    except (OSError, ValueError):
        return None


def delta(before, after):
    """(requests, bytes_out, bytes_in) between two proxy snapshots, or Nones."""
    if before is None or after is None:
        return None, None, None
    return (after["requests"] - before["requests"], after["bytes_out"] - before["bytes_out"],
            after["bytes_in"] - before["bytes_in"])


def s3_client(a):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=a.endpoint, region_name="us-east-1",
                        aws_access_key_id=storage_options(a)["aws_access_key_id"],
                        aws_secret_access_key=storage_options(a)["aws_secret_access_key"],
                        config=Config(s3={"addressing_style": "path"}))


def list_prefix(s3, a):
    prefix = a.prefix.strip("/") + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=a.bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def clear_prefix(a):
    """Creates the bucket if needed and deletes what an earlier run left under the prefix."""
    s3 = s3_client(a)
    try:
        s3.head_bucket(Bucket=a.bucket)
    except Exception:  # noqa: BLE001 - missing bucket (404) or any other answer: try to create it
        s3.create_bucket(Bucket=a.bucket)
    keys = [o["Key"] for o in list_prefix(s3, a)]
    for s in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=a.bucket, Delete={"Objects": [{"Key": k} for k in keys[s:s + 1000]]})
    return len(keys)


def build_query(tbl, a, q):
    query = tbl.search(q, vector_column_name="vector").distance_type("l2").limit(a.k).select(["id"])
    if a.index == "flat":
        return query.bypass_vector_index()
    query = query.nprobes(a.nprobes)
    if a.refine_factor:
        query = query.refine_factor(a.refine_factor)
    return query


def percentile(values, p):
    return float(np.percentile(np.asarray(values), p)) if values else None


# ---------------------------------------------------------------- phase 1: write + index

def write_phase(a):
    import lancedb
    import pyarrow as pa

    base = read_fvecs(a.base)
    n, dim = base.shape
    table = pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(base.reshape(-1)), dim),
    })
    removed = clear_prefix(a)
    report = dict(peer="lancedb", index=a.index, rows=int(n), dim=int(dim), k=a.k,
                  endpoint=a.endpoint, uri=db_uri(a), objects_removed_before=removed)

    s0 = proxy_stats(a)
    t = time.perf_counter()
    db = lancedb.connect(db_uri(a), storage_options=storage_options(a))
    tbl = db.create_table(TABLE, table, mode="overwrite")
    report["write_s"] = time.perf_counter() - t
    s1 = proxy_stats(a)

    if a.index == "flat":
        report["index_s"] = 0.0
    else:
        from lancedb.index import IvfFlat, IvfPq
        partitions = a.num_partitions or max(1, round(math.sqrt(n)))
        # LanceDB trains on num_partitions * sample_rate rows and drops partitions when the table
        # has fewer (default 256 per partition); small tables get a smaller rate instead.
        sample_rate = max(1, min(256, n // partitions))
        if a.index == "ivf_pq":
            sub_vectors = a.num_sub_vectors or max(1, dim // 8)
            config = IvfPq(distance_type="l2", num_partitions=partitions, num_sub_vectors=sub_vectors,
                           sample_rate=sample_rate)
            report["num_sub_vectors"] = sub_vectors
        else:
            config = IvfFlat(distance_type="l2", num_partitions=partitions, sample_rate=sample_rate)
        report.update(num_partitions=partitions, nprobes=a.nprobes, refine_factor=a.refine_factor or None)
        t = time.perf_counter()
        tbl.create_index("vector", config=config)  # with config, the first argument is the column
        report["index_s"] = time.perf_counter() - t
    s2 = proxy_stats(a)

    report["write_requests"], _, report["write_bytes_in"] = delta(s0, s1)
    report["index_requests"], report["index_bytes"], report["index_bytes_in"] = delta(s1, s2)
    objects = list(list_prefix(s3_client(a), a))
    report["stored_objects"] = len(objects)
    report["stored_bytes"] = sum(o["Size"] for o in objects)
    return report


# ---------------------------------------------------------------- phase 2: read (fresh process)

def read_phase(a):
    import lancedb

    queries = read_fvecs(a.queries)
    truth = read_ivecs(a.groundtruth)
    if a.max_queries:
        queries, truth = queries[: a.max_queries], truth[: a.max_queries]
    out = {}

    s0 = proxy_stats(a)
    t = time.perf_counter()
    db = lancedb.connect(db_uri(a), storage_options=storage_options(a))
    tbl = db.open_table(TABLE)
    out["open_ms"] = (time.perf_counter() - t) * 1000
    s1 = proxy_stats(a)
    t = time.perf_counter()
    build_query(tbl, a, queries[0]).to_arrow()
    out["cold_first_query_ms"] = (time.perf_counter() - t) * 1000
    s2 = proxy_stats(a)
    out["open_requests"], out["open_bytes"], _ = delta(s0, s1)
    out["cold_first_query_requests"], out["cold_first_query_bytes"], _ = delta(s1, s2)

    found, first_pass = [], []
    for q in queries:  # pass 1: recall, and warms whatever LanceDB caches
        t = time.perf_counter()
        ids = build_query(tbl, a, q).to_arrow()["id"].to_numpy()
        first_pass.append((time.perf_counter() - t) * 1000)
        found.append(ids)
    after_pass1 = proxy_stats(a)
    warm = []
    for q in queries:  # pass 2: warm latencies
        t = time.perf_counter()
        build_query(tbl, a, q).to_arrow()
        warm.append((time.perf_counter() - t) * 1000)
    after_pass2 = proxy_stats(a)

    k = a.k
    out[f"recall_at_{k}"] = float(np.mean([len(set(f[:k].tolist()) & set(g[:k].tolist())) / k
                                           for f, g in zip(found, truth)]))
    out["queries"] = len(queries)
    out["first_pass_p50_ms"] = percentile(first_pass, 50)
    out["warm_p50_ms"] = percentile(warm, 50)
    out["warm_p99_ms"] = percentile(warm, 99)
    out["warm_mean_ms"] = float(np.mean(warm))
    req, sent, _ = delta(after_pass1, after_pass2)
    out["warm_requests_per_query"] = None if req is None else req / len(queries)
    out["warm_bytes_per_query"] = None if sent is None else sent / len(queries)
    req, sent, _ = delta(s2, after_pass1)
    out["first_pass_requests_per_query"] = None if req is None else req / len(queries)
    out["index_stats"] = None
    if a.index != "flat":
        try:  # informative only: how LanceDB describes the index it built
            stats = tbl.index_stats("vector_idx")
            out["index_stats"] = {name: str(v) for name, v in vars(stats).items()} if stats else None
        except Exception:  # noqa: BLE001
            pass
    return out


# ---------------------------------------------------------------- main

def print_table(r):
    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)
    keys = ["peer", "lancedb_version", "pylance_version", "index", "rows", "dim", "num_partitions",
            "num_sub_vectors", "nprobes", "refine_factor", "write_s", "write_requests", "index_s",
            "index_requests", "stored_bytes", "stored_objects", "open_ms", "open_requests", "open_bytes",
            "cold_first_query_ms", "cold_first_query_requests", "cold_first_query_bytes",
            "warm_p50_ms", "warm_p99_ms", "warm_requests_per_query", "warm_bytes_per_query",
            f"recall_at_{r['k']}", "queries"]
    for key in keys:
        if key in r:
            print(f"{key:28s} {fmt(r[key])}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--groundtruth", required=True)
    p.add_argument("--endpoint", required=True, help="S3-compatible endpoint, e.g. the latency proxy")
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", help="default: lancedb-INDEX")
    p.add_argument("--index", choices=["ivf_pq", "ivf_flat", "flat"], default="ivf_pq")
    p.add_argument("--nprobes", type=int, default=20, help="LanceDB's default is 20")
    p.add_argument("--refine-factor", type=int, default=0, help="re-rank k x R candidates with full vectors; 0 = off")
    p.add_argument("--num-partitions", type=int, default=0, help="default sqrt(rows)")
    p.add_argument("--num-sub-vectors", type=int, default=0, help="default dim/8")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--max-queries", type=int, default=0,
                   help="use only the first N queries (recall and warm passes); 0 = all")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--phase", choices=["all", "read"], default="all", help=argparse.SUPPRESS)
    a = p.parse_args()
    a.prefix = a.prefix or f"lancedb-{a.index}"

    if a.phase == "read":
        json.dump(read_phase(a), sys.stdout)
        return

    import lance
    import lancedb
    report = dict(lancedb_version=lancedb.__version__, pylance_version=lance.__version__)
    report.update(write_phase(a))
    child = [sys.executable, os.path.abspath(__file__), "--phase", "read"]
    for name in ["base", "queries", "groundtruth", "endpoint", "bucket", "prefix", "index", "nprobes",
                 "refine_factor", "k", "max_queries"]:
        child += ["--" + name.replace("_", "-"), str(getattr(a, name))]
    done = subprocess.run(child, stdout=subprocess.PIPE, check=True)
    report.update(json.loads(done.stdout))
    if a.json:
        print(json.dumps(report))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
