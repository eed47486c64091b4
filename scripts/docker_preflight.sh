#!/usr/bin/env bash
# Sourced by start_production.sh, start_development.sh and healthcheck.sh --docker: checks Docker, Compose
# and .env, naming exactly what is missing, and sets COMPOSE to the compose command to use.
# PREFLIGHT_FOR says what is being attempted ("start BluefinAI Trader" unless set).
problems=()
COMPOSE=()
if ! command -v docker >/dev/null 2>&1; then
  problems+=("docker is not installed (https://docs.docker.com/engine/install/)")
else
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
  else
    problems+=("Docker Compose is not installed (the 'docker compose' plugin, v2.24 or later)")
  fi
  if ! docker info >/dev/null 2>&1; then
    problems+=("the Docker daemon does not answer (start it, or add your user to the docker group)")
  fi
fi
if [ ! -f .env ]; then
  problems+=(".env is missing: cp .env.example .env and set WEBHOOK_PASSPHRASE and API_TOKEN (or run 'make run' once: it creates .env with fresh secrets)")
fi
if [ "${#problems[@]}" -gt 0 ]; then
  echo "cannot ${PREFLIGHT_FOR:-start BluefinAI Trader}:" >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 1
fi
export COMPOSE
