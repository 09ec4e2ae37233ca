#!/usr/bin/env bash
# `npm run up`: deploy the dev stack with the Pulumi CLI.
#   - installs dependencies if missing
#   - uses a local file state backend (.pulumi-state/) unless PULUMI_BACKEND_URL is set or you are logged in
#   - creates or selects the stack (default dev; STACK=prod npm run up for another)
set -euo pipefail
cd "$(dirname "$0")/.."
STACK="${STACK:-dev}"

if ! command -v pulumi >/dev/null 2>&1; then
  cat >&2 <<'MSG'
The Pulumi CLI is not installed. Install it, then run `npm run up` again:
  curl -fsSL https://get.pulumi.com | sh        (or: brew install pulumi/tap/pulumi)
See https://www.pulumi.com/docs/install/
MSG
  exit 1
fi
[[ -d node_modules ]] || npm install --no-audit --no-fund

if [[ -z "${PULUMI_BACKEND_URL:-}" ]] && ! pulumi whoami >/dev/null 2>&1; then
  mkdir -p .pulumi-state
  export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
  echo "Using a local state backend: $PULUMI_BACKEND_URL" >&2
fi
if [[ -z "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" && "$STACK" == dev ]]; then
  # The dev stack holds only generated passwords for a local stack; an empty passphrase is the
  # documented convenience. Set PULUMI_CONFIG_PASSPHRASE for anything else.
  export PULUMI_CONFIG_PASSPHRASE=""
fi
pulumi stack select "$STACK" 2>/dev/null || pulumi stack init "$STACK"
exec pulumi up --stack "$STACK" "$@"
