#!/usr/bin/env bash
# Cold start of the dev stack to all-healthy: the real-engine harness vs `docker compose up -d
# --wait` on an equivalent compose file, in one run (bench/coldStart.bench.ts). Needs what
# `scripts/test-host.sh up` provides; Compose v2 comes from Debian's archive (bench/debian-compose.sh).
#   ROUNDS=3 bash bench/cold-start.sh
set -euo pipefail
cd "$(dirname "$0")/.."
COMPOSE_BIN=$(bash bench/debian-compose.sh)
export COMPOSE_BIN
echo "compose: $("$COMPOSE_BIN" version)"
echo "engine:  $(docker version -f '{{.Server.Version}}')  cores: $(nproc)"
npx jest --selectProjects bench --runTestsByPath bench/coldStart.bench.ts --runInBand --silent=false 2>&1 | grep -v '^npm warn' | sed -n '/^round \|^cold start\|^  /p;/✕\|●/,$p'
