#!/usr/bin/env bash
# Runs every test of lawcket, installing what the tests need first:
# - moto (a real DynamoDB wire endpoint) into the project-local venv .venv;
# then `cargo test --workspace` (unit, integration, trybuild UI and doc tests).
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test lambda`).
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
if ! .venv/bin/moto_server -h >/dev/null 2>&1 \
    || [ "$(.venv/bin/pip show moto 2>/dev/null | sed -n 's/^Version: //p')" != "$MOTO_VERSION" ]; then
    echo "scripts/test.sh: installing moto $MOTO_VERSION into .venv"
    [ -x .venv/bin/pip ] || python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check \
        "moto[dynamodb]==$MOTO_VERSION" flask flask-cors
fi
export LAWCKET_MOTO_SERVER="$PWD/.venv/bin/moto_server"

cargo test --workspace "$@"
