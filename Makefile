# `make demo` and `make test` each do all set-up on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# torch and torchvision as the suite is tested with them (a CUDA build, which runs on a CPU too);
# newer releases are not required.
TORCH  := torch==2.14.1 torchvision==0.29.1

PROFILE ?= demo

.PHONY: venv demo rehearse test test-fast bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

demo: venv
	$(PY) -m pe_utils batch --profile $(PROFILE) --runs-per-device 2 --out reports/$(PROFILE)

# the whole thesis plan through the real-data path, capped: the check before the long GPU batch
rehearse: venv
	$(PY) -m pe_utils batch --rehearse --runs-per-device 2 --out reports/rehearse

# tests/test_browser.py drives Debian's chromium (Playwright cannot download browsers here);
# without it the browser tests are left out, and the line below says how to run them
CHROMIUM := $(shell command -v chromium 2>/dev/null)

test: venv
ifeq ($(CHROMIUM),)
	@echo "browser tests: install Debian's chromium (apt-get install chromium) to run them"
	$(PY) -m pytest -q --deselect tests/test_browser.py
else
	$(PY) -m pytest -q
endif

# everything but the end-to-end runs marked slow (notebooks, training): minutes, not an hour
test-fast: venv
	$(PY) -m pytest -q -m "not slow"

# every benchmark under bench/ at its defaults (CONTRIBUTING.md); the last two read what
# `make demo` leaves (data/cache-demo, reports/demo) and say so when it is not there
bench: venv
	$(PY) bench/preprocess.py
	$(PY) bench/train.py
	$(PY) bench/pretrain.py
	$(PY) bench/loader.py
	$(PY) bench/masks.py
	$(PY) bench/batch_overhead.py --startup
	@if [ -f data/cache-demo/masks.npy ]; then $(PY) bench/localisation.py --cache data/cache-demo; \
	 else echo "bench/localisation.py: no data/cache-demo/masks.npy; run make demo first"; fi
	@if [ -d reports/demo ]; then $(PY) bench/batch_overhead.py reports/demo; \
	 else echo "bench/batch_overhead.py: no reports/demo; run make demo first"; fi

clean:
	rm -rf reports/demo reports/smoke reports/rehearse runs data/synthetic-* data/cache-* data/dataset2-* data/rehearse
