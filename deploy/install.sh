#!/usr/bin/env bash
# Installs (or upgrades) Considerate Callback on a Debian PBX host from an `npm pack` tarball.
#
#   deploy/install.sh [--tarball considerate-callback-X.Y.Z.tgz] [--prefix /opt/considerate-callback]
#                     [--no-system] [--unit-out FILE]
#
# - the package goes to <prefix>/lib/node_modules/considerate-callback, the command to
#   <prefix>/bin/considerate-callback (an upgrade replaces both; the store and config are untouched);
# - unless --no-system (as root): the system user `considerate-callback`, /etc/considerate-callback/
#   (config.yaml from deploy/config.example.yaml and an empty env file, only when they do not exist),
#   /var/lib/considerate-callback/, and the unit /etc/systemd/system/considerate-callback.service
#   (then `systemctl daemon-reload`; the service is not started: `systemctl enable --now considerate-callback`);
# - --unit-out FILE writes the unit with the prefix filled in to FILE instead (used by the CI test).
# Without --tarball, the tarball is made with `npm pack` in this checkout (which builds dist/).
# Needs Node.js >= 20 and npm on the host; better-sqlite3 is fetched prebuilt or compiled (build-essential, python3).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
prefix=/opt/considerate-callback
tarball=""
system=yes
unit_out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --tarball) tarball="$2"; shift 2 ;;
    --no-system) system=no; shift ;;
    --unit-out) unit_out="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path, got $prefix" >&2; exit 2 ;; esac

major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$major" -lt 20 ]; then
  echo "install.sh: Node.js >= 20 is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 2
fi

if [ -z "$tarball" ]; then
  out="$(mktemp -d)"
  (cd "$root" && npm pack --silent --pack-destination "$out" >/dev/null)
  tarball="$(ls "$out"/considerate-callback-*.tgz)"
fi
[ -f "$tarball" ] || { echo "install.sh: no tarball at $tarball" >&2; exit 2; }
tarball="$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")"

echo "== installing $(basename "$tarball") into $prefix"
mkdir -p "$prefix"
# --global with --prefix: <prefix>/lib/node_modules/<name> and <prefix>/bin/<bin>, production dependencies only.
# better-sqlite3's install script builds or fetches its native module (npm >= 11 blocks scripts unless allowed).
npm install --global --prefix "$prefix" --omit=dev --no-audit --no-fund --allow-scripts=better-sqlite3 "$tarball"
"$prefix/bin/considerate-callback" --version >/dev/null

render_unit() {
  sed "s|@PREFIX@|$prefix|g" "$here/considerate-callback.service"
}
if [ -n "$unit_out" ]; then
  render_unit >"$unit_out"
  echo "== unit written to $unit_out"
fi
[ "$system" = yes ] || exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root for the system part (user, /etc, /var/lib, unit), or pass --no-system" >&2
  exit 2
fi
if ! getent passwd considerate-callback >/dev/null; then
  useradd --system --user-group --home-dir /var/lib/considerate-callback --no-create-home \
    --shell /usr/sbin/nologin --comment "Considerate Callback" considerate-callback
fi
install -d -m 0750 -o root -g considerate-callback /etc/considerate-callback
if [ ! -e /etc/considerate-callback/config.yaml ]; then
  install -m 0640 -o root -g considerate-callback "$here/config.example.yaml" /etc/considerate-callback/config.yaml
  echo "== wrote /etc/considerate-callback/config.yaml: edit it"
fi
if [ ! -e /etc/considerate-callback/env ]; then
  printf '# Secrets for considerate-callback (read by systemd as root).\nCC_ARI_PASSWORD=\n' >/etc/considerate-callback/env
  chown root:considerate-callback /etc/considerate-callback/env
  chmod 0640 /etc/considerate-callback/env
  echo "== wrote /etc/considerate-callback/env: put the ARI password there"
fi
install -d -m 0750 -o considerate-callback -g considerate-callback /var/lib/considerate-callback
render_unit >/etc/systemd/system/considerate-callback.service
chmod 0644 /etc/systemd/system/considerate-callback.service
if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
cat <<MSG
== installed. Next:
   considerate-callback dialplan > /etc/asterisk/considerate-callback.conf   (see docs/operations.md)
   $prefix/bin/considerate-callback config check -c /etc/considerate-callback/config.yaml
   systemctl enable --now considerate-callback && journalctl -u considerate-callback -f
   (an upgrade: run this script with the new tarball, then systemctl restart considerate-callback)
MSG
