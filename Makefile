# The two commands of the README: `make run` (set up + the whole asset graph on the tiny profile) and
# `make test` (set up + every test). Everything else here is a convenience.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= 1

.PHONY: setup run table2 pretrain test test-fast lint ui mlflow-ui bench clean

setup:
	@bash scripts/setup.sh

run: setup
	$(PY) -m dagster_project materialize $(if $(SELECT),--select '$(SELECT)',) $(if $(VARIANTS),--variants $(VARIANTS),) $(if $(LOG_LEVEL),--log-level $(LOG_LEVEL),) $(if $(PARALLEL),--parallel $(PARALLEL),)

# every Table 2 variant (base, sft_only, rl_only, full, no_refinement, format_accuracy, ungated, t_grpo)
table2: setup
	$(PY) -m dagster_project materialize --variants all

# rebuild the shipped tiny models (videorft/models/tiny-siglip, tiny-pretrained) from their recipe
# (configs/tiny/pretrain.yaml): about 25 minutes on 2 cores, resumable; commit videorft/models/ afterwards
pretrain: setup
	$(PY) -m pretraining $(PRETRAIN_ARGS)

test: setup
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

# Two start-up warnings that are not ours to fix, silenced by their exact text (no other warning is hidden):
# `dagster dev` is superseded by `dg dev` (dagster-dg-cli, not a dependency here), and MLflow's server imports
# starlette's deprecated WSGI middleware (mlflow/server/fastapi_app.py).
UI_WARNINGS = 'ignore:Function `dev_command` is superseded,ignore:starlette.middleware.wsgi is deprecated'

ui: setup
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.videorft/dagster_home} $(PY) -c "from dagster_project.instance import ensure_dagster_home; from pathlib import Path; import os; ensure_dagster_home(Path(os.environ['DAGSTER_HOME']))"
	PYTHONWARNINGS=$(UI_WARNINGS) DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.videorft/dagster_home} $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p $${PORT:-3000}

# the profile's local MLflow store on $MLFLOW_PORT (default 5000); links recorded in Dagster for another local port
# redirect to it (dagster_project/mlflow_ui.py)
mlflow-ui: setup
	PYTHONWARNINGS=$(UI_WARNINGS) $(PY) -m dagster_project mlflow-ui

bench: setup
	$(PY) bench/ingest_scale.py
	$(PY) bench/frame_sampling.py
	$(PY) bench/expert_client.py
	$(PY) bench/curation_chain.py
	$(PY) bench/semantic_reward.py
	$(PY) bench/evaluation_throughput.py
	$(PY) bench/reference_agreement.py
	$(PY) bench/tiny_learning_probe.py
	$(PY) bench/pretrained_models.py

clean:
	rm -rf .videorft
