#!/usr/bin/env bash
# npm run test:compose — the docker demo tested as a user runs it, on a Debian machine without Docker:
#
#   1. installs what it needs with apt-get (podman, docker-compose, iptables, mmdebstrap, sip-tester)
#   2. builds local stand-ins of the base images (scripts/compose-standins.sh; cached across runs)
#   3. builds docker/asterisk.Dockerfile and docker/app.Dockerfile unchanged, with pulling disabled
#   4. runs podman's Docker API on a socket of its own and plays test/compose/stack.test.ts against it with
#      docker-compose: the SQLite stack, then docker-compose.postgres.yml with a take-over
#   5. removes the stack's containers, volumes and network, and stops the podman service it started — also
#      when something failed. Kept for the next run: the stand-ins and the images' build cache.
#
# The stack's ports are moved out of every sandbox's way (CC_DOCKER_*: SIP 27060/udp, RTP 27100-27120/udp,
# HTTP 127.0.0.1:27464 and :27465): podman's port forwarding also catches this host's own traffic to a
# published port. Needs root. Every wait is bounded.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"

STATE=/var/tmp/cc-compose-test
RUNDIR=/run/cc-compose-test
SOCK="$RUNDIR/podman.sock"
PROJECT=cccomposetest
APP_IMAGE=localhost/cc-compose-test/app:latest
AST_IMAGE=localhost/cc-compose-test/asterisk:latest

export COMPOSE_PROJECT_NAME=$PROJECT
export DOCKER_HOST="unix://$SOCK"
export CONTAINERS_CONF="$STATE/containers.conf"
export CC_DOCKER_SIP_PORT=27060 CC_DOCKER_RTP_PORTS=27100-27120 CC_DOCKER_HTTP_PORT=27464 CC_DOCKER_HTTP_PORT_STANDBY=27465
export CC_LOG_FORMAT=json
# The images this script builds, which test/compose/stack.test.ts names in a compose override (no compose builds).
export CC_COMPOSE_APP_IMAGE=$APP_IMAGE CC_COMPOSE_ASTERISK_IMAGE=$AST_IMAGE
export DEBIAN_FRONTEND=noninteractive

t0=$SECONDS
step() { printf '\n== test:compose [%4ds] %s\n' "$((SECONDS - t0))" "$*"; }
die() { printf 'test:compose: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (podman's networks, mmdebstrap)"

mkdir -p "$STATE" "$RUNDIR"
# podman's default nofile/nproc limits exceed what a process may set on these machines; crun (podman's
# first choice) refuses the hybrid cgroup layout they have, runc runs; netavark with aardvark-dns gives
# the compose network its names (the app reaches http://asterisk:8088), which CNI without a dnsname
# plugin does not.
printf '%s\n' '[containers]' 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' \
  '[engine]' 'runtime = "runc"' '[network]' 'network_backend = "netavark"' >"$CONTAINERS_CONF"

step "packages: podman runc netavark aardvark-dns docker-compose iptables mmdebstrap sip-tester conntrack"
need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/podman/netavark ] || need+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || need+=(aardvark-dns)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v iptables >/dev/null || need+=(iptables)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v sipp >/dev/null || need+=(sip-tester)
command -v conntrack >/dev/null || need+=(conntrack)
if [ "${#need[@]}" -gt 0 ]; then
  timeout 600 apt-get update -qq
  timeout 900 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
podman --version; docker-compose --version

podman_pid=""
health_pid=""
jest_pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  step "clean-up"
  [ -n "$jest_pid" ] && kill "$jest_pid" 2>/dev/null
  [ -n "$health_pid" ] && kill "$health_pid" 2>/dev/null
  if [ -n "$podman_pid" ]; then
    timeout 180 docker-compose --project-directory "$REPO" -f docker-compose.yml -f docker-compose.postgres.yml \
      down -v --remove-orphans >/dev/null 2>&1 || echo "warning: docker-compose down failed"
    kill "$podman_pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$podman_pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$podman_pid" 2>/dev/null || true
  fi
  # Whatever of the project is left (a compose that failed half-way): containers, volumes, networks.
  timeout 120 podman ps -aq --filter "label=com.docker.compose.project=$PROJECT" | xargs -r timeout 120 podman rm -f >/dev/null 2>&1 || true
  timeout 60 podman volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r timeout 60 podman volume rm -f >/dev/null 2>&1 || true
  timeout 60 podman network ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r timeout 60 podman network rm -f >/dev/null 2>&1 || true
  rm -f "$SOCK"
  printf '== test:compose: %s after %d s\n' "$([ "$status" = 0 ] && echo passed || echo "FAILED (exit $status)")" "$((SECONDS - t0))"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "stand-in base images (scripts/compose-standins.sh)"
timeout 1800 bash scripts/compose-standins.sh

build() { # image dockerfile
  local old new
  old="$(podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true)"
  # --format docker keeps the Dockerfile's HEALTHCHECK; --pull=never: only local images (the stand-ins).
  # --network=host: the build's npm ci and apt-get ask this host's resolver directly. Behind podman's NAT
  # the resolver of these machines answered only some queries (seen with conntrack: [UNREPLIED] entries
  # from the build container to port 53 while the host's own queries were answered), and npm ci died
  # half-way with "Exit handler never called!".
  timeout 1800 podman build --quiet --pull=never --network=host --format docker --layers -f "$2" -t "$1" . >/dev/null
  new="$(podman image inspect --format '{{.Id}}' "$1")"
  # The previous build of this tag is not cached by anything any more.
  if [ -n "$old" ] && [ "$old" != "$new" ]; then podman rmi "$old" >/dev/null 2>&1 || true; fi
  printf '%s: %s MB\n' "$1" "$(($(podman image inspect --format '{{.Size}}' "$1") / 1000000))"
}
step "build docker/asterisk.Dockerfile"
build "$AST_IMAGE" docker/asterisk.Dockerfile
step "build docker/app.Dockerfile"
build "$APP_IMAGE" docker/app.Dockerfile

step "podman's Docker API on $SOCK"
rm -f "$SOCK"
podman system service --time=0 "unix://$SOCK" >"$STATE/podman-service.log" 2>&1 &
podman_pid=$!
for _ in $(seq 1 60); do [ -S "$SOCK" ] && break; sleep 0.5; done
[ -S "$SOCK" ] || die "podman system service did not open $SOCK within 30 s"

# PID 1 of this machine is not systemd: podman's healthcheck timers never fire. Run the checks here.
(
  while :; do
    for c in $(podman ps -q --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null); do
      timeout 20 podman healthcheck run "$c" >/dev/null 2>&1 || true
    done
    sleep 3
  done
) &
health_pid=$!

step "the stack: test/compose/stack.test.ts"
# In the background so that a signal reaches the clean-up at once.
npx jest -c test/compose/jest.config.js --runInBand &
jest_pid=$!
wait "$jest_pid"
