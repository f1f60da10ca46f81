#!/usr/bin/env bash
# Installs what Vecgo needs on Debian 12 (sourced by demo.sh and test.sh; safe to run again).
#   apt:  liblz4-dev libcurl4-openssl-dev libssl-dev pkg-config lz4 openssl (the TLS test makes a certificate) wrk (the vecgo serve load test)
#   PyPI: moto[server] and numpy (only with --with-moto: the test servers; numpy writes the .npy `vecgo import` reads)
set -euo pipefail
need_apt=()
for pkg in liblz4-dev libcurl4-openssl-dev libssl-dev pkg-config lz4 openssl wrk; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ "${1:-}" = "--with-moto" ]; then
    if ! python3 -c 'import moto.server, flask, flask_cors' >/dev/null 2>&1 || ! command -v moto_server >/dev/null; then
        echo "setup: installing moto[server] from PyPI"
        python3 -m pip install -q 'moto[server]'
        hash -r
    fi
    python3 -c 'import numpy' >/dev/null 2>&1 || { echo "setup: installing numpy from PyPI"; python3 -m pip install -q numpy; }
fi
command -v swift >/dev/null || { echo "setup: no 'swift' on PATH: install the Swift 6.x toolchain for Debian 12 first" >&2; exit 1; }
