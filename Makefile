# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: run test check bench clean

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

# Debian's dovecot-imapd is what the IMAP tests run against; install it when missing.
test-deps:
	@command -v dovecot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null) \
	      || echo "dovecot-imapd could not be installed: the IMAP tests will be skipped"; \
	  else echo "dovecot not found and not root: the IMAP tests will be skipped"; fi; }

test: $(TSTAMP) test-deps
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) var build *.egg-info
