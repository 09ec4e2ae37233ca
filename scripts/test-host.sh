#!/usr/bin/env bash
# Prepares a fresh Debian machine for the real-engine tests, and tears down what it started.
#
#   scripts/test-host.sh up     install packages, start dockerd if none answers, remove what
#                               killed test runs left (scripts/reap-test-leftovers.sh),
#                               build the test image unless its tag exists
#   scripts/test-host.sh down   stop the dockerd this script started (by pid), nothing else
#   scripts/test-host.sh restart-engine
#                               restart the dockerd this script started (the e2e's daemon-restart
#                               check); refuses a daemon it did not start
#
# State (the pid of a daemon we started) lives in $MMAGENT_TEST_STATE (default /tmp/mmagent-test-host).
set -euo pipefail

STATE_DIR="${MMAGENT_TEST_STATE:-/tmp/mmagent-test-host}"
TEST_IMAGE="${MMAGENT_TEST_IMAGE:-local/mmagent-testbase:2}"
HAPROXY_TEST_IMAGE="${MMAGENT_HAPROXY_TEST_IMAGE:-local/mmagent-haproxy:3}"
PACKAGES=(docker.io btrfs-progs debootstrap wrk busybox-static docker-compose e2fsprogs sudo)
ROOTFS_PACKAGES="caddy,redis-server,nginx-light,python3-minimal,curl,wget,ca-certificates,sqlite3,procps"

log() { printf '[test-host] %s\n' "$*" >&2; }

# shellcheck source=lib/debian-packages.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/debian-packages.sh"
# shellcheck source=lib/current-caddy.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/current-caddy.sh"
install_packages() { install_debian_packages log "${PACKAGES[@]}"; }

start_engine() {
  if docker info >/dev/null 2>&1; then
    log "a Docker engine already answers; leaving it alone"
    return
  fi
  mkdir -p "$STATE_DIR"
  log "starting dockerd"
  /usr/sbin/dockerd --host unix:///var/run/docker.sock >"$STATE_DIR/dockerd.log" 2>&1 &
  echo $! >"$STATE_DIR/dockerd.pid"
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { log "dockerd is up"; return; }
    sleep 1
  done
  log "dockerd did not answer within 60 s; see $STATE_DIR/dockerd.log"
  exit 1
}

# Keeps $STATE_DIR (the reaper keeps the caller's MMAGENT_TEST_STATE) and anything of a live run.
reap_leftovers() {
  MMAGENT_TEST_STATE="$STATE_DIR" bash "$(dirname "${BASH_SOURCE[0]}")/reap-test-leftovers.sh"
}

build_test_image() {
  if docker image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
    log "reusing $TEST_IMAGE"
    return
  fi
  local rootfs
  rootfs=$(mktemp -d /tmp/mmagent-rootfs.XXXXXX)
  log "debootstrap bookworm into $rootfs (about a minute)"
  debootstrap --variant=minbase --include="$ROOTFS_PACKAGES" bookworm "$rootfs" http://deb.debian.org/debian >"$STATE_DIR/debootstrap.log" 2>&1 \
    || { log "debootstrap failed; see $STATE_DIR/debootstrap.log"; exit 1; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  # Bookworm's Caddy (2.6.2, Go 1.19) reloads unlike the default proxy image: lib/current-caddy.sh.
  install_current_caddy log "$rootfs" "$rootfs.caddy" || { rm -rf "$rootfs" "$rootfs.caddy"; exit 1; }
  rm -rf "$rootfs.caddy"
  tar -C "$rootfs" -c . | docker import - "$TEST_IMAGE" >/dev/null
  rm -rf "$rootfs"
  log "built $TEST_IMAGE (caddy $(docker run --rm "$TEST_IMAGE" caddy version | cut -d' ' -f1))"
}

# The proxy engine "haproxy" in the real tests: the test image plus Debian's haproxy (2.6), run as
# the package's unprivileged user `haproxy`, as the official image runs as its own `haproxy` (uid 99).
build_haproxy_image() {
  if docker image inspect "$HAPROXY_TEST_IMAGE" >/dev/null 2>&1; then
    log "reusing $HAPROXY_TEST_IMAGE"
    return
  fi
  printf 'FROM %s\nRUN apt-get update -qq && apt-get install -y -qq --no-install-recommends haproxy >/dev/null && rm -rf /var/lib/apt/lists/*\nUSER haproxy\n' "$TEST_IMAGE" \
    | docker build -q -t "$HAPROXY_TEST_IMAGE" - >/dev/null
  log "built $HAPROXY_TEST_IMAGE ($(docker run --rm "$HAPROXY_TEST_IMAGE" haproxy -v | sed -n 1p))"
}

down() {
  if [[ -f "$STATE_DIR/dockerd.pid" ]]; then
    local pid
    pid=$(cat "$STATE_DIR/dockerd.pid")
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping the dockerd we started (pid $pid)"
      kill "$pid"
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    fi
    rm -f "$STATE_DIR/dockerd.pid"
  fi
}

restart_engine() {
  local pid
  pid=$(cat "$STATE_DIR/dockerd.pid" 2>/dev/null || true)
  if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
    log "the running Docker engine was not started by this script (no live pid in $STATE_DIR/dockerd.pid): not restarting it"
    log "stop it and run: MMAGENT_TEST_STATE=$STATE_DIR scripts/test-host.sh up"
    exit 1
  fi
  down
  start_engine
}

case "${1:-}" in
  up) mkdir -p "$STATE_DIR"; install_packages; start_engine; reap_leftovers; build_test_image; build_haproxy_image ;;
  down) down ;;
  restart-engine) restart_engine ;;
  *) echo "usage: $0 up|down|restart-engine" >&2; exit 2 ;;
esac
