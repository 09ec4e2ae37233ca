#!/usr/bin/env bash
# `npm run up`: deploy the dev stack with the Pulumi CLI.
#   - installs dependencies if missing
#   - checks that the Docker engine answers (`docker version`), unless the stack's host is
#     reached over SSH (`kind: ssh` in Pulumi.<stack>.yaml)
#   - the Pulumi CLI: the project's own in .pulumi-cli/ (kept at package.json
#     config.pulumiCliVersion), else a `pulumi` on PATH, else the pinned version installed into
#     .pulumi-cli/ with the Automation API (scripts/lib/install-pulumi-cli.sh; needs curl, tar and
#     get.pulumi.com). MMAGENT_PULUMI_INSTALLER=<command> replaces that installer: it is run as
#     `<command> ROOT VERSION` and must leave ROOT/bin/pulumi.
#   - uses a local file state backend (.pulumi-state/) unless PULUMI_BACKEND_URL is set or you are logged in
#   - creates or selects the stack (default dev; STACK=prod npm run up for another)
set -euo pipefail
cd "$(dirname "$0")/.."
STACK="${STACK:-dev}"
CLI_ROOT="$PWD/.pulumi-cli"

say() { printf '%s\n' "$*" >&2; }

[[ -d node_modules ]] || npm install --no-audit --no-fund

# --- Docker ---------------------------------------------------------------------------------------
# A stack whose host is reached over SSH (host.connection.kind: ssh) needs no engine here.
stack_is_remote() {
  [[ -f "Pulumi.$STACK.yaml" ]] && grep -Eq "^[[:space:]]+kind:[[:space:]]*[\"']?ssh[\"']?[[:space:]]*(#.*)?$" "Pulumi.$STACK.yaml"
}
check_docker() {
  if ! command -v docker >/dev/null 2>&1; then
    cat >&2 <<MSG
The Docker CLI is not installed, and the $STACK stack deploys to the Docker engine on this machine.
Install and start Docker, then run \`npm run up\` again:
  sudo apt-get install docker.io      (Debian/Ubuntu; elsewhere: https://docs.docker.com/engine/install/)
MSG
    exit 1
  fi
  local err
  local -a limit=()
  if command -v timeout >/dev/null 2>&1; then limit=(timeout 30); fi
  if err=$("${limit[@]}" docker version 2>&1 >/dev/null); then return; fi
  err=$(printf '%s\n' "$err" | grep -v '^[[:space:]]*$' | tail -n 1)
  # shellcheck disable=SC2016 # backquotes and $USER meant literally
  {
    printf 'Docker does not answer (`docker version` failed: %s).\n' "${err:-no answer within 30 s}"
    printf 'The %s stack deploys to the Docker engine on this machine. ' "$STACK"
    if [[ "$err" == *"permission denied"* ]]; then
      printf 'You may not use its socket: add yourself to the docker group, log in again, and run `npm run up` again:\n'
      printf '  sudo usermod -aG docker "$USER"      (or run `sudo npm run up`)\n'
    else
      printf 'Start it, then run `npm run up` again:\n'
      printf '  sudo systemctl start docker         (Docker Desktop: start the app; no engine yet: sudo apt-get install docker.io)\n'
    fi
  } >&2
  exit 1
}
stack_is_remote || check_docker

# --- the Pulumi CLI -------------------------------------------------------------------------------
PULUMI_CLI_VERSION=$(node -p 'require("./package.json").config?.pulumiCliVersion ?? ""')
if [[ ! "$PULUMI_CLI_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  say "package.json config.pulumiCliVersion must be a version X.Y.Z (it is \"$PULUMI_CLI_VERSION\")"
  exit 1
fi
cli_version() { PULUMI_SKIP_UPDATE_CHECK=true "$1" version 2>/dev/null | head -n 1 || true; }

install_cli() {
  local why=$1 installer=(bash scripts/lib/install-pulumi-cli.sh) missing=() tool
  if [[ -n "${MMAGENT_PULUMI_INSTALLER:-}" ]]; then
    installer=("$MMAGENT_PULUMI_INSTALLER")
  else
    for tool in curl tar; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
    if ((${#missing[@]})); then
      say "$why. Installing Pulumi CLI v$PULUMI_CLI_VERSION needs ${missing[*]} (get.pulumi.com/install.sh downloads with them):"
      say "  sudo apt-get install ${missing[*]}      then run \`npm run up\` again"
      exit 1
    fi
  fi
  say "$why: installing Pulumi CLI v$PULUMI_CLI_VERSION into .pulumi-cli/ (Automation API PulumiCommand.install)"
  mkdir -p "$CLI_ROOT"
  # Self-ignoring, as a virtualenv is: the download never shows up in git status.
  printf '# Pulumi CLI installed by scripts/up.sh\n*\n' >"$CLI_ROOT/.gitignore"
  if ! "${installer[@]}" "$CLI_ROOT" "$PULUMI_CLI_VERSION" >/dev/null; then
    say "Could not install Pulumi CLI v$PULUMI_CLI_VERSION into $CLI_ROOT (see above). Install it yourself, then run \`npm run up\` again:"
    say "  curl -fsSL https://get.pulumi.com | sh -s -- --version $PULUMI_CLI_VERSION"
    exit 1
  fi
  if [[ ! -x "$CLI_ROOT/bin/pulumi" ]]; then
    say "The Pulumi CLI installer ran but left no $CLI_ROOT/bin/pulumi"
    exit 1
  fi
  say "Pulumi CLI $(cli_version "$CLI_ROOT/bin/pulumi") installed in .pulumi-cli/bin"
}

if [[ -e "$CLI_ROOT/bin/pulumi" ]]; then
  # The project's own CLI is kept at the pinned version.
  have=$(cli_version "$CLI_ROOT/bin/pulumi")
  [[ "$have" == "v$PULUMI_CLI_VERSION" ]] || install_cli "The project's Pulumi CLI in .pulumi-cli/ is ${have:-not working}, the pin is v$PULUMI_CLI_VERSION"
  export PATH="$CLI_ROOT/bin:$PATH"
elif ! command -v pulumi >/dev/null 2>&1; then
  install_cli "No Pulumi CLI on PATH"
  # First on PATH: the CLI and the language plugins bundled with it.
  export PATH="$CLI_ROOT/bin:$PATH"
fi

# --- deploy ---------------------------------------------------------------------------------------
if [[ -z "${PULUMI_BACKEND_URL:-}" ]] && ! pulumi whoami >/dev/null 2>&1; then
  mkdir -p .pulumi-state
  export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
  echo "Using a local state backend: $PULUMI_BACKEND_URL" >&2
fi
if [[ -z "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" && "$STACK" == dev ]]; then
  # The dev stack holds only generated passwords and its internal CA's key, for a local stack; an
  # empty passphrase is the documented convenience (README "Environments": whoever reads
  # .pulumi-state can issue certificates that a browser trusting the dev CA accepts, as whoever
  # could read Caddy's data directory could before). Set PULUMI_CONFIG_PASSPHRASE for anything else.
  export PULUMI_CONFIG_PASSPHRASE=""
fi
pulumi stack select "$STACK" 2>/dev/null || pulumi stack init "$STACK"
exec pulumi up --stack "$STACK" "$@"
