#!/usr/bin/env bash
# Fuzzes every decoder with libFuzzer + AddressSanitizer for a bounded time each (default 60 s;
# `scripts/fuzz.sh 600` for longer). Seeds: the golden fixtures and the regression corpus
# (fixtures/fuzz-regressions/, inputs that once crashed a decoder). Fails on any crash.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
(cd Fuzz && swift build -c release --sanitize=fuzzer --sanitize=address)
for target in FuzzSegment FuzzManifest FuzzPKIndex; do
    corpus=$(mktemp -d)
    cp fixtures/v1/*.bin "$corpus"/
    cp fixtures/fuzz-regressions/* "$corpus"/ 2>/dev/null || true
    log="$corpus/fuzz.log"
    if ! (cd "$corpus" && "$OLDPWD/Fuzz/.build/release/$target" -max_total_time="$seconds" -max_len=16384 \
            -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$corpus" >"$log" 2>&1); then
        echo "fuzz: $target crashed; its output:" >&2
        grep -v '^#' "$log" | tail -40 >&2
        cp "$corpus"/crash-* "$corpus"/timeout-* "$corpus"/oom-* fixtures/fuzz-regressions/ 2>/dev/null || true
        exit 1
    fi
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    echo "fuzz: $target ok: ${runs:-?} executions in ${seconds}s"
    rm -rf "$corpus"
done
