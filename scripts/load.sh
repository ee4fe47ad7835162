#!/usr/bin/env bash
# Loopback load test of the server with a 640x480 one-face JPEG selfie: 1:1 verify
# (/v1/verify), 1:N search and enrollment (surface 2) at full speed with wrk, then verify at
# half the measured rate with oha's rate limiter for the latency at that load.
# Usage: scripts/load.sh [seconds] [connections] [sample-photo].
# Needs wrk (apt-get install wrk), oha (cargo install oha) for the paced run, a built
# target/release/faceid and fetched models. Starts its own server on 127.0.0.1 with a
# throwaway gallery and stops it when done.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
CONNS=${2:-4}
PHOTO=${3:-models/samples/sample3.jpg}
FACEID=./target/release/faceid
PORT=18181
WORK=$(mktemp -d)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/data" "$WORK/keys"
$FACEID keys gallery "$WORK/keys/g.key" 2>/dev/null
KEY=$($FACEID keys create --data "$WORK/data" --role client | sed 's/.*"key":"\([0-9a-f]*\)".*/\1/')
$FACEID bench "$PHOTO" --runs 1 --threads 2 --save-frame "$WORK/frame.jpg" >/dev/null
$FACEID serve --listen 127.0.0.1:$PORT --data "$WORK/data" --key-file "$WORK/keys/g.key" 2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 100); do curl -sf 127.0.0.1:$PORT/health >/dev/null && break; sleep 0.2; done
printf '{"face":"%s"}' "$(base64 -w0 "$WORK/frame.jpg")" >"$WORK/body.json"
curl -sf -X POST "127.0.0.1:$PORT/users/reference" -H "x-api-key: $KEY" -H 'content-type: application/json' \
  --data-binary @"$WORK/body.json" >/dev/null
printf '{"subject_id":"reference","media":"%s"}' "$(base64 -w0 "$WORK/frame.jpg")" >"$WORK/verify.json"
cat >"$WORK/verify.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["x-api-key"] = "$KEY"
local f = io.open("$WORK/verify.json", "rb"); wrk.body = f:read("*a"); f:close()
LUA
cat >"$WORK/search.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["x-api-key"] = "$KEY"
local f = io.open("$WORK/body.json", "rb"); wrk.body = f:read("*a"); f:close()
LUA
cat >"$WORK/enroll.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["x-api-key"] = "$KEY"
local f = io.open("$WORK/body.json", "rb"); local body = f:read("*a"); f:close()
-- Every wrk thread has its own Lua state with the same random seed: give each a distinct
-- id prefix so enrollments never collide (a collision is correctly refused as a duplicate).
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/users/load-" .. tid .. "-" .. n, nil, body)
end
LUA
echo "== verify (1:1, full pipeline + liveness + decision + audit): $CONNS connections, ${SECS}s"
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$WORK/verify.lua" "http://127.0.0.1:$PORT/v1/verify" | tee "$WORK/verify.txt"
RATE=$(awk '/Requests\/sec/ {print int($2 / 2)}' "$WORK/verify.txt")
if command -v oha >/dev/null 2>&1; then
  echo "== verify paced at half that rate: $RATE requests/s, ${SECS}s"
  oha --no-tui -z "${SECS}s" -q "$RATE" -c "$CONNS" -m POST -H "x-api-key: $KEY" \
    -T application/json -D "$WORK/verify.json" "http://127.0.0.1:$PORT/v1/verify"
else
  echo "(oha not installed: skipping the paced run; cargo install oha)"
fi
echo "== search (1:N, probe vs gallery): $CONNS connections, ${SECS}s"
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$WORK/search.lua" "http://127.0.0.1:$PORT/users/search"
echo "== enroll (quality-gated, durable write + audit): $CONNS connections, ${SECS}s"
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$WORK/enroll.lua" "http://127.0.0.1:$PORT"
echo "== statuses seen by the server"
sed 's/\x1b\[[0-9;]*m//g' "$WORK/server.log" | grep -o 'status=[0-9]*' | sort | uniq -c
