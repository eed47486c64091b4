#!/usr/bin/env bash
# Start the stack with the source mounted and hot reload, in the foreground (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=scripts/docker_preflight.sh
source scripts/docker_preflight.sh
exec "${COMPOSE[@]}" -f docker-compose.yml -f docker-compose.dev.yml up --build
