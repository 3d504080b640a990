.PHONY: style quality test test-slow fix-copies

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

# Rewrites GPT-1's copies of GPT-2's code (shared files, `# Copied from` blocks) from GPT-2's.
fix-copies:
	python3 tests/check_copies.py --fix
