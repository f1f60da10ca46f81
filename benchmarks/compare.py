#!/usr/bin/env python3
"""Runs vecgo-bench ann and its peer on the same dataset in one run and prints the ratios.

  python3 benchmarks/compare.py --data benchmarks/data/c100k-128 [--indexes hnsw,ivf,flat] [--out results.json]

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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True, help="dataset prefix written by gen_dataset.py")
    p.add_argument("--indexes", default="hnsw,ivf,flat")
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--sq8-rerank", type=int, default=0, help="IVF: scan SQ8 codes, re-rank k x R with float32")
    p.add_argument("--out")
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
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
