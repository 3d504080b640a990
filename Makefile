.PHONY: style quality test test-slow repo-consistency fix-copies

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

# The repository's own rules, standard library only (seconds, nothing installed): GPT-1's copies of GPT-2's code
# equal it (utils/check_copies.py), and the layers and size limits hold (utils/check_layout.py).
repo-consistency:
	python3 utils/check_copies.py
	python3 utils/check_layout.py

# Rewrites GPT-1's copies of GPT-2's code (shared files, `# Copied from` blocks) from GPT-2's.
fix-copies:
	python3 utils/check_copies.py --fix
