# Every image of the platform, one target each. Build from the repository root, e.g.
#   docker build --target agent -t bluefinai-local/agent .
# (docker-compose.yml builds each service's target). Targets: agent, webhook, websocket, nginx.

# --- the dashboard's front-end packages (socket.io client), installed from the lock file -----------------
FROM node:20-bookworm-slim AS frontend
WORKDIR /build
COPY websocket/dashboard/package.json websocket/dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund

# --- what every Python service shares: the code, its packages and the user it runs as -------------------
FROM python:3.11-slim-bookworm AS python-app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BIND_HOST=0.0.0.0 DATA_DIR=/app/data LOG_DIR=/app/logs
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared/ shared/
COPY agent/ agent/
COPY bluefinai/ bluefinai/
COPY webhook/ webhook/
COPY websocket/dashboard/ websocket/dashboard/
RUN pip install -e .
# uid/gid 10001, as docker-compose.yml runs it (read-only root; /app/data, /app/logs and /tmp writable)
RUN groupadd --gid 10001 appuser && useradd --create-home --uid 10001 --gid 10001 appuser \
    && mkdir -p /app/data /app/logs && chown 10001:10001 /app/data /app/logs

# --- the agent: engine, analysts, risk, execution, API (5003) --------------------------------------------
FROM python-app AS agent
# bluefin-v2-client pins years-old versions of everything: install it alone, next to current releases of
# what it really imports (already in pyproject.toml).
RUN pip install --no-deps bluefin-v2-client==4.2.13
USER 10001:10001
EXPOSE 5003
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('AGENT_PORT', '5003'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=2).status != 200)"]
CMD ["bluefinai", "serve", "agent"]

# --- the webhook: TradingView alerts in (5004) -----------------------------------------------------------
FROM python-app AS webhook
USER 10001:10001
EXPOSE 5004
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('WEBHOOK_PORT', '5004'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=2).status != 200)"]
CMD ["bluefinai", "serve", "webhook"]

# --- the websocket service: dashboard and socket.io (5008) -----------------------------------------------
FROM python-app AS websocket
COPY --from=frontend /build/node_modules/socket.io-client/dist/ websocket/dashboard/node_modules/socket.io-client/dist/
COPY --from=frontend /build/node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js websocket/dashboard/node_modules/lightweight-charts/dist/
USER 10001:10001
EXPOSE 5008
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('SOCKET_PORT', '5008'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=2).status != 200)"]
# gunicorn's gevent worker (gunicorn 26+ has no eventlet worker); simple-websocket gives the websocket transport.
CMD ["bluefinai", "serve", "websocket"]

# --- nginx in front of the services ----------------------------------------------------------------------
# Configuration: the environment variables read by nginx/entrypoint.sh (HTTP_PORT, HTTPS_PORT,
# PUBLIC_HTTPS_PORT, TLS_CERT, TLS_KEY, TV_CLIENT_CA, WEBHOOK_REQUIRE_TV_CERT, WEBHOOK_ALLOWED_IPS,
# AGENT_ADDR, WEBHOOK_ADDR, SOCKET_ADDR, ACME_ROOT, RUN_DIR, WEBHOOK_RATE, WEBHOOK_BURST, RELOAD_HOURS).
# Runs as the image's `nginx` user (uid 101) with a read-only root filesystem: it writes only to RUN_DIR (/tmp/nginx).
FROM nginx:1.27-alpine AS nginx
# openssl: the temporary self-signed certificate of a first start, before Let's Encrypt has issued one.
# hadolint ignore=DL3018
RUN apk add --no-cache openssl \
    && mkdir -p /var/www/acme /etc/nginx/tls /etc/nginx/bluefinai
COPY nginx/nginx.conf.template /etc/nginx/bluefinai/nginx.conf.template
COPY nginx/entrypoint.sh /usr/local/bin/bluefinai-nginx-entrypoint
ENV HTTP_PORT=8080 HTTPS_PORT=8443 PUBLIC_HTTPS_PORT=443 RUN_DIR=/tmp/nginx ACME_ROOT=/var/www/acme \
    AGENT_ADDR=agent:5003 WEBHOOK_ADDR=webhook:5004 SOCKET_ADDR=websocket:5008
USER 101
EXPOSE 8080 8443
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]
ENTRYPOINT ["/usr/local/bin/bluefinai-nginx-entrypoint"]
