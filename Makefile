# Everything the project needs, from a machine with only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser ffmpeg demo test bench lint typecheck check schema examples clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The quickstart storyboard, rendered on the embedded emulator; then plan shows that
# nothing is left to do.
demo: $(STAMP)
	$(VENV)/bin/tchavi-render apply examples/quickstart/tchavi.yaml --backend local --yes
	$(VENV)/bin/tchavi-render plan examples/quickstart/tchavi.yaml

# Headless Chromium renders the review page in the report tests (Debian's package; CI
# runs as root). Installed only when missing.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

test: $(STAMP) browser
	$(PY) -m pytest -q

# ffmpeg (`-f concat -c copy`) is what export's benchmark compares with (Debian's package;
# CI runs as root). Installed only when missing.
ffmpeg:
	@if ! command -v ffmpeg >/dev/null; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ffmpeg; \
	fi

# The figures of docs/benchmarks.md (about 35 minutes; not part of test or check). DVC is
# installed into its own virtualenv under ~/.cache/tchavi-render-bench on first use.
bench: $(STAMP) ffmpeg
	$(PY) -m benchmarks.run_all

lint: $(STAMP)
	$(VENV)/bin/ruff check tchavi_render tests benchmarks
	$(VENV)/bin/ruff format --check tchavi_render tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# What CI runs: lint, types, then the whole test suite.
check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
