# One entry point for every check, used alike by people, the pre-commit hook and CI.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install lint format test run migrate stub bench-stats bench-stub clean

install: $(VENV)/.installed

# Re-installs when pyproject.toml changes; the marker keeps `make test` fast otherwise.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The README's test command: installs, lints, then runs every test against the local
# PostgreSQL and RabbitMQ (each run in a database of its own).
test: lint
	$(BIN)/pytest

# The README's main-job command (for now: migrate, then serve the API).
run: install .env
	$(BIN)/mailer migrate
	$(BIN)/mailer api

migrate: install .env
	$(BIN)/mailer migrate

stub: install .env
	$(BIN)/mailer stub

bench-stats: install
	$(BIN)/python -m bench.stats_latency

# Needs wrk (apt-get install wrk).
bench-stub: install
	$(BIN)/python -m bench.stub_throughput

# A first run gets a .env with random API and stub tokens (read them there, not from the
# terminal).
.env:
	@new() { $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(24))'; }; \
	sed -e "s|^# MAILER_API_TOKEN=.*|MAILER_API_TOKEN=$$(new)|" \
	    -e "s|^# MAILER_STUB_TOKEN=.*|MAILER_STUB_TOKEN=$$(new)|" .env.example > .env; \
	echo "wrote .env with a new random MAILER_API_TOKEN and MAILER_STUB_TOKEN"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
