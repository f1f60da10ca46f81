#!/usr/bin/env bash
# Runs the cloud-tiered demo on the embedded default store (no server, no account). Extra
# arguments go to the demo, e.g. --endpoint URL --bucket NAME for a real S3-compatible store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift run -c release cloud-tiered "$@"
