# The two commands of the quick start: `make run` and `make test`.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS ?= never

.PHONY: run test bench install lint browser-deps

install:
	@uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@uv sync --quiet

run: install
	uv run python manage.py up

# A queue and cache prefix of its own, so a running `make run` on the same Redis never takes
# the tests' work (or the other way round). Two test processes (pytest-xdist), each taking whole
# files, so a module's shared fixtures stay in one process; each adds its id to the queue, the
# cache prefix and the test database (hub/settings.py). TEST_PROCESSES=0 runs them in this one.
TEST_PROCESSES ?= 2
test: install browser-deps
	HUB_QUEUE_NAME=test-$$$$ HUB_CACHE_PREFIX=test-$$$$ uv run pytest -n $(TEST_PROCESSES) --dist loadfile

bench: install
	uv run python manage.py bench

lint: install
	uv run ruff check . && uv run ruff format --check .

# Browser tests drive Debian's Chromium; install it when we can (root with apt-get).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "note: install chromium for the browser tests"; }
