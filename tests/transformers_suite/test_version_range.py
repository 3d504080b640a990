"""The supported transformers range, tested at both ends: folders saved here load as remote code, without
gpt-origins, under the minimum release (`compat.MINIMUM_TRANSFORMERS`) and under the newest 5.x on PyPI, and give the
logits and greedy tokens the installed release computes; a release below the minimum is an ImportError naming it.

Each release is installed once into `$GPT_ORIGINS_TEST_CACHE/transformers-envs/<version>` (`pip install --target`,
with its dependencies, first on sys.path of a subprocess; torch is this environment's). Where this machine's package
index cannot resolve a release's dependencies, the release alone is installed and runs on this environment's
dependencies, with hub kernels off (USE_HUB_KERNELS=0): the test says so in its output. The subprocess blocks any
import of gpt-origins' packages, so only the folder's own code runs, and of `kernels` where the release's folder has
none: transformers imports it whenever it is importable, and 5.12 fails at import with the kernels 0.19 that this
environment's newer transformers brings.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers.transformers_common import cache_root

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsDoubleHeadsModel, GPT1OriginsLMHeadModel
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel
from modeling_gpt2.compat import MINIMUM_TRANSFORMERS

BELOW_MINIMUM = "5.3.0"  # the last release before dataclass configs
PROMPT = [[5, 17, 3, 88, 41, 9]]
OPTIONAL = ("kernels",)  # optional dependencies of transformers that its releases import when present

LOADER = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class BlockGptOrigins(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("modeling_gpt1", "modeling_gpt2", "gpt_origins_recipes", "recipes"):
                raise ImportError(f"gpt-origins is not installed here ({name})")
            if name.split(".")[0] in json.loads(sys.argv[3]):
                raise ImportError(f"not a dependency of this release ({name})")

    sys.meta_path.insert(0, BlockGptOrigins())
    import torch, transformers
    from transformers import AutoModelForCausalLM, AutoModelForMultipleChoice

    results = {"version": transformers.__version__}
    prompt = torch.tensor(json.loads(sys.argv[1]))
    for kind, folder in json.loads(sys.argv[2]).items():
        auto = AutoModelForMultipleChoice if kind == "double_heads" else AutoModelForCausalLM
        model = auto.from_pretrained(folder, trust_remote_code=True).eval()
        with torch.no_grad():
            if kind == "double_heads":
                results[kind] = {"logits": model(prompt.expand(2, 3, -1)).logits.tolist()}
                continue
            logits = model(prompt).logits
            tokens = model.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=0)
        results[kind] = {"logits": logits.tolist(), "tokens": tokens.tolist()}
    print("RESULTS " + json.dumps(results))
    """
)


def newest_release() -> str:
    """The newest transformers 5.x on the package index."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "transformers"], capture_output=True, text=True
    )
    match = re.search(r"Available versions: (.*)", done.stdout)
    assert done.returncode == 0 and match, f"pip index versions transformers failed:\n{done.stdout}\n{done.stderr}"
    versions = [v.strip() for v in match.group(1).split(",")]
    return next(v for v in versions if re.fullmatch(r"5\.\d+\.\d+", v))


def release_env(version: str, with_dependencies: bool = True) -> tuple[Path, dict]:
    """A folder holding transformers `version` (and its dependencies where the index resolves them), and the extra
    environment variables to run it with."""
    root = cache_root() / "transformers-envs"
    target = root / (version if with_dependencies else f"{version}-alone")
    marker = target / ".complete"
    extra = {}
    if marker.exists():
        return target, json.loads(marker.read_text())
    root.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), f"transformers=={version}"]
    done = subprocess.run([*command, *([] if with_dependencies else ["--no-deps"])], capture_output=True, text=True)
    if done.returncode != 0 and with_dependencies:
        # The index here cannot resolve its dependencies: the release alone, on this environment's dependencies.
        print(f"transformers {version}: dependencies not resolvable here, installed alone ({done.stderr[-300:]})")
        shutil.rmtree(target, ignore_errors=True)
        done = subprocess.run([*command, "--no-deps"], capture_output=True, text=True)
        extra = {"USE_HUB_KERNELS": "0"}
    assert done.returncode == 0, f"installing transformers {version} failed:\n{done.stderr}"
    marker.write_text(json.dumps(extra))
    return target, extra


def run_release(target: Path, extra: dict, folders: dict, python_path: list[Path] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, **extra, "PYTHONPATH": os.pathsep.join(map(str, [target, *python_path]))}
    env["HF_MODULES_CACHE"] = str(next(iter(folders.values())).parent / f"modules-{target.name}")
    # An optional dependency that the release's own folders lack is not taken from this environment: transformers
    # imports `kernels` whenever it is importable, and 5.12 fails at import with the kernels 0.19 that 5.25 needs.
    folders_of_release = [target, *python_path]
    blocked = [name for name in OPTIONAL if not any((folder / name).is_dir() for folder in folders_of_release)]
    blocked = blocked if not extra else []  # a release installed alone runs on this environment's dependencies
    return subprocess.run(
        [
            sys.executable,
            "-c",
            LOADER,
            json.dumps(PROMPT),
            json.dumps({k: str(v) for k, v in folders.items()}),
            json.dumps(blocked),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        env=env,
        cwd=next(iter(folders.values())).parent,
        timeout=600,
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """GPT-2 LM, GPT-1 LM and GPT-1 multiple-choice folders saved here, and what the installed release computes."""
    root = tmp_path_factory.mktemp("saved")
    torch.manual_seed(0)
    sizes = dict(n_layer=2, n_embd=32, n_head=4, vocab_size=101, n_positions=64)
    models = {
        "gpt2": GPT2OriginsLMHeadModel(GPT2OriginsConfig(**sizes, bos_token_id=0, eos_token_id=0)),
        "gpt1": GPT1OriginsLMHeadModel(GPT1OriginsConfig(**sizes)),
        "double_heads": GPT1OriginsDoubleHeadsModel(GPT1OriginsConfig(**sizes, task_type="multiple_choice")),
    }
    folders, reference = {}, {}
    prompt = torch.tensor(PROMPT)
    for kind, model in models.items():
        model.eval()
        folders[kind] = root / kind
        model.save_pretrained(folders[kind])
        with torch.no_grad():
            if kind == "double_heads":
                reference[kind] = {"logits": model(prompt.expand(2, 3, -1)).logits}
                continue
            reference[kind] = {
                "logits": model(prompt).logits,
                "tokens": model.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=0),
            }
    return folders, reference


def check_release(version: str, saved) -> None:
    folders, reference = saved
    target, extra = release_env(version)
    done = run_release(target, extra, folders)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    assert done.returncode == 0 and lines, f"transformers {version}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    results = json.loads(lines[0][len("RESULTS ") :])
    assert results["version"] == version
    for kind, expected in reference.items():
        torch.testing.assert_close(torch.tensor(results[kind]["logits"]), expected["logits"], atol=1e-5, rtol=1e-5)
        if "tokens" in expected:
            assert results[kind]["tokens"] == expected["tokens"].tolist(), (version, kind)


def test_saved_folders_run_as_remote_code_under_the_minimum_release(saved):
    check_release(MINIMUM_TRANSFORMERS, saved)


def test_saved_folders_run_as_remote_code_under_the_newest_release(saved):
    check_release(newest_release(), saved)


def test_a_release_below_the_minimum_is_an_error_naming_it(saved):
    folders, _ = saved
    # The old release alone, on the minimum release's dependencies (which it imports fine).
    minimum, _ = release_env(MINIMUM_TRANSFORMERS)
    old, _ = release_env(BELOW_MINIMUM, with_dependencies=False)
    done = run_release(old, {}, {"gpt2": folders["gpt2"]}, python_path=[minimum])
    assert done.returncode != 0
    assert f"gpt-origins models need transformers >= {MINIMUM_TRANSFORMERS}, < 6" in done.stderr
    assert f"this environment has transformers {BELOW_MINIMUM}" in done.stderr
    # The installed package says the same.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(old), str(minimum)])}
    no_kernels = "import sys; sys.modules['kernels'] = None; "  # as in run_release: not a dependency of these two
    package = subprocess.run(
        [sys.executable, "-c", no_kernels + "import modeling_gpt2"], capture_output=True, text=True, env=env
    )
    assert package.returncode != 0 and f"transformers >= {MINIMUM_TRANSFORMERS}" in package.stderr
