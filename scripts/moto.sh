#!/usr/bin/env bash
# Starts moto_server on a free 127.0.0.1 port (source this file): sets VECGO_TEST_S3_ENDPOINT,
# MOTO_PID and an EXIT trap that stops the server.
start_moto() {
    local port log
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log="${TMPDIR:-/tmp}/vecgo-moto-$port.log"
    moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    MOTO_PID=$!
    trap 'kill $MOTO_PID 2>/dev/null; wait $MOTO_PID 2>/dev/null' EXIT
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null "http://127.0.0.1:$port/moto-api/"; then
            export VECGO_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
            export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
            echo "moto_server running at $VECGO_TEST_S3_ENDPOINT (pid $MOTO_PID, log $log)"
            return 0
        fi
        sleep 0.2
    done
    echo "moto_server did not start on port $port; its log:" >&2
    cat "$log" >&2
    return 1
}
