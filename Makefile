# Two front-door targets: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test
# Most tests wait on processes and sockets, not the CPU: four workers keep two cores busy. Each
# worker takes whole files, so a module's servers (Redis, a private Docker engine) start once.
TEST_WORKERS ?= 4

.PHONY: demo test floors lint bench bench-infra doctor sandbox-deps browser-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The demo needs the base install only; the tests every extra and the dev group.
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[all]' --group dev
	touch $@ $(DEMO_STAMP)

# bubblewrap gives the sandbox its namespaces; install it when missing and apt can (best effort).
sandbox-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap with apt-get"; \
	    apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap >/dev/null 2>&1; } || \
	    echo "warning: could not install bubblewrap; the sandbox runs with process isolation only (see 'ptc doctor')"; \
	  else echo "warning: bwrap not found; install bubblewrap for namespace isolation (see 'ptc doctor')"; fi; }

# Offline with the scripted model; then, for each provider whose credentials are set, for real.
# The SDK of each provider whose credentials are set is installed just before its run.
demo: $(DEMO_STAMP) sandbox-deps
	$(BIN)/ptc demo
	@extras=""; \
	  [ -n "$$ANTHROPIC_API_KEY" ] && extras="$$extras,anthropic"; \
	  [ -n "$$OPENAI_API_KEY" ] && extras="$$extras,openai"; \
	  [ -n "$$PTC_BEDROCK_MODEL" ] && extras="$$extras,bedrock"; \
	  if [ -n "$$extras" ]; then $(BIN)/python -m pip install --quiet -e ".[$${extras#,}]"; fi
	$(BIN)/ptc demo --providers-with-keys

# Debian's chromium, for the test that checks the benchmark report as a browser shows it.
browser-deps:
	@bash scripts/chromium.sh >/dev/null || echo "warning: no chromium; the report's browser test is skipped"

test: $(TEST_STAMP) sandbox-deps browser-deps
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# The SDK-facing tests at the lowest SDK versions pyproject allows (constraints/floors.txt), in a
# venv of their own (.venv-floors/); a few minutes, so not part of `make test` yet.
floors: sandbox-deps
	bash scripts/sdk-floors.sh

# The evidence: the scenario suite in both modes and the peers, one HTML report (a few minutes).
# The Docker backend joins the peers when a private engine can be started (scripts/docker.sh).
bench: $(TEST_STAMP) sandbox-deps
	@D=$$(mktemp -d); trap 'bash scripts/docker.sh stop "$$D" >/dev/null 2>&1; rm -rf "$$D"' EXIT; \
	  if H=$$(bash scripts/docker.sh start "$$D" 2>/dev/null) && \
	     DOCKER_HOST=$$H bash scripts/sandbox-image.sh --local-base >/dev/null 2>&1; then \
	    export DOCKER_HOST=$$H; \
	  else echo "no Docker engine could be started: the docker peer is skipped"; fi; \
	  $(BIN)/ptc bench all

# The machinery's own figures: sandbox, replay, proxy, fleet and MCP (each against a baseline).
bench-infra: $(TEST_STAMP) sandbox-deps
	$(BIN)/ptc bench sandbox
	$(BIN)/ptc bench replay
	$(BIN)/ptc bench proxy
	$(BIN)/ptc bench fleet
	$(BIN)/ptc bench mcp

doctor: $(DEMO_STAMP) sandbox-deps
	$(BIN)/ptc doctor

clean:
	rm -rf $(VENV) .venv-floors .pytest_cache .mypy_cache .ruff_cache
