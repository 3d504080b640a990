.PHONY: style quality test test-slow

style:
	ruff check --fix .
	ruff format .

quality:
	ruff check .
	ruff format --check .

test:
	python3 -m pytest -q

test-slow:
	python3 -m pytest -q -m slow
