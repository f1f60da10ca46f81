#!/usr/bin/env python3
"""Runs the in-memory peers on the same files as `vecgo-bench ann`, with the same parameters,
and prints one JSON document in vecgo-bench's shape.

  python3 benchmarks/peers.py --base B.fvecs --queries Q.fvecs --groundtruth G.ivecs --index hnsw --m 16 --ef-construction 200
  python3 benchmarks/peers.py ... --index ivf --nlist 316
  python3 benchmarks/peers.py ... --index flat
  python3 benchmarks/peers.py --base B --queries Q [--groundtruth G] --index flat|ivf --batch 1000 [--nprobe 8]
      (batch mode: the first N queries, repeated as needed, in one search call on all threads;
       prints {"peer", "qps_batch", "recall"})

hnsw -> hnswlib, ivf -> faiss IndexIVFFlat, flat -> faiss IndexFlatL2 (pip install hnswlib faiss-cpu).
"""
import argparse
import json
import os
import time

import numpy as np


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].copy().view(dtype)


def recall(found, truth, k):
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def timed_cpu(fn):
    """Wall seconds and this thread's CPU seconds (steadier when other processes share the
    cores; meaningful for work that runs on the calling thread)."""
    t, c = time.perf_counter(), time.thread_time()
    out = fn()
    return out, time.perf_counter() - t, time.thread_time() - c


def batch_mode(a, base, queries, truth):
    """faiss searching a batch of `a.batch` queries in one call on `a.threads` threads: best of five."""
    import faiss
    n, dim = base.shape
    batch = np.ascontiguousarray(queries[np.arange(a.batch) % len(queries)])
    faiss.omp_set_num_threads(a.threads)
    if a.index == "flat":
        idx = faiss.IndexFlatL2(dim)
        idx.add(base)
        peer = "faiss IndexFlatL2"
    elif a.index == "ivf":
        nlist = a.nlist or max(1, int(n ** 0.5))
        idx = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
        idx.train(base)
        idx.add(base)
        idx.nprobe = a.nprobe
        peer = f"faiss IndexIVFFlat nprobe {a.nprobe}"
    else:
        raise SystemExit("--batch runs flat or ivf")
    idx.search(batch, a.k)  # warm-up
    best, found = float("inf"), None
    for _ in range(5):  # best of five, as vecgo-bench does
        (_, found), t = timed(lambda: idx.search(batch, a.k))
        best = min(best, t)
    m = min(a.batch, len(queries))
    report = {"peer": peer, "index": a.index, "batch": a.batch, "threads": a.threads, "qps_batch": a.batch / best}
    if truth is not None:
        report["recall"] = recall(found[:m], truth[:m], a.k)
    return report


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--groundtruth")
    p.add_argument("--index", choices=["hnsw", "ivf", "flat"], required=True)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--nlist", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch", type=int, default=0, help="batch mode: N queries in one call (flat or ivf)")
    p.add_argument("--nprobe", type=int, default=8, help="batch mode, ivf: partitions probed")
    a = p.parse_args()
    base = read_vecs(a.base, np.float32)
    queries = read_vecs(a.queries, np.float32)
    truth = read_vecs(a.groundtruth, np.int32) if a.groundtruth else None
    if a.batch:
        print(json.dumps(batch_mode(a, base, queries, truth), indent=2))
        return
    if truth is None:
        p.error("--groundtruth is required outside batch mode")
    n, dim = base.shape
    k = a.k
    points = []
    report = {"rows": int(n), "dimension": int(dim), "queries": int(len(queries)), "k": k, "threads": a.threads}

    if a.index == "hnsw":
        import hnswlib
        idx = hnswlib.Index("l2", dim)
        idx.init_index(n, M=a.m, ef_construction=a.ef_construction, random_seed=1)
        # num_threads=1 runs on the calling thread, so its CPU time is the build's.
        _, build, build_cpu = timed_cpu(lambda: idx.add_items(base, np.arange(n), num_threads=1))
        report.update(peer="hnswlib", index="hnsw", m=a.m, ef_construction=a.ef_construction, build_seconds=build,
                      build_cpu_seconds=build_cpu, build_threads=1)
        for ef in [10, 16, 32, 48, 64, 96, 128, 256]:
            idx.set_ef(ef)
            # All queries in one call on one thread: no Python overhead per query, so the
            # single-thread figure is hnswlib's own speed (stricter for vecgo than a per-query loop).
            (found, _), t1, c1 = timed_cpu(lambda: idx.knn_query(queries, k, num_threads=1))
            _, tn = timed(lambda: idx.knn_query(queries, k, num_threads=a.threads))
            points.append({"parameter": "ef", "value": ef, "recall": recall(found, truth, k),
                           "qps_1_thread": len(queries) / t1, "qps_all_threads": len(queries) / tn,
                           "qps_1_thread_cpu": len(queries) / c1})
    else:
        import faiss
        if a.index == "flat":
            idx = faiss.IndexFlatL2(dim)
            _, build = timed(lambda: idx.add(base))
            sweep = [("exact", 0)]
            report.update(peer="faiss IndexFlatL2", index="flat")
        else:
            nlist = a.nlist or max(1, int(n ** 0.5))
            quantizer = faiss.IndexFlatL2(dim)
            idx = faiss.IndexIVFFlat(quantizer, dim, nlist)
            faiss.omp_set_num_threads(a.threads)

            def build_ivf():
                idx.train(base)
                idx.add(base)
            _, build = timed(build_ivf)
            sweep = [("nprobe", v) for v in [1, 2, 4, 8, 16, 32, 64] if v <= nlist]
            report.update(peer="faiss IndexIVFFlat", index="ivf", nlist=nlist)
        report["build_seconds"] = build
        for name, value in sweep:
            if name == "nprobe":
                idx.nprobe = value
            faiss.omp_set_num_threads(1)
            found, t1, c1 = timed_cpu(lambda: [idx.search(q[None, :], k)[1][0] for q in queries])
            faiss.omp_set_num_threads(a.threads)
            _, tn = timed(lambda: idx.search(queries, k))
            points.append({"parameter": name, "value": value, "recall": recall(found, truth, k),
                           "qps_1_thread": len(queries) / t1, "qps_all_threads": len(queries) / tn,
                           "qps_1_thread_cpu": len(queries) / c1})
    report["sweep"] = points
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
