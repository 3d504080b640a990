"""transformers' own common model tests (`ModelTesterMixin`, `ConfigTester`), fetched from the sdist of the installed
transformers release on PyPI and imported as the package `transformers_tests`.

The sdist carries `tests/test_modeling_common.py`, `tests/test_configuration_common.py` and the other top-level test
files, but not the folders they import from (`tests/generation`, `tests/exporters`, `tests/utils`). Those three
imports get small stand-ins written here, only where the sdist lacks the file:

- `GenerationTesterMixin`: an empty class. transformers' generation tests are not in the sdist, so none of them run;
  our own generate tests (tests/causal_lm_checks.py) stand in for them.
- `ExportTesterMixin`: an empty class (the `torch.export` tests live there); ONNX export is tested in
  tests/ecosystem.
- `config_common_kwargs`: values for the fields every `PreTrainedConfig` takes, each different from its default, for
  `ConfigTester.check_config_arguments_init`.

The fetch runs once per transformers version: `pip download --no-binary :all: --no-deps transformers==X` into
`$GPT_ORIGINS_TEST_CACHE` (default `~/.cache/gpt-origins`), extracted there; later runs import the extracted files. A
failed fetch is an error, never a skip: the tests would otherwise pass by not running.
"""

import importlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import transformers

PACKAGE = "transformers_tests"

STAND_INS = {
    "generation/test_utils.py": '''"""Stand-in (gpt-origins): transformers' generation tests are not in its sdist."""


class GenerationTesterMixin:
    pass
''',
    "exporters/test_export.py": '''"""Stand-in (gpt-origins): transformers' export tests are not in its sdist."""


class ExportTesterMixin:
    pass
''',
    "utils/test_configuration_utils.py": '''"""Stand-in (gpt-origins): fields every PreTrainedConfig takes,
each set to a value not its default."""

config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "output_attentions": True,
    "dtype": "float16",
    "tie_word_embeddings": False,
    "chunk_size_feed_forward": 5,
    "architectures": ["BertModel"],
    "finetuning_task": "translation",
    "id2label": {0: "label"},
    "label2id": {"label": "0"},
    "tokenizer_class": "BertTokenizerFast",
    "problem_type": "regression",
    "bos_token_id": 6,
    "pad_token_id": 7,
    "eos_token_id": 8,
}
''',
}


def cache_root() -> Path:
    return Path(os.environ.get("GPT_ORIGINS_TEST_CACHE", Path.home() / ".cache" / "gpt-origins"))


def fetch(version: str = transformers.__version__) -> Path:
    """The folder holding the package `transformers_tests` for transformers `version`, fetched if not cached."""
    root = cache_root() / f"transformers-{version}-tests"
    if (root / PACKAGE / "test_modeling_common.py").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent) as scratch:
        scratch = Path(scratch)
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
            f"transformers=={version}", "--dest", str(scratch),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        archives = list(scratch.glob("transformers-*.tar.gz"))
        if done.returncode != 0 or not archives:
            raise RuntimeError(
                f"Could not fetch the sdist of transformers {version} from PyPI for its common model tests "
                f"({' '.join(command)}):\n{done.stdout}\n{done.stderr}"
            )
        package = scratch / "staged" / PACKAGE
        package.mkdir(parents=True)
        with tarfile.open(archives[0]) as archive:
            for member in archive.getmembers():
                parts = Path(member.name).parts  # transformers-X/tests/<file>.py: the top-level test files only
                if member.isfile() and len(parts) == 3 and parts[1] == "tests" and parts[2].endswith(".py"):
                    (package / parts[2]).write_bytes(archive.extractfile(member).read())
        if not (package / "test_modeling_common.py").is_file():
            raise RuntimeError(f"The sdist of transformers {version} has no tests/test_modeling_common.py.")
        (package / "__init__.py").write_text("")
        for relative, text in STAND_INS.items():
            target = package / relative
            target.parent.mkdir(exist_ok=True)
            (target.parent / "__init__.py").touch()
            if not target.exists():
                target.write_text(text)
        # Into place in one rename: an interrupted fetch leaves no half-extracted cache behind.
        try:
            (scratch / "staged").rename(root)
        except OSError:
            if not (root / PACKAGE / "test_modeling_common.py").is_file():
                raise
    return root


def import_common_tests():
    """transformers' `test_modeling_common` and `test_configuration_common` modules, for the installed version."""
    root = str(fetch())
    if root not in sys.path:
        sys.path.insert(0, root)
    return (
        importlib.import_module(f"{PACKAGE}.test_modeling_common"),
        importlib.import_module(f"{PACKAGE}.test_configuration_common"),
    )


def clear_cache(version: str = transformers.__version__) -> None:
    shutil.rmtree(cache_root() / f"transformers-{version}-tests", ignore_errors=True)


def register_in_auto_mappings(test_case, mappings: dict[str, dict[str, str]]) -> None:
    """For the duration of one test: our classes in transformers' Auto mapping tables of class names
    (`MODEL_MAPPING_NAMES`, `MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`, ...: table name -> {model_type: class name}), which
    the common tests read to tell a base model from an LM head or a multiple-choice model (which inputs and labels
    to build, which outputs to expect), as they do for transformers' own models."""
    from unittest.mock import patch

    from transformers.models.auto import modeling_auto

    for table, entries in mappings.items():
        patcher = patch.dict(getattr(modeling_auto, table), entries)
        patcher.start()
        test_case.addCleanup(patcher.stop)
