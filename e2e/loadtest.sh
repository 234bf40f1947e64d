#!/usr/bin/env bash
# Load test of `llama2 serve` with its default flags: throughput and latency
# at 1, 4, 8 and 16 closed-loop clients, then the reliability run (500
# requests, 16 at a time, a third streamed, a tenth hung up on, some near the
# context limit), then SIGTERM and a clean exit.
#
#   e2e/loadtest.sh <checkpoint> [tokenizer]       (`make loadtest` runs it on a
#                                                   stories42M-shaped checkpoint)
# CLIENTS, REQUESTS and SERVE_ARGS override the defaults.
set -euo pipefail
export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.27.3}" # go.mod says Go 1.27
cd "$(dirname "$0")/.."
MODEL=${1:?usage: e2e/loadtest.sh <checkpoint> [tokenizer]}
TOKENIZER=${2:-tokenizer.bin}
CLIENTS=${CLIENTS:-1,4,8,16}
REQUESTS=${REQUESTS:-4}
SERVE_ARGS=${SERVE_ARGS:-}

tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/llama2" .
go build -o "$tmp/loadtest" ./e2e/loadtest
# shellcheck disable=SC2086
"$tmp/llama2" serve "$MODEL" -z "$TOKENIZER" -addr 127.0.0.1:0 $SERVE_ARGS 2>"$tmp/server.log" &
pid=$!
addr=
for _ in $(seq 100); do
  addr=$(grep -so 'addr=127\.0\.0\.1:[0-9]*' "$tmp/server.log" | head -1 | cut -d= -f2 || true)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "loadtest: the server exited:" >&2; cat "$tmp/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "loadtest: the server did not report its address" >&2; exit 1; }
grep -m1 'msg=listening' "$tmp/server.log"
seq_len=$(grep -m1 -o 'seq_len=[0-9]*' "$tmp/server.log" | cut -d= -f2)
echo "loadtest: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

status=0
"$tmp/loadtest" -url "http://$addr" -clients "$CLIENTS" -requests "$REQUESTS" || status=1
"$tmp/loadtest" -url "http://$addr" -mode reliability -total 500 -concurrency 16 -ctx "$seq_len" || status=1

kill -TERM "$pid"
if ! wait "$pid"; then echo "loadtest: the server did not exit cleanly on SIGTERM" >&2; status=1; fi
pid=
grep -q 'msg=stopped' "$tmp/server.log" || { echo "loadtest: no clean shutdown in the log" >&2; status=1; }
exit "$status"
