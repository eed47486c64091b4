#!/usr/bin/env bash
# Checks every service and prints one line for each; exits 1 naming those that fail.
#   ./healthcheck.sh                  the local run (make run / bluefinai run): GET /health on the ports of
#                                     .env; AGENT_URL, WEBHOOK_URL, SOCKET_URL, NGINX_URL override them
#                                     (NGINX_URL=skip leaves nginx out)
#   ./healthcheck.sh --docker         the Docker stack: each container's state and healthcheck status
#   --restart                         restart the failed services (Docker; the local run says what to do)
#   --quiet                           print only problems (for cron)
#   --install-cron                    add one crontab line running this every 5 minutes with the other
#                                     options given (default --docker --restart --quiet), output appended
#                                     to .deploy/healthcheck.log; installing again replaces it
#   --uninstall-cron                  remove that line
# A failure is reported through `bluefinai notify --event service_down` (NOTIFY_URLS) when it can be,
# and always on stderr (HEALTHCHECK_NOTIFY=off: stderr only).
set -uo pipefail
cd "$(dirname "$0")" || exit 1
# shellcheck source=scripts/dotenv.sh
source scripts/dotenv.sh

CRON_MARK="# bluefinai-healthcheck"
SERVICES=(agent webhook websocket nginx)
mode=local
restart=false
quiet=false
cron=""
cron_args=()
for arg in "$@"; do
  case $arg in
    --docker) mode=docker; cron_args+=("$arg") ;;
    --local) mode=local; cron_args+=("$arg") ;;
    --restart) restart=true; cron_args+=("$arg") ;;
    --quiet) quiet=true; cron_args+=("$arg") ;;
    --install-cron) cron=install ;;
    --uninstall-cron) cron=uninstall ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "unknown option: $arg (see --help)" >&2; exit 2 ;;
  esac
done

# printf, unless --quiet (its callers pass literal formats)
# shellcheck disable=SC2059
say() { $quiet || printf "$@"; }

install_cron() {
  if ! command -v crontab >/dev/null 2>&1; then
    echo "crontab is not installed (apt-get install cron)" >&2
    return 1
  fi
  local existing line kept
  existing=$(crontab -l 2>/dev/null)
  kept=$(printf '%s\n' "$existing" | grep -vF -e "$CRON_MARK" | sed '/^$/d')
  if [ "$cron" = install ]; then
    [ "${#cron_args[@]}" -gt 0 ] || cron_args=(--docker --restart --quiet)
    mkdir -p .deploy && chmod 700 .deploy
    line="*/5 * * * * cd $(printf '%q' "$PWD") && ./healthcheck.sh ${cron_args[*]} >>.deploy/healthcheck.log 2>&1 $CRON_MARK"
    kept=$(printf '%s\n%s\n' "$kept" "$line" | sed '/^$/d')
  fi
  if [ -z "$kept" ]; then
    crontab -r 2>/dev/null
  else
    printf '%s\n' "$kept" | crontab -
  fi || { echo "crontab could not be written" >&2; return 1; }
  if [ "$cron" = install ]; then
    echo "installed for $(id -un): $line"
  else
    echo "removed the healthcheck line from $(id -un)'s crontab"
  fi
}

# The notification: `bluefinai notify` inside a healthy container (Docker) or from .venv (local run).
notify() {
  local message=$1 service
  case ${HEALTHCHECK_NOTIFY:-on} in off | 0 | false) return 0 ;; esac
  [ -z "${HEALTHCHECK_IGNORE_ENV:-}" ] || return 0 # probing given URLs: not this checkout's services
  if [ "$mode" = docker ]; then
    for service in agent webhook websocket; do
      case " ${failed[*]} " in *" $service "*) continue ;; esac
      if "${COMPOSE[@]}" -f docker-compose.yml exec -T "$service" \
        bluefinai notify --event service_down "$message" >/dev/null 2>&1; then
        return 0
      fi
    done
  else
    local cli=.venv/bin/bluefinai
    [ -x "$cli" ] || cli=$(command -v bluefinai)
    if [ -n "$cli" ] && "$cli" notify --event service_down "$message" >/dev/null 2>&1; then
      return 0
    fi
  fi
  echo "(notification not sent: no running service could send it, or NOTIFY_URLS is empty)" >&2
  return 1
}

probe() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -m 3 -o /dev/null "$1/health" 2>/dev/null
  else
    python3 -c "import sys, urllib.request; sys.exit(urllib.request.urlopen(sys.argv[1] + '/health', timeout=3).status != 200)" "$1" 2>/dev/null
  fi
}

failed=()
reasons=()
restarted=()

check_local() {
  local agent_port webhook_port socket_port nginx_port name url
  if [ -n "${HEALTHCHECK_IGNORE_ENV:-}" ]; then
    agent_port=${AGENT_PORT:-} webhook_port=${WEBHOOK_PORT:-} socket_port=${SOCKET_PORT:-} nginx_port=${NGINX_PORT:-}
  else
    agent_port=$(env_value AGENT_PORT) webhook_port=$(env_value WEBHOOK_PORT)
    socket_port=$(env_value SOCKET_PORT) nginx_port=$(env_value NGINX_PORT)
  fi
  declare -A urls=(
    [agent]="${AGENT_URL:-http://127.0.0.1:${agent_port:-5003}}"
    [webhook]="${WEBHOOK_URL:-http://127.0.0.1:${webhook_port:-5004}}"
    [websocket]="${SOCKET_URL:-http://127.0.0.1:${socket_port:-5008}}"
    [nginx]="${NGINX_URL:-http://127.0.0.1:${nginx_port:-8080}}"
  )
  for name in "${SERVICES[@]}"; do
    url=${urls[$name]}
    [ "$url" != skip ] || continue
    if probe "$url"; then
      say 'ok      %-10s %s/health\n' "$name" "$url"
    else
      printf 'FAILED  %-10s %s/health\n' "$name" "$url"
      failed+=("$name")
      reasons+=("$name: $url/health does not answer 200")
    fi
  done
  if $restart && [ "${#failed[@]}" -gt 0 ]; then
    echo "not restarted: the local run restarts nothing by itself; stop it (Ctrl-C) and start it again with make run" >&2
  fi
}

check_docker() {
  PREFLIGHT_FOR="check the Docker stack"
  # shellcheck source=scripts/docker_preflight.sh
  source scripts/docker_preflight.sh
  local listing name state health line
  if ! listing=$("${COMPOSE[@]}" -f docker-compose.yml ps --all --format '{{.Service}} {{.State}} {{.Health}}' 2>&1); then
    echo "docker compose ps failed: $listing" >&2
    listing=""
  fi
  for name in "${SERVICES[@]}"; do
    line=$(printf '%s\n' "$listing" | awk -v s="$name" '$1 == s { print; exit }')
    read -r _ state health <<<"$line"
    state=${state:-missing}
    if [ "$state" = running ] && { [ "${health:-}" = healthy ] || [ "${health:-}" = starting ]; }; then
      say 'ok      %-10s %s\n' "$name" "$state${health:+, $health}"
    else
      printf 'FAILED  %-10s %s\n' "$name" "$state${health:+, $health}"
      failed+=("$name")
      reasons+=("$name: $state${health:+, $health}")
    fi
  done
  if $restart; then
    for name in "${failed[@]}"; do
      if [ "$(printf '%s\n' "$listing" | awk -v s="$name" '$1 == s { print $2; exit }')" = "" ]; then
        "${COMPOSE[@]}" -f docker-compose.yml up -d --no-deps "$name" >/dev/null 2>&1
      else
        "${COMPOSE[@]}" -f docker-compose.yml restart "$name" >/dev/null 2>&1
      fi && restarted+=("$name")
    done
  fi
}

if [ -n "$cron" ]; then
  install_cron
  exit $?
fi

if [ "$mode" = docker ]; then
  check_docker
else
  check_local
fi

if [ "${#failed[@]}" -eq 0 ]; then
  say 'all services healthy\n'
  exit 0
fi
joined=$(printf '%s; ' "${reasons[@]}")
summary="BluefinAI Trader on $(hostname 2>/dev/null || echo this host): unhealthy: ${joined%; }"
if [ "${#restarted[@]}" -gt 0 ]; then
  summary="$summary. Restarted: ${restarted[*]}"
fi
not_restarted=()
for name in "${failed[@]}"; do
  case " ${restarted[*]} " in *" $name "*) ;; *) not_restarted+=("$name") ;; esac
done
if $restart && [ "$mode" = docker ] && [ "${#not_restarted[@]}" -gt 0 ]; then
  summary="$summary. Could not restart: ${not_restarted[*]}"
fi
echo "$(date -u +%FT%TZ) $summary" >&2
notify "$summary"
exit 1
