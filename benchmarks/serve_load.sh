#!/usr/bin/env bash
# Load test of `vecgo serve` (issue 13): populates a local-directory database through a writer
# process, starts two reader processes on it, drives both with wrk (benchmarks/serve_load.lua
# posting search bodies) for SECONDS, and reports QPS, p50/p99 and errors, next to the
# in-process QPS of the same queries through the library (ServeInProcessQPS) and their ratio.
# A benchmark, not an assertion: figures move with the machine's load (quoted in the output).
#
#   benchmarks/serve_load.sh [SECONDS=60]
#   env: ROWS=20000 DIM=96 K=10 CONNS=8 (per reader) CONFIG=release SCRATCH=.build
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
rows=${ROWS:-20000} dim=${DIM:-96} k=${K:-10} conns=${CONNS:-8}
config=${CONFIG:-release} scratch=${SCRATCH:-.build}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }

echo "== build ($config)"
swift build -c "$config" --scratch-path "$scratch" --product vecgo
swift build -c "$config" --scratch-path "$scratch" --product ServeInProcessQPS
bin="$(swift build -c "$config" --scratch-path "$scratch" --show-bin-path)"

work=$(mktemp -d "${TMPDIR:-/tmp}/vecgo-serve-load.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ready() { for _ in $(seq 1 600); do curl -sf -o /dev/null "http://127.0.0.1:$1/readyz" && return 0; sleep 0.1; done; echo "server on :$1 not ready" >&2; return 1; }

echo "== populate: $rows x $dim through a writer process"
wport=$(port)
"$bin/vecgo" serve "$work/db" --writer --create-dimension "$dim" --port "$wport" --log-level warning &
wpid=$!; pids+=("$wpid")
ready "$wport"
python3 - "$wport" "$rows" "$dim" "$k" "$work" <<'PY'
import json, random, sys, urllib.request
port, rows, dim, k, work = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rng = random.Random(13)
centers = [[rng.gauss(0, 1) for _ in range(dim)] for _ in range(64)]
def point():
    c = rng.choice(centers)
    return [round(x + rng.gauss(0, 0.3), 4) for x in c]
def post(path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=600))
for start in range(0, rows, 2000):
    post("/v1/upsert", {"rows": [{"id": i + 1, "vector": point()} for i in range(start, min(rows, start + 2000))]})
print("committed version", post("/v1/commit", {})["version"])
queries = [{"vector": point(), "k": k} for _ in range(1000)]
json.dump(queries, open(f"{work}/queries.json", "w"))
with open(f"{work}/queries.jsonl", "w") as f:
    for q in queries: f.write(json.dumps(q) + "\n")
PY
kill -TERM "$wpid"; wait "$wpid"

echo "== two readers"
p1=$(port); p2=$(port)
"$bin/vecgo" serve "$work/db" --port "$p1" --refresh-interval 3600 --log-level warning & pids+=("$!")
"$bin/vecgo" serve "$work/db" --port "$p2" --refresh-interval 3600 --log-level warning & pids+=("$!")
ready "$p1"; ready "$p2"
export VECGO_QUERIES="$work/queries.jsonl"
echo "warm-up (5 s, not reported)"
wrk -t1 -c"$conns" -d5s -s benchmarks/serve_load.lua "http://127.0.0.1:$p1" >/dev/null &
warm=$!
wrk -t1 -c"$conns" -d5s -s benchmarks/serve_load.lua "http://127.0.0.1:$p2" >/dev/null
wait "$warm"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== wrk: ${secs} s, $conns connections on each reader (load average before: $load_before)"
wrk -t1 -c"$conns" -d"${secs}s" --latency -s benchmarks/serve_load.lua "http://127.0.0.1:$p1" > "$work/wrk1.txt" &
w1=$!
wrk -t1 -c"$conns" -d"${secs}s" --latency -s benchmarks/serve_load.lua "http://127.0.0.1:$p2" > "$work/wrk2.txt"
wait "$w1"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
for p in "${pids[@]:1}"; do kill -TERM "$p"; wait "$p" 2>/dev/null || true; done
pids=()
inproc_secs=$(( secs < 20 ? secs : 20 ))
echo "== in-process: the same queries through the library, ${inproc_secs} s, $((2 * conns)) concurrent"
"$bin/ServeInProcessQPS" "$work/db" "$work/queries.json" "$inproc_secs" $((2 * conns)) > "$work/inproc.json"
python3 - "$work" "$secs" "$load_before" "$load_after" "$rows" "$dim" "$k" "$conns" <<'PY'
import json, sys
work, secs, lb, la, rows, dim, k, conns = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], *map(int, sys.argv[5:])
runs = []
for n in (1, 2):
    text = open(f"{work}/wrk{n}.txt").read()
    runs.append(json.loads([l for l in text.splitlines() if l.startswith("{")][-1]))
inproc = json.load(open(f"{work}/inproc.json"))
qps = sum(r["requests"] / (r["duration_us"] / 1e6) for r in runs)
errors = sum(r["socket_errors"] + r["non_2xx"] for r in runs)
result = {
    "rows": rows, "dim": dim, "k": k, "seconds": secs, "connections_per_reader": conns,
    "serve_qps": round(qps, 1), "serve_requests": sum(r["requests"] for r in runs), "serve_errors": errors,
    "serve_p50_ms": [r["p50_ms"] for r in runs], "serve_p99_ms": [r["p99_ms"] for r in runs],
    "inprocess_qps": inproc["qps"], "inprocess_p50_ms": inproc["p50_ms"], "inprocess_p99_ms": inproc["p99_ms"],
    "ratio": round(qps / inproc["qps"], 3) if inproc["qps"] else None,
    "load_average_before": lb, "load_average_after": la,
}
print(json.dumps(result, indent=2))
print(f"vecgo serve: {qps:.0f} QPS over 2 readers, p50 {runs[0]['p50_ms']:.2f}/{runs[1]['p50_ms']:.2f} ms, "
      f"p99 {runs[0]['p99_ms']:.2f}/{runs[1]['p99_ms']:.2f} ms, {errors} errors; in-process {inproc['qps']:.0f} QPS; "
      f"ratio {result['ratio']} (target >= 0.7); load average {lb} -> {la}")
PY
