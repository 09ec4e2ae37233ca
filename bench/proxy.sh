#!/usr/bin/env bash
# Benchmark (b): the proxy candidates side by side in one run, throughput (wrk) and churn (the
# backend recreated on new addresses under load): bench/proxy.bench.ts. Needs what
# `scripts/test-host.sh up` provides, including local/mmagent-haproxy:3 (the test image plus
# Debian's haproxy package). Only 127.0.0.1 and the bench's own network are used.
# Prints the table and the candidates that meet the target (>= 0.5x of direct, 0 failed under
# churn, 0 failed during configuration reloads).
#   DURATION=5 CHURN=10 RELOADS=12 bash bench/proxy.sh
#   DURATION=5 CHURN=10 ROUNDS=3 bash bench/proxy.sh   (median of 3 interleaved wrk rounds: a busy machine)
set -euo pipefail
cd "$(dirname "$0")/.."
TEST_IMAGE=${MMAGENT_TEST_IMAGE:-local/mmagent-testbase:2}
HAPROXY_IMAGE=${MMAGENT_HAPROXY_TEST_IMAGE:-local/mmagent-haproxy:3}
export MMAGENT_HAPROXY_TEST_IMAGE=$HAPROXY_IMAGE
docker image inspect "$HAPROXY_IMAGE" >/dev/null 2>&1 \
  || { echo "$HAPROXY_IMAGE is missing: run scripts/test-host.sh up (it builds it)" >&2; exit 1; }
echo "engine: $(docker version -f '{{.Server.Version}}')  cores: $(nproc)  caddy: $(docker run --rm "$TEST_IMAGE" caddy version)  haproxy: $(docker run --rm "$HAPROXY_IMAGE" haproxy -v | sed -n 1p)"
npx jest --selectProjects bench --runTestsByPath bench/proxy.bench.ts --silent=false 2>&1 | grep -v '^npm warn' | sed -n '/^Proxy candidates\|^Reloads:\|^|\|^Meeting/p;/✕\|●/,$p'
