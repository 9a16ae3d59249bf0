# MI Platform — the two commands of the README, and a few helpers.
# `make demo`: install, migrate, load demo data, build the tiny model, start web + Celery worker.
# `make test`: install, make sure PostgreSQL/Redis/Chromium are there, lint, run the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test install lint bench clean-demo

$(VENV)/.installed: pyproject.toml
	@echo "== Installing into $(VENV) (first time, or pyproject.toml changed)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@mkdir -p var
	@# pip's and the build backend's notices go to a log (shown if the install fails), not the terminal.
	@( $(PIP) install -q --disable-pip-version-check --upgrade pip \
	   && $(PIP) install -q --disable-pip-version-check -e '.[cpu,dev]' ) > var/install.log 2>&1 \
	  || { cat var/install.log; exit 1; }
	@touch $@

install: $(VENV)/.installed

demo: install
	@HOST=$(HOST) PORT=$(PORT) bash scripts/demo.sh

test: install
	bash scripts/test.sh

lint: install
	$(VENV)/bin/ruff check .

# `make bench` runs every script under bench/ at quick sizes; `make bench BENCH_ARGS=--full` at full size.
bench: install
	bash scripts/bench.sh $(BENCH_ARGS)

clean-demo:
	rm -rf var/
