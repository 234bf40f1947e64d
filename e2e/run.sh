#!/usr/bin/env bash
# End-to-end test of `llama2 serve`: builds the binary, serves a fixture
# model on 127.0.0.1 (a free port chosen by the kernel), waits for /health,
# runs the openai-client tests (npm's and Go's) and the load test, then stops the server with
# SIGTERM and checks that it exits cleanly.
#
#   cd e2e && npm ci && ./run.sh        (fixtures: `make fixtures` first)
#
# MODEL, TOKENIZER and SERVE_ARGS override the defaults.
set -euo pipefail
export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.27.3}" # go.mod says Go 1.27
cd "$(dirname "$0")"
MODEL=${MODEL:-../testdata/stories260K.bin}
TOKENIZER=${TOKENIZER:-../testdata/tok512.bin}
SERVE_ARGS=${SERVE_ARGS:--parallel 8 -queue 8}

for f in "$MODEL" "$TOKENIZER"; do
  [ -s "$f" ] || { echo "e2e: missing $f (run \`make fixtures\`)" >&2; exit 1; }
done
[ -d node_modules/openai ] || { echo "e2e: run \`npm ci\` in e2e/ first" >&2; exit 1; }

tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/llama2" ..
# shellcheck disable=SC2086
"$tmp/llama2" serve "$MODEL" -z "$TOKENIZER" -addr 127.0.0.1:0 $SERVE_ARGS 2>"$tmp/server.log" &
pid=$!

addr=
for _ in $(seq 100); do
  addr=$(grep -so 'addr=127\.0\.0\.1:[0-9]*' "$tmp/server.log" | head -1 | cut -d= -f2 || true)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "e2e: the server exited:" >&2; cat "$tmp/server.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "e2e: the server did not report its address" >&2; cat "$tmp/server.log" >&2; exit 1; }
node -e '
  const url = process.argv[1];
  const end = Date.now() + 10000;
  (async () => {
    while (Date.now() < end) {
      try { const r = await fetch(url); if (r.ok && (await r.json()).status === "ok") return; } catch {}
      await new Promise((r) => setTimeout(r, 100));
    }
    console.error("e2e: /health did not answer"); process.exit(1);
  })();' "http://$addr/health"
echo "e2e: serving on $addr"

export LLAMA2_BASE_URL="http://$addr/v1"
status=0
timeout 300 node --test openai.test.mjs || status=1
# The official Go client, in a module of its own (e2e/goclient).
(cd goclient && timeout 300 go test -count=1 ./...) || status=1
timeout 300 node load.mjs || status=1

kill -TERM "$pid"
if ! wait "$pid"; then echo "e2e: the server did not exit cleanly on SIGTERM" >&2; status=1; fi
pid=
grep -q 'msg=stopped' "$tmp/server.log" || { echo "e2e: no clean shutdown in the log" >&2; status=1; }
if [ "$status" -ne 0 ]; then echo "e2e: server log:" >&2; tail -50 "$tmp/server.log" >&2; fi
exit "$status"
