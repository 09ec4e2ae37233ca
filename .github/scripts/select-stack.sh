#!/usr/bin/env bash
# CI only: log in to the state backend, select (or create) a stack, and give it the SSH private
# key of its host as the secret config `sshPrivateKey` — the same mechanism as
# `pulumi config set --secret sshPrivateKey < key` on a laptop (README "Remote hosts").
#
#   .github/scripts/select-stack.sh <stack>
#
# Environment (from GitHub secrets):
#   PULUMI_BACKEND_URL          the state backend (s3://…, azblob://…, gs://…, file://…)
#   PULUMI_CONFIG_PASSPHRASE    the passphrase of the stack's secrets provider
#   MMAGENT_SSH_PRIVATE_KEY     the deploy user's private key; only for a stack whose host is
#                               reached over SSH (the program refuses such a stack without it)
#
# Which server is trusted stays what Pulumi.<stack>.yaml pins (host.connection.hostKey): the
# program writes that known_hosts line for the Docker provider's ssh and gives the same key to
# every remote command. Nothing here touches ssh's host-key checking or ~/.ssh.
set -euo pipefail
cd "$(dirname "$0")/../.."

stack=${1:?usage: .github/scripts/select-stack.sh <stack>}
if [[ ! -f "Pulumi.$stack.yaml" ]]; then
  echo "select-stack: no Pulumi.$stack.yaml in $(pwd)" >&2
  exit 1
fi
: "${PULUMI_BACKEND_URL:?select-stack: set the PULUMI_BACKEND_URL secret (the state backend URL)}"
: "${PULUMI_CONFIG_PASSPHRASE:?select-stack: set the PULUMI_CONFIG_PASSPHRASE secret}"

pulumi login --non-interactive "$PULUMI_BACKEND_URL"
pulumi stack select --non-interactive --create --secrets-provider passphrase "$stack"

if [[ -n "${MMAGENT_SSH_PRIVATE_KEY:-}" ]]; then
  # From stdin, never the command line; `pulumi config set` encrypts it into this runner's copy
  # of Pulumi.<stack>.yaml (the runner is thrown away).
  printf '%s\n' "$MMAGENT_SSH_PRIVATE_KEY" | pulumi config set --non-interactive --secret --stack "$stack" sshPrivateKey
  echo "select-stack: $stack: sshPrivateKey set from the secret"
fi
