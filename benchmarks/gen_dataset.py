#!/usr/bin/env python3
"""Writes a benchmark dataset as standard .fvecs/.ivecs files (numpy only).

  python3 benchmarks/gen_dataset.py --kind clustered --n 100000 --dim 128 --queries 1000 --out benchmarks/data/c100k-128

Kinds: `clustered` (Gaussian mixture: 100 centres, sd 0.1 around unit-cube centres),
`uniform` (uniform in [-1, 1]) and `hard` (anisotropic Gaussian mixture: 200 clusters of
Zipf-like sizes, each with its own random rotation, a decaying spectrum of axis scales and an
overall scale drawn log-uniformly over 10x; queries drawn from the same mixture). Ground truth
(exact L2 top-100, float64) is computed in batches.

The three sets of `compare.py`:
  --kind clustered --n 100000 --dim 128 --out benchmarks/data/c100k-128
  --kind clustered --n 50000 --dim 768 --out benchmarks/data/c50k-768
  --kind hard --n 100000 --dim 96 --out benchmarks/data/hard100k-96
"""
import argparse
import os

import numpy as np


def write_vecs(path, rows, dtype):
    rows = np.ascontiguousarray(rows, dtype=dtype)
    n, d = rows.shape
    out = np.empty((n, d + 1), dtype=np.int32)
    out[:, 0] = d
    out[:, 1:] = rows.view(np.int32)
    out.tofile(path)


def hard_mixture(rng, total, dim, clusters=200):
    """Anisotropic clusters of uneven sizes and scales: what makes graphs and IVF work harder
    than on round, equal clusters (a query near a small tight cluster, a wide cluster
    overlapping others, most variance in few directions of each cluster)."""
    weights = 1.0 / np.arange(1, clusters + 1) ** 1.1          # Zipf-like sizes
    weights /= weights.sum()
    members = rng.choice(clusters, size=total, p=weights)
    centres = rng.normal(0, 1, (clusters, dim))
    spectrum = np.arange(1, dim + 1, dtype=np.float64) ** -0.8   # variance falls along the axes
    data = np.empty((total, dim), dtype=np.float32)
    for c in range(clusters):
        rows = np.flatnonzero(members == c)
        if len(rows) == 0:
            continue
        rotation, _ = np.linalg.qr(rng.normal(0, 1, (dim, dim)))
        scale = 0.25 * np.exp(rng.uniform(np.log(0.3), np.log(3.0)))  # per-cluster scale, 10x range
        z = rng.normal(0, 1, (len(rows), dim)) * (spectrum * scale)
        data[rows] = (centres[c] + z @ rotation.T).astype(np.float32)
    return data


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kind", choices=["clustered", "uniform", "hard"], default="clustered")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--gt", type=int, default=100)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", required=True, help="path prefix: writes PREFIX.base.fvecs, .query.fvecs, .gt.ivecs")
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    total = a.n + a.queries
    if a.kind == "clustered":
        centres = rng.uniform(-1, 1, (100, a.dim)).astype(np.float32)
        data = centres[rng.integers(0, 100, total)] + rng.normal(0, 0.1, (total, a.dim)).astype(np.float32)
    elif a.kind == "hard":
        data = hard_mixture(rng, total, a.dim)
    else:
        data = rng.uniform(-1, 1, (total, a.dim)).astype(np.float32)
    base, queries = data[: a.n], data[a.n:]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_vecs(a.out + ".base.fvecs", base, np.float32)
    write_vecs(a.out + ".query.fvecs", queries, np.float32)
    norms = (base.astype(np.float64) ** 2).sum(1)
    gt = np.empty((a.queries, a.gt), dtype=np.int32)
    for s in range(0, a.queries, 100):
        q = queries[s:s + 100].astype(np.float64)
        d = norms[None, :] - 2 * q @ base.T.astype(np.float64)
        idx = np.argpartition(d, a.gt, axis=1)[:, : a.gt]
        order = np.take_along_axis(d, idx, 1).argsort(1)
        gt[s:s + 100] = np.take_along_axis(idx, order, 1)
    write_vecs(a.out + ".gt.ivecs", gt, np.int32)
    print(f"wrote {a.out}.{{base,query}}.fvecs and .gt.ivecs: {a.n} x {a.dim} {a.kind}, {a.queries} queries")


if __name__ == "__main__":
    main()
