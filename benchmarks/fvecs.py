"""Reads and writes the standard .fvecs / .ivecs files (numpy only).

Each row is stored as an int32 dimension followed by that many float32 (.fvecs) or int32
(.ivecs) values, little-endian, as in the TEXMEX (SIFT/GIST) datasets.

  from fvecs import read_fvecs, read_ivecs, write_fvecs, write_ivecs
  base = read_fvecs("base.fvecs")           # (n, d) float32
  truth = read_ivecs("groundtruth.ivecs")   # (q, k) int32

`python3 benchmarks/fvecs.py FILE...` prints the shape of each file.
"""
import sys

import numpy as np


def _read(path, dtype):
    raw = np.fromfile(path, dtype="<i4")
    if raw.size == 0:
        return np.empty((0, 0), dtype=dtype)
    d = int(raw[0])
    if d <= 0 or raw.size % (d + 1):
        raise ValueError(f"{path}: not a .fvecs/.ivecs file (first dimension {d}, {raw.size * 4} bytes)")
    rows = raw.reshape(-1, d + 1)
    if not (rows[:, 0] == d).all():
        raise ValueError(f"{path}: rows of different dimensions")
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def _write(path, rows, dtype):
    rows = np.ascontiguousarray(rows, dtype=dtype)
    if rows.ndim != 2:
        raise ValueError("rows must be a 2-D array")
    n, d = rows.shape
    out = np.empty((n, d + 1), dtype="<i4")
    out[:, 0] = d
    out[:, 1:] = rows.view("<i4")
    out.tofile(path)


def read_fvecs(path):
    return _read(path, "<f4")


def read_ivecs(path):
    return _read(path, "<i4")


def write_fvecs(path, rows):
    _write(path, rows, "<f4")


def write_ivecs(path, rows):
    _write(path, rows, "<i4")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        rows = read_ivecs(p) if p.endswith(".ivecs") else read_fvecs(p)
        print(f"{p}: {rows.shape[0]} x {rows.shape[1]} {rows.dtype}")
