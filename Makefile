# genrelib — every entry point a person or CI needs. `make demo` and `make test` do everything.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.genrelib-installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.py))
# Data: an explicit GENRELIB_DATA wins; otherwise the shared mini set beside the checkout, if present.
# (genrelib itself then tries ./data/gtzan, a download of the mini set, and finally a synthetic set.)
GENRELIB_DATA ?= $(if $(wildcard ../shared/data/gtzan_mini/genres),$(abspath ../shared/data/gtzan_mini),)
export GENRELIB_DATA
export GENRELIB_CACHE ?= $(abspath .cache/genrelib)
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONPATH := $(abspath .):$(PYTHONPATH)

.PHONY: help venv demo yamnet-results test unit notebooks-test figures bench clean lock check-results findings book book-test lab lab-test nbfilter

help:
	@echo "make demo   - create the venv, run the notebook series on the default data, write figures/ and results/"
	@echo "make yamnet-results - the YAMNet rows of results/ (part of make demo when its TF-Lite file is found; DEMO_YAMNET=0 skips)"
	@echo "make check-results - regenerate the committed result rows from an empty cache and compare"
	@echo "make test   - unit tests + every notebook under nbval (quick mode)"
	@echo "make book   - the executed notebooks as a static site in build/book/html (nothing re-executed)"
	@echo "make lab    - open the notebook series in JupyterLab"
	@echo "make venv | figures | bench | clean | lock"

venv: $(STAMP)

# Some package mirrors print one warning per package; PIP_QUIET_FILTER hides only those lines.
PIP_QUIET_FILTER := { grep -v "is ignored: it is neither a file nor a directory" || true; }

$(STAMP): pyproject.toml requirements/lock.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements/lock.txt -e '.[dev]' 2>&1 | $(PIP_QUIET_FILTER)
	# musicnn ships the only pretrained music checkpoints installable offline; its declared
	# requirements (numpy<1.17, TF1) are obsolete, so only its files are installed.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps musicnn==0.1.0 2>&1 | $(PIP_QUIET_FILTER)
	# rfc3987-syntax (from JupyterLab's jsonschema[format-nongpl]) builds 38 grammars whenever jsonschema is
	# imported: 1.8 s in every process that imports Ray (the driver, each worker and agent). Without it a cold
	# one-clip Ray job takes half the time (benchmarks/bench_engines.py); jsonschema leaves "iri" formats unchecked.
	$(BIN)/python -m pip uninstall --quiet --disable-pip-version-check -y rfc3987-syntax 2>&1 | { grep -v "as it is not installed" || true; }
	touch $(STAMP)

# Full run: executes every notebook in order (writing the executed .ipynb beside its .py source; the seconds of
# every cell go to build/demo_timings.json and the ten slowest are printed),
# regenerates figures/ and results/.
# YAMNet's rows (linear probe, paper CNN with and without augmentation, zero-shot) need its weights: the TF-Lite
# file beside the checkout (genrelib converts it on first use) or `genrelib weights yamnet ...`. DEMO_YAMNET=0 leaves
# them out (they add about 20 min of CPU on 2 cores, most of it embedding the augmented copies).
YAMNET_TFLITE := $(wildcard ../shared/models/yamnet/yamnet_classification.tflite)
DEMO_YAMNET ?= $(if $(YAMNET_TFLITE),1,0)

demo: venv
	GENRELIB_QUICK=0 GENRELIB_OUTPUT=$(abspath .) $(BIN)/python tools/run_notebooks.py --execute --timings build/demo_timings.json $(NOTEBOOKS)
	if [ "$(DEMO_YAMNET)" = 1 ]; then $(MAKE) --no-print-directory yamnet-results; fi
	$(BIN)/python tools/write_findings.py

# The committed YAMNet rows of results/ (see results/README.md, "YAMNet"); figures/ stays musicnn-msd's.
yamnet-results: venv
	$(BIN)/python tools/backend_cv.py --only yamnet
	GENRELIB_OUTPUT=$(abspath .) $(BIN)/python -m genrelib run --backend yamnet --protocols paper kfold --no-augment --seeds 3 --no-figures --quiet
	GENRELIB_OUTPUT=$(abspath .) $(BIN)/python -m genrelib run --backend yamnet --protocols paper kfold --seeds 3 --no-figures --quiet
	GENRELIB_OUTPUT=$(abspath .) $(BIN)/python -m genrelib evaluate --zero-shot

# The README's and results/README.md's generated blocks, from results/*.json.
findings: venv
	$(BIN)/python tools/write_findings.py

# Regenerates committed result rows from an empty cache and compares them with results/ (exit 1 on a difference).
CHECK_PROTOCOLS ?= paper kfold
CHECK_AUGMENTATION ?= both
CHECK_ARGS ?=
check-results: venv
	$(BIN)/python tools/check_results.py --protocols $(CHECK_PROTOCOLS) --augmentation $(CHECK_AUGMENTATION) $(CHECK_ARGS)

test: venv
	$(BIN)/python tools/run_tests.py

unit: venv
	$(BIN)/python -m pytest tests

notebooks-test: venv
	$(BIN)/python tools/run_tests.py --notebooks-only

# The committed, executed notebooks as a static HTML site in build/book/html (Sphinx + MyST-NB; nothing is
# executed). Installs the [book] extra's pins into the venv where missing; fails if a chapter is missing.
book: venv
	$(BIN)/python tools/build_book.py --install book

# The browser test of the book (tests/test_book.py): needs a system Chromium (apt-get install -y chromium).
book-test: venv
	$(BIN)/python tools/build_book.py --install book --install browser --no-build
	$(BIN)/python -m pytest -m browser tests/test_book.py

# The notebook series in JupyterLab (the dev extra pins it). Kernels start in notebooks/ and still write to the
# project's figures/, results/, runs/ (genrelib.storage.output_dir); saving changes nothing in a .py (jupytext.toml).
# tools/lab-settings/overrides.json turns on "Save Widget State Automatically": a notebook reopened after its kernel
# restarted shows its widgets (the listening panel, progress bars) as saved instead of "Error displaying widget:
# model not found". The state is dropped again on commit (tools/nbfilter.py).
LAB_SETTINGS = --LabApp.app_settings_dir=$(abspath tools/lab-settings)
lab: venv
	$(BIN)/jupyter lab $(LAB_SETTINGS) notebooks/

# Registers tools/nbfilter.py as the git clean filter that .gitattributes names for notebooks/*.ipynb: a notebook
# saved in JupyterLab is committed without audio players, TensorFlow log lines or this machine's paths.
nbfilter: venv
	git config filter.genrelib-notebook.clean '$(BIN)/python tools/nbfilter.py %f'

# The browser test of notebook 02 in JupyterLab (tests/test_lab.py): needs a system Chromium (apt-get install -y chromium).
lab-test: venv
	$(BIN)/python tools/build_book.py --install browser --no-build
	$(BIN)/python -m pytest -m browser tests/test_lab.py

figures: venv
	GENRELIB_OUTPUT=$(abspath .) $(BIN)/python -m genrelib run --figures-only

bench: venv
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lock: venv
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^musicnn==' > requirements/lock.txt

clean:
	rm -rf build .pytest_cache
