# Every target sets up .venv first (idempotent), so on a fresh clone `make run` and
# `make test` are the only commands a user needs.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch goes in first: a CPU build where one is available, so that no CUDA wheel is pulled in.
TORCH_SPEC ?= torch==2.13.0
export OMP_NUM_THREADS ?= 1
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true

.PHONY: install run test test-slow test-clients bench lint typecheck format docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/python -m experiments.quickstart

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --timeout=900

# The slow tests include the Ray and SLURM (submitit) launchers: install those extras first.
# The RL clients' tests (TorchRL, RLlib: tests/clients) run in a venv of their own, $(CLIENTS_VENV)
# with the `clients` extra: ray[rllib] pins gymnasium 1.2.2, which would downgrade .venv's.
# (hydra-ray-launcher needs cloudpickle<3, so pip picks joblib<1.6 in this environment.)
# Ray is tested at 2.60.0 (token authentication): each Ray test runs with and without an auth
# token in a temporary HOME, so a token in your own ~/.ray does not change the result.
test-slow: $(STAMP)
	$(PY) -m pip install --quiet -e ".[all,dev,ray,slurm]"
	$(PY) -m pytest -q -m slow --timeout=1800 --ignore=tests/clients
	$(MAKE) test-clients

CLIENTS_VENV ?= .venv-clients
CLIENTS_PY := $(CLIENTS_VENV)/bin/python

test-clients:
	test -x $(CLIENTS_PY) || python3 -m venv $(CLIENTS_VENV)
	$(CLIENTS_PY) -c "import torch" 2>/dev/null || $(CLIENTS_PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(CLIENTS_PY) -m pip install --quiet -e ".[all,dev,clients]"
	$(CLIENTS_PY) -m pytest -q -m slow --timeout=1800 tests/clients

bench: $(STAMP)
	$(VENV)/bin/recsim-bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy over recsim_env, agents and experiments (settings and the per-module baseline of older
# errors: [tool.mypy] in pyproject.toml)
typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The documentation site (mkdocs.yml, pages in docs/) into site/. --strict: a warning — a broken
# link, an API reference that does not resolve, a missing snippet — fails the build.
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) $(CLIENTS_VENV) outputs multirun wandb tune bench_results site .pytest_cache .mypy_cache
