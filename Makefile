# Two commands on a fresh machine: `make lab` (open the notebooks) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch and torchvision must come from the same release: a torchvision built for another torch fails to
# import (see README.md, "Install"). On x86_64 PyPI's torch is the CUDA build (~5.5 GB with its libraries).
ifeq ($(shell uname -m),aarch64)
TORCH ?= torch==2.9.1 torchvision==0.24.1
else
TORCH ?= torch==2.14.1 torchvision==0.29.1
endif
# where `make lab` copies the notebooks: a work folder git ignores, so the tracked examples/ stay as shipped
NOTEBOOKS ?= notebooks
PYTEST_ARGS ?=

.PHONY: install install-lab chromium hub-proxy lab demo app test lint bench clean

# the lesson: the runtime dependencies (JupyterLab among them), no test tools; pip shows its progress
$(VENV)/.installed-lab: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@if [ -f $(VENV)/.installed ] && [ $(VENV)/.installed -nt pyproject.toml ]; then \
		echo "$(VENV) already has the lesson (installed by make test)"; \
	else \
		$(BIN)/python -m pip install --upgrade pip && \
		$(BIN)/python -m pip install $(TORCH) && \
		$(BIN)/python -m pip install -e . $(TORCH); \
	fi
	touch $@

# everything `make test` needs on top: pytest, nbclient, ruff, Playwright (driving Debian's Chromium), Voila
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the pair first, so nothing below pulls a torch that this torchvision does not fit
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[test]' $(TORCH)
	touch $@

# `make app`: the lesson plus Voila, which serves the dashboard alone as a page
$(VENV)/.installed-app: $(VENV)/.installed-lab
	$(BIN)/python -c "import voila" 2>/dev/null || $(BIN)/python -m pip install -e '.[app]' $(TORCH)
	touch $@

install-lab: $(VENV)/.installed-lab

install: $(VENV)/.installed

# the browser tests drive Debian's Chromium through the playwright package (never `playwright install`)
chromium:
	@test -x /usr/bin/chromium || { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		chromium >/dev/null) || { echo "make chromium: apt-get install chromium failed (run as root?)"; exit 1; }; }

# tests/hub's JupyterHub routes through configurable-http-proxy, from the npm registry into .hub/ (git ignores it)
CHP_VERSION ?= 4.6.3
HUB_PROXY := .hub/node_modules/.bin/configurable-http-proxy
$(HUB_PROXY):
	@command -v npm >/dev/null || { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		npm >/dev/null) || { echo "make hub-proxy: npm is missing and apt-get install npm failed (run as root?)"; \
		exit 1; }; }
	npm install --prefix .hub --no-audit --no-fund --loglevel=error configurable-http-proxy@$(CHP_VERSION)

hub-proxy: $(HUB_PROXY)

lab: install-lab
	$(BIN)/softmax-widgets lab $(NOTEBOOKS)

demo: install-lab
	$(BIN)/softmax-widgets train

app: $(VENV)/.installed-app
	$(BIN)/softmax-widgets app

lint: install
	$(BIN)/ruff check .

test: install chromium hub-proxy
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts .hub
