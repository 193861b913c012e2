# Every target creates or reuses .venv from requirements.lock; nothing needs to be installed first
# but Python 3.11 (uv is used when present and bootstrapped into the venv when not).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False

.PHONY: venv demo test lint format lock bench clean airflow

venv: $(STAMP)

# editable_mode=compat puts the checkout on sys.path, so a new top-level package (connectors/,
# mappings/) is importable without reinstalling; the default mode pins the packages seen at install.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if command -v uv >/dev/null 2>&1; then UV=uv; \
	 elif $(BIN)/python -m pip install -q uv >/dev/null 2>&1; then UV=$(BIN)/uv; \
	 else UV=; fi; \
	 if [ -n "$$UV" ]; then \
	   $$UV pip sync -q --compile-bytecode --python $(BIN)/python requirements.lock && \
	   $$UV pip install -q --python $(BIN)/python --no-deps -C editable_mode=compat -e . ; \
	 else \
	   $(BIN)/python -m pip install -q -r requirements.lock && \
	   $(BIN)/python -m pip install -q --no-deps --config-settings editable_mode=compat -e . ; \
	 fi
	@touch $@

demo: $(STAMP)
	$(BIN)/overstap demo

# Airflow on this machine with the hub's DAGs and the audit web view (/overstap), on a free port;
# Ctrl-C stops it and every process it started (overstap/runtime/standalone.py says why).
# Airflow's home is .overstap/airflow (the admin password is printed at start and kept in
# simple_auth_manager_passwords.json.generated there).
airflow: $(STAMP)
	@port=$$($(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	 echo "Airflow: http://127.0.0.1:$$port/   audit view: http://127.0.0.1:$$port/overstap/"; \
	 PATH="$(CURDIR)/$(BIN):$$PATH" \
	 OVERSTAP_HOME="$${OVERSTAP_HOME:-$(CURDIR)/.overstap}" \
	 AIRFLOW_HOME="$${AIRFLOW_HOME:-$(CURDIR)/.overstap/airflow}" \
	 AIRFLOW__CORE__DAGS_FOLDER="$(CURDIR)/dags" \
	 AIRFLOW__CORE__PLUGINS_FOLDER="$(CURDIR)/plugins" \
	 AIRFLOW__CORE__PARALLELISM=4 \
	 AIRFLOW__API__PORT=$$port \
	 exec $(BIN)/python -m overstap.runtime.standalone

test: $(STAMP)
	$(BIN)/pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every benchmark, each printing its figures and the ratio to its target (inputs cached in $TMPDIR).
bench: $(STAMP)
	$(BIN)/python bench/region_generate.py
	$(BIN)/python bench/dossier_pipeline.py
	$(BIN)/python bench/sis_import.py
	$(BIN)/python bench/delivery.py
	$(BIN)/python bench/soap_delivery.py
	$(BIN)/python bench/reconcile.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/signals.py

# Re-pin every dependency (needs uv); commit the result.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra deploy --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .overstap .pytest_cache .mypy_cache .ruff_cache
