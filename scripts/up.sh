#!/usr/bin/env bash
# One command from a fresh clone to a running cluster: installs the npm packages, keeps Pulumi's
# state in ./.pulumi-state (no Pulumi Cloud account), selects or creates the stack, runs `pulumi up`.
# Usage: npm run up [-- STACK]   (STACK defaults to dev)
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:-dev}
case $stack in
  dev | prod) ;;
  *) echo "up: unknown stack '$stack'; accepted: dev, prod" >&2; exit 2 ;;
esac
command -v pulumi >/dev/null || { echo "up: the Pulumi CLI is not installed; see https://www.pulumi.com/docs/install/" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "up: no Docker engine answers (docker info failed)" >&2; exit 1; }

[ -d node_modules ] || npm ci --no-audit --no-fund
mkdir -p .pulumi-state
export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
# The passphrase encrypts this stack's secrets in the local state; an empty one is only fit for dev.
if [ -z "${PULUMI_CONFIG_PASSPHRASE+set}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  if [ "$stack" = prod ]; then echo "up: set PULUMI_CONFIG_PASSPHRASE (or _FILE) for the prod stack" >&2; exit 2; fi
  export PULUMI_CONFIG_PASSPHRASE=""
fi
pulumi stack select --create --secrets-provider passphrase "$stack"
pulumi up --yes --stack "$stack"
pulumi stack output --stack "$stack"
