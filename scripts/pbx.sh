#!/usr/bin/env bash
# pbx.sh -- the Asterisk sandbox for development and integration tests.
#
# Asterisk is not packaged for Debian 12, so we run Debian sid's asterisk in a
# chroot built with mmdebstrap (cached in $CC_SANDBOX_DIR/rootfs). The chroot
# shares the host's network: Asterisk listens on 127.0.0.1 (by default SIP
# 5060/udp, HTTP/ARI 8088, RTP 10000-12000), configured from the repo's
# asterisk-conf/ and dialplan/, with our prompts from sounds/. The ports come
# from the environment (below); several sandboxes run side by side when each
# has its own CC_SANDBOX_DIR and ports.
#
#   scripts/pbx.sh up         build the chroot once (cached), start Asterisk, wait for ARI
#   scripts/pbx.sh down       stop Asterisk, unmount
#   scripts/pbx.sh restart    down + up (no rebuild; config and prompts are re-copied)
#   scripts/pbx.sh status     running or not (exit 0 = running, 1 = stopped)
#   scripts/pbx.sh cli "core show channels"    asterisk -rx in the chroot
#   scripts/pbx.sh reload     re-copy config, dialplan and prompts; core reload
#   scripts/pbx.sh rebuild    throw the cached chroot away and build it again
#
# Environment (the one place the sandbox's ports are set; testkit/sandbox.ts
# reads the same variables for the tests, the demo and the bench):
#   CC_SANDBOX_DIR       where the chroot, pid file, log and test lock live (default <repo>/.sandbox)
#   CC_PBX_SIP_PORT      PJSIP UDP port (default 5060)
#   CC_PBX_HTTP_PORT     HTTP/ARI port (default 8088)
#   CC_PBX_RTP_START     first RTP port (default 10000)
#   CC_PBX_RTP_END       last RTP port (default 12000)
#   CC_PBX_START_TIMEOUT seconds to wait for ARI after starting Asterisk (default 60)
#   CC_SANDBOX_ROOTFS_FROM  copy this built chroot (another sandbox's rootfs)
#                        instead of building one with mmdebstrap
#
# Exit codes: 0 ok, 1 failure, 2 usage, 3 this machine cannot run the sandbox
# (not root / not Debian with apt): tests treat 3 as "skip".

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/.." && pwd)"
SANDBOX="${CC_SANDBOX_DIR:-$REPO/.sandbox}"

# Physical paths: /proc/<pid>/root of the chrooted Asterisk is compared
# with ROOTFS, so symlinks must be resolved. Called again once created.
init_paths() {
  if [ -d "$SANDBOX" ]; then SANDBOX="$(cd "$SANDBOX" && pwd -P)"; fi
  ROOTFS="$SANDBOX/rootfs"
  LOG="$SANDBOX/asterisk.log"
  PIDFILE="$SANDBOX/asterisk.pid"
  STAMP_FILE="$ROOTFS/.cc-sandbox-stamp"
}
init_paths
START_TIMEOUT="${CC_PBX_START_TIMEOUT:-60}"

port_var() { # name default -> the value, or exit 2 with a message
  local name="$1" value="${!1:-$2}"
  if ! [[ "$value" =~ ^[0-9]+$ ]] || [ "$value" -lt 1 ] || [ "$value" -gt 65535 ]; then
    printf 'pbx: %s must be a port number (1-65535), got "%s"\n' "$name" "$value" >&2
    exit 2
  fi
  echo "$value"
}
SIP_PORT="$(port_var CC_PBX_SIP_PORT 5060)"
HTTP_PORT="$(port_var CC_PBX_HTTP_PORT 8088)"
RTP_START="$(port_var CC_PBX_RTP_START 10000)"
RTP_END="$(port_var CC_PBX_RTP_END 12000)"
[ "$RTP_START" -lt "$RTP_END" ] || { printf 'pbx: CC_PBX_RTP_START (%s) must be below CC_PBX_RTP_END (%s)\n' "$RTP_START" "$RTP_END" >&2; exit 2; }
ARI_URL="http://127.0.0.1:$HTTP_PORT"
# The demo PBX's public ARI user (asterisk-conf/ari.conf).
ARI_USER="considerate"
ARI_PASSWORD="demo-ari-secret"

# What the chroot contains. Changing this list rebuilds the chroot.
SUITE="sid"
PACKAGES="asterisk,asterisk-modules,asterisk-core-sounds-en-gsm,asterisk-moh-opsound-gsm"
STAMP_VALUE="$SUITE $PACKAGES"

# Paths inside the chroot (asterisk-conf/asterisk.conf).
AST_ETC="/etc/asterisk"
AST_RUN="/var/run/asterisk"
AST_DATA="$(sed -n 's/^[[:space:]]*astdatadir[[:space:]]*=>[[:space:]]*\([^ ;]*\).*/\1/p' "$REPO/asterisk-conf/asterisk.conf" 2>/dev/null | head -n1)"
AST_DATA="${AST_DATA:-/usr/share/asterisk}"

log() { printf 'pbx: %s\n' "$*"; }
err() { printf 'pbx: %s\n' "$*" >&2; }
die() { err "$*"; exit 1; }

usage() {
  sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------- checks

# Exit 3 with a precise list of what is missing.
require_platform() {
  local missing=()
  [ "$(id -u)" -eq 0 ] || missing+=("root (run as root: the sandbox uses chroot and mount)")
  [ -f /etc/debian_version ] || missing+=("Debian (/etc/debian_version not found)")
  command -v apt-get >/dev/null 2>&1 || missing+=("apt-get")
  command -v chroot >/dev/null 2>&1 || missing+=("chroot (coreutils)")
  command -v mount >/dev/null 2>&1 || missing+=("mount (util-linux)")
  if [ "${#missing[@]}" -gt 0 ]; then
    err "cannot run the Asterisk sandbox on this machine; missing:"
    local m
    for m in "${missing[@]}"; do err "  - $m"; done
    exit 3
  fi
}

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# What the sandbox and its users need on the host: mmdebstrap (and the keyring)
# to build the chroot, SIPp for the scripted phones of the demo, tests and bench.
ensure_host_tools() {
  local need=()
  command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
  command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
  # baresip: the real SIP phone of the desk-phone tests (test/integration/desk-phone.test.ts)
  command -v baresip >/dev/null 2>&1 || need+=(baresip-core)
  # the keyring that verifies sid's Release file
  [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
  if [ "${#need[@]}" -gt 0 ]; then
    apt_install "${need[@]}" || die "could not install: ${need[*]}"
  fi
}

# ----------------------------------------------------------------- state

# The pid of the sandbox's Asterisk if it is running, else nothing.
asterisk_pid() {
  local pid=""
  for f in "$PIDFILE" "$ROOTFS$AST_RUN/asterisk.pid"; do
    [ -s "$f" ] || continue
    pid="$(tr -dc '0-9' <"$f")"
    [ -n "$pid" ] || continue
    if [ -d "/proc/$pid" ] && is_our_asterisk "$pid"; then
      echo "$pid"
      return 0
    fi
  done
  return 0
}

# True if pid is an asterisk process whose root is our chroot.
is_our_asterisk() {
  local pid="$1" root comm
  root="$(readlink "/proc/$pid/root" 2>/dev/null || true)"
  comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
  [ "$comm" = "asterisk" ] && [ "$root" = "$ROOTFS" ]
}

# Pids of every process running inside our chroot.
chroot_pids() {
  local p root
  for p in /proc/[0-9]*; do
    root="$(readlink "$p/root" 2>/dev/null || true)"
    [ "$root" = "$ROOTFS" ] && echo "${p#/proc/}"
  done
  return 0
}

http_get() { # url -> prints body, fails if not 2xx
  local url="$1"
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 3 -u "$ARI_USER:$ARI_PASSWORD" "$url"
    return
  fi
  # No curl (fresh Debian): plain HTTP/1.0 over bash's /dev/tcp.
  local hostport path host port auth status
  hostport="${url#http://}"; path="/${hostport#*/}"; hostport="${hostport%%/*}"
  host="${hostport%%:*}"; port="${hostport##*:}"
  auth="$(printf '%s:%s' "$ARI_USER" "$ARI_PASSWORD" | base64 | tr -d '\n')"
  exec 9<>"/dev/tcp/$host/$port" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\nAuthorization: Basic %s\r\n\r\n' "$path" "$hostport" "$auth" >&9
  local response
  response="$(timeout 3 cat <&9 || true)"
  exec 9<&- 9>&-
  status="$(printf '%s' "$response" | head -n1 | awk '{print $2}')"
  case "$status" in 2??) printf '%s' "$response" | sed '1,/^\r\{0,1\}$/d' ;; *) return 1 ;; esac
}

# ARI answers on our port, and (where ss can tell) it is this sandbox's Asterisk
# that listens there, not another sandbox's or another PBX's.
ari_ok() { http_get "$ARI_URL/ari/asterisk/info" >/dev/null 2>&1 && http_port_ours; }

http_port_ours() {
  command -v ss >/dev/null 2>&1 || return 0
  local pids p
  pids="$(ss -H -ltnp "sport = :$HTTP_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)"
  [ -n "$pids" ] || return 0 # ss without process information
  for p in $pids; do is_our_asterisk "$p" && return 0; done
  return 1
}

is_mounted() { mountpoint -q "$1" 2>/dev/null; }

print_url() {
  log "ARI ready: $ARI_URL/ari  (user $ARI_USER, password $ARI_PASSWORD, app considerate-callback)"
  echo "CC_ARI_URL=$ARI_URL"
  echo "CC_ARI_USER=$ARI_USER"
  echo "CC_ARI_PASSWORD=$ARI_PASSWORD"
}

# ----------------------------------------------------------------- build

rootfs_ready() {
  [ -x "$ROOTFS/usr/sbin/asterisk" ] && [ -f "$STAMP_FILE" ] && [ "$(cat "$STAMP_FILE")" = "$STAMP_VALUE" ]
}

# Remove a directory that might be a chroot: never while anything is mounted
# below it (a bind mount of /dev or /proc would be emptied on the host).
safe_rm_tree() {
  local dir="$1"
  [ -e "$dir" ] || return 0
  local m
  for m in $(awk -v d="$dir" 'index($2, d"/") == 1 || $2 == d {print $2}' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || die "cannot unmount $m; not removing $dir"
  done
  if awk -v d="$dir" 'index($2, d"/") == 1 || $2 == d {found=1} END {exit !found}' /proc/mounts; then
    die "something is still mounted below $dir; not removing it"
  fi
  rm -rf --one-file-system "$dir"
}

# CC_SANDBOX_ROOTFS_FROM=<another sandbox's rootfs>: a second sandbox copies a
# built chroot of the same packages instead of building its own (also while
# that sandbox runs: its /proc mount is not copied).
copy_rootfs() {
  local from="${CC_SANDBOX_ROOTFS_FROM:-}"
  [ -n "$from" ] || return 1
  if ! [ -x "$from/usr/sbin/asterisk" ] || [ "$(cat "$from/.cc-sandbox-stamp" 2>/dev/null)" != "$STAMP_VALUE" ]; then
    err "CC_SANDBOX_ROOTFS_FROM=$from is not a built sandbox chroot of these packages; building one"
    return 1
  fi
  local tmp="$SANDBOX/rootfs.tmp.$$"
  safe_rm_tree "$tmp"
  cp -a --one-file-system "$from" "$tmp" || { safe_rm_tree "$tmp"; return 1; }
  rm -f "$tmp$AST_RUN"/asterisk.* 2>/dev/null || true
  # Not the other sandbox's state: its astdb keeps every device state the app
  # or a bench ever set (thousands of Stasis:cc-<agent> lamps after a bench),
  # which a fresh Asterisk would replay at start. Asterisk makes a new one.
  rm -f "$tmp"/var/lib/asterisk/astdb.sqlite3* 2>/dev/null || true
  safe_rm_tree "$ROOTFS"
  mv "$tmp" "$ROOTFS"
}

build_rootfs() {
  rootfs_ready && return 0
  [ -z "$(asterisk_pid)" ] || die "Asterisk is running from an outdated chroot; run: $0 down"
  ensure_host_tools
  local attempt tmp started
  started=$(date +%s)
  # Stale leftovers of interrupted builds.
  for tmp in "$SANDBOX"/rootfs.tmp.*; do [ -e "$tmp" ] && safe_rm_tree "$tmp"; done
  if copy_rootfs; then
    log "chroot ready in $(( $(date +%s) - started )) s: $ROOTFS (copied from $CC_SANDBOX_ROOTFS_FROM)"
    return 0
  fi
  for attempt in 1 2; do
    tmp="$SANDBOX/rootfs.tmp.$$"
    safe_rm_tree "$tmp"
    log "building the Asterisk chroot ($SUITE: $PACKAGES), attempt $attempt; log: $SANDBOX/mmdebstrap.log"
    if mmdebstrap --variant=apt \
        --aptopt='Acquire::Check-Valid-Until "false"' \
        --aptopt='Acquire::Retries "3"' \
        --include="$PACKAGES" \
        "$SUITE" "$tmp" >"$SANDBOX/mmdebstrap.log" 2>&1 \
       && [ -x "$tmp/usr/sbin/asterisk" ]; then
      # Keep Debian's stock configuration for reference (we replace /etc/asterisk).
      cp -a "$tmp/etc/asterisk" "$tmp/etc/asterisk.debian"
      echo "$STAMP_VALUE" >"$tmp/.cc-sandbox-stamp"
      safe_rm_tree "$ROOTFS"
      mv "$tmp" "$ROOTFS"
      log "chroot ready in $(( $(date +%s) - started )) s: $ROOTFS ($(chroot "$ROOTFS" asterisk -V))"
      return 0
    fi
    err "mmdebstrap failed (attempt $attempt):"
    tail -n 15 "$SANDBOX/mmdebstrap.log" >&2 || true
    safe_rm_tree "$tmp"
    sleep 3
  done
  die "could not build the Asterisk chroot; see $SANDBOX/mmdebstrap.log"
}

# ------------------------------------------------------ config + prompts

install_config() {
  local etc="$ROOTFS$AST_ETC"
  # Replace Debian's sample configuration with ours: only what we ship is
  # loaded (asterisk-conf/ is self-contained; Debian's originals are kept in
  # /etc/asterisk.debian inside the chroot).
  rm -rf --one-file-system "$etc"
  mkdir -p "$etc"
  cp "$REPO"/asterisk-conf/*.conf "$etc"/
  cp "$REPO/dialplan/considerate-callback.conf" "$etc"/
  [ -f "$etc/extensions.conf" ] || die "asterisk-conf/extensions.conf missing"
  write_port_overrides "$etc/sandbox"

  # Prompts: sounds/<lang>/... -> <astdatadir>/sounds/<lang>/... . On Debian
  # sounds/en is a symlink (alternatives) to en_US_f_Allison: resolve it
  # inside the chroot so we write where Asterisk reads.
  local langdir lang target
  for langdir in "$REPO"/sounds/*/; do
    [ -d "$langdir" ] || continue
    lang="$(basename "$langdir")"
    target="$(chroot "$ROOTFS" readlink -m "$AST_DATA/sounds/$lang")"
    mkdir -p "$ROOTFS$target"
    cp -r "$langdir". "$ROOTFS$target"/
  done

  mkdir -p "$ROOTFS$AST_RUN" "$ROOTFS/var/log/asterisk" "$ROOTFS/var/spool/asterisk" \
           "$ROOTFS/var/lib/asterisk" "$ROOTFS/var/cache/asterisk"
}

# The shared files #tryinclude sandbox/<name>.conf (as the docker image's
# docker/<name>.conf): the sandbox's ports, generated from the environment.
write_port_overrides() {
  local dir="$1"
  mkdir -p "$dir"
  printf '; generated by scripts/pbx.sh from CC_PBX_SIP_PORT\nbind = 127.0.0.1:%s\n' "$SIP_PORT" >"$dir/pjsip-transport.conf"
  printf '; generated by scripts/pbx.sh from CC_PBX_HTTP_PORT\nbindport = %s\n' "$HTTP_PORT" >"$dir/http.conf"
  printf '; generated by scripts/pbx.sh from CC_PBX_RTP_START/CC_PBX_RTP_END\nrtpstart = %s\nrtpend = %s\n' "$RTP_START" "$RTP_END" >"$dir/rtp.conf"
  printf '; generated by scripts/pbx.sh from CC_PBX_HTTP_PORT\nallowed_origins = http://127.0.0.1:%s\n' "$HTTP_PORT" >"$dir/ari.conf"
}

# ----------------------------------------------------------- start/stop

mount_all() {
  # /proc only. /dev is not bind-mounted on purpose: mmdebstrap already
  # created the device nodes Asterisk needs (null, zero, random, urandom),
  # and a bind-mounted host /dev inside a directory that may be rm -rf'ed
  # is a foot-gun.
  is_mounted "$ROOTFS/proc" || mount -t proc proc "$ROOTFS/proc"
}

umount_all() {
  local m
  for m in "$ROOTFS/proc"; do
    if is_mounted "$m"; then
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || err "could not unmount $m"
    fi
  done
}

port_busy() { # proto port
  ss -H -ln"${1:0:1}" "sport = :$2" 2>/dev/null | grep -q .
}

cmd_up() {
  require_platform
  mkdir -p "$SANDBOX"
  init_paths
  # Also when Asterisk already runs: the SIPp phones of the demo, the tests and
  # the bench run on the host.
  ensure_host_tools
  local pid
  pid="$(asterisk_pid)"
  if [ -n "$pid" ]; then
    if ari_ok; then
      log "already running (pid $pid)"
      print_url
      return 0
    fi
    log "Asterisk (pid $pid) is running but ARI does not answer yet; waiting"
  else
    local started
    started=$(date +%s)
    build_rootfs
    if command -v ss >/dev/null 2>&1; then
      port_busy udp "$SIP_PORT" && die "UDP port $SIP_PORT (CC_PBX_SIP_PORT) is in use by another process (ss -lunp 'sport = :$SIP_PORT')"
      port_busy tcp "$HTTP_PORT" && die "TCP port $HTTP_PORT (CC_PBX_HTTP_PORT) is in use by another process (ss -ltnp 'sport = :$HTTP_PORT')"
    fi
    install_config
    mount_all
    rm -f "$ROOTFS$AST_RUN/asterisk.pid" "$ROOTFS$AST_RUN/asterisk.ctl" "$PIDFILE"
    log "starting Asterisk; log: $LOG"
    {
      echo "=== $(date '+%F %T') pbx.sh up"
    } >>"$LOG"
    # setsid: own session, so Ctrl-C in the caller's terminal does not reach it.
    setsid chroot "$ROOTFS" /usr/sbin/asterisk -f -C "$AST_ETC/asterisk.conf" \
      </dev/null >>"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    pid="$(cat "$PIDFILE")"
    log "Asterisk pid $pid ($(( $(date +%s) - started )) s so far)"
  fi

  local deadline=$(( $(date +%s) + START_TIMEOUT ))
  until ari_ok; do
    if [ ! -d "/proc/$pid" ]; then
      err "Asterisk exited during startup; last lines of $LOG:"
      tail -n 30 "$LOG" >&2 || true
      umount_all
      rm -f "$PIDFILE"
      exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      err "ARI did not answer within ${START_TIMEOUT}s at $ARI_URL; last lines of $LOG:"
      tail -n 30 "$LOG" >&2 || true
      cmd_down >&2
      exit 1
    fi
    sleep 0.3
  done
  # ARI can answer before every module is loaded: wait for "fully booted"
  # (dialplan, PJSIP endpoints) before telling anyone to connect.
  timeout 30 chroot "$ROOTFS" /usr/sbin/asterisk -C "$AST_ETC/asterisk.conf" -rx "core waitfullybooted" >/dev/null 2>&1 \
    || err "warning: 'core waitfullybooted' did not confirm within 30 s"
  # Asterisk's own pid file is the truth (setsid may have forked).
  if [ -s "$ROOTFS$AST_RUN/asterisk.pid" ]; then
    cp "$ROOTFS$AST_RUN/asterisk.pid" "$PIDFILE"
  fi
  print_url
}

cmd_down() {
  require_platform
  local pid
  pid="$(asterisk_pid)"
  if [ -z "$pid" ]; then
    log "not running"
  else
    log "stopping Asterisk (pid $pid)"
    timeout 10 chroot "$ROOTFS" /usr/sbin/asterisk -C "$AST_ETC/asterisk.conf" -rx "core stop now" >/dev/null 2>&1 || true
    local i
    for i in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.2; done
    if [ -d "/proc/$pid" ]; then
      err "Asterisk did not stop; sending SIGTERM"
      kill -TERM "$pid" 2>/dev/null || true
      for i in $(seq 1 25); do [ -d "/proc/$pid" ] || break; sleep 0.2; done
    fi
    if [ -d "/proc/$pid" ]; then
      err "Asterisk still running; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
    log "stopped"
  fi
  # Anything else still running inside the chroot (e.g. a stuck asterisk -r).
  if [ -d "$ROOTFS" ]; then
    local p
    for p in $(chroot_pids); do kill -KILL "$p" 2>/dev/null || true; done
  fi
  rm -f "$PIDFILE" "$ROOTFS$AST_RUN/asterisk.pid"
  umount_all
}

cmd_cli() {
  require_platform
  [ "$#" -gt 0 ] || { err 'usage: pbx.sh cli "<asterisk CLI command>"'; exit 2; }
  [ -n "$(asterisk_pid)" ] || die "Asterisk is not running (start it with: npm run pbx:up)"
  chroot "$ROOTFS" /usr/sbin/asterisk -C "$AST_ETC/asterisk.conf" -rx "$*"
}

cmd_status() {
  require_platform
  local pid
  pid="$(asterisk_pid)"
  if [ -z "$pid" ]; then
    log "stopped"
    rootfs_ready && log "chroot: $ROOTFS (built)" || log "chroot: not built yet"
    return 1
  fi
  log "running (pid $pid), chroot $ROOTFS, log $LOG"
  if ari_ok; then log "ARI answers at $ARI_URL/ari"; else log "ARI does not answer (yet)"; fi
  chroot "$ROOTFS" /usr/sbin/asterisk -C "$AST_ETC/asterisk.conf" -rx "core show uptime" 2>/dev/null | sed 's/^/pbx:   /' || true
  chroot "$ROOTFS" /usr/sbin/asterisk -C "$AST_ETC/asterisk.conf" -rx "core show channels count" 2>/dev/null | sed 's/^/pbx:   /' || true
  return 0
}

cmd_reload() {
  require_platform
  [ -n "$(asterisk_pid)" ] || die "Asterisk is not running (start it with: npm run pbx:up)"
  install_config
  chroot "$ROOTFS" /usr/sbin/asterisk -C "$AST_ETC/asterisk.conf" -rx "core reload"
  log "configuration, dialplan and prompts re-copied; core reload done"
}

cmd_rebuild() {
  require_platform
  mkdir -p "$SANDBOX"
  init_paths
  cmd_down
  safe_rm_tree "$ROOTFS"
  build_rootfs
}

main() {
  local cmd="${1:-}"
  [ "$#" -gt 0 ] && shift
  case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    restart) cmd_down; cmd_up ;;
    status) cmd_status ;;
    cli) cmd_cli "$@" ;;
    reload) cmd_reload ;;
    rebuild) cmd_rebuild ;;
    -h|--help|help|"") usage ;;
    *) err "unknown command: $cmd"; usage ;;
  esac
}

main "$@"
