"""utils/check_layout.py: the repository keeps its layers and limits, and the check finds each kind of breach."""

import subprocess
import sys
from pathlib import Path

import pytest

from utils import check_layout

REPO = Path(__file__).resolve().parents[2]


def test_the_repository_keeps_its_layout():
    assert check_layout.check(REPO) == []


def test_the_command_line_exits_1_on_a_problem(tmp_path):
    write_tree(tmp_path, {"recipes/core/errors.py": "from ..training import x\n"})
    done = subprocess.run(
        [sys.executable, str(REPO / "utils" / "check_layout.py"), "--repo", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "the core layer imports from the training layer above it" in done.stdout
    assert subprocess.run([sys.executable, str(REPO / "utils" / "check_layout.py")]).returncode == 0


def write_tree(root: Path, files: dict[str, str]):
    for folder in ("recipes/core", "recipes/data", "recipes/training", "modeling_gpt1", "modeling_gpt2"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)


def long_function(lines: int) -> str:
    return "def f():\n" + "    x = 1\n" * (lines - 1)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"recipes/core/engine.py": "from ..data.corpus import x\n"}, "the core layer imports from the data layer"),
        ({"recipes/data/corpus.py": "from .. import models\n"}, "the data layer imports from the models layer"),
        ({"recipes/data/corpus.py": "from .. import core\nfrom . import tokenizer\n"}, None),
        ({"recipes/data/corpus.py": "from ..training.loop import x\n"}, "the data layer imports from the training"),
        ({"recipes/training/loop.py": "from ..data.corpus import x\nfrom ..core import errors\n"}, None),
        ({"recipes/ablation.py": "from .finetune import main\n", "recipes/finetune.py": ""}, "the entry point"),
        ({"recipes/training/x.py": "from ..finetune import main\n", "recipes/finetune.py": ""}, "the entry point"),
        ({"recipes/ablation.py": "from .training.x import y\n"}, None),
        ({"recipes/core/x.py": "import recipes.core.errors\n"}, "imports `recipes` by name"),
        ({"recipes/core/x.py": "from recipes.core import errors\n"}, "imports `recipes` by name"),
        ({"recipes/core/x.py": "x = 1\n" * 501}, "501 lines (at most 500)"),
        ({"recipes/core/x.py": "x = 1\n" * 500}, None),
        ({"modeling_gpt2/x.py": long_function(81)}, "f is 81 lines (at most 80)"),
        ({"modeling_gpt1/x.py": long_function(80)}, None),
        ({"recipes/core/x.py": "# see issue 17 for why\n"}, "cites the tracker"),
        ({"recipes/core/x.py": "# the tissue 17 cells\n"}, None),
    ],
)
def test_each_breach_is_reported(tmp_path, files, expected):
    write_tree(tmp_path, files)
    problems = check_layout.check(tmp_path)
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and expected in problems[0], problems


def test_the_layers_are_the_folders_and_the_docs_show_them():
    """The layers the check knows are recipes/' packages, and the trees of CONTRIBUTING.md and recipes/README.md show
    each one in its place and (recipes/README.md) every module of it."""
    recipes = REPO / "recipes"
    packages = {init.parent.name for init in recipes.glob("*/__init__.py")}
    assert packages == set(check_layout.LAYERS)
    for document in (REPO / "CONTRIBUTING.md", recipes / "README.md"):
        tree = document.read_text()
        tree = tree[tree.index("```\nrecipes/") if "```\nrecipes/" in tree else tree.index("recipes/\n") :]
        tree = tree[: tree.index("```", 4)]
        positions = [tree.index(f"  {layer}/") for layer in check_layout.LAYERS]
        assert positions == sorted(positions), document  # in the order of the layers
    tree = (recipes / "README.md").read_text()
    for layer in check_layout.LAYERS:
        for module in (recipes / layer).rglob("*.py"):
            if module.name != "__init__.py" and module.parent.parent.name != "metrics":
                assert module.name in tree or f"{module.parent.name}/" in tree, module
