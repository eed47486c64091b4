#!/usr/bin/env bash
# Start the stack with the source mounted and hot reload, in the foreground (Ctrl-C stops it). No TLS
# certificate needed: nginx makes a temporary self-signed one. autoheal and watchtower stay off.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=scripts/docker_preflight.sh
source scripts/docker_preflight.sh
# shellcheck source=scripts/dotenv.sh
source scripts/dotenv.sh
# a file named in .env but missing would be created as an empty folder by the bind mount
for name in TLS_CERT_FILE TLS_KEY_FILE TV_CLIENT_CA_FILE; do
  file=$(env_value "$name")
  if [ -n "$file" ] && [ ! -f "$file" ]; then
    echo "cannot start BluefinAI Trader: $name=$file (from .env) does not exist; empty it or name a file" >&2
    exit 1
  fi
done
scripts/service_env.sh .env .deploy
exec "${COMPOSE[@]}" -f docker-compose.yml -f docker-compose.dev.yml up --build
