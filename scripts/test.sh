#!/usr/bin/env bash
# Runs every check and test of the workspace, on a fresh machine too: installs `redis-server`
# (and `openssl`, for the TLS tests' certificates, and `chromium`, for the dashboard's browser
# test) when missing (the integration tests start their own servers on free loopback ports),
# then formatting, clippy, the documentation and the whole test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '==> %s\n' "$*"; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: installing redis-server needs root or sudo; install it yourself with" >&2
        echo "       sudo apt-get install -y redis-server" >&2
        exit 1
    fi
}

if ! command -v redis-server >/dev/null 2>&1; then
    step "installing redis-server (apt-get)"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: redis-server is not on PATH and apt-get is not available; install Redis" >&2
        echo "       (redis-server) with this system's package manager and run again" >&2
        exit 1
    fi
    apt_install() { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server; }
    if ! apt_install; then
        step "apt-get install failed; running apt-get update and retrying"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update
        apt_install
    fi
fi
# The TLS tests make their certificates with the openssl CLI.
if ! command -v openssl >/dev/null 2>&1; then
    step "installing openssl (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y openssl ||
        { as_root apt-get update && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y openssl; }
fi
# The dashboard test loads the admin page in headless Chromium; without one it says it was
# skipped, so a failed install here is a note, not an error.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 &&
    [ -z "${CHROMIUM:-}" ]; then
    step "installing chromium (apt-get), for the dashboard's browser test"
    if command -v apt-get >/dev/null 2>&1 &&
        { [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null 2>&1; }; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium ||
            { as_root apt-get update &&
                as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } ||
            echo "note: chromium could not be installed; the dashboard's browser test will be skipped" >&2
    else
        echo "note: no apt-get (or no root) to install chromium; the dashboard's browser test will be skipped" >&2
    fi
fi
step "redis-server: $(command -v redis-server) ($(redis-server --version | head -n 1))"

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets --all-features -- -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc --no-deps --workspace --all-features (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --all-features

step "cargo test --workspace --all-features"
cargo test --workspace --all-features

step "all checks passed"
