# One entry point for every check, used alike by people, the pre-commit hook and CI.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install lint format test run up migrate stub bench bench-stats bench-stub bench-status clean

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

# The README's main-job command: the whole stack (migrations, api, planner, senders, status,
# provider stub) as local processes, sending a demo mailing to 10,000 seeded clients.
run: install .env
	$(BIN)/mailer demo --clients 10000

# The whole stack, left running until Ctrl-C, with every service's log prefixed.
up: install .env
	$(BIN)/mailer up

migrate: install .env
	$(BIN)/mailer migrate

stub: install .env
	$(BIN)/mailer stub

# The end-to-end benchmark of issue 7 (see BENCHMARKS.md): every scenario on a stack, a
# database and a RabbitMQ vhost of its own; e.g. make bench ARGS="--scenario S1 --clients 20000".
bench: install
	$(BIN)/python -m bench.e2e $(ARGS)

bench-stats: install
	$(BIN)/python -m bench.stats_latency

bench-status: install
	$(BIN)/python -m bench.status_throughput

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
