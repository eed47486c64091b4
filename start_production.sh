#!/usr/bin/env bash
# Build and start nginx, websocket, webhook, agent and watchtower with Docker Compose, in the background.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=scripts/docker_preflight.sh
source scripts/docker_preflight.sh
"${COMPOSE[@]}" -f docker-compose.yml up -d --build
echo "BluefinAI Trader is starting on http://localhost:${NGINX_PORT:-8080}/ (check with ./healthcheck.sh)"
