# SiamPolar course: `make demo` and `make test` set everything up on a fresh machine (plain pip + venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Real DAVIS sample beside the checkout (the course's CI and developer machines have it).
ifneq ($(wildcard ../shared/data/DAVIS/JPEGImages),)
export SIAMPOLAR_DAVIS_ROOT ?= $(abspath ../shared/data/DAVIS)
endif
export MPLBACKEND ?= Agg
export PYTHONHASHSEED ?= 0

.PHONY: install demo data test test-fast test-other-kernels lab bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# torch first, pinned: these versions install from a local mirror on the course machines.
	$(PY) -m pip install "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install -e ".[dev]"
	# DAVIS peer evaluator for the metric cross-check; --no-deps so it cannot pull a second OpenCV.
	$(PY) -m pip install --no-deps "vos-benchmark==0.1.0"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m siampolar_lib.commands.demo --out runs/demo --overwrite

# The full DAVIS-2016 (480p, the official DAVIS-data.zip) into data/DAVIS, unless a DAVIS folder is already found;
# run it again to resume a broken download.
data: $(STAMP)
	$(PY) -m siampolar_lib.commands.download --if-missing

# Tests never download: SIAMPOLAR_OFFLINE=1 keeps torchvision weights to the local cache.
# pytest runs on both cores (pytest-xdist, one test module per worker so module fixtures are built once), the browser
# test alone after it (it waits on a kernel round trip); then every notebook under nbval, on both cores.
# `make test-other-kernels` runs the notebooks that print the shipped network's results once more on the other PyTorch
# kernels this CPU has (AVX2 kernels on an AVX-512 machine, the scalar ones elsewhere): an output that depends on the
# CPU's vector instructions fails there.
NBVAL = $(PY) -m pytest --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=900 -q
OTHER_KERNELS := $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null \
	&& echo ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 || echo ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41)
MODEL_NOTEBOOKS = notebooks/04_siamese_correlation.ipynb notebooks/solutions/04_siamese_correlation_solutions.ipynb \
	notebooks/06c_refinement_stage.ipynb notebooks/07_tracking_and_evaluation.ipynb \
	notebooks/07b_error_analysis.ipynb notebooks/08_interactive_demo.ipynb \
	notebooks/solutions/06c_refinement_stage_solutions.ipynb notebooks/solutions/07_tracking_and_evaluation_solutions.ipynb \
	notebooks/solutions/07b_error_analysis_solutions.ipynb notebooks/solutions/08_interactive_demo_solutions.ipynb

test: export SIAMPOLAR_OFFLINE = 1
test: $(STAMP)
	$(PY) -m pytest tests -q -n 2 --dist loadfile -m "not browser"
	$(PY) -m pytest tests -q -m browser
	$(NBVAL) -n 2 --dist loadfile notebooks
	$(MAKE) --no-print-directory test-other-kernels

# The notebooks that print the shipped network's results, on the other PyTorch kernels of this CPU (on a 2-core AVX2
# machine, scalar kernels: 9 min 56 s for eight of them at load 1-4, and 7 min 7 s for 04 and its solutions at load
# 3.6, README).
test-other-kernels: export SIAMPOLAR_OFFLINE = 1
test-other-kernels: $(STAMP)
	env $(OTHER_KERNELS) $(NBVAL) -n 2 --dist loadfile $(MODEL_NOTEBOOKS)

test-fast: export SIAMPOLAR_OFFLINE = 1
test-fast: $(STAMP)
	$(PY) -m pytest tests -q -n 2 --dist loadfile -m "not slow and not browser"

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

bench: $(STAMP)
	$(PY) -m benchmarks.bench_all

clean:
	rm -rf runs .pytest_cache
