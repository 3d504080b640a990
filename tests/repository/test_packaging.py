"""pyproject.toml installs every package of the repository: a sub-package missing from its list would be left out of
a wheel while every test in the clone still passed."""

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_installed():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    installed_as = {folder: name for name, folder in setuptools["package-dir"].items()}
    folders = sorted(
        init.parent.relative_to(REPO)
        for top in ("modeling_gpt1", "modeling_gpt2", "recipes")
        for init in (REPO / top).rglob("__init__.py")
    )
    expected = {".".join((installed_as.get(top, top), *rest)) for top, *rest in (folder.parts for folder in folders)}
    assert expected == set(setuptools["packages"])


def test_package_data_covers_the_run_configs_and_bundled_data():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    recipes = REPO / "recipes"
    for path in [*recipes.glob("configs/*/*.yaml"), *(recipes / "data" / "bundled").iterdir()]:
        assert any(path.relative_to(recipes).match(pattern) for pattern in data["gpt_origins_recipes"]), path
