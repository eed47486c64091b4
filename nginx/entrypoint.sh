#!/bin/sh
# The nginx container's entrypoint: renders nginx.conf.template into $RUN_DIR (the same text as
# bluefinai/nginx.py:render_nginx_conf for the same inputs; a test compares them), makes a temporary
# self-signed certificate when TLS_CERT does not exist yet (first start with Let's Encrypt, so nginx can
# start and answer the ACME challenge), runs nginx, and reloads it every RELOAD_HOURS so renewed
# certificates are picked up (and as soon as the real certificate appears, when the temporary one is used).
#
#   entrypoint.sh          render, then run nginx in the foreground
#   entrypoint.sh render   render only (and make the temporary certificate if needed), print the path
set -eu

TEMPLATE="${NGINX_TEMPLATE:-/etc/nginx/bluefinai/nginx.conf.template}"
: "${HTTP_PORT:=8080}"
: "${HTTPS_PORT=8443}"  # set but empty: no HTTPS server
: "${PUBLIC_HTTPS_PORT:=443}"
: "${TLS_CERT:=/etc/nginx/tls/fullchain.pem}"
: "${TLS_KEY:=/etc/nginx/tls/privkey.pem}"
: "${TV_CLIENT_CA:=/etc/ssl/certs/ca-certificates.crt}"
: "${WEBHOOK_REQUIRE_TV_CERT:=false}"
: "${WEBHOOK_ALLOWED_IPS:=}"
: "${AGENT_ADDR:=agent:5003}"
: "${WEBHOOK_ADDR:=webhook:5004}"
: "${SOCKET_ADDR:=websocket:5008}"
: "${ACME_ROOT:=/var/www/acme}"
: "${RUN_DIR:=/tmp/nginx}"
: "${WEBHOOK_RATE:=20r/s}"
: "${WEBHOOK_BURST:=40}"
: "${RELOAD_HOURS:=6}"

# shellcheck disable=SC2016 # envsubst's list of names, not expanded here
VARS='${HTTP_PORT} ${HTTPS_PORT} ${PUBLIC_HTTPS_PORT} ${TLS_CERT} ${TLS_KEY} ${TV_CLIENT_CA} ${AGENT_ADDR}
${WEBHOOK_ADDR} ${SOCKET_ADDR} ${ACME_ROOT} ${RUN_DIR} ${WEBHOOK_RATE} ${WEBHOOK_BURST} ${WEBHOOK_ACCESS}'
CONF="$RUN_DIR/nginx.conf"
REAL_CERT="$TLS_CERT"
REAL_KEY="$TLS_KEY"
TEMP_DIR="$RUN_DIR/temporary-certificate"

fail() {
    echo "nginx entrypoint: $*" >&2
    exit 2
}

check_values() {
    for name in HTTP_PORT HTTPS_PORT PUBLIC_HTTPS_PORT TLS_CERT TLS_KEY TV_CLIENT_CA AGENT_ADDR WEBHOOK_ADDR \
        SOCKET_ADDR ACME_ROOT RUN_DIR WEBHOOK_RATE WEBHOOK_BURST WEBHOOK_REQUIRE_TV_CERT; do
        eval "value=\${$name}"
        # shellcheck disable=SC2154 # set by the eval above
        case "$value" in
            *[[:space:]]* | *'"'* | *'$'* | *';'* | *'{'* | *'}'*) fail "$name: '$value' holds a space or one of \" \$ ; { }" ;;
        esac
    done
}

render() {
    check_values
    WEBHOOK_ACCESS=""
    for net in $(printf '%s' "$WEBHOOK_ALLOWED_IPS" | tr ',' ' '); do
        case "$net" in
            *[!0-9A-Fa-f.:/]*) fail "WEBHOOK_ALLOWED_IPS: '$net' is not an address or network" ;;
        esac
        WEBHOOK_ACCESS="${WEBHOOK_ACCESS}allow ${net}; "
    done
    if [ -n "$WEBHOOK_ACCESS" ]; then WEBHOOK_ACCESS="${WEBHOOK_ACCESS}deny all;"; fi
    if [ -n "$HTTPS_PORT" ]; then https='s/#\[https\] *//'; else https='/#\[https\]/d'; fi
    case "$(printf '%s' "$WEBHOOK_REQUIRE_TV_CERT" | tr '[:upper:]' '[:lower:]')" in
        1 | true | yes | on) tvcert='s/#\[tvcert\] *//' ;;
        *) tvcert='/#\[tvcert\]/d' ;;
    esac
    export HTTP_PORT HTTPS_PORT PUBLIC_HTTPS_PORT TLS_CERT TLS_KEY TV_CLIENT_CA AGENT_ADDR WEBHOOK_ADDR \
        SOCKET_ADDR ACME_ROOT RUN_DIR WEBHOOK_RATE WEBHOOK_BURST WEBHOOK_ACCESS
    mkdir -p "$RUN_DIR/client_body" "$RUN_DIR/proxy" "$RUN_DIR/fastcgi" "$RUN_DIR/uwsgi" "$RUN_DIR/scgi"
    sed -e "$https" -e "$tvcert" "$TEMPLATE" | envsubst "$VARS" >"$CONF.new"
    mv "$CONF.new" "$CONF"
}

# Which certificate nginx reads: the real one when both files are there, else a temporary self-signed one.
choose_certificate() {
    if [ -z "$HTTPS_PORT" ] || { [ -s "$REAL_CERT" ] && [ -s "$REAL_KEY" ]; }; then
        TLS_CERT="$REAL_CERT"
        TLS_KEY="$REAL_KEY"
        return 1
    fi
    if [ ! -s "$TEMP_DIR/cert.pem" ]; then
        echo "nginx entrypoint: $REAL_CERT not there yet: serving a temporary self-signed certificate" >&2
        mkdir -p "$TEMP_DIR"
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=${TLS_NAME:-localhost}" \
            -keyout "$TEMP_DIR/key.pem" -out "$TEMP_DIR/cert.pem" 2>/dev/null ||
            fail "openssl could not make the temporary certificate"
    fi
    TLS_CERT="$TEMP_DIR/cert.pem"
    TLS_KEY="$TEMP_DIR/key.pem"
    return 0
}

reload_loop() {
    waited=0
    while sleep 60; do
        waited=$((waited + 60))
        if [ "$temporary" = yes ] && [ -s "$REAL_CERT" ] && [ -s "$REAL_KEY" ]; then
            echo "nginx entrypoint: $REAL_CERT is there now: switching to it" >&2
            temporary=no
            choose_certificate || true
            render
        elif [ "$waited" -lt "$((RELOAD_HOURS * 3600))" ]; then
            continue
        fi
        waited=0
        nginx -p "$RUN_DIR" -c "$CONF" -e stderr -s reload || echo "nginx entrypoint: reload failed" >&2
    done
}

temporary=no
if choose_certificate; then temporary=yes; fi
render
if [ "${1:-}" = render ]; then
    echo "$CONF"
    exit 0
fi
nginx -p "$RUN_DIR" -c "$CONF" -e stderr -t -q
reload_loop &
exec nginx -p "$RUN_DIR" -c "$CONF" -e stderr -g 'daemon off;'
