#!/usr/bin/env bash
# Records the public API of the library modules applications import (Vecgo, which re-exports
# Stores and a few lower-layer types, Stores, and SegmentFormat, the product the fuzzers use)
# and fails on an unintended change: builds their symbol graphs (`swift package
# dump-symbol-graph`, reusing the debug build), reduces each to a sorted list of public
# declarations (scripts/api_surface.py) and compares it with api/MODULE.txt.
#   scripts/api_check.sh            check; prints the diff and exits 1 when the API changed
#   scripts/api_check.sh --update   rewrite api/*.txt after an intended change (commit them)
# SCRATCH: the build directory to reuse (default .build).
set -euo pipefail
cd "$(dirname "$0")/.."
modules=(Vecgo Stores SegmentFormat)
update=0
case "${1:-}" in
    --update) update=1 ;;
    "") ;;
    *) echo "usage: scripts/api_check.sh [--update]" >&2; exit 2 ;;
esac
scratch="${SCRATCH:-.build}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! swift package --scratch-path "$scratch" dump-symbol-graph --minimum-access-level public \
        --skip-synthesized-members >"$log" 2>&1; then
    cat "$log" >&2
    echo "api_check: swift package dump-symbol-graph failed" >&2
    exit 1
fi
graphs="$(sed -nE 's/^Files written to (.*)$/\1/p' "$log" | tail -1)"
[ -d "$graphs" ] || { cat "$log" >&2; echo "api_check: no symbol graph directory in the output above" >&2; exit 1; }
mkdir -p api
changed=0
for m in "${modules[@]}"; do
    current="$(mktemp)"
    python3 scripts/api_surface.py "$graphs" "$m" "Sources/$m" >"$current"
    if [ "$update" = 1 ]; then
        mv "$current" "api/$m.txt"
        echo "api/$m.txt: $(wc -l <"api/$m.txt") public declarations"
    elif ! diff -u --label "api/$m.txt (recorded)" --label "$m (this build)" "api/$m.txt" "$current"; then
        changed=1
        rm -f "$current"
    else
        echo "api/$m.txt: unchanged ($(wc -l <"api/$m.txt") public declarations)"
        rm -f "$current"
    fi
done
if [ "$changed" = 1 ]; then
    cat >&2 <<'MSG'
api_check: the public API differs from the recorded one (diff above: - recorded, + this build).
If the change is unintended, restore the declarations. If it is intended, record it with
    scripts/api_check.sh --update
and commit the changed api/*.txt with the change (a removed or changed line breaks users).
MSG
    exit 1
fi
