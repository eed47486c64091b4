#!/usr/bin/env bash
# Writes the env file each app container reads (docker-compose.yml: env_file .deploy/<service>.env) from
# .env, leaving out the secrets that service does not use:
#   scripts/service_env.sh [ENV_FILE [OUT_DIR]]      (defaults: .env and .deploy)
# The rule is shared.config.service_environment's (SERVICE_SECRETS): only the agent gets the exchange key
# and the AI keys; the webhook gets its passphrase, the API token and NOTIFY_URLS; the dashboard the API
# token and NOTIFY_URLS. nginx gets no env file. Pure shell, since a Docker host may have no Python; a test
# checks these lists against service_environment. OUT_DIR is mode 700, the files 600.
set -euo pipefail
env_file=${1:-.env}
out_dir=${2:-.deploy}
EXCHANGE_AND_AI="AI_API_KEY BLUEFIN_API_KEY BLUEFIN_API_SECRET BLUEFIN_PRIVATE_KEY ANTHROPIC_API_KEY PERPLEXITY_API_KEY"
SERVICES="agent webhook websocket"

withheld() {
  case $1 in
    agent) echo "" ;;
    webhook) echo "$EXCHANGE_AND_AI" ;;
    websocket) echo "$EXCHANGE_AND_AI WEBHOOK_PASSPHRASE" ;;
    *) echo "service_env.sh: unknown service $1" >&2; return 1 ;;
  esac
}

if [ ! -f "$env_file" ]; then
  echo "service_env.sh: $env_file is missing (cp .env.example .env)" >&2
  exit 1
fi
umask 077
mkdir -p "$out_dir"
chmod 700 "$out_dir"
# the folder keeps itself out of git whatever .gitignore says
[ -f "$out_dir/.gitignore" ] || printf '*\n' >"$out_dir/.gitignore"
for service in $SERVICES; do
  target="$out_dir/$service.env"
  tmp=$(mktemp "$out_dir/.$service.env.XXXXXX")
  # KEY=VALUE lines pass through as they are (compose reads the file with .env's rules); comments, blank
  # lines, withheld keys (any case, with or without `export`) and BLUEFINAI_SERVICE do not.
  awk -v drop="$(withheld "$service") BLUEFINAI_SERVICE" -v service="$service" '
    BEGIN { n = split(drop, names, " "); for (i = 1; i <= n; i++) withheld[names[i]] = 1 }
    /^[[:space:]]*(#|$)/ { next }
    {
      line = $0
      sub(/^[[:space:]]*(export[[:space:]]+)?/, "", line)
      eq = index(line, "=")
      if (eq == 0) next
      key = substr(line, 1, eq - 1)
      sub(/[[:space:]]+$/, "", key)
      if (toupper(key) in withheld) next
      print line
    }
    END { print "BLUEFINAI_SERVICE=" service }
  ' "$env_file" >"$tmp"
  chmod 600 "$tmp"
  mv -f "$tmp" "$target"
done
