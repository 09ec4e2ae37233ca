#!/usr/bin/env bash
# `npm test`: the unit tests (mocks, pure functions), then the real-engine tests (a Docker
# engine, Btrfs on a loop device, the real host scripts), then the e2e test (the dev stack
# applied to that engine by test/support/realEngineHarness.ts).
#
# The test host (packages, a Docker engine, the test image) comes from `scripts/test-host.sh up`:
#   - MMAGENT_TEST_STATE unset: this run brings it up with a state dir of its own
#     (/tmp/mmagent-test-state.*) and, on exit, `down` with that state dir stops only a dockerd
#     this run started (none when an engine already answered), then removes the dir.
#   - MMAGENT_TEST_STATE set: the caller's test host. When its engine answers, nothing is started
#     or stopped. When none answers, `up` with the caller's state dir, and on exit `down` only if
#     that started a dockerd. Unset, but the dockerd of test-host.sh's default state dir lives
#     (`sudo scripts/test-host.sh up` by hand) and answers: that is the caller's, the same way.
#   - not root: the real-engine tests need root (loop devices, mounts, test users), so without
#     a caller's engine this prints what to run and exits 1 before any test.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[npm test] %s\n' "$*" >&2; }
is_root() { [[ "$(id -u)" == 0 ]]; }
engine_answers() { docker info >/dev/null 2>&1; }
# The pid in <state>/dockerd.pid when that process lives, else nothing.
live_dockerd() {
  local pid
  pid=$(cat "$1/dockerd.pid" 2>/dev/null || true)
  if [[ "$pid" =~ ^[0-9]+$ ]] && { kill -0 "$pid" 2>/dev/null || [[ -d "/proc/$pid" ]]; }; then printf '%s' "$pid"; fi
}
# test-host.sh's default state dir, read from its STATE_DIR line.
# shellcheck disable=SC2016 # the pattern matches the literal ${MMAGENT_TEST_STATE:-...}
default_state() { sed -n 's/^STATE_DIR="\${MMAGENT_TEST_STATE:-\([^}]*\)}"$/\1/p' scripts/test-host.sh; }

need_root() {
  cat >&2 <<'MSG'
npm test: the real-engine tests need root (loop devices, mounts, test users) and a Docker engine,
btrfs-progs and the test image, which scripts/test-host.sh installs and starts. Run:
  sudo npm test
(if sudo does not find npm: sudo env "PATH=$PATH" npm test). It stops what it started when it ends.
To keep a test host up between runs instead: sudo scripts/test-host.sh up, then sudo npm test as
often as you like, and sudo scripts/test-host.sh down at the end.
The mock tests alone need none of it: npm run test:unit
MSG
  exit 1
}

CALLER_STATE="${MMAGENT_TEST_STATE:-}"
if [[ -z "$CALLER_STATE" ]] && is_root; then
  DEFAULT_STATE=$(default_state)
  if [[ -n "$DEFAULT_STATE" && -n "$(live_dockerd "$DEFAULT_STATE")" ]] && engine_answers; then
    CALLER_STATE=$DEFAULT_STATE
    export MMAGENT_TEST_STATE="$DEFAULT_STATE"
  fi
fi
if [[ -n "$CALLER_STATE" ]] && engine_answers; then
  PROVISION=none
elif is_root; then
  PROVISION=up
else
  need_root
fi

[[ -d node_modules ]] || npm install --no-audit --no-fund

# What this run started: the state dir to `down` on exit, and a state dir of our own to remove.
STOP_STATE=""
OWN_STATE=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [[ -n "$STOP_STATE" ]]; then
    MMAGENT_TEST_STATE="$STOP_STATE" bash scripts/test-host.sh down || log "could not stop the Docker engine this run started (state: $STOP_STATE)"
  fi
  if [[ -n "$OWN_STATE" ]]; then
    if [[ -n "$(live_dockerd "$OWN_STATE")" ]]; then
      log "kept $OWN_STATE: its dockerd still runs"
    elif ((rc == 0)); then
      rm -rf -- "$OWN_STATE"
    else
      log "the test host's logs: $OWN_STATE"
    fi
  fi
  exit "$rc"
}

if [[ "$PROVISION" == none ]]; then
  log "using the caller's test host (MMAGENT_TEST_STATE=$CALLER_STATE): starting and stopping nothing"
else
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  if [[ -n "$CALLER_STATE" ]]; then
    before=$(live_dockerd "$CALLER_STATE")
    bash scripts/test-host.sh up
    after=$(live_dockerd "$CALLER_STATE")
    if [[ -n "$after" && "$after" != "$before" ]]; then STOP_STATE=$CALLER_STATE; fi
  else
    # The reaper keeps the caller's MMAGENT_TEST_STATE, and the tests (the e2e's engine restart)
    # use it: exported before anything runs.
    OWN_STATE=$(mktemp -d /tmp/mmagent-test-state.XXXXXX)
    export MMAGENT_TEST_STATE="$OWN_STATE"
    STOP_STATE=$OWN_STATE
    bash scripts/test-host.sh up
  fi
fi

# What an earlier run left when it was killed before its own cleanup (loop devices, mounts, temp
# folders, test containers and users), found by the tests' prefixes; nothing while another test
# run of this project is live.
bash scripts/reap-test-leftovers.sh
npx tsc --noEmit -p .
npx jest --selectProjects unit "$@"
npx jest --selectProjects real --runInBand "$@"
npx jest --selectProjects e2e --runInBand "$@"
