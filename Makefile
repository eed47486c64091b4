# BluefinAI Trader. `make run` starts the platform locally; `make test` runs every check CI runs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
NPM_STAMP := websocket/dashboard/node_modules/.installed

DEMO_PORT ?= 9090

.PHONY: run demo-live install system-deps frontend lint typecheck test test-unit test-integration test-e2e bench clean

run: install frontend
	$(BIN)/bluefinai run

# Real mode with no money: the fake Bluefin Pro of the tests (real BTC candles, one a second) and a
# throwaway key; its own data folder, so the paper account in data/ is left alone.
demo-live: install frontend
	@key=$$($(BIN)/python -c "import secrets; print('0x' + secrets.token_hex(32))"); \
	$(BIN)/python -m tests.fakes.bluefin_pro --port $(DEMO_PORT) --candles-per-second 1 & fake=$$!; \
	trap "kill $$fake 2>/dev/null" EXIT INT TERM; \
	for i in $$(seq 50); do curl -fs -o /dev/null http://127.0.0.1:$(DEMO_PORT)/v1/exchange/info && break; sleep 0.2; done; \
	TRADING_MODE=real BLUEFIN_API=pro BLUEFIN_NETWORK=http://127.0.0.1:$(DEMO_PORT) BLUEFIN_PRIVATE_KEY=$$key \
	MARKET_DATA_SOURCE=bluefin DATA_DIR=$(CURDIR)/data/demo-live $(BIN)/bluefinai run

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# bluefin-v2-client pins years-old versions of everything: install it alone, next to current
	# versions of what it really imports (listed in pyproject.toml). pip's report of unmet pins is expected.
	$(BIN)/python -m pip install --quiet --no-deps bluefin-v2-client==4.2.13
	touch $(STAMP)

install: $(STAMP)

$(NPM_STAMP): websocket/dashboard/package.json websocket/dashboard/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix websocket/dashboard --no-audit --no-fund --loglevel=error && touch $(NPM_STAMP); \
	else echo "npm not found: the dashboard needs it once for its socket.io client (apt-get install npm)"; exit 1; fi

frontend: $(NPM_STAMP)

# nginx (the local front door), chromium (dashboard tests) and envsubst (gettext-base: the tests render the
# nginx image's entrypoint), from Debian's packages, when missing.
system-deps:
	@missing=""; command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v envsubst >/dev/null || missing="$$missing gettext-base"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy shared agent bluefinai webhook websocket/dashboard

test: install frontend system-deps lint typecheck
	$(BIN)/python -m pytest -q

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

bench: install frontend
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/webhook.py
	$(BIN)/python bench/indicators.py
	$(BIN)/python bench/backtest.py

clean:
	rm -rf $(VENV) websocket/dashboard/node_modules data
