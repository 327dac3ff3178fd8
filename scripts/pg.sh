#!/usr/bin/env bash
# pg.sh -- a throw-away PostgreSQL cluster for development and tests.
#
# Debian's PostgreSQL 15 server (apt-get install postgresql, done here when it is missing, the way
# pbx.sh installs the sandbox's tools). The cluster lives in $CC_PG_DIR (data, socket, log); it listens
# on 127.0.0.1:$CC_PG_PORT and on a unix socket in $CC_PG_DIR, with trust authentication for local
# connections only. PostgreSQL refuses to run as root, so when we are root the cluster belongs to the
# `postgres` user (created by the Debian package).
#
#   scripts/pg.sh up        initdb once, start, wait until it accepts connections; prints the URL
#   scripts/pg.sh down      stop (fast shutdown)
#   scripts/pg.sh status    exit 0 when running
#   scripts/pg.sh url       the connection URL (postgres://postgres@127.0.0.1:PORT/postgres)
#   scripts/pg.sh destroy   stop and remove $CC_PG_DIR
#
# Environment:
#   CC_PG_DIR   where the cluster lives (default <repo>/.pg)
#   CC_PG_PORT  TCP port on 127.0.0.1 (default 55432)
#
# Exit codes: 0 ok, 1 failure, 2 usage, 3 this machine cannot run it (no server and cannot install).

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/.." && pwd)"
DIR="${CC_PG_DIR:-$REPO/.pg}"
PORT="${CC_PG_PORT:-55432}"
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
  printf 'pg: CC_PG_PORT must be a port number (1-65535), got "%s"\n' "$PORT" >&2
  exit 2
fi
DATA="$DIR/data"
LOG="$DIR/postgres.log"
URL="postgres://postgres@127.0.0.1:$PORT/postgres"

find_bin() { # newest server binaries in Debian's layout
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  done
  return 1
}

ensure_server() {
  if BIN="$(find_bin)"; then return 0; fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "pg: PostgreSQL server not installed and cannot install it here (need root and apt-get): apt-get install postgresql" >&2
    exit 3
  fi
  echo "pg: installing Debian's postgresql (server)…" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q postgresql >&2 || { apt-get update -q >&2 && apt-get install -y -q postgresql >&2; }
  BIN="$(find_bin)" || { echo "pg: postgresql installed but no server binaries found" >&2; exit 1; }
}

# Run a command as the cluster's owner: ourselves, or `postgres` when we are root.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    # runuser keeps the environment small; cd somewhere postgres may read.
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

running() {
  [ -n "${BIN:-}" ] || BIN="$(find_bin)" || return 1
  [ -f "$DATA/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

up() {
  ensure_server
  mkdir -p "$DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$DIR"; chmod 700 "$DIR"; fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; exit 1; }
    cat >>"$DATA/postgresql.conf" <<EOF
# scripts/pg.sh: loopback and our own socket only
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
max_connections = 200
fsync = on
EOF
  fi
  # The port may have changed since initdb.
  sed -i "s/^port = .*/port = $PORT/" "$DATA/postgresql.conf"
  if running; then echo "$URL"; return 0; fi
  rm -f "$DATA/postmaster.pid"
  # 9>&-: the server must not inherit the start lock (fd 9), or the next `up` would wait for it forever.
  # The port lies in Linux's ephemeral range: a short-lived outgoing connection may hold it for a moment
  # ("Address already in use"), so a failed start is tried again a few times.
  local try
  for try in 1 2 3 4 5 6; do
    if as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null 9>&-; then echo "$URL"; return 0; fi
    tail -n 5 "$LOG" | grep -q 'Address already in use' || break
    sleep 2
  done
  tail -n 30 "$LOG" >&2
  exit 1
}

down() {
  if running; then as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; fi
}

case "${1:-}" in
  up)
    # Several test workers may ask at once: one initdb/start at a time.
    mkdir -p "$DIR"
    exec 9>"$DIR.lock"
    flock 9
    up
    ;;
  down) down ;;
  status) running ;;
  url) echo "$URL" ;;
  destroy) down || true; rm -rf "$DIR" ;;
  *) echo "usage: $0 up|down|status|url|destroy" >&2; exit 2 ;;
esac
