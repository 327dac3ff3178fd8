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
node scripts/clean.mjs .tools-dist && npx tsc -p tsconfig.tools.json
mkdir -p data
# A small fake CRM (testkit/fake-crm.ts) names the prospects (2995 Eva Berg, 2001 Anna Schmidt): the recall's
# label, the page and the heads-up show the name. On a free port, signed with a key for this run.
export CC_LOOKUP_SECRET="${CC_LOOKUP_SECRET:-$(node -e "process.stdout.write(require('node:crypto').randomBytes(18).toString('base64url'))")}"
CRM_OUT="$(mktemp)"
node .tools-dist/testkit/fake-crm.js --port 0 --secret "$CC_LOOKUP_SECRET" >"$CRM_OUT" &
CRM=$!
for _ in $(seq 50); do grep -q '^fake CRM' "$CRM_OUT" && break; sleep 0.1; done
export CC_LOOKUP_URL="${CC_LOOKUP_URL:-$(sed -n 's/^fake CRM ([a-z]*) at //p' "$CRM_OUT")}"
rm -f "$CRM_OUT"
[ -n "$CC_LOOKUP_URL" ] || { echo "demo: the fake CRM did not start" >&2; kill "$CRM" 2>/dev/null; exit 1; }
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
    the callbacks page (live list, timelines, cancel, explain, the heads-up). The first visit keeps the
    token in a cookie; allow its notifications to get the heads-up as a browser notification too.
  Or a softphone: register 1001 / agent1001 (the agent) at 127.0.0.1:$SIP_PORT (UDP).
  Dial 2995 after *71 (makes 2995 busy): press # at the offer; then dial *72 (line free).
  The fake CRM at $CC_LOOKUP_URL names 2995: Eva Berg (Nordlicht AG).
  15 s before the 30 s grace ends the page shows the heads-up (and lamp *821001 blinks); then your
  phone rings as "CB Eva Berg"; press 1 to be connected.
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
kill -TERM "$CRM" 2>/dev/null || true
wait "$CRM" 2>/dev/null || true
exit "$status"
