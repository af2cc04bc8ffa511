# The README's two commands: `make demo` and `make test`. Both create/refresh .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup qkeras demo demo-lidar test bench clean

$(STAMP): pyproject.toml Makefile
	# Icarus Verilog (RTL simulation) from Debian when it is missing and we may install system packages.
	command -v iverilog >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog); } || \
		echo "warning: iverilog not found; install it (Debian: apt-get install iverilog) for Icarus simulation"
	$(PYTHON) -m venv $(VENV)
	# torch first: the local CPU wheel; anything later that depends on torch accepts it as is.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,sweep]'
	touch $(STAMP)

setup: $(STAMP)

# QKeras models (insitu compile model.h5) are read in an environment of their own: TensorFlow never enters .venv.
QKERAS_VENV  := .venv-qkeras
QKERAS_STAMP := $(QKERAS_VENV)/.installed
$(QKERAS_STAMP): Makefile
	$(PYTHON) -m venv $(QKERAS_VENV)
	$(QKERAS_VENV)/bin/python -m pip install -q tensorflow==2.21.0 tf-keras==2.21.0 qkeras==0.9.0 \
		tensorflow-model-optimization==0.8.1 pyparsing==3.3.3 numpy==2.4.6
	touch $(QKERAS_STAMP)

qkeras: $(QKERAS_STAMP)

demo: setup
	$(VENV)/bin/insitu run cells

demo-lidar: setup
	$(VENV)/bin/insitu run lidar

test: setup qkeras
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/accuracy.py
	$(PY) bench/cpu_latency.py

clean:
	rm -rf $(VENV) $(QKERAS_VENV) build src/*.egg-info
