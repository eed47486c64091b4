#!/usr/bin/env bash
# Sourced by start_production.sh, start_development.sh and healthcheck.sh (run from the repository root).
# env_value NAME prints what docker compose uses for ${NAME} in docker-compose.yml: $NAME from the
# environment when it is set, else its last value in .env (an `export` prefix, surrounding quotes and an
# unquoted value's trailing " # comment" removed).
env_value() {
  local name=$1
  if [ -n "${!name+x}" ]; then
    printf '%s' "${!name}"
    return 0
  fi
  [ -f .env ] || return 0
  sed -n "s/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}${name}[[:space:]]*=[[:space:]]*//p" .env | tail -n 1 \
    | sed -e "s/^\"\(.*\)\"[[:space:]]*$/\1/" -e t -e "s/^'\(.*\)'[[:space:]]*$/\1/" -e t \
      -e 's/[[:space:]]\{1,\}#.*$//' -e 's/[[:space:]]*$//'
}
