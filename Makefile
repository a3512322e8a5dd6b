# HomePilot: `make quickstart` and `make test` set up .venv themselves on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
OUT    ?= quickstart_out
# Local CPU build of torch: where a wheel of this version lies on disk (find-links), take it
# instead of letting pip pick a multi-GB CUDA build. Elsewhere pip resolves torch as usual.
LOCAL_TORCH ?= torch==2.13.0

.PHONY: venv test quickstart demo screenshots lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Two stamps: quickstart and demo need only the run time (train + app extras); the test suite also
# needs the dev tools, Playwright and Ray. A fresh `make quickstart` thus skips ~400 MB it never uses.
$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --no-deps --no-index "$(LOCAL_TORCH)" 2>/dev/null \
		&& $(PY) -m pip install -q "$(LOCAL_TORCH)" \
		&& echo "using the local CPU build $(LOCAL_TORCH)" \
		|| echo "no local $(LOCAL_TORCH) wheel; pip will choose torch"
	$(PY) -m pip install -q -e '.[train,app]'
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

quickstart: $(RUN_STAMP)
	$(VENV)/bin/homepilot quickstart --out $(OUT)

# after `make quickstart`, the demo opens on its trained model, dataset and report
QS_ARGS = $(if $(wildcard $(OUT)/runs/main/model/config.json),--model $(OUT)/runs/main --data $(OUT)/data --report $(OUT)/report)
demo: $(RUN_STAMP)
	$(VENV)/bin/homepilot demo $(QS_ARGS)

# the README's pictures (docs/screenshot_*.png) from the quickstart's model, dataset and report and the
# reproduction report, in headless Chromium (Playwright: the dev extra; apt-get install chromium)
screenshots: $(STAMP)
	$(PY) -m app.browser --model $(OUT)/runs/main --data $(OUT)/data --report $(OUT)/report \
		--reproduce docs/reproduce --out docs

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# lm_scaling.py trains 30M-parameter models (a GPU) on a dataset you name, lm_vs_prior.py studies
# finished quickstart outputs you name: run them by hand
bench: $(STAMP)
	for b in $(filter-out benchmarks/lm_scaling.py benchmarks/lm_vs_prior.py benchmarks/gbdt_features.py,$(wildcard benchmarks/*.py)); do $(PY) $$b --out benchmarks/results || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
