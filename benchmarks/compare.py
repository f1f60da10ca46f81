#!/usr/bin/env python3
"""Runs vecgo-bench and its peers on the benchmark sets in one run, prints the ratio table and
writes, per set, the table (.txt), the raw sweeps (.json) and a recall-QPS plot (.svg) under
benchmarks/results/, named by set and the machine's kernel level.

  python3 benchmarks/compare.py                       # the three sets, HNSW vs hnswlib
  python3 benchmarks/compare.py --sets hard100k-96 --indexes hnsw,ivf,flat
  python3 benchmarks/compare.py --data benchmarks/data/mine   # one set of your own files

Missing sets are generated with gen_dataset.py. Needs a release build
(`swift build -c release --product vecgo-bench`, or --bench PATH) and
`pip install hnswlib faiss-cpu numpy`. Ratios > 1 mean vecgo is faster. For graphs and IVF, QPS
is compared at equal recall: for each target recall, the fastest sweep point of each side that
reaches it. Build ratio is peer seconds / vecgo seconds (> 1: vecgo builds faster). Rows marked "cpu" use
the working thread's CPU time instead of the wall clock (HNSW: hnswlib and vecgo both search and
build on the calling thread), the figure to trust when other processes load the machine.

Each case is one function `case_<name>(ctx, dataset) -> list of rows` registered in CASES; a
row is a dict with set, case, target, threads, vecgo, peer (QPS) and their details. Add a case
(a filter sweep, a batch) by writing one such function.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name -> gen_dataset.py arguments
SETS = {
    "c100k-128": ["--kind", "clustered", "--n", "100000", "--dim", "128"],
    "c50k-768": ["--kind", "clustered", "--n", "50000", "--dim", "768"],
    "hard100k-96": ["--kind", "hard", "--n", "100000", "--dim", "96"],
}
TARGETS = [0.90, 0.95, 0.99]
# Sweep fields compared. "1 thread cpu" is QPS from the searching thread's CPU time: steady when
# other processes share the cores, where wall-clock QPS is not.
KEYS = [("qps_1_thread", "1 thread"), ("qps_1_thread_cpu", "1 thread cpu"), ("qps_all_threads", "all threads")]


def at_recall(sweep, target, key):
    ok = [p for p in sweep if p["recall"] >= target]
    return max(ok, key=lambda p: p[key]) if ok else None


def dataset_files(prefix):
    return ["--base", prefix + ".base.fvecs", "--queries", prefix + ".query.fvecs", "--groundtruth", prefix + ".gt.ivecs"]


def ensure_dataset(data_dir, name):
    prefix = os.path.join(data_dir, name)
    if not os.path.exists(prefix + ".gt.ivecs"):
        subprocess.check_call([sys.executable, os.path.join(HERE, "gen_dataset.py"), *SETS[name], "--out", prefix])
    return prefix


def run_pair(ctx, prefix, index, extra_ours=(), extra_peer=()):
    """vecgo-bench ann and peers.py on the same files, back to back; returns (ours, peer)."""
    files = dataset_files(prefix)
    common = ["--index", index, "--m", str(ctx.m), "--ef-construction", str(ctx.ef_construction)]
    ours = json.loads(subprocess.check_output([ctx.bench, "ann", *files, *common, *extra_ours, "--json"]))
    peer = json.loads(subprocess.check_output([sys.executable, os.path.join(HERE, "peers.py"), *files, *common,
                                               *extra_peer]))
    return ours, peer


def index_rows(name, index, ours, peer, targets):
    rows = []
    for key, label in [("build_seconds", "1"), ("build_cpu_seconds", "1 cpu")]:
        if key in ours and key in peer:
            rows.append({"set": name, "case": index, "target": "build", "threads": label, "vecgo": ours[key],
                         "peer": peer[key], "ratio": peer[key] / max(ours[key], 1e-9), "detail": "seconds"})
    for t in targets:
        for key, label in KEYS:
            if not all(key in p for p in ours["sweep"] + peer["sweep"]):
                continue
            o, q = at_recall(ours["sweep"], t, key), at_recall(peer["sweep"], t, key)
            row = {"set": name, "case": index, "target": f"recall>={t:.2f}", "threads": label,
                   "vecgo": o[key] if o else None, "peer": q[key] if q else None,
                   "detail": (f"{o['parameter']} {o['value']} r {o['recall']:.3f}" if o else "not reached") + " | "
                             + (f"{q['parameter']} {q['value']} r {q['recall']:.3f}" if q else "not reached")}
            row["ratio"] = o[key] / q[key] if o and q else None
            rows.append(row)
    return rows


def make_index_case(index):
    def case(ctx, name, prefix):
        extra = ["--sq8-rerank", str(ctx.sq8_rerank)] if index == "ivf" and ctx.sq8_rerank else []
        ours, peer = run_pair(ctx, prefix, index, extra_ours=extra)
        ctx.raw.setdefault(name, {})[index] = {"vecgo": ours, "peer": peer}
        ctx.kernel = ours["kernel"]
        return index_rows(name, index, ours, peer, [0.0] if index == "flat" else TARGETS)
    case.__name__ = f"case_{index}"
    return case


case_hnsw = make_index_case("hnsw")
case_ivf = make_index_case("ivf")
case_flat = make_index_case("flat")
CASES = {"hnsw": case_hnsw, "ivf": case_ivf, "flat": case_flat}


def case_filter(ctx, name, prefix):
    """Filtered search (equality and range filters) at each selectivity, hnsw and ivf: the planned
    search against the exact scan of the matching rows, with the planner's choice."""
    rows = []
    for index in ["hnsw", "ivf"]:
        extra = ["--index", index, "--m", str(ctx.m), "--ef-construction", str(ctx.ef_construction), "--nprobe", str(ctx.nprobe)]
        r = json.loads(subprocess.check_output([ctx.bench, "ann", *dataset_files(prefix), *extra,
                                                "--filter-selectivity", ctx.filter_selectivities, "--json"]))
        ctx.kernel = r.get("kernel", ctx.kernel)
        for p in r["filters"]:
            rows.append({"set": name, "case": "filter", "target": f"{p['filter']} {p['selectivity']:.3f}", "threads": "1",
                         "vecgo": p["qps_1_thread"], "peer": p["scan_qps_1_thread"],
                         "ratio": p["qps_1_thread"] / max(p["scan_qps_1_thread"], 1e-9),
                         "detail": f"{index}: plan {p['plan_kind']}, recall {p['recall']:.3f} (peer: exact scan of the matching rows)"})
    return rows


def case_batch(ctx, name, prefix):
    """ctx.batch queries at once on all threads: vecgo batch search vs faiss (IndexFlatL2, IndexIVFFlat at the same nprobe)."""
    rows = []
    for index in ["flat", "ivf"]:
        r = json.loads(subprocess.check_output([ctx.bench, "ann", *dataset_files(prefix), "--index", index, "--batch", str(ctx.batch),
                                                "--nprobe", str(ctx.nprobe), "--peers", os.path.join(HERE, "peers.py"), "--json"]))
        ctx.kernel = r.get("kernel", ctx.kernel)
        rows.append({"set": name, "case": "batch", "target": f"{index} x{r['batch']}", "threads": f"{r['threads']}",
                     "vecgo": r["qps_batch"], "peer": r["peer_qps_batch"], "ratio": r["qps_batch"] / max(r["peer_qps_batch"], 1e-9),
                     "detail": f"recall {r['recall']:.3f} | {r['peer']} recall {r.get('peer_recall', float('nan')):.3f}"})
    return rows


CASES.update({"filter": case_filter, "batch": case_batch})


def fmt(v, digits=0):
    return "-" if v is None else f"{v:,.{digits}f}"


def table(rows):
    head = f"{'set':12s} {'case':6s} {'target':13s} {'threads':11s} {'vecgo':>10s} {'peer':>10s} {'ratio':>6s}  detail (vecgo | peer)"
    lines = [head, "-" * len(head)]
    for r in rows:
        d = 2 if r["target"] == "build" else 0
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"{r['set']:12s} {r['case']:6s} {r['target']:13s} {r['threads']:11s} {fmt(r['vecgo'], d):>10s} "
                     f"{fmt(r['peer'], d):>10s} {ratio:>6s}  {r['detail']}")
    return lines


def svg_plot(title, series, path):
    """A recall-QPS plot by hand: x recall, y QPS (log scale); one panel per thread setting,
    one polyline per (system) with its sweep points."""
    import math
    width, height, pad_l, pad_b, pad_t, gap = 960, 400, 64, 44, 40, 60
    panel_w = (width - pad_l - gap - 20) / 2
    colors = {"vecgo": "#d62728", "peer": "#1f77b4"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
           f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>']
    points = [p for s in series.values() for p in s["sweep"]]
    xmin = min(0.85, min(p["recall"] for p in points))
    xmax = 1.0
    panels = [k for k in KEYS if k[0] != "qps_1_thread_cpu"]
    for pi, (key, label) in enumerate(panels):
        ys = [p[key] for p in points]
        ymin, ymax = 10 ** math.floor(math.log10(min(ys))), 10 ** math.ceil(math.log10(max(ys)))
        x0 = pad_l + pi * (panel_w + gap)
        y0, y1 = height - pad_b, pad_t

        def sx(x):
            return x0 + (x - xmin) / (xmax - xmin) * panel_w

        def sy(y):
            return y0 - (math.log10(y) - math.log10(ymin)) / (math.log10(ymax) - math.log10(ymin)) * (y0 - y1)
        out.append(f'<rect x="{x0}" y="{y1}" width="{panel_w}" height="{y0 - y1}" fill="none" stroke="#888"/>')
        out.append(f'<text x="{x0 + panel_w / 2}" y="{y1 - 6}" text-anchor="middle">QPS, {label}</text>')
        out.append(f'<text x="{x0 + panel_w / 2}" y="{height - 8}" text-anchor="middle">recall@10</text>')
        ticks = [round(xmin + i * (xmax - xmin) / 5, 3) for i in range(6)]
        for t in ticks:
            out.append(f'<line x1="{sx(t):.1f}" y1="{y0}" x2="{sx(t):.1f}" y2="{y1}" stroke="#eee"/>')
            out.append(f'<text x="{sx(t):.1f}" y="{y0 + 14}" text-anchor="middle">{t:.3f}</text>')
        e = ymin
        while e <= ymax * 1.0001:
            for m in (1, 2, 5):
                y = e * m
                if ymin <= y <= ymax:
                    out.append(f'<line x1="{x0}" y1="{sy(y):.1f}" x2="{x0 + panel_w}" y2="{sy(y):.1f}" stroke="#eee"/>')
                    out.append(f'<text x="{x0 - 4}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:,.0f}</text>')
            e *= 10
        for si, (who, s) in enumerate(series.items()):
            pts = [(p["recall"], p[key], p["value"]) for p in s["sweep"] if p["recall"] >= xmin]
            c = colors.get(who, "#2ca02c")
            path_pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in pts)
            out.append(f'<polyline points="{path_pts}" fill="none" stroke="{c}" stroke-width="2"/>')
            for x, y, v in pts:
                out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{c}"><title>{s["label"]} '
                           f'{v}: recall {x:.4f}, {y:,.0f} QPS</title></circle>')
            out.append(f'<line x1="{x0 + 10}" y1="{y1 + 16 + 16 * si}" x2="{x0 + 30}" y2="{y1 + 16 + 16 * si}" '
                       f'stroke="{c}" stroke-width="2"/><text x="{x0 + 36}" y="{y1 + 20 + 16 * si}">{s["label"]}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sets", default=",".join(SETS), help="comma-separated names of SETS")
    p.add_argument("--data", help="a dataset prefix of your own instead of --sets")
    p.add_argument("--data-dir", default=os.path.join(HERE, "data"))
    p.add_argument("--indexes", default="hnsw", help="cases to run: " + ",".join(CASES))
    p.add_argument("--bench", default=os.environ.get("VECGO_BENCH", os.path.join(ROOT, ".build", "release", "vecgo-bench")))
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--sq8-rerank", type=int, default=0, help="IVF: scan SQ8 codes, re-rank k x R with float32")
    p.add_argument("--filter-selectivities", default="0.5,0.1,0.01,0.001", help="case filter: the selectivities swept")
    p.add_argument("--batch", type=int, default=1000, help="case batch: queries searched at once")
    p.add_argument("--nprobe", type=int, default=8, help="cases filter and batch: IVF nprobe")
    p.add_argument("--results-dir", default=os.path.join(HERE, "results"))
    p.add_argument("--no-write", action="store_true", help="print only")
    ctx = p.parse_args()
    ctx.raw, ctx.kernel = {}, "unknown"
    sets = [(os.path.basename(ctx.data), ctx.data)] if ctx.data else \
        [(n, ensure_dataset(ctx.data_dir, n)) for n in ctx.sets.split(",")]
    all_rows = []
    header = (f"# python3 benchmarks/compare.py {' '.join(sys.argv[1:])}\n# {time.strftime('%Y-%m-%d %H:%M')}, "
              f"{platform.machine()}, {os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f}")
    print(header)
    for name, prefix in sets:
        rows, notes = [], []
        for case in ctx.indexes.split(","):
            load = os.getloadavg()[0]
            rows += CASES[case](ctx, name, prefix)
            notes.append(f"{name} {case}: kernel {ctx.kernel}, load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
            print(f"\n== {notes[-1]}")
            print("\n".join(table([r for r in rows if r["case"] == case])))
        all_rows += rows
        if not ctx.no_write:
            os.makedirs(ctx.results_dir, exist_ok=True)
            base = os.path.join(ctx.results_dir, f"{name}-{ctx.kernel.replace('+', '-')}")
            with open(base + ".txt", "w") as f:
                f.write(header + "\n" + "".join(f"# {n}\n" for n in notes) + "\n".join(table(rows)) + "\n")
            with open(base + ".json", "w") as f:
                json.dump({"rows": rows, "raw": ctx.raw.get(name, {})}, f, indent=1)
            for index, r in ctx.raw.get(name, {}).items():
                if index == "flat":
                    continue
                o, q = r["vecgo"], r["peer"]
                svg_plot(f"{name} ({o['rows']} x {o['dimension']}), {index}, kernel {ctx.kernel}",
                         {"vecgo": {"label": f"vecgo {index}", "sweep": o["sweep"]},
                          "peer": {"label": q["peer"], "sweep": q["sweep"]}},
                         f"{base}-{index}.svg")
    print("\n== summary (ratio = vecgo / peer QPS at equal recall; build: peer s / vecgo s)")
    print("\n".join(table(all_rows)))


if __name__ == "__main__":
    main()
