"""recipes/generate.py runs end to end: on a random preset, and on a saved folder without a tokenizer."""

import subprocess
import sys

import torch

from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel
from recipes import generate


def test_generate_on_random_preset(capsys):
    output = generate.main(["--prompt", "Hello", "--prompt", "A longer prompt", "--max_new_tokens", "4"])
    assert output.shape[0] == 2
    printed = capsys.readouterr().out
    assert "--- 'Hello'" in printed and "tokens/s" in printed


def test_generate_from_saved_folder_as_a_command(tmp_path):
    torch.manual_seed(0)
    GPT2OriginsLMHeadModel(GPT2OriginsConfig.from_preset("tiny")).save_pretrained(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "recipes.generate", "--model", str(tmp_path), "--max_new_tokens", "3", "--do_sample"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "It was a dark and stormy night" in result.stdout


def test_generate_rejects_bad_length():
    result = subprocess.run(
        [sys.executable, "-m", "recipes.generate", "--max_new_tokens", "0"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "--max_new_tokens must be at least 1, got 0" in result.stderr
