# The README's two commands: `make demo` and `make test`. Both create/refresh .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo demo-lidar test bench clean

$(STAMP): pyproject.toml Makefile
	# Icarus Verilog (RTL simulation) from Debian when it is missing and we may install system packages.
	command -v iverilog >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog); } || \
		echo "warning: iverilog not found; install it (Debian: apt-get install iverilog) for Icarus simulation"
	$(PYTHON) -m venv $(VENV)
	# torch first: the local CPU wheel; anything later that depends on torch accepts it as is.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/insitu run cells

demo-lidar: setup
	$(VENV)/bin/insitu run lidar

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/accuracy.py
	$(PY) bench/cpu_latency.py

clean:
	rm -rf $(VENV) build src/*.egg-info
