# The README's two commands.
#   make run   - create .venv, install everything, run the main job (optlab bench: quick suite)
#   make test  - create .venv if missing, run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch and torchvision are pinned by range in pyproject.toml; pip's local cap (if any) applies.
INSTALL_SPEC := -e ".[lab,keras,rl,ray,dev]"

.PHONY: run test lint venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(INSTALL_SPEC)
	touch $@

venv: $(VENV)/.installed

run: venv
	$(VENV)/bin/optlab bench --suite quick --out results

test: venv
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
