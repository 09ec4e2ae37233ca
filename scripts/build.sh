#!/usr/bin/env bash
# `npm run build`: the published package into dist/ (or the folder given as $1): the components
# compiled to CommonJS with declarations (tsconfig.build.json), and the host scripts they read at
# run time next to hostScript.js (its hostScriptPath() is __dirname/scripts).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
rm -rf -- "$out"
node_modules/.bin/tsc -p tsconfig.build.json --outDir "$out"
mkdir -p -- "$out/scripts"
cp -- components/scripts/*.sh "$out/scripts/"
