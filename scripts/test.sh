#!/usr/bin/env bash
# `npm test`: the unit tests (mocks, pure functions), then the real-engine tests (a Docker
# engine, Btrfs on a loop device, the real host scripts), then the e2e test (the dev stack
# applied to that engine by test/support/realEngineHarness.ts). The real tests check their own
# prerequisites and fail naming what is missing and `scripts/test-host.sh up`, which provides it.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d node_modules ]] || npm install --no-audit --no-fund
# What an earlier run left when it was killed before its own cleanup (loop devices, mounts, temp
# folders, test containers and users), found by the tests' prefixes; nothing while another test
# run of this project is live.
bash scripts/reap-test-leftovers.sh
npx tsc --noEmit -p .
npx jest --selectProjects unit "$@"
npx jest --selectProjects real --runInBand "$@"
npx jest --selectProjects e2e --runInBand "$@"
