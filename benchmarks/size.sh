#!/usr/bin/env bash
# Binary size of the `echo` example (BENCHMARKS.md): the default build, the
# Lambda build with the profile README recommends, and that build with the
# local gateway; then what the Lambda build's bytes go to, by crate
# (cargo-bloat, installed on first use).
#
#   benchmarks/size.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.2f MB", b / 1e6 }'; }
# The Lambda profile strips; the builds here keep symbols for cargo-bloat (and
# share them with benches/cold_start.rs), and `strip` makes the measured copies.
export CARGO_PROFILE_LAMBDA_STRIP=false

cargo build --quiet --release -p lawcket --example echo
strip -o "$target/echo-default-stripped" "$target/release/examples/echo"
default=$(mb "$target/echo-default-stripped")

cargo build --quiet --profile lambda -p lawcket --example echo
strip -o "$target/echo-lambda-local-stripped" "$target/lambda/examples/echo"
with_local=$(mb "$target/echo-lambda-local-stripped")

# The same example as a Lambda-only binary (the benchmarks crate's `echo`).
cargo build --quiet --profile lambda -p lawcket-benchmarks --bin echo
strip -o "$target/echo-lambda-stripped" "$target/lambda/echo"
lambda=$(mb "$target/echo-lambda-stripped")

echo
echo "| build | stripped size | target |"
echo "|---|---|---|"
echo "| release profile, with the local gateway (\`cargo build --release --example echo\`) | $default | |"
echo "| \`--profile lambda\`, with the local gateway | $with_local | |"
echo "| \`--profile lambda\`, Lambda-only (lawcket's defaults; what README recommends) | $lambda | ≤ 5 MB (≤ 6) |"
echo

if ! command -v cargo-bloat >/dev/null; then
    echo "benchmarks/size.sh: installing cargo-bloat"
    cargo install --quiet --locked cargo-bloat
fi
cargo bloat --profile lambda -p lawcket-benchmarks --bin echo --crates -n 25
