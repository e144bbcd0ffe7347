# vesper-fairseq: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV ?= .venv
EXTRAS ?= test,dev
export PYTHON TORCH VENV EXTRAS

BIN := $(VENV)/bin
SOURCES := vesper_fairseq manifests scripts tests benchmarks examples setup.py

.PHONY: install test lint format demo bench clean

install:
	@bash scripts/install.sh

lint: install
	$(BIN)/black --check $(SOURCES)
	$(BIN)/ruff check $(SOURCES)

format: install
	$(BIN)/black $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

test: lint
	$(BIN)/pytest tests $(PYTEST_ARGS)

demo: install
	$(BIN)/python examples/quickstart.py $(if $(DATA),--data $(DATA)) $(if $(TEACHER),--teacher $(TEACHER)) $(if $(OUT),--out $(OUT)) $(DEMO_ARGS)

bench: install
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
