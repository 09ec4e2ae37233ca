#!/usr/bin/env bash
# `npm run mmagent -- <command>`: the operator CLI (cli/mmagent.ts). Compiles it into
# .mmagent-cli/ when a source is newer than the last build, then runs it with this checkout's
# Node. Usage: npm run mmagent -- --help
set -euo pipefail
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$project/.mmagent-cli
entry=$out/cli/mmagent.js
node=$project/node_modules/.bin/node
[[ -x "$node" ]] || node=node
if [[ ! -f "$entry" ]] || [[ -n "$(find "$project/cli" "$project/components" "$project/tsconfig.cli.json" -newer "$entry" -print -quit)" ]]; then
  rm -rf -- "$out"
  (cd "$project" && node_modules/.bin/tsc -p tsconfig.cli.json) >&2
  mkdir -p -- "$out/components/scripts"
  cp -- "$project"/components/scripts/*.sh "$out/components/scripts/"
fi
exec "$node" "$entry" "$@"
