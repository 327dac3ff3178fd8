#!/usr/bin/env bash
# CI check of the host install (docs/operations.md): the unit passes `systemd-analyze verify`, the
# `npm pack` tarball installs into a temporary prefix, and the installed command runs from there
# (`--help`, `config check` of the shipped example config, `dialplan --path` finds the shipped routine).
# Needs: node >= 20, npm, systemd (Debian's `systemd` package, for systemd-analyze), network for npm.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$root"

echo "== npm pack (prepack builds dist/)"
npm pack --silent --pack-destination "$tmp" >/dev/null
tarball="$(ls "$tmp"/considerate-callback-*.tgz)"
listing="$(tar -tzf "$tarball")"
for f in package/dist/cli/main.js package/dist/index.js package/dialplan/considerate-callback.conf \
         package/deploy/considerate-callback.service package/deploy/config.example.yaml package/sounds; do
  grep -q "^$f" <<<"$listing" || { echo "FAIL: the tarball lacks $f" >&2; exit 1; }
done
if grep -qE '^package/(test|src|bench|node_modules)/' <<<"$listing"; then
  echo "FAIL: the tarball carries test/src/bench/node_modules files" >&2; exit 1
fi

echo "== install into $tmp/prefix"
bash deploy/install.sh --tarball "$tarball" --prefix "$tmp/prefix" --no-system --unit-out "$tmp/considerate-callback.service"
bin="$tmp/prefix/bin/considerate-callback"

echo "== systemd-analyze verify"
# verify checks that ExecStart exists and is executable: it does, in the temporary prefix.
# It cannot know the service user (made by install.sh on a real host); that line is not a unit error.
out="$(systemd-analyze verify "$tmp/considerate-callback.service" 2>&1 || true)"
problems="$(grep -v -e '^$' -e 'considerate-callback.*user' <<<"$out" | grep -i -e 'considerate-callback.service' -e 'unknown' -e 'invalid' -e 'failed' || true)"
if [ -n "$problems" ]; then
  echo "$out" >&2
  echo "FAIL: systemd-analyze verify reported problems with the unit" >&2
  exit 1
fi
echo "${out:-(no findings)}"

echo "== the installed command"
cd "$tmp"   # nothing from the checkout: the command must run from the prefix alone
"$bin" --help | grep -q 'considerate-callback run' || { echo "FAIL: --help does not list run" >&2; exit 1; }
CC_ARI_PASSWORD=ci-check "$bin" config check --config "$root/deploy/config.example.yaml" --json >"$tmp/check.json"
node -e 'const c=require(process.argv[1]); if (!c || typeof c !== "object") process.exit(1)' "$tmp/check.json"
if "$bin" config check --config "$root/deploy/config.example.yaml" >/dev/null 2>&1; then
  echo "FAIL: config check without the ARI password should exit 2" >&2; exit 1
fi
dialplan="$("$bin" dialplan --path)"
case "$dialplan" in "$tmp/prefix/"*) ;; *) echo "FAIL: dialplan --path points outside the prefix: $dialplan" >&2; exit 1 ;; esac
[ -f "$dialplan" ] || { echo "FAIL: $dialplan missing" >&2; exit 1; }
echo "OK: packed, installed into a temporary prefix, unit verified, command runs from the prefix"
