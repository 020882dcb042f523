# Each target builds the local virtualenv on first use, so a fresh clone needs only `make train` / `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is installed first and on its own: 2.13.0 takes the wheel found on this machine when there is one
# (CPU here, the CUDA build elsewhere). Override with e.g. `make TORCH=torch test`.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
ARGS ?=
# pytest-xdist workers: one per core. Tests that must not overlap share an `xdist_group` (`--dist loadgroup`).
WORKERS ?= auto

.PHONY: train test test-fast lint install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

train: $(STAMP)
	$(PY) train.py $(ARGS)

# Everything, the tests marked slow included.
test: $(STAMP)
	$(PY) -m pytest -q -n $(WORKERS) --dist loadgroup $(ARGS)

# The quick loop while editing: all but the tests marked slow (real subprocesses, several trainings).
test-fast: $(STAMP)
	$(PY) -m pytest -q -n $(WORKERS) --dist loadgroup -m "not slow" $(ARGS)

# Rules and their reasons: [tool.ruff] in pyproject.toml. Checks only; nothing is rewritten.
lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) outputs/*/ multirun wandb .pytest_cache
