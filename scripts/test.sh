#!/usr/bin/env bash
# Runs every test of lawcket, installing what the tests need first:
# - moto (real DynamoDB and SQS wire endpoints) into the project-local venv .venv;
# - Debian's Chromium (apt-get, when run as root) and playwright-core into
#   tests/browser/node_modules, for the browser test of the chat example;
# then `cargo test --workspace` (unit, integration, trybuild UI, browser and doc
# tests). Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test lambda`).
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
if ! .venv/bin/moto_server -h >/dev/null 2>&1 \
    || [ "$(.venv/bin/pip show moto 2>/dev/null | sed -n 's/^Version: //p')" != "$MOTO_VERSION" ]; then
    echo "scripts/test.sh: installing moto $MOTO_VERSION into .venv"
    command -v python3 >/dev/null || { echo "scripts/test.sh: the tests need Python 3 (for moto)" >&2; exit 1; }
    [ -x .venv/bin/pip ] || python3 -m venv .venv || {
        echo "scripts/test.sh: python3 -m venv failed; on Debian: apt-get install python3-venv" >&2
        exit 1
    }
    .venv/bin/pip install --quiet --disable-pip-version-check \
        "moto[dynamodb,sqs]==$MOTO_VERSION" flask flask-cors
fi
export LAWCKET_MOTO_SERVER="$PWD/.venv/bin/moto_server"

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "scripts/test.sh: installing Debian's chromium"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "scripts/test.sh: the browser test needs Chromium at $CHROMIUM:" >&2
        echo "  sudo apt-get install chromium   (or set CHROMIUM=/path/to/chromium)" >&2
        exit 1
    fi
fi
export CHROMIUM
if [ ! -d tests/browser/node_modules/playwright-core ]; then
    command -v npm >/dev/null || { echo "scripts/test.sh: the browser test needs Node.js 20+ and npm" >&2; exit 1; }
    echo "scripts/test.sh: installing playwright-core (it downloads no browser)"
    npm ci --prefix tests/browser --silent --no-audit --no-fund
fi

cargo test --workspace "$@"
