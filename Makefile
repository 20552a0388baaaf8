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

.PHONY: install demo data test test-fast test-model-notebooks test-notebooks-native lab bench clean

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
# The notebooks that print the shipped network's results (MODEL_NOTEBOOKS) run once, on PyTorch's scalar kernels
# (ATEN_CPU_CAPABILITY=default, oneDNN limited to SSE4.1): their committed outputs were written on a CPU's own vector
# kernels (AVX2, AVX-512 or NEON), so a pass here compares two different kernel sets, and an output that depends on the
# CPU's vector instructions fails where you can see it. Scalar, not "the other vector set", so that the comparison is
# never the writer's kernels against themselves. The other notebooks run on this CPU's own kernels.
# Two notebook kernels share the two cores (-n 2): one PyTorch thread each, since two threads each would put four
# spinning OpenMP threads on two cores (the notebooks take min(2, torch.get_num_threads()), which honours this).
NBVAL = OMP_NUM_THREADS=1 $(PY) -m pytest --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=900 -q
OTHER_KERNELS := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41
MODEL_NOTEBOOKS = notebooks/04_siamese_correlation.ipynb notebooks/solutions/04_siamese_correlation_solutions.ipynb \
	notebooks/06c_refinement_stage.ipynb notebooks/07_tracking_and_evaluation.ipynb \
	notebooks/07b_error_analysis.ipynb notebooks/08_interactive_demo.ipynb \
	notebooks/solutions/06c_refinement_stage_solutions.ipynb notebooks/solutions/07_tracking_and_evaluation_solutions.ipynb \
	notebooks/solutions/07b_error_analysis_solutions.ipynb notebooks/solutions/08_interactive_demo_solutions.ipynb
OTHER_NOTEBOOKS = $(filter-out $(MODEL_NOTEBOOKS),$(sort $(wildcard notebooks/*.ipynb notebooks/solutions/*.ipynb)))

test: export SIAMPOLAR_OFFLINE = 1
test: $(STAMP)
	$(PY) -m pytest tests -q -n 2 --dist loadfile -m "not browser"
	$(PY) -m pytest tests -q -m browser
	$(NBVAL) -n 2 --dist loadfile $(OTHER_NOTEBOOKS)
	$(MAKE) --no-print-directory test-model-notebooks

# The notebooks that print the shipped network's results, on the scalar kernels (see above).
test-model-notebooks: export SIAMPOLAR_OFFLINE = 1
test-model-notebooks: $(STAMP)
	env $(OTHER_KERNELS) $(NBVAL) -n 2 --dist loadfile $(MODEL_NOTEBOOKS)

# Every notebook on this CPU's own kernels (what a learner's run does): for re-checking outputs before committing them.
test-notebooks-native: export SIAMPOLAR_OFFLINE = 1
test-notebooks-native: $(STAMP)
	$(NBVAL) -n 2 --dist loadfile notebooks

test-fast: export SIAMPOLAR_OFFLINE = 1
test-fast: $(STAMP)
	$(PY) -m pytest tests -q -n 2 --dist loadfile -m "not slow and not browser"

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

bench: $(STAMP)
	$(PY) -m benchmarks.bench_all

clean:
	rm -rf runs .pytest_cache
