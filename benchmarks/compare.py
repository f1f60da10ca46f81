#!/usr/bin/env python3
"""Runs vecgo-bench ann and its peer on the same dataset in one run and prints the ratios.

  python3 benchmarks/compare.py --data benchmarks/data/c100k-128 [--indexes hnsw,ivf,flat] [--out results.json]
      [--filter-sweep 0.5,0.1,0.01,0.001] [--batch 1000]

Needs a release build (`swift build -c release --product vecgo-bench`) and `pip install hnswlib faiss-cpu numpy`.
Ratios > 1 mean vecgo is faster. For graphs and IVF, QPS is compared at equal recall: for each
target recall, the cheapest sweep point of each side that reaches it.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "..", ".build", "release", "vecgo-bench")


def at_recall(sweep, target, key):
    ok = [p for p in sweep if p["recall"] >= target]
    return max(ok, key=lambda p: p[key]) if ok else None


def filter_sweep(a, files):
    """Filtered search (equality and range filters) at each selectivity, hnsw and ivf: the planned
    search against the exact scan of the matching rows, with the planner's choice."""
    out = {}
    for index in ["hnsw", "ivf"]:
        extra = ["--index", index, "--m", str(a.m), "--ef-construction", str(a.ef_construction), "--nprobe", str(a.nprobe)]
        r = json.loads(subprocess.check_output([BENCH, "ann", *files, *extra, "--filter-selectivity", a.filter_sweep, "--json"]))
        out[index] = r
        print(f"\n== filtered {index} ({r['rows']} x {r['dimension']}, k {r['k']}): planned search vs exact scan of matching rows")
        for p in r["filters"]:
            ok = "ok " if p["recall"] >= 0.95 and p["qps_1_thread"] >= 0.95 * p["scan_qps_1_thread"] else "MISS"
            print(f"{ok} {p['filter']:8s} {p['selectivity']:6.3f} recall {p['recall']:.3f}  QPS 1 thread "
                  f"{p['qps_1_thread']:8.0f} vs scan {p['scan_qps_1_thread']:8.0f} (x{p['qps_1_thread'] / p['scan_qps_1_thread']:.2f})"
                  f"  all threads x{p['qps_all_threads'] / p['scan_qps_all_threads']:.2f}  [{p['plan_kind']}]")
    return out


def batch_case(a, files):
    """N queries at once on all threads: vecgo batch search vs faiss (IndexFlatL2, IndexIVFFlat at the same nprobe)."""
    out = {}
    base_files = files[:4]  # --base B --queries Q
    gt = files[4:]
    for index in ["flat", "ivf"]:
        r = json.loads(subprocess.check_output([BENCH, "ann", *base_files, *gt, "--index", index, "--batch", str(a.batch),
                                                "--nprobe", str(a.nprobe), "--peers", os.path.join(HERE, "peers.py"), "--json"]))
        out[index] = r
        print(f"\n== batch {index}: {r['batch']} queries at once, {r['threads']} threads ({r['rows']} x {r['dimension']}"
              + (f", nprobe {r['nprobe']}" if r.get("nprobe") else "") + ")")
        print(f"vecgo {r['qps_batch']:9.0f} QPS (recall {r['recall']:.3f})  {r['peer']} {r['peer_qps_batch']:9.0f} QPS "
              f"(recall {r.get('peer_recall', float('nan')):.3f})  ratio {r['qps_batch'] / r['peer_qps_batch']:.2f}")
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True, help="dataset prefix written by gen_dataset.py")
    p.add_argument("--indexes", default="hnsw,ivf,flat")
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--sq8-rerank", type=int, default=0, help="IVF: scan SQ8 codes, re-rank k x R with float32")
    p.add_argument("--out")
    p.add_argument("--filter-sweep", default="", help="also run the filter sweep at these selectivities (hnsw and ivf)")
    p.add_argument("--batch", type=int, default=0, help="also run the batch case: N queries at once, flat and ivf vs faiss")
    p.add_argument("--nprobe", type=int, default=8, help="filter sweep and batch: IVF nprobe")
    a = p.parse_args()
    files = ["--base", a.data + ".base.fvecs", "--queries", a.data + ".query.fvecs", "--groundtruth", a.data + ".gt.ivecs"]
    results = {}
    for index in a.indexes.split(","):
        extra = ["--index", index, "--m", str(a.m), "--ef-construction", str(a.ef_construction)]
        sq8 = ["--sq8-rerank", str(a.sq8_rerank)] if index == "ivf" and a.sq8_rerank else []
        ours = json.loads(subprocess.check_output([BENCH, "ann", *files, *extra, *sq8, "--json"]))
        peer = json.loads(subprocess.check_output([sys.executable, os.path.join(HERE, "peers.py"), *files, *extra]))
        results[index] = {"vecgo": ours, "peer": peer}
        print(f"\n== {index}: vecgo vs {peer['peer']} ({ours['rows']} x {ours['dimension']}, kernel {ours['kernel']})")
        print(f"build: vecgo {ours['build_seconds']:.2f} s, peer {peer['build_seconds']:.2f} s, ratio (peer/vecgo) "
              f"{peer['build_seconds'] / ours['build_seconds']:.2f}")
        print(f"memory per vector: vecgo {ours['memory_bytes_per_vector']:.0f} bytes")
        targets = [0.0] if index == "flat" else [0.80, 0.90, 0.95, 0.99]
        for t in targets:
            for key in ["qps_1_thread", "qps_all_threads"]:
                o, q = at_recall(ours["sweep"], t, key), at_recall(peer["sweep"], t, key)
                if not o or not q:
                    print(f"recall >= {t:.2f} {key}: not reached by {'vecgo' if not o else 'peer'}")
                    continue
                print(f"recall >= {t:.2f} {key:16s} vecgo {o[key]:9.0f} ({o['parameter']} {o['value']}, recall {o['recall']:.3f})"
                      f"  peer {q[key]:9.0f} ({q['parameter']} {q['value']}, recall {q['recall']:.3f})  ratio {o[key] / q[key]:.2f}")
    if a.filter_sweep:
        results["filter"] = filter_sweep(a, files)
    if a.batch:
        results["batch"] = batch_case(a, files)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
