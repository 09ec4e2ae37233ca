#!/usr/bin/env bash
# Benchmark (b): proxy overhead on a real Docker engine. Requests/s and p50/p99 latency with wrk
# (-t1 -c16, DURATION s each) straight to a backend, through Caddy with the project's generated
# config, and through nginx configured the way nginx-proxy-manager does (resolver 127.0.0.11 +
# a variable in proxy_pass, needed to follow recreated backends) and with a static upstream +
# keepalive (fast, but stale after a backend is recreated). Prints a table; not a test.
# Needs scripts/test-host.sh up. Only 127.0.0.1 and the bench's own network are used.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${MMAGENT_TEST_IMAGE:-local/mmagent-testbase:1}
DURATION=${DURATION:-5}
NET=mmbench_net
work=$(mktemp -d /tmp/mmagent-proxybench.XXXXXX)
names=(mmbench-backend mmbench-caddy mmbench-npm mmbench-static)
cleanup() { docker rm -f "${names[@]}" >/dev/null 2>&1 || true; docker network rm "$NET" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
docker network create --ipv6 --subnet fd6d:6d61:6765:98::/64 --subnet 172.16.98.0/24 "$NET" >/dev/null

nginx_conf() { # file server-block
  printf 'worker_processes 1; error_log stderr; pid /tmp/nginx.pid;\nevents { worker_connections 1024; }\nhttp { access_log off; %s }\n' "$2" >"$1"
}
nginx_conf "$work/backend.conf" 'server { listen 8000; location / { return 200 "ok\n"; } }'
nginx_conf "$work/npm.conf" 'server { listen 8000; resolver 127.0.0.11 valid=10s; set $upstream http://mmbench-backend:8000; location / { proxy_pass $upstream; proxy_http_version 1.1; proxy_set_header Host $host; } }'
nginx_conf "$work/static.conf" 'upstream be { server mmbench-backend:8000; keepalive 16; } server { listen 8000; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } }'
run_nginx() { # name port conf
  docker run -d --name "$1" --network "$NET" -p "127.0.0.1:$2:8000" -v "$3:/etc/nginx/bench.conf:ro" "$IMAGE" nginx -c /etc/nginx/bench.conf -g 'daemon off;' >/dev/null
}
run_nginx mmbench-backend 19000 "$work/backend.conf"
sleep 1
run_nginx mmbench-npm 19002 "$work/npm.conf"
run_nginx mmbench-static 19003 "$work/static.conf"
# The proxy's config exactly as the component generates it (compiled on the fly).
npx --no-install tsc --outDir bin/bench-js --module commonjs --target es2022 --esModuleInterop --skipLibCheck components/reverseProxyNetwork.ts >/dev/null
node -e "const { proxyCaddyConfig } = require('./bin/bench-js/reverseProxyNetwork'); process.stdout.write(JSON.stringify(proxyCaddyConfig({ routes: [{ host: 'bench.localhost', upstream: 'mmbench-backend', port: 8000 }], tls: 'off', httpPort: 8000, dataVolumeName: 'x' })))" >"$work/caddy.json"
docker run -d --name mmbench-caddy --network "$NET" -p 127.0.0.1:19001:8000 -v "$work/caddy.json:/etc/caddy/mmagent.json:ro" \
  -e XDG_DATA_HOME=/tmp "$IMAGE" caddy run --config /etc/caddy/mmagent.json >/dev/null
for p in 19000 19001 19002 19003; do
  for _ in $(seq 1 50); do curl -sf -H 'Host: bench.localhost' "http://127.0.0.1:$p/" >/dev/null && break; sleep 0.2; done
done

measure() { # label port
  local out rps p50 p99
  out=$(wrk -t1 -c16 -d"${DURATION}s" --latency -H 'Host: bench.localhost' "http://127.0.0.1:$2/")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf '%s|%s|%s|%s\n' "$1" "$rps" "$p50" "$p99"
}
rows=()
rows+=("$(measure "direct to the backend" 19000)")
rows+=("$(measure "Caddy, generated config (default)" 19001)")
rows+=("$(measure "nginx, NPM-style resolver + variable" 19002)")
rows+=("$(measure "nginx, static upstream + keepalive" 19003)")
direct=$(cut -d'|' -f2 <<<"${rows[0]}")
printf '\nProxy overhead (wrk -t1 -c16 -d%ss, 127.0.0.1, one run)\n' "$DURATION"
printf '%-40s %10s %8s %8s %10s\n' "path" "req/s" "p50" "p99" "vs direct"
for r in "${rows[@]}"; do
  IFS='|' read -r label rps p50 p99 <<<"$r"
  printf '%-40s %10s %8s %8s %10s\n' "$label" "$rps" "$p50" "$p99" "$(awk "BEGIN{printf \"%.2fx\", $rps/$direct}")"
done
