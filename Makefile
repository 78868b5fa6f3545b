# The two commands the README starts with: `make demo` and `make test`. Each installs what it needs.
.PHONY: setup demo test lint

setup:
	@bash scripts/setup.sh

demo: setup
	python3 -m agent rehearse --config examples/ko/config.json --answers examples/ko/answers.txt --out out/ko

test: setup
	python3 -m pytest -q

lint: setup
	python3 -m ruff check . && python3 -m ruff format --check .
