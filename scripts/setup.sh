#!/usr/bin/env bash
# Installs what building and testing Launch needs on Debian: system packages
# (only those missing), the wasm32-wasip2 Rust target. Idempotent and quiet
# when everything is already there.
set -euo pipefail

# libopenblas-dev, liblapack-dev: faiss (vector memory), built from source by the faiss crate.
# chromium: the browser of the web UI test (tests/tests/ui.rs), driven by playwright-core.
# wrk: the HTTP load generator of `make bench` (tests/benches/http.rs).
# nodejs, npm: the JavaScript plugin toolchain (componentize-js) and the browser test.
APT_PACKAGES=(build-essential pkg-config cmake libopenblas-dev liblapack-dev chromium wrk)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Node.js may come from elsewhere (e.g. NodeSource, whose nodejs bundles npm);
# install Debian's only when there is no npm at all.
command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "setup: adding the wasm32-wasip2 Rust target"
    rustup target add wasm32-wasip2
fi
