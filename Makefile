# Two commands from a fresh clone: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The Dagster home lives under the storage root, or under .curation where the root is a URL (object storage).
LOCAL_ROOT := $(if $(findstring ://,$(CURATION_STORAGE_ROOT)),.curation,$(or $(CURATION_STORAGE_ROOT),.curation))
export DAGSTER_HOME ?= $(abspath $(LOCAL_ROOT))/dagster_home
# The instance's settings: dagster.yaml (SQLite files in DAGSTER_HOME), or deploy/dagster.postgres.yaml
# (a PostgreSQL server named by the DAGSTER_PG_* variables; README, "Scale out").
INSTANCE ?= dagster.yaml

.PHONY: demo test lock instance chromium postgresql redis ui lint benchmarks clean

LOCK := requirements.lock
PIP := $(BIN)/pip --quiet --disable-pip-version-check

# A new venv holding exactly the lock's versions (hash-checked), then this project on top, editable.
$(VENV)/installed: $(LOCK) pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes --no-deps -r $(LOCK)
	$(PIP) install --no-deps --no-build-isolation -e .
	$(PIP) check
	touch $@

lock:  ## re-resolve requirements.lock: the newest releases pyproject.toml's ranges allow (needs PyPI)
	rm -rf $(VENV)-lock
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet --disable-pip-version-check pip-tools==7.6.2
	$(VENV)-lock/bin/pip-compile --quiet --upgrade --extra dev --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links -o $(LOCK) pyproject.toml
	rm -rf $(VENV)-lock

instance:  ## $(DAGSTER_HOME)/dagster.yaml from $(INSTANCE)
	mkdir -p $(DAGSTER_HOME)
	cmp -s $(INSTANCE) $(DAGSTER_HOME)/dagster.yaml || cp $(INSTANCE) $(DAGSTER_HOME)/dagster.yaml

demo: $(VENV)/installed instance  ## ingest the shipped demo drops with the main job
	$(BIN)/curate demo

test: $(VENV)/installed chromium postgresql redis  ## run the test suite
	$(BIN)/pytest

chromium:  ## Debian's chromium for the report's browser test, where apt-get can install it; that test skips otherwise
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	} || echo "chromium could not be installed: the report's browser test will skip"

postgresql:  ## Debian's PostgreSQL server for the test of the instance on PostgreSQL, where apt-get can install it; that test skips otherwise
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	} || echo "postgresql could not be installed: the test of the instance on PostgreSQL will skip"

redis:  ## Debian's Redis server, the celery broker of the distributed executor's test, where apt-get can install it; that test skips otherwise
	@command -v redis-server >/dev/null || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	} || echo "redis-server could not be installed: the distributed executor's test will skip"

ui: $(VENV)/installed instance  ## the Dagster UI on http://127.0.0.1:3000
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

lint: $(VENV)/installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

benchmarks: $(VENV)/installed  ## needs ../shared/data
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(BIN)/python benchmarks/ingest.py
	taskset -c 0 env POLARS_MAX_THREADS=1 $(BIN)/python benchmarks/minhash.py
	$(BIN)/python benchmarks/incremental_dedup.py
	$(BIN)/python benchmarks/embed.py
	$(BIN)/python benchmarks/kmeans.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/mixture.py
	$(BIN)/python benchmarks/recurate.py

clean:
	rm -rf .curation
