"""Saved tokenizers load with transformers' `AutoTokenizer` where gpt-origins is not installed, with no remote code
and no prompt: a tokenizer folder as it is, and a model folder with `trust_remote_code=False`.

A model folder's config.json names our code (`auto_map`), and `AutoTokenizer` always reads config.json first: with
`trust_remote_code` unset, transformers then asks whether to run it (for any custom-code model; a saved folder cannot
avoid that). The tokenizer itself is transformers' own class, so `trust_remote_code=False` loads it with no code run.
"""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsLMHeadModel
from modeling_gpt1.tokenization_gpt1 import train_gpt1_tokenizer
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel, load_gpt2_tokenizer

TEXT = "The quick brown fox jumps over the lazy dog."
LOADER = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class BlockGptOrigins(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("modeling_gpt1", "modeling_gpt2", "gpt_origins_recipes", "recipes"):
                raise ImportError(f"gpt-origins is not installed here ({name})")

    sys.meta_path.insert(0, BlockGptOrigins())
    from transformers import AutoTokenizer

    kwargs = json.loads(sys.argv[3])
    tokenizer = AutoTokenizer.from_pretrained(sys.argv[1], **kwargs)
    print("RESULT " + json.dumps([type(tokenizer).__name__, tokenizer(sys.argv[2]).input_ids]))
    """
)


def load_elsewhere(folder, **kwargs) -> tuple[str, list[int], str]:
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(folder), TEXT, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=folder.parent,
        timeout=120,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    name, ids = json.loads(lines[0][len("RESULT ") :])
    return name, ids, done.stdout + done.stderr


@pytest.fixture(scope="module")
def tokenizers():
    gpt1 = train_gpt1_tokenizer([TEXT, "A second sentence, with other words in it."] * 20, vocab_size=200)
    return {"gpt2": load_gpt2_tokenizer(), "gpt1": gpt1}


@pytest.mark.parametrize("family", ["gpt2", "gpt1"])
def test_a_tokenizer_folder_loads_without_remote_code_or_prompt(tmp_path, tokenizers, family):
    tokenizer = tokenizers[family]
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    name, ids, output = load_elsewhere(tmp_path / "tokenizer")
    assert name == type(tokenizer).__name__ and ids == tokenizer(TEXT).input_ids
    assert "Do you wish to run the custom code" not in output


@pytest.mark.parametrize("family", ["gpt2", "gpt1"])
def test_a_model_folder_tokenizer_loads_with_trust_remote_code_false(tmp_path, tokenizers, family):
    tokenizer = tokenizers[family]
    sizes = dict(n_layer=1, n_embd=32, n_head=4, n_positions=64, vocab_size=len(tokenizer))
    torch.manual_seed(0)
    if family == "gpt2":
        model = GPT2OriginsLMHeadModel(GPT2OriginsConfig(**sizes))
    else:
        model = GPT1OriginsLMHeadModel(GPT1OriginsConfig(**sizes))
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    name, ids, output = load_elsewhere(tmp_path / "model", trust_remote_code=False)
    assert name == type(tokenizer).__name__ and ids == tokenizer(TEXT).input_ids
    assert "Do you wish to run the custom code" not in output
