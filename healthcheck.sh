#!/usr/bin/env bash
# Checks every service's /health; prints one line per service and exits non-zero naming those that fail.
# Defaults to the local ports (bluefinai run / make run); override with AGENT_URL, WEBHOOK_URL, SOCKET_URL
# and NGINX_URL (set NGINX_URL=skip to leave nginx out).
set -uo pipefail
if [ -f .env ] && [ -z "${HEALTHCHECK_IGNORE_ENV:-}" ]; then
  # ports from .env when the URLs are not given
  AGENT_PORT=${AGENT_PORT:-$(sed -n 's/^AGENT_PORT=//p' .env)}
  WEBHOOK_PORT=${WEBHOOK_PORT:-$(sed -n 's/^WEBHOOK_PORT=//p' .env)}
  SOCKET_PORT=${SOCKET_PORT:-$(sed -n 's/^SOCKET_PORT=//p' .env)}
  NGINX_PORT=${NGINX_PORT:-$(sed -n 's/^NGINX_PORT=//p' .env)}
fi
declare -A urls=(
  [agent]="${AGENT_URL:-http://127.0.0.1:${AGENT_PORT:-5003}}"
  [webhook]="${WEBHOOK_URL:-http://127.0.0.1:${WEBHOOK_PORT:-5004}}"
  [websocket]="${SOCKET_URL:-http://127.0.0.1:${SOCKET_PORT:-5008}}"
  [nginx]="${NGINX_URL:-http://127.0.0.1:${NGINX_PORT:-8080}}"
)

probe() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -m 3 -o /dev/null "$1/health"
  else
    python3 -c "import sys, urllib.request; sys.exit(urllib.request.urlopen(sys.argv[1] + '/health', timeout=3).status != 200)" "$1" 2>/dev/null
  fi
}

failed=()
for name in agent webhook websocket nginx; do
  url=${urls[$name]}
  if [ "$url" = "skip" ]; then continue; fi
  if probe "$url"; then
    printf 'ok      %-10s %s/health\n' "$name" "$url"
  else
    printf 'FAILED  %-10s %s/health\n' "$name" "$url"
    failed+=("$name")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "unhealthy: ${failed[*]}" >&2
  exit 1
fi
echo "all services healthy"
