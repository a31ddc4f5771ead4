#!/usr/bin/env bash
# Dispatch overhead in instructions per event (valgrind's callgrind counts
# them repeatably on a noisy machine): each kind of event through lawcket and
# through the hand-written function, N + 1 events minus 1 (the setup and what
# the first event builds once, such as the management client).
#
#   benchmarks/dispatch-callgrind.sh [N]      (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-2000}"
cargo bench --quiet -p lawcket-benchmarks --bench dispatch --no-run
bench=$(cargo bench -p lawcket-benchmarks --bench dispatch --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*dispatch-[^"]*\)".*/\1/p' | tail -1)
instructions() {
    env ${log:+DISPATCH_LOG=1} DISPATCH_COUNT="$1:$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bench" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "| event | log subscriber | lawcket | hand-written | ratio | target |"
echo "|---|---|---|---|---|---|"
for log in "" 1; do
for kind in CONNECT MESSAGE DISCONNECT; do
    per_event() {
        local full empty
        full=$(instructions "$1/$kind" "$((n + 1))")
        empty=$(instructions "$1/$kind" 1)
        echo $(( (full - empty) / n ))
    }
    ours=$(per_event lawcket)
    theirs=$(per_event hand-written)
    awk -v k="$kind" -v l="${log:+on}" -v a="$ours" -v b="$theirs" \
        'BEGIN { printf "| %s | %s | %d instr | %d instr | %.2f× | ≤ 1.05× |\n", k, l ? l : "off", a, b, a / b }'
done
done
