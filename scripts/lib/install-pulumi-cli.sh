#!/usr/bin/env bash
# The default installer of `npm run up` (scripts/up.sh; MMAGENT_PULUMI_INSTALLER replaces it):
#
#   scripts/lib/install-pulumi-cli.sh ROOT VERSION
#
# installs Pulumi CLI VERSION into ROOT (ROOT/bin/pulumi) with the Automation API's
# PulumiCommand.install (scripts/lib/pulumiCli.ts), and prints the binary's path. Needs network
# access to get.pulumi.com, curl and tar. Runs the TypeScript with the project's Node 22 (the
# `node` dev dependency strips the types), falling back to the `node` on PATH.
set -euo pipefail
(($# == 2)) || { echo "usage: $0 ROOT VERSION" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(dirname "$(dirname "$here")")
node=$project/node_modules/.bin/node
[[ -x "$node" ]] || node=node
# shellcheck disable=SC2016 # the JavaScript's own template string
exec "$node" --disable-warning=MODULE_TYPELESS_PACKAGE_JSON --disable-warning=ExperimentalWarning -e '
const [, module, root, version] = process.argv;
import(require("url").pathToFileURL(module).href)
  .then((m) => m.installPulumiCli(root, version))
  .then((command) => console.log(command))
  .catch((err) => { console.error(`installing the Pulumi CLI ${version} into ${root} failed: ${err?.message ?? err}`); process.exit(1); });
' -- "$here/pulumiCli.ts" "$1" "$2"
