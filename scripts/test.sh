#!/usr/bin/env bash
# Runs every test: installs the system packages and moto, starts moto_server on a free
# 127.0.0.1 port, runs the whole suite against it (unit + integration), runs the demo against
# it once, and stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-moto
source scripts/moto.sh
start_moto

echo "== build (debug, with tests)"
swift build --build-tests
echo "== swift test"
swift test --skip-build 2>&1 | tee .build/test-output.txt
echo "== cloud-tiered demo against moto (small)"
swift run cloud-tiered --endpoint "$VECGO_TEST_S3_ENDPOINT" --bucket "vecgo-demo-$RANDOM" --rows 2000 --dim 32
