# The two commands the README starts with: `make demo` and `make test`. Each installs what it needs.
.PHONY: setup demo rehearse test lint

setup:
	@bash scripts/setup.sh

demo: setup
	python3 -m agent stack

rehearse: setup
	python3 -m agent rehearse --config examples/en/config.json --answers examples/en/answers.txt --out out/en

test: setup
	python3 -m pytest -q

lint: setup
	python3 -m ruff check . && python3 -m ruff format --check .
