"""Checks the shape of the code: the recipes' layers, thin entry points, and the size limits.

- `recipes/` is a library in layers, each a sub-package that imports only from itself and the layers below it:

      core < data < models < evaluation < training < benchmarks

  The entry points (`recipes/<command>.py`) import from the library and never from one another; no library module
  imports an entry point. Imports inside `recipes/` are relative (the folder installs as `gpt_origins_recipes`).
- No Python module under `recipes/` is over `MAX_MODULE_LINES` lines, and no function or method in `recipes/`,
  `modeling_gpt1/` or `modeling_gpt2/` is over `MAX_FUNCTION_LINES` lines (from `def` to its last line).
- Product code does not cite the tracker ("issue 17", "point 4 of ..."): it states the fact instead.

    python utils/check_layout.py          # every problem on its own line; exit status 1 if there is any

Standard library only, so `make repo-consistency` runs it before anything is installed.
"""

import argparse
import ast
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("core", "data", "models", "evaluation", "training", "benchmarks")
# Modules of recipes/ that are neither layers nor commands: the console scripts and the script-path shim.
ENTRY_POINT_HELPERS = ("cli", "script_path", "__init__")
MODEL_PACKAGES = ("modeling_gpt1", "modeling_gpt2")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
TRACKER = re.compile(r"\b(issue|task) #?\d+|\bpoint \d+ of\b|\(point \d+\)", re.IGNORECASE)


def python_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts)


def layer_of(path: Path, recipes: Path) -> str | None:
    """The layer a module of recipes/ belongs to, or None for a top-level module (an entry point)."""
    parts = path.relative_to(recipes).parts
    return parts[0] if len(parts) > 1 else None


def imported_modules(tree: ast.Module, path: Path, recipes: Path) -> list[tuple[int, tuple[str, ...]]]:
    """(line, module path relative to recipes/) of every relative import of a module of recipes/; `from . import x`
    counts as importing `x`."""
    package = path.relative_to(recipes).parts[:-1]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
        if node.module:
            found.append((node.lineno, (*base, *node.module.split("."))))
        else:
            found += [(node.lineno, (*base, alias.name)) for alias in node.names]
    return found


def check_imports(recipes: Path) -> list[str]:
    problems = []
    entry_points = {path.stem for path in recipes.glob("*.py")} - set(ENTRY_POINT_HELPERS)
    for path in python_files(recipes):
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(recipes.parent)
        layer = layer_of(path, recipes)
        for node in ast.walk(tree):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            if any(name == "recipes" or name.startswith("recipes.") for name in names):
                problems.append(f"{where}:{node.lineno}: imports `recipes` by name; use a relative import")
        for line, target in imported_modules(tree, path, recipes):
            head = target[0] if target else ""
            if head in entry_points and len(target) == 1:
                problems.append(f"{where}:{line}: imports the entry point recipes/{head}.py")
            elif layer is not None and head in LAYERS and LAYERS.index(head) > LAYERS.index(layer):
                problems.append(f"{where}:{line}: the {layer} layer imports from the {head} layer above it")
    return problems


def check_sizes(repo: Path) -> list[str]:
    problems = []
    for path in python_files(repo / "recipes"):
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            problems.append(f"{path.relative_to(repo)}: {lines} lines (at most {MAX_MODULE_LINES})")
    for folder in ("recipes", *MODEL_PACKAGES):
        for path in python_files(repo / folder):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        problems.append(
                            f"{path.relative_to(repo)}:{node.lineno}: {node.name} is {length} lines "
                            f"(at most {MAX_FUNCTION_LINES})"
                        )
    return problems


def check_tracker_references(repo: Path) -> list[str]:
    problems = []
    for folder in ("recipes", *MODEL_PACKAGES):
        for path in sorted((repo / folder).rglob("*")):
            if path.suffix not in (".py", ".yaml", ".sh") or "__pycache__" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if TRACKER.search(line):
                    problems.append(f"{path.relative_to(repo)}:{number}: cites the tracker: {line.strip()[:80]}")
    return problems


def check(repo: Path = REPO) -> list[str]:
    return [*check_imports(repo / "recipes"), *check_sizes(repo), *check_tracker_references(repo)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=REPO, help="the repository's root (default: this one)")
    problems = check(parser.parse_args(argv).repo)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) with the layout (utils/check_layout.py)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
