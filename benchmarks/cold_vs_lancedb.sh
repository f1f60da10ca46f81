#!/usr/bin/env bash
# Cold-query comparison of Vecgo and LanceDB on one S3-compatible endpoint, side by side in one run.
#
#   bash benchmarks/cold_vs_lancedb.sh --data DIR [--first-byte-ms 35] [--mbps 90] [--bucket NAME]
#        [--nprobes 20] [--refine-factor 10] [--lance-indexes ivf_pq,flat] [--max-queries N]
#        [--flat-queries 20]
#        [--vecgo-cmd "swift run -c release vecgo-bench"] [--skip-vecgo] [--out FILE.json]
#
# DIR holds base.fvecs, queries.fvecs and groundtruth.ivecs; a gen_dataset.py prefix
# (PREFIX.base.fvecs, PREFIX.query.fvecs, PREFIX.gt.ivecs) works too.
#
# It starts a moto_server (scripts/moto.sh) on a free 127.0.0.1 port and
# benchmarks/latency_proxy.py in front of it (+35 ms per request, bodies paced at 90 MB/s),
# creates one bucket, then runs, each against the proxy:
#   1. the Vecgo side: `vecgo-bench scale --base B --queries-file Q --queries N --groundtruth G
#      --endpoint PROXY --bucket BUCKET --json` (one JSON object; N = the queries LanceDB's IVF run
#      uses; if the command fails, the LanceDB side still runs);
#   2. benchmarks/lancedb_peer.py once per LanceDB index (IVF_PQ and flat by default);
# and prints each side's figures and the ratios (Vecgo / LanceDB: < 1 means Vecgo is faster or
# smaller). Everything it started is stopped on exit.
#
# --refine-factor defaults to 10 here (LanceDB's own default is none): IVF_PQ alone ranks by
# 8-dimension PQ codes, and its recall can be far below an IVF that scans full vectors; with
# refinement both sides answer at comparable recall. Pass --refine-factor 0 for LanceDB's default.
# LanceDB's recall and warm passes use every query (--max-queries N: the first N), except flat
# ones, which scan the whole table per query: they use the first --flat-queries (0 = all).
#
# Needs: pip install 'moto[server]' boto3 lancedb pylance numpy; for the Vecgo side the Swift
# toolchain (the default --vecgo-cmd builds vecgo-bench if needed).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

DATA="" FIRST_BYTE_MS=35 MBPS=90 BUCKET="vecgo-vs-lancedb" NPROBES=20 REFINE=10
LANCE_INDEXES="ivf_pq,flat" MAX_QUERIES=0 FLAT_QUERIES=20 VECGO_CMD="swift run -c release vecgo-bench" SKIP_VECGO=0 OUT=""
usage() { sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --data) DATA="$2"; shift 2 ;;
        --first-byte-ms) FIRST_BYTE_MS="$2"; shift 2 ;;
        --mbps) MBPS="$2"; shift 2 ;;
        --bucket) BUCKET="$2"; shift 2 ;;
        --nprobes) NPROBES="$2"; shift 2 ;;
        --refine-factor) REFINE="$2"; shift 2 ;;
        --lance-indexes) LANCE_INDEXES="$2"; shift 2 ;;
        --max-queries) MAX_QUERIES="$2"; shift 2 ;;
        --flat-queries) FLAT_QUERIES="$2"; shift 2 ;;
        --vecgo-cmd) VECGO_CMD="$2"; shift 2 ;;
        --skip-vecgo) SKIP_VECGO=1; shift ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done
[ -n "$DATA" ] || usage

# --- inputs
if [ -f "$DATA/base.fvecs" ]; then
    BASE="$DATA/base.fvecs" QUERIES="$DATA/queries.fvecs" TRUTH="$DATA/groundtruth.ivecs"
else
    BASE="$DATA.base.fvecs" QUERIES="$DATA.query.fvecs" TRUTH="$DATA.gt.ivecs"
fi
for f in "$BASE" "$QUERIES" "$TRUTH"; do
    [ -f "$f" ] || { echo "missing $f (expected DIR/{base,queries}.fvecs + DIR/groundtruth.ivecs)" >&2; exit 2; }
done
BASE="$(cd "$(dirname "$BASE")" && pwd)/$(basename "$BASE")"
QUERIES="$(cd "$(dirname "$QUERIES")" && pwd)/$(basename "$QUERIES")"
TRUTH="$(cd "$(dirname "$TRUTH")" && pwd)/$(basename "$TRUTH")"
command -v moto_server >/dev/null || { echo "needs moto_server: pip install 'moto[server]'" >&2; exit 2; }
python3 -c 'import boto3, lancedb, lance, numpy' 2>/dev/null ||
    { echo "needs: pip install boto3 lancedb pylance numpy" >&2; exit 2; }

# --- servers: moto, and the latency proxy in front of it
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cold-vs-lancedb.XXXXXX")"
# shellcheck source=../scripts/moto.sh
source "$ROOT/scripts/moto.sh"
cleanup() {
    for p in $MOTO_PIDS; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT  # replaces moto.sh's trap: stops the same servers, and removes WORK
start_moto >&2

python3 "$HERE/latency_proxy.py" --upstream "$VECGO_TEST_S3_ENDPOINT" --port 0 \
    --port-file "$WORK/proxy.port" --first-byte-ms "$FIRST_BYTE_MS" --mbps "$MBPS" >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
MOTO_PIDS="$MOTO_PIDS $PROXY_PID"
for _ in $(seq 1 100); do
    [ -s "$WORK/proxy.port" ] && break
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.1
done
[ -s "$WORK/proxy.port" ] || { echo "latency proxy did not start; its log:" >&2; cat "$WORK/proxy.log" >&2; exit 1; }
PROXY="http://127.0.0.1:$(cat "$WORK/proxy.port")"
head -1 "$WORK/proxy.log" >&2

python3 - "$VECGO_TEST_S3_ENDPOINT" "$BUCKET" <<'EOF'
import sys, boto3
boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="testing",
             aws_secret_access_key="testing").create_bucket(Bucket=sys.argv[2])
EOF

# --- Vecgo
if [ "$SKIP_VECGO" = 0 ]; then
    curl -s -X POST "$PROXY/_proxy/reset" >/dev/null
    echo "running: $VECGO_CMD scale ... --endpoint $PROXY --bucket $BUCKET --json" >&2
    # shellcheck disable=SC2086 # VECGO_CMD is a command line
    # scale's --queries is a count (first N of --queries-file): the same queries as LanceDB's IVF run.
    NQ=$(python3 "$HERE/fvecs.py" "$QUERIES" | sed 's/.*: \([0-9]*\) x .*/\1/')
    if [ "$MAX_QUERIES" -gt 0 ] && [ "$MAX_QUERIES" -lt "$NQ" ]; then NQ="$MAX_QUERIES"; fi
    if (cd "$ROOT" && $VECGO_CMD scale --base "$BASE" --queries-file "$QUERIES" --queries "$NQ" \
            --groundtruth "$TRUTH" --endpoint "$PROXY" --bucket "$BUCKET" --json) \
            >"$WORK/vecgo.out" 2>"$WORK/vecgo.err"; then
        echo "vecgo-bench scale done" >&2
    else
        echo "vecgo-bench scale failed (exit $?); the LanceDB side still runs. Last lines:" >&2
        tail -n 5 "$WORK/vecgo.err" "$WORK/vecgo.out" >&2 || true
    fi
fi

# --- LanceDB
STATUS=0
IFS=',' read -r -a INDEXES <<<"$LANCE_INDEXES"
for index in "${INDEXES[@]}"; do
    queries="$MAX_QUERIES"
    if [ "$index" = flat ] && [ "$FLAT_QUERIES" -gt 0 ] && { [ "$queries" = 0 ] || [ "$queries" -gt "$FLAT_QUERIES" ]; }; then
        queries="$FLAT_QUERIES"
    fi
    curl -s -X POST "$PROXY/_proxy/reset" >/dev/null
    echo "running: lancedb_peer.py --index $index" >&2
    python3 "$HERE/lancedb_peer.py" --base "$BASE" --queries "$QUERIES" --groundtruth "$TRUTH" \
        --endpoint "$PROXY" --bucket "$BUCKET" --prefix "lancedb-$index" --index "$index" \
        --nprobes "$NPROBES" --refine-factor "$REFINE" --max-queries "$queries" --json \
        >"$WORK/lancedb-$index.json" || { echo "lancedb_peer.py --index $index failed" >&2; STATUS=1; }
done

# --- report
python3 - "$WORK" "$LANCE_INDEXES" "$FIRST_BYTE_MS" "$MBPS" "$OUT" <<'EOF'
import json, os, sys

work, indexes, first_byte_ms, mbps, out = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4], sys.argv[5]


def last_json_object(text):
    """The last JSON object (or list of objects) in text: vecgo-bench's output may follow build lines."""
    decoder, found, i = json.JSONDecoder(), None, 0
    while i < len(text):
        if text[i] in "{[":
            try:
                obj, end = decoder.raw_decode(text, i)
                if isinstance(obj, dict) or (isinstance(obj, list) and obj and isinstance(obj[0], dict)):
                    found, i = obj, end
                    continue
            except ValueError:
                pass
        i += 1
    return found


def load(path):
    try:
        with open(path) as f:
            return last_json_object(f.read())
    except OSError:
        return None


def vecgo_result(path):
    """vecgo-bench scale's object (the first one if it printed a list), in the peer's key names."""
    r = load(path)
    if isinstance(r, list):
        r = r[0] if r else None
    if r is not None:
        if "recall_at_10" not in r and r.get("k") == 10 and "recall_at_k" in r:
            r["recall_at_10"] = r["recall_at_k"]
        r.setdefault("stored_bytes", r.get("database_bytes"))
    return r


sides = {"vecgo": vecgo_result(os.path.join(work, "vecgo.out"))}
for index in indexes:
    sides[f"lancedb {index}"] = load(os.path.join(work, f"lancedb-{index}.json"))


def write_plus_index(r):
    if not r or r.get("write_s") is None:
        return None
    return r["write_s"] + (r.get("index_s") or 0.0)


rows = [("rows", "rows"), ("dim", "dim"), ("write_s", "write_s"), ("index_s", "index_s"),
        ("write+index s", write_plus_index), ("stored bytes", "stored_bytes"), ("open ms", "open_ms"),
        ("open requests", "open_requests"), ("cold first query ms", "cold_first_query_ms"),
        ("cold first query requests", "cold_first_query_requests"),
        ("cold first query bytes", "cold_first_query_bytes"), ("warm p50 ms", "warm_p50_ms"),
        ("warm p99 ms", "warm_p99_ms"), ("warm requests/query", "warm_requests_per_query"),
        ("queries (recall, warm)", "queries"),
        ("recall@10", "recall_at_10")]


def value(r, key):
    if not r:
        return None
    return key(r) if callable(key) else r.get(key)


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


names = list(sides)
print(f"\n== cold queries through the latency proxy (+{first_byte_ms} ms per request, {mbps} MB/s per response)")
if not sides["vecgo"]:
    print("   (no Vecgo result: vecgo-bench scale did not run or printed no JSON object)")
print(f"{'':28s}" + "".join(f"{n:>18s}" for n in names))
for label, key in rows:
    print(f"{label:28s}" + "".join(f"{fmt(value(sides[n], key)):>18s}" for n in names))

ratios = {}
print("\nratios Vecgo / LanceDB (< 1: Vecgo faster or smaller)")
for n in names[1:]:
    for label, key in [("cold first query ms", "cold_first_query_ms"),
                       ("cold first query bytes", "cold_first_query_bytes"),
                       ("cold first query requests", "cold_first_query_requests"),
                       ("write+index s", write_plus_index)]:
        a, b = value(sides["vecgo"], key), value(sides[n], key)
        r = a / b if a is not None and b else None
        ratios[f"{label} vs {n}"] = r
        print(f"  {label + ' vs ' + n:48s} {fmt(r)}")
print("recall@10: " + ", ".join(f"{n} {fmt(value(sides[n], 'recall_at_10'))}" for n in names))
if out:
    with open(out, "w") as f:
        json.dump({"first_byte_ms": float(first_byte_ms), "mbps": float(mbps), "sides": sides,
                   "ratios": ratios}, f, indent=2)
    print(f"wrote {out}")
EOF
exit "$STATUS"
