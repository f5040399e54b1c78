# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export FLASK_APP := wsgi.py

.PHONY: run test test-fast check lint format settings-table bench services chromium install clean \
	translations translations-extract translations-update translations-init

# The venv is rebuilt whenever a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# Ports and the instance folder can be changed, to run beside another copy:
#   make run WEB_PORT=5077 STRIPE_PORT=8477 INSTANCE_PATH=/tmp/demo
run: install translations
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/run-dev.sh

services:
	bash scripts/ensure-services.sh

chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# The static checks come first: a lint, format or type error fails in seconds, not after the suite.
test: install check services chromium translations
	$(PY) -m pytest

test-fast: install services translations
	$(PY) -m pytest -m "not browser and not slow"

lint: install
	$(VENV)/bin/ruff check events worker tests bench scripts
	$(VENV)/bin/ruff format --check events worker tests bench scripts

# lint, mypy over events/ and worker/ (settings in pyproject.toml), and no import cycles.
# .pre-commit-config.yaml runs the same.
check: lint
	$(VENV)/bin/mypy
	$(PY) scripts/import_graph.py

# Translations (README, "Translating"): the catalogues in translations/<code>/LC_MESSAGES/.
# messages.pot is every msgid in the code and the member-facing templates (babel.cfg says where);
# the .po files are what translators fill; the .mo files are compiled from them, never committed.
PYBABEL := $(VENV)/bin/pybabel
translations-extract: install
	$(PYBABEL) extract -F babel.cfg -k lazy_gettext -k _l -c "TRANSLATORS:" --sort-by-file -w 100 \
	  --project="Workshops & Classes" --msgid-bugs-address="" -o translations/messages.pot .

# New msgids into every language's .po (a changed msgid comes back marked fuzzy: check it).
translations-update: translations-extract
	$(PYBABEL) update -i translations/messages.pot -d translations -w 100

# A new language's catalogue: make translations-init LANG=hmn (then add it to LANGUAGES).
translations-init: translations-extract
	$(PY) scripts/translations.py init $(LANG)

# The .mo files the app reads, built from the .po files (run by `make run` and `make test`).
translations: install
	$(PY) scripts/translations.py compile

# The README's settings tables, rewritten from events/config.py (a unit test checks they match).
settings-table: install
	$(PY) scripts/settings_table.py --write

format: install
	$(VENV)/bin/ruff format events worker tests bench scripts
	$(VENV)/bin/ruff check --fix events worker tests bench scripts

bench: install services
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	@log=$$(mktemp); for script in bench/bench_*.py; do echo "== $$script"; \
		{ $(PY) $$script || echo "SUMMARY $$script CRASHED"; } | tee -a $$log; done; \
		echo "== every goal's verdict line"; grep '^SUMMARY' $$log; \
		! grep -q "^SUMMARY bench/.* CRASHED$$" $$log; status=$$?; rm -f $$log; exit $$status

clean:
	rm -rf instance .pytest_cache
