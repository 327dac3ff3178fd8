#!/usr/bin/env bash
# npm run demo:phones — start the sandbox PBX and run Considerate Callback with the demo settings
# (config/demo.json: short grace and back-off, calling hours around the clock) for your own softphones
# (README.md, "Try it"). `npm run demo` plays the whole story with scripted phones instead (demo/main.ts).
# The sandbox's ports follow the environment (CC_PBX_SIP_PORT, CC_PBX_HTTP_PORT, … as for
# scripts/pbx.sh); the app's ARI URL follows CC_PBX_HTTP_PORT, its page CC_HTTP_PORT (default 9464).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/pbx.sh up
npm run --silent build
mkdir -p data
SIP_PORT="${CC_PBX_SIP_PORT:-5060}"
export CC_ARI_URL="${CC_ARI_URL:-http://127.0.0.1:${CC_PBX_HTTP_PORT:-8088}}"
PAGE_PORT="${CC_HTTP_PORT:-9464}"
# The listener is closed without a token (README, "Security"): one for this run, in the addresses below.
export CC_HTTP_TOKEN="${CC_HTTP_TOKEN:-$(node -e "process.stdout.write(require('node:crypto').randomBytes(18).toString('base64url'))")}"
cat <<MSG

Considerate Callback demo
  Open http://localhost:$PAGE_PORT/phones?token=$CC_HTTP_TOKEN
    agent 1001 and prospect 2001 as browser phones (WebRTC), and
  http://localhost:$PAGE_PORT/callbacks?token=$CC_HTTP_TOKEN
    the callbacks page (live list, timelines, cancel, explain). The first visit keeps the token in a cookie.
  Or a softphone: register 1001 / agent1001 (the agent) at 127.0.0.1:$SIP_PORT (UDP).
  Dial 2995 after *71 (makes 2995 busy): press # at the offer; then dial *72 (line free).
  After the 30 s grace your phone rings as "Callback: 2995"; press 1 to be connected.
  Watch:  node dist/cli/main.js list -c config/demo.json
  Stop:   Ctrl-C (or SIGTERM), then npm run pbx:down

MSG
# Not exec: npm (or whoever started us) may signal only this shell; SIGINT and SIGTERM stop the service too.
node dist/cli/main.js run --config config/demo.json &
SERVICE=$!
trap 'kill -TERM "$SERVICE" 2>/dev/null' INT TERM
status=0
wait "$SERVICE" || status=$?
# A trapped signal interrupts the first wait; wait again for the service's clean stop.
if kill -0 "$SERVICE" 2>/dev/null; then wait "$SERVICE" || status=$?; fi
exit "$status"
