"""Converting OpenAI's released GPT-1 checkpoint: a tiny checkpoint written here in the release's layout
(params_shapes.json, params_0.npy .. params_9.npy, encoder_bpe_40000.json, vocab_40000.bpe), converted by the command
line, loaded with from_pretrained, and checked against transformers' OpenAIGPT built from the same arrays."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, OpenAIGPTConfig, OpenAIGPTLMHeadModel

from modeling_gpt1 import GPT1OriginsDoubleHeadsModel, GPT1OriginsLMHeadModel
from modeling_gpt1.convert_openai_checkpoint import convert_openai_checkpoint, load_released_arrays, main

REPO = Path(__file__).resolve().parents[2]
N_CTX, N_EMBD, N_LAYER, N_HEAD = 16, 32, 2, 4
# A tiny BPE vocabulary in the release's format: word-final symbols end in </w>; every merge result is a token.
ENCODER = ["a", "b", "c", "d", "a</w>", "b</w>", "c</w>", "d</w>", "ab", "abc</w>", "cd</w>"]
MERGES = ["a b", "ab c</w>", "c d</w>"]
N_VOCAB = len(ENCODER)
N_SPECIAL = 5  # _start_, _delimiter_, _classify_, _pad_, <unk>
# One block's arrays in train.py's order: (attribute path in transformers' OpenAIGPT block, shape).
BLOCK_LAYOUT = [
    ("attn.c_attn.weight", (1, N_EMBD, 3 * N_EMBD)),
    ("attn.c_attn.bias", (3 * N_EMBD,)),
    ("attn.c_proj.weight", (1, N_EMBD, N_EMBD)),
    ("attn.c_proj.bias", (N_EMBD,)),
    ("ln_1.weight", (N_EMBD,)),
    ("ln_1.bias", (N_EMBD,)),
    ("mlp.c_fc.weight", (1, N_EMBD, 4 * N_EMBD)),
    ("mlp.c_fc.bias", (4 * N_EMBD,)),
    ("mlp.c_proj.weight", (1, 4 * N_EMBD, N_EMBD)),
    ("mlp.c_proj.bias", (N_EMBD,)),
    ("ln_2.weight", (N_EMBD,)),
    ("ln_2.bias", (N_EMBD,)),
]


def released_arrays(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Positions (n_ctx, n_embd), tokens (n_vocab, n_embd) and the blocks' arrays, random but LayerNorm-like."""
    rng = np.random.default_rng(seed)
    positions = (rng.standard_normal((N_CTX, N_EMBD)) * 0.1).astype(np.float32)
    tokens = (rng.standard_normal((N_VOCAB, N_EMBD)) * 0.1).astype(np.float32)
    blocks = []
    for _ in range(N_LAYER):
        for name, shape in BLOCK_LAYOUT:
            center = 1.0 if name.endswith("weight") and name.startswith("ln") else 0.0
            blocks.append((center + rng.standard_normal(shape) * 0.1).astype(np.float32))
    return positions, tokens, blocks


def write_release(folder: Path, arrays: list[np.ndarray], num_shards: int = 10) -> Path:
    """The release's layout: shapes in params_shapes.json, one flat float32 array cut into `num_shards` .npy files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params_shapes.json").write_text(json.dumps([list(array.shape) for array in arrays]))
    flat = np.concatenate([array.reshape(-1) for array in arrays])
    for index, shard in enumerate(np.array_split(flat, num_shards)):
        np.save(folder / f"params_{index}.npy", shard)
    (folder / "encoder_bpe_40000.json").write_text(json.dumps({token: i for i, token in enumerate(ENCODER)}))
    (folder / "vocab_40000.bpe").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    return folder


def reference_model(positions, tokens, blocks) -> OpenAIGPTLMHeadModel:
    """transformers' OpenAIGPT with the arrays put in place by attribute path (the oracle)."""
    config = OpenAIGPTConfig(vocab_size=N_VOCAB, n_positions=N_CTX, n_embd=N_EMBD, n_layer=N_LAYER, n_head=N_HEAD)
    model = OpenAIGPTLMHeadModel(config).eval()
    with torch.no_grad():
        model.transformer.positions_embed.weight.copy_(torch.from_numpy(positions))
        model.transformer.tokens_embed.weight.copy_(torch.from_numpy(tokens))
        for i in range(N_LAYER):
            for offset, (name, _) in enumerate(BLOCK_LAYOUT):
                array = torch.from_numpy(blocks[i * len(BLOCK_LAYOUT) + offset]).squeeze(0)
                model.transformer.h[i].get_parameter(name).copy_(array)
    return model


def run_converter(*arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "modeling_gpt1.convert_openai_checkpoint", *arguments]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True)


def test_command_line_converts_the_release(tmp_path):
    positions, tokens, blocks = released_arrays()
    release = write_release(tmp_path / "model", [positions, tokens, *blocks])
    assert [array.shape for array in load_released_arrays(release)][:3] == [(N_CTX, N_EMBD), (N_VOCAB, N_EMBD)] + [
        (1, N_EMBD, 3 * N_EMBD)
    ]
    result = run_converter(
        "--openai_checkpoint_folder_path", str(release), "--output_dir", str(tmp_path / "out"), "--n_head", "4"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Saved GPT-1 (2 layers, 32 wide, 4 heads, 16 positions, 16 tokens)" in result.stdout

    model = GPT1OriginsLMHeadModel.from_pretrained(tmp_path / "out").eval()
    assert type(AutoModelForCausalLM.from_pretrained(tmp_path / "out")) is GPT1OriginsLMHeadModel
    config = model.config
    assert (config.vocab_size, config.n_positions, config.n_layer, config.n_head) == (N_VOCAB + N_SPECIAL, 16, 2, 4)
    assert model.lm_head.weight is model.transformer.tokens_embed.weight

    input_ids = torch.randint(0, N_VOCAB, (2, N_CTX))
    with torch.no_grad():
        expected = reference_model(positions, tokens, blocks)(input_ids).logits
        actual = model(input_ids).logits
    torch.testing.assert_close(actual[..., :N_VOCAB], expected, atol=1e-5, rtol=1e-5)
    new_rows = model.transformer.tokens_embed.weight[N_VOCAB:]
    assert new_rows.shape == (N_SPECIAL, N_EMBD) and 0.005 < new_rows.std().item() < 0.05  # N(0, 0.02)

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert len(tokenizer) == config.vocab_size
    assert (config.start_token_id, config.delimiter_token_id, config.extract_token_id, config.pad_token_id) == (
        N_VOCAB,
        N_VOCAB + 1,
        N_VOCAB + 2,
        N_VOCAB + 3,
    )
    # _start_ abc</w> cd</w> _delimiter_ a b</w> _classify_ ("a b" merges only inside a word, not "a b</w>")
    expected_ids = [N_VOCAB, ENCODER.index("abc</w>"), ENCODER.index("cd</w>"), N_VOCAB + 1, 0, 5, N_VOCAB + 2]
    assert tokenizer("abc cd", "ab")["input_ids"] == expected_ids

    classifier = GPT1OriginsDoubleHeadsModel.from_pretrained(tmp_path / "out", task_type="classification").eval()
    batch = tokenizer(["abc cd", "ab"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert classifier(**batch).logits.shape == (2, 2)


def test_one_array_layout_converts_the_same(tmp_path):
    """train.py's `model/we` joins tokens, the 3 task tokens and positions; such a checkpoint converts too, its
    task-token rows kept at the ids train.py gave them."""
    positions, tokens, blocks = released_arrays()
    special = np.full((3, N_EMBD), 0.5, dtype=np.float32)
    release = write_release(tmp_path / "model", [np.concatenate([tokens, special, positions]), *blocks])
    model = convert_openai_checkpoint(release, tmp_path / "out", n_head=N_HEAD, n_ctx=N_CTX).eval()
    embedding = model.transformer.tokens_embed.weight
    assert embedding.shape == (N_VOCAB + N_SPECIAL, N_EMBD)
    torch.testing.assert_close(embedding[N_VOCAB : N_VOCAB + 3], torch.from_numpy(special))
    input_ids = torch.randint(0, N_VOCAB, (2, 9))
    with torch.no_grad():
        expected = reference_model(positions, tokens, blocks)(input_ids).logits
        torch.testing.assert_close(model(input_ids).logits[..., :N_VOCAB], expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"one embedding `model/we` of 30 rows .* n_ctx=None does not split it"):
        convert_openai_checkpoint(release, tmp_path / "out2", n_head=N_HEAD)


def test_special_token_rows_are_seeded(tmp_path):
    release = write_release(tmp_path / "model", [released_arrays()[0], released_arrays()[1], *released_arrays()[2]])
    first = convert_openai_checkpoint(release, tmp_path / "a", n_head=N_HEAD, seed=1)
    second = convert_openai_checkpoint(release, tmp_path / "b", n_head=N_HEAD, seed=1)
    torch.testing.assert_close(first.transformer.tokens_embed.weight, second.transformer.tokens_embed.weight)


def test_converter_errors(tmp_path):
    positions, tokens, blocks = released_arrays()
    release = write_release(tmp_path / "model", [positions, tokens, *blocks])
    with pytest.raises(FileNotFoundError, match=r"params_shapes.json' does not exist"):
        convert_openai_checkpoint(tmp_path / "nowhere", tmp_path / "out")

    (release / "params_9.npy").unlink()
    with pytest.raises(ValueError, match=r"The 9 shards hold \d+ numbers, but params_shapes.json describes \d+"):
        convert_openai_checkpoint(release, tmp_path / "out")

    np.save(release / "params_9.npy", np.array([{"not": "numbers"}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"allow_pickle=False"):  # nothing is ever unpickled
        convert_openai_checkpoint(release, tmp_path / "out")

    truncated = write_release(tmp_path / "truncated", [positions, tokens, *blocks[:-1]])
    with pytest.raises(ValueError, match=r"23 arrays follow the embeddings; the release has 12 per block"):
        convert_openai_checkpoint(truncated, tmp_path / "out")

    no_vocabulary = write_release(tmp_path / "no_vocabulary", [positions, tokens, *blocks])
    (no_vocabulary / "vocab_40000.bpe").unlink()
    with pytest.raises(FileNotFoundError, match=r"vocab_40000.bpe' does not exist"):
        convert_openai_checkpoint(no_vocabulary, tmp_path / "out")


def test_command_line_requires_its_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--output_dir", "x"])
    assert exit_info.value.code == 2 and "--openai_checkpoint_folder_path" in capsys.readouterr().err
