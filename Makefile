# Two commands for a fresh machine with Python 3.11:
#   make run   serve the sample site in content/ on http://127.0.0.1:5000
#              (make run PORT=8080: another port; FEEDSVC_SITE_URL follows it unless set)
#   make test  lint and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000

.PHONY: run test lint clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

run: $(BIN)/.installed
	FEEDSVC_SITE_URL="$${FEEDSVC_SITE_URL:-http://127.0.0.1:$(PORT)}" \
		$(BIN)/flask --app wsgi run --host 127.0.0.1 --port $(PORT)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
