# Two commands on a fresh machine: `make lab` (open the notebooks) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision must come from the same release (see README: "Installing torch")
ifeq ($(shell uname -m),aarch64)
TORCH ?= torch==2.9.1 torchvision==0.24.1
else
TORCH ?= torch==2.14.1 torchvision==0.29.1
endif
PYTEST_ARGS ?=

.PHONY: install chromium lab demo app test lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the pair first, so nothing below pulls a torch that this torchvision does not fit
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[test]' $(TORCH)
	touch $@

install: $(VENV)/.installed

# the browser tests drive Debian's Chromium through the playwright package (never `playwright install`)
chromium:
	@test -x /usr/bin/chromium || { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		chromium >/dev/null) || { echo "make chromium: apt-get install chromium failed (run as root?)"; exit 1; }; }

lab: install
	$(BIN)/softmax-widgets lab examples

demo: install
	$(BIN)/softmax-widgets train

app: install
	$(BIN)/softmax-widgets app

lint: install
	$(BIN)/ruff check .

test: install chromium
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts
