#!/usr/bin/env bash
# Runs every test: installs the system packages and moto, starts two moto_servers on free
# 127.0.0.1 ports (one checking signatures) and the S3 Express emulating proxy in front of the
# other, runs the whole suite against them (unit + integration), runs the demo and
# `vecgo verify` against moto and against an S3 Express directory bucket committing through
# DynamoDB, stops the servers, then fuzzes every decoder for a bounded time
# (VECGO_FUZZ_SECONDS, default 60 per decoder).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-moto
source scripts/moto.sh
start_moto
start_moto_auth
start_express_proxy

echo "== build (debug, with tests)"
swift build --build-tests
echo "== swift test"
swift test --skip-build 2>&1 | tee .build/test-output.txt
tests=$(sed -nE 's/.*Test run with ([0-9]+) tests? .* passed.*/\1/p' .build/test-output.txt | tail -1)
bucket="vecgo-demo-$RANDOM"
echo "== cloud-tiered demo against moto (small)"
swift run cloud-tiered --endpoint "$VECGO_TEST_S3_ENDPOINT" --bucket "$bucket" --rows 3000 --dim 32
echo "== vecgo verify against moto"
swift run vecgo verify "s3://$bucket/cloud-tiered/" --endpoint "$VECGO_TEST_S3_ENDPOINT"
echo "== cloud-tiered demo on an S3 Express directory bucket (the emulating proxy), committing through DynamoDB (moto)"
xbucket="vecgo-demo-$RANDOM--use1-az4--x-s3"
curl -sf -X PUT "$VECGO_TEST_S3_ENDPOINT/$xbucket" >/dev/null  # directory buckets are made on the control plane
(
    export AWS_ACCESS_KEY_ID="$VECGO_TEST_EXPRESS_KEY" AWS_SECRET_ACCESS_KEY="$VECGO_TEST_EXPRESS_SECRET"
    export AWS_ENDPOINT_URL_DYNAMODB="$VECGO_TEST_S3_ENDPOINT"
    swift run cloud-tiered --endpoint "$VECGO_TEST_EXPRESS_ENDPOINT" --bucket "$xbucket" --commit-table vecgo-demo-commits \
        --rows 3000 --dim 32
    swift run vecgo verify "s3://$xbucket/cloud-tiered/" --endpoint "$VECGO_TEST_EXPRESS_ENDPOINT" --commit-table vecgo-demo-commits
)
echo "== vecgo-bench commits (small): every commit path, versions exactly once"
AWS_ACCESS_KEY_ID="$VECGO_TEST_EXPRESS_KEY" AWS_SECRET_ACCESS_KEY="$VECGO_TEST_EXPRESS_SECRET" \
    swift run vecgo-bench commits --endpoint "$VECGO_TEST_S3_ENDPOINT" --express-endpoint "$VECGO_TEST_EXPRESS_ENDPOINT" \
    --commits 3 --rows 10 --writers 2 --json > .build/commits.json
python3 -c 'import json; r = json.load(open(".build/commits.json")); assert len(r) == 4 and all(x["versions_exactly_once"] for x in r), r; print("commit paths:", ", ".join(x["path"] for x in r), "- every version exactly once")'
echo "S3 Express proxy: $(curl -s "$VECGO_TEST_EXPRESS_ENDPOINT/_proxy/stats")"
echo "== vecgo-bench tiers (small, counts only): embedded, then against moto as JSON"
swift run vecgo-bench tiers --rows 2000 --dim 32 --queries 3 --latency none
swift run vecgo-bench tiers --rows 2000 --dim 32 --queries 3 --endpoint "$VECGO_TEST_S3_ENDPOINT" --json > .build/tiers.json
python3 -c 'import json, sys; r = json.load(open(".build/tiers.json")); assert r["counts_consistent"] and len(r["results"]) == 7, r; print("tiers JSON against moto: counts consistent,", len(r["results"]), "rows")'
echo "== arm64 (NEON) compile check of the C kernels"
clang_bin="$(dirname "$(readlink -f "$(command -v swift)")")/clang"
"$clang_bin" --target=aarch64-linux-gnu -ffreestanding -fsyntax-only -Wall -Werror \
    -ISources/CVecgoNative/include Sources/CVecgoNative/kernels.c Sources/CVecgoNative/crc32c.c
echo "arm64 kernels compile"
echo "== fuzzing every decoder"
bash scripts/fuzz.sh "${VECGO_FUZZ_SECONDS:-60}"
echo "all checks passed"
echo "tests: ${tests:-0} passed, 0 failed"
