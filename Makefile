# dynamo-iac — one command to install and run the main job, one to install and pass the tests.
#   make plan     install everything, then `dynamo-iac plan -s aws-p5-disagg` (offline preview)
#   make test     install everything (Python venv, Dynamo runtime venvs, local Slurm), run the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STACK  ?= aws-p5-disagg
PYTEST_ARGS ?=

.PHONY: install plan test test-fast runtime slurm clean bench

$(BIN)/dynamo-iac: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,test]'
	@touch $@

install: $(BIN)/dynamo-iac

plan: install
	$(BIN)/dynamo-iac plan -s $(STACK) --out out/$(STACK)

runtime:
	bash scripts/dynamo-env.sh all

slurm:
	bash scripts/slurm.sh install
	bash scripts/slurm.sh up

test: install runtime slurm
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not local and not slurm" $(PYTEST_ARGS)

bench: install runtime slurm
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .venv-dynamo .venv-aiperf out .pytest_cache .hypothesis
