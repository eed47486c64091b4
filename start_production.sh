#!/usr/bin/env bash
# BluefinAI Trader in production with Docker Compose (the README's "Production with Docker" walks through it).
#   ./start_production.sh                 build and start everything in the background
#   ./start_production.sh --update        git pull --ff-only, pull the third-party images, rebuild ours,
#                                         upgrade the database schema, then restart one service at a time,
#                                         each once the one before is healthy:
#                                         websocket, webhook, nginx, the helpers, and the agent last, only
#                                         when it holds no open position or you confirm at the prompt
#   ./start_production.sh --update --force-agent   restart the agent even with open positions
# TLS (TradingView posts alerts only over HTTPS, to port 443), in .env: TLS_CERT_FILE and TLS_KEY_FILE (your
# own certificate) or ACME_DOMAIN and ACME_EMAIL (Let's Encrypt, through the certbot service).
# Optional: UPDATE_HEALTH_TIMEOUT_S (default 180), how long --update waits for a service to be healthy.
set -euo pipefail
cd "$(dirname "$0")"

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }

update=false
force_agent=false
pulled=false
parse_args() {
  local arg
  for arg in "$@"; do
    case $arg in
      --update) update=true ;;
      --force-agent) force_agent=true ;;
      --pulled) pulled=true ;; # internal: the re-run of the pulled version of this script
      -h | --help) usage; exit 0 ;;
      *) echo "unknown option: $arg" >&2; usage >&2; exit 2 ;;
    esac
  done
}

refuse() {
  echo "cannot start BluefinAI Trader:" >&2
  printf '  %s\n' "$@" >&2
  exit 1
}

# The two secrets every installation needs (the services would refuse to start without them).
require_secrets() {
  local name missing=()
  for name in WEBHOOK_PASSPHRASE API_TOKEN; do
    [ -n "$(env_value "$name")" ] || missing+=("$name is empty in .env: set 12 characters or more (openssl rand -hex 24 makes one)")
  done
  [ "${#missing[@]}" -eq 0 ] || refuse "${missing[@]}"
}

# nginx runs as uid 101 in its container and reads the mounted files as that user
readable_by_nginx() {
  local owner group mode
  read -r owner group mode < <(stat -L -c '%u %g %a' "$1")
  mode=$((8#$mode))
  { [ "$owner" = 101 ] && ((mode & 0400)); } || { [ "$group" = 101 ] && ((mode & 0040)); } || ((mode & 0004))
}

# Sets PROFILES and TLS_MODE (files | letsencrypt) from .env, or refuses naming what to set.
choose_tls() {
  local cert key domain email http_port
  cert=$(env_value TLS_CERT_FILE)
  key=$(env_value TLS_KEY_FILE)
  domain=$(env_value ACME_DOMAIN)
  email=$(env_value ACME_EMAIL)
  PROFILES=()
  local ca
  ca=$(env_value TV_CLIENT_CA_FILE)
  if [ -n "$ca" ] && [ ! -f "$ca" ]; then
    refuse "TV_CLIENT_CA_FILE=$ca (from .env) does not exist: name the CA bundle TradingView's client" \
      "certificate is checked against, or leave it empty for the system's bundle in nginx's image"
  fi
  if [ -n "$cert$key" ] && [ -n "$domain" ]; then
    refuse "both TLS_CERT_FILE/TLS_KEY_FILE and ACME_DOMAIN are set in .env: keep one (your own" \
      "certificate, or Let's Encrypt for ACME_DOMAIN)"
  elif [ -n "$cert$key" ]; then
    local problems=() file
    [ -n "$cert" ] || problems+=("TLS_KEY_FILE is set but TLS_CERT_FILE (the certificate chain, PEM) is not")
    [ -n "$key" ] || problems+=("TLS_CERT_FILE is set but TLS_KEY_FILE (its private key, PEM) is not")
    for file in "$cert" "$key"; do
      if [ -z "$file" ]; then
        continue
      elif [ ! -f "$file" ]; then
        problems+=("$file (from .env) does not exist or is not a file")
      elif ! readable_by_nginx "$file"; then
        problems+=("$file cannot be read by nginx (uid 101 in its container): sudo chgrp 101 $file && sudo chmod g+r $file")
      fi
    done
    [ "${#problems[@]}" -eq 0 ] || refuse "${problems[@]}"
    TLS_MODE=files
  elif [ -n "$domain" ]; then
    [ -n "$email" ] || refuse "ACME_DOMAIN=$domain is set but ACME_EMAIL is not (Let's Encrypt's expiry notices go there)"
    http_port=$(env_value NGINX_PORT)
    if [ "${http_port:-80}" != 80 ]; then
      echo "warning: NGINX_PORT=$http_port: Let's Encrypt checks $domain on port 80; set NGINX_PORT=80 unless" \
        "something in front forwards port 80 to $http_port" >&2
    fi
    PROFILES=(--profile letsencrypt)
    TLS_MODE=letsencrypt
  else
    refuse "nginx needs a TLS certificate: TradingView posts alerts only over HTTPS (port 443). In .env set either" \
      "  - your own certificate: TLS_CERT_FILE=/path/fullchain.pem and TLS_KEY_FILE=/path/privkey.pem" \
      "    (readable by uid 101, nginx's user in its container), or" \
      "  - Let's Encrypt: ACME_DOMAIN=trader.example.com (its DNS record pointing at this server, port 80 open" \
      "    to the internet, NGINX_PORT=80) and ACME_EMAIL=you@example.com"
  fi
}

compose() { "${COMPOSE[@]}" -f docker-compose.yml "${PROFILES[@]}" "$@"; }

# healthy | unhealthy | starting | "" (no container or no healthcheck)
health_of() { compose ps --all --format '{{.Health}}' "$1" 2>/dev/null | head -n 1; }

wait_healthy() {
  local service=$1 status deadline=$((SECONDS + ${UPDATE_HEALTH_TIMEOUT_S:-180}))
  while :; do
    status=$(health_of "$service")
    case $status in
      healthy) echo "  $service is healthy"; return 0 ;;
      unhealthy) echo "$service is unhealthy after its restart: see docker compose logs $service" >&2; return 1 ;;
    esac
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$service is not healthy after ${UPDATE_HEALTH_TIMEOUT_S:-180} s (${status:-no status}): see" \
        "docker compose logs $service" >&2
      return 1
    fi
    sleep 2
  done
}

# The number of open positions the agent reports, or nothing when it cannot be asked.
POSITIONS_PY='import json, os, urllib.request as u
r = u.Request("http://127.0.0.1:%s/api/positions" % os.environ.get("AGENT_PORT", "5003"),
              headers={"Authorization": "Bearer " + os.environ["API_TOKEN"]})
print(len(json.load(u.urlopen(r, timeout=5))["positions"]))'
open_positions() { compose exec -T agent python -c "$POSITIONS_PY" 2>/dev/null | tail -n 1; }

# Whether the agent may be restarted now: not running, flat, --force-agent, or the user says yes at the
# prompt.
agent_may_restart() {
  local count answer what state
  state=$(compose ps --all --format '{{.State}}' agent 2>/dev/null | head -n 1)
  if [ "$state" != running ]; then
    echo "  the agent is not running (${state:-no container}): starting it"
    return 0
  fi
  count=$(open_positions || true)
  if [[ $count =~ ^[0-9]+$ ]] && [ "$count" -eq 0 ]; then
    echo "  the agent holds no open position"
    return 0
  fi
  if [[ $count =~ ^[0-9]+$ ]]; then
    what="the agent holds $count open position(s)"
  else
    what="the agent did not answer how many positions it holds"
  fi
  if $force_agent; then
    echo "  $what; restarting it anyway (--force-agent)"
    return 0
  fi
  if [ -t 0 ]; then
    printf '%s; while it restarts (up to a minute) nothing manages them. Restart the agent now? [y/N] ' "$what"
    read -r answer || answer=""
    case $answer in y | Y | yes | YES | Yes) return 0 ;; esac
  fi
  echo "agent not restarted: $what. Run ./start_production.sh --update again when it is flat, or add" \
    "--force-agent." >&2
  return 1
}

start() {
  compose up -d --build
  if [ "$TLS_MODE" = letsencrypt ]; then
    wait_for_certificate
  fi
  local https_port
  https_port=$(env_value NGINX_HTTPS_PORT)
  https_port=${https_port:-443}
  echo "BluefinAI Trader is starting: https://$(public_host)$([ "$https_port" = 443 ] || echo ":$https_port")/"
  echo "  check it with ./healthcheck.sh --docker; logs: docker compose logs -f"
}

public_host() {
  local domain
  domain=$(env_value ACME_DOMAIN)
  echo "${domain:-<this server>}"
}

# The first certificate: certbot asks for it once nginx answers on port 80; nginx serves a temporary
# self-signed one until then and switches to the real one by itself when it appears.
wait_for_certificate() {
  local domain live i
  domain=$(env_value ACME_DOMAIN)
  live="/etc/letsencrypt/live/$domain/fullchain.pem"
  for i in $(seq 60); do
    if compose exec -T nginx test -s "$live" 2>/dev/null; then
      echo "  Let's Encrypt's certificate for $domain is in place"
      return 0
    fi
    [ "$i" -gt 1 ] || echo "waiting for Let's Encrypt's certificate for $domain (up to 3 minutes)..."
    [ "$i" -eq 60 ] || sleep 3
  done
  echo "no certificate for $domain yet: see docker compose --profile letsencrypt logs certbot ($domain must resolve to this server" \
    "and port 80 must be open to the internet). nginx serves a temporary self-signed certificate until" \
    "then and switches to the real one when it appears." >&2
}

update() {
  if ! $pulled && command -v git >/dev/null 2>&1 && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "git pull --ff-only"
    if ! git pull --ff-only; then
      echo "git pull --ff-only failed (local changes or a diverged branch): settle it, then run" \
        "./start_production.sh --update again" >&2
      exit 1
    fi
    # run the version just pulled (its checks and its service list may have changed)
    exec "$PWD/${0##*/}" --update --pulled "$@"
  fi
  echo "pulling the third-party images, rebuilding ours"
  compose pull --ignore-buildable
  compose build --pull
  echo "upgrading the database schema (bluefinai db upgrade)"
  if ! compose run --rm --no-deps migrate; then
    echo "the schema upgrade failed: nothing was restarted (see its output above)" >&2
    exit 1
  fi
  local service
  for service in websocket webhook nginx; do
    echo "updating $service"
    compose up -d --no-deps "$service"
    wait_healthy "$service" || exit 1
  done
  local helpers=(autoheal watchtower)
  [ "$TLS_MODE" != letsencrypt ] || helpers+=(certbot)
  echo "updating ${helpers[*]}"
  compose up -d --no-deps "${helpers[@]}"
  echo "updating agent"
  if agent_may_restart; then
    compose up -d --no-deps agent
    wait_healthy agent || exit 1
    echo "update done"
  else
    echo "update done except the agent"
  fi
}

main() {
  parse_args "$@"
  # shellcheck source=scripts/docker_preflight.sh
  source scripts/docker_preflight.sh
  # shellcheck source=scripts/dotenv.sh
  source scripts/dotenv.sh
  require_secrets
  choose_tls
  scripts/service_env.sh .env .deploy
  if $update; then
    local passthrough=()
    ! $force_agent || passthrough+=(--force-agent)
    update "${passthrough[@]}"
  else
    start
  fi
}

# (the whole file is read before main runs, so a git pull that rewrites it cannot disturb this run)
main "$@"
