# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: run test lint check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(TSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP) $@

var/mail:
	mkdir -p var
	for f in VLeads VContacts VAccounts "CRM sync"; do mkdir -p "var/mail/$$f/new" "var/mail/$$f/cur" "var/mail/$$f/tmp"; done

run: $(STAMP) var/mail
	$(BIN)/crm-gateway run

check: $(STAMP)
	$(BIN)/crm-gateway check

# Debian packages the tests run against: Dovecot (IMAP), swaks (a second SMTP client),
# util-linux's `script` (a terminal for the progress bar test) and chromium (the console's
# browser tests, driven by Playwright without a browser of its own). Installed when missing.
test-deps:
	@missing=""; \
	command -v dovecot >/dev/null 2>&1 || missing="$$missing dovecot-imapd"; \
	command -v swaks >/dev/null 2>&1 || missing="$$missing swaks"; \
	command -v script >/dev/null 2>&1 || missing="$$missing bsdutils"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "could not install$$missing: the tests that need them will be skipped"; \
	  else echo "missing$$missing and not root: the tests that need them will be skipped"; fi; \
	fi

# Style (ruff check), types (mypy) and the house's layering (import-linter, pyproject.toml's
# [tool.importlinter]); `make test` runs it first, so a broken rule stops the suite early.
lint: $(TSTAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/mypy gateway
	$(BIN)/lint-imports

test: $(TSTAMP) test-deps lint
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) var build *.egg-info
