# Two entry points that work on a fresh machine:
#   make demo   set up, train ReActNet-18 on Fashion-MNIST for one epoch, convert, verify
#   make test   set up, run the test suite (about 17 min on 2 CPU cores; make test-fast: about 8 min)
#   make docs   build the documentation site strictly into site/ (make docs-serve: serve it)
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
FASHION_MNIST := $(or $(LQM_FASHION_MNIST_DIR),/usr/share/datasets/fashion-mnist)
RUN ?= runs/demo-$(shell date +%Y%m%d-%H%M%S)
PYTEST_ARGS ?=
# pytest-xdist workers; tests of one module share a worker (and its module fixtures).
# A worker that crashes ends the run at once with the test it died in: xdist 3.8's loadscope
# scheduler can deadlock after replacing one (pytest-dev/pytest-xdist#1378).
PYTEST_WORKERS ?= auto
SITE ?= site
# mkdocs 1.6's plugins print a notice about mkdocs 2 on every build
MKDOCS := NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs

.PHONY: demo test test-fast install dataset docs docs-serve

$(BIN)/lqm: setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@

install: $(BIN)/lqm

dataset:
	@if [ -e "$(FASHION_MNIST)/train-images-idx3-ubyte.gz" ] || [ -e "$(FASHION_MNIST)/train-images-idx3-ubyte" ]; then \
		echo "Fashion-MNIST: $(FASHION_MNIST)"; \
	elif [ -n "$(LQM_FASHION_MNIST_DIR)" ]; then \
		if [ -d "$(LQM_FASHION_MNIST_DIR)" ]; then what="holds no Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz] and the others)"; else what="is not a folder"; fi; \
		echo "LQM_FASHION_MNIST_DIR=$(LQM_FASHION_MNIST_DIR) $$what; point it at a folder of the IDX files, or unset it to use Debian's dataset-fashion-mnist" >&2; \
		exit 1; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; } ; \
		test -e "$(FASHION_MNIST)/train-images-idx3-ubyte.gz" || { echo "could not install dataset-fashion-mnist" >&2; exit 1; }; \
	else \
		echo "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist', or set LQM_FASHION_MNIST_DIR to a folder of its IDX files" >&2; \
		exit 1; \
	fi

demo: install dataset
	$(BIN)/lqm train reactnet-18 --recipe one-step --alpha 0.25 --epochs 1 --output $(RUN)
	$(BIN)/lqm convert $(RUN)/model.h5 --output $(RUN)/model.tflite --dataset fashion_mnist
	$(BIN)/lqm evaluate $(RUN)/model.tflite --dataset fashion_mnist
	@echo "Demo run folder: $(RUN)"

test: install $(BIN)/mkdocs dataset
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope --max-worker-restart 0 $(PYTEST_ARGS)

test-fast: PYTEST_ARGS += -m "not slow"
test-fast: test

$(BIN)/mkdocs: setup.cfg pyproject.toml $(BIN)/lqm
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	@touch $@

# --strict: a broken link, a missing page or a bad docstring reference fails the build
docs: $(BIN)/mkdocs
	$(MKDOCS) build --strict --site-dir $(SITE)
	@echo "Site built: $(abspath $(SITE))/index.html (open it in a browser, or: make docs-serve)"

docs-serve: $(BIN)/mkdocs
	$(MKDOCS) serve
