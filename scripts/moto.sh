#!/usr/bin/env bash
# Starts moto_server on a free 127.0.0.1 port (source this file): sets VECGO_TEST_S3_ENDPOINT,
# MOTO_PIDS and an EXIT trap that stops the servers. start_moto_auth starts a second one that
# checks every signature (VECGO_TEST_S3_AUTH_ENDPOINT, _KEY, _SECRET). start_express_proxy puts
# the S3 Express One Zone emulating proxy in front of start_moto's server
# (VECGO_TEST_EXPRESS_ENDPOINT, _KEY, _SECRET).
MOTO_PIDS=""
trap 'for p in $MOTO_PIDS; do kill $p 2>/dev/null; wait $p 2>/dev/null; done' EXIT

# Starts one moto_server; sets MOTO_URL (not in a subshell, so its pid is kept).
launch_moto() {
    local port log
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log="${TMPDIR:-/tmp}/vecgo-moto-$port.log"
    moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    MOTO_PIDS="$MOTO_PIDS $!"
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null "http://127.0.0.1:$port/moto-api/"; then
            MOTO_URL="http://127.0.0.1:$port"
            return 0
        fi
        sleep 0.2
    done
    echo "moto_server did not start on port $port; its log:" >&2
    cat "$log" >&2
    return 1
}

start_moto_auth() {
    local url keys
    launch_moto || return 1
    url=$MOTO_URL
    keys=$(python3 "$(dirname "${BASH_SOURCE[0]}")/moto_auth_setup.py" "$url") || {
        echo "could not set up signature checking on $url" >&2
        return 1
    }
    export VECGO_TEST_S3_AUTH_ENDPOINT="$url"
    export VECGO_TEST_S3_AUTH_KEY="${keys% *}" VECGO_TEST_S3_AUTH_SECRET="${keys#* }"
    echo "signature-checking moto_server running at $url"
}

start_moto() {
    local url
    launch_moto || return 1
    url=$MOTO_URL
    export VECGO_TEST_S3_ENDPOINT="$url"
    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
    echo "moto_server running at $VECGO_TEST_S3_ENDPOINT"
}

# Starts Tests/s3express-proxy/s3express_proxy.py in front of the moto_server of start_moto (call
# that first): directory buckets, CreateSession and s3express signatures, checked by the proxy.
start_express_proxy() {
    local port log secret pid proxy
    if [ -z "${VECGO_TEST_S3_ENDPOINT:-}" ]; then
        echo "start_express_proxy needs VECGO_TEST_S3_ENDPOINT (call start_moto first)" >&2
        return 1
    fi
    proxy="$(dirname "${BASH_SOURCE[0]}")/../Tests/s3express-proxy/s3express_proxy.py"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')
    log="${TMPDIR:-/tmp}/vecgo-s3express-$port.log"
    python3 "$proxy" --port "$port" --upstream "$VECGO_TEST_S3_ENDPOINT" \
        --access-key express-test-key --secret-key "$secret" >"$log" 2>&1 &
    pid=$!
    MOTO_PIDS="$MOTO_PIDS $pid"
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null "http://127.0.0.1:$port/_proxy/stats"; then
            export VECGO_TEST_EXPRESS_ENDPOINT="http://127.0.0.1:$port"
            export VECGO_TEST_EXPRESS_KEY=express-test-key VECGO_TEST_EXPRESS_SECRET="$secret"
            echo "s3express proxy running at $VECGO_TEST_EXPRESS_ENDPOINT"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.2
    done
    echo "s3express proxy did not start on port $port; its log:" >&2
    cat "$log" >&2
    return 1
}
