"""Every option of recipes/generate.py and recipes/evaluate_zero_shot.py, out of range or out of place: a one-line
error (exit status 2) that names the value and the limit, before any model weights are read. The options alone are
checked when parsed; the prompt lengths, the window and the vocabulary against the model's config.json before its
weights load (the tests make loading the weights fail, so a check that came too late would show). docs/RELIABILITY.md,
section "Generation and zero-shot options", lists the same cases."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsLMHeadModel, train_gpt1_tokenizer_from_files
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel
from recipes import evaluate_zero_shot, generate
from recipes.evaluation import generation, zero_shot

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "shakespeare_sample.txt"
SIZES = {"n_positions": 16, "n_embd": 32, "n_head": 4, "n_layer": 1}  # GPT-2 keeps OpenAI's 50,257 tokens


@dataclass
class Case:
    id: str
    argv: list[str]  # {gpt2}, {gpt1}, {root}, {tmp}: the tiny folders, their parent, the test's; {{ is a brace
    match: str  # text the error line must hold


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """A tiny GPT-2 folder (n_positions=16; OpenAI's tokenizer, which ships), a tiny GPT-1 one with its own learned
    tokenizer, and a GPT-2 folder whose config.json has a field of the wrong type."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    GPT2OriginsLMHeadModel(GPT2OriginsConfig.from_preset("tiny", **SIZES)).save_pretrained(root / "gpt2")
    tokenizer = train_gpt1_tokenizer_from_files(FIXTURE, vocab_size=300)
    gpt1 = GPT1OriginsConfig.from_preset("tiny", vocab_size=len(tokenizer), **SIZES)
    GPT1OriginsLMHeadModel(gpt1).save_pretrained(root / "gpt1")
    tokenizer.save_pretrained(root / "gpt1")
    config = json.loads((root / "gpt2" / "config.json").read_text())
    (root / "bad-config").mkdir()
    (root / "bad-config" / "config.json").write_text(json.dumps({**config, "n_positions": "sixteen"}))
    small = GPT2OriginsConfig.from_preset("tiny", vocab_size=100, **SIZES)  # smaller than any tokenizer here
    GPT2OriginsLMHeadModel(small).save_pretrained(root / "small-vocab")
    return root


def fill(argv: list[str], folders: Path, tmp_path: Path) -> list[str]:
    return [word.format(gpt2=folders / "gpt2", gpt1=folders / "gpt1", tmp=tmp_path, root=folders) for word in argv]


def no_loading(*args, **kwargs):
    raise AssertionError("the model's weights were loaded before the input was checked")


def error_line(capsys) -> str:
    return capsys.readouterr().err.rstrip("\n").split("\n")[-1]


# ---------------------------------------------------------------------------------------------------------- generate

GENERATE = "python -m recipes.generate: error: "
GENERATE_CASES = [
    Case(
        "generate-max-new-tokens-past-context",
        ["--model", "{gpt2}", "--prompt", "To be, or not", "--max_new_tokens", "20"],
        "--prompt 'To be, or not' (5 tokens) + --max_new_tokens 20 = 25 positions, more than the model's "
        "n_positions=16: give --max_new_tokens at most 11.",
    ),
    Case(
        "generate-prompt-past-context",
        [
            "--model",
            "{gpt2}",
            "--prompt",
            "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen",
            "--max_new_tokens",
            "1",
        ],
        "(16 tokens) + --max_new_tokens 1 = 17 positions, more than the model's n_positions=16: shorten the prompt "
        "to at most 15 tokens.",
    ),
    Case(
        "generate-longest-prompt-of-a-batch-past-context",
        [
            "--model",
            "{gpt1}",
            "--prompt",
            "to be",
            "--prompt",
            "to be or not to be that is the",
            "--max_new_tokens",
            "8",
        ],
        "--prompt 'to be or not to be that is the' (9 tokens) + --max_new_tokens 8 = 17 positions",
    ),
    Case("generate-max-new-tokens-zero", ["--max_new_tokens", "0"], "--max_new_tokens must be at least 1, got 0"),
    Case("generate-num-beams-zero", ["--num_beams", "0"], "--num_beams must be at least 1, got 0"),
    Case(
        "generate-num-return-sequences-zero",
        ["--num_return_sequences", "0"],
        "--num_return_sequences must be at least 1, got 0",
    ),
    Case(
        "generate-num-return-sequences-greedy",
        ["--num_return_sequences", "2"],
        "--num_return_sequences 2 is more than --num_beams 1: greedy decoding returns at most num_beams "
        "continuations; raise --num_beams or add --do_sample",
    ),
    Case(
        "generate-num-return-sequences-past-beams",
        ["--num_beams", "2", "--num_return_sequences", "3", "--do_sample"],
        "--num_return_sequences 3 is more than --num_beams 2: beam search returns at most num_beams continuations",
    ),
    Case(
        "generate-temperature-zero",
        ["--do_sample", "--temperature", "0"],
        "--temperature must be a finite number > 0, got 0.0",
    ),
    Case(
        "generate-temperature-inf",
        ["--do_sample", "--temperature", "inf"],
        "--temperature must be a finite number > 0, got inf",
    ),
    Case("generate-top-k-negative", ["--do_sample", "--top_k", "-1"], "--top_k must be at least 0, got -1"),
    Case("generate-top-p-zero", ["--do_sample", "--top_p", "0"], "--top_p must be in (0, 1], got 0.0"),
    Case("generate-top-p-above-one", ["--do_sample", "--top_p", "1.5"], "--top_p must be in (0, 1], got 1.5"),
    Case("generate-top-p-nan", ["--do_sample", "--top_p", "nan"], "--top_p must be in (0, 1], got nan"),
    Case(
        "generate-repetition-penalty-zero",
        ["--repetition_penalty", "0"],
        "--repetition_penalty must be a finite number > 0, got 0.0",
    ),
    Case(
        "generate-sampling-option-without-sampling",
        ["--top_p", "0.9"],
        "--top_p 0.9 applies to sampling only: add --do_sample (without it, decoding takes the likeliest token and "
        "would ignore --top_p)",
    ),
    Case("generate-prompt-empty", ["--prompt", "a", "--prompt", ""], "--prompt number 2 is empty"),
    Case(
        "generate-prompt-no-tokens",
        ["--model", "{gpt1}", "--prompt", " \t "],
        "--prompt ' \\t ' has no tokens (the tokenizer drops it): give some text.",
    ),
    Case("generate-seed-negative", ["--seed", "-1"], "--seed must be in [0, 2**64), got -1"),
    Case("generate-device-unknown", ["--device", "gpu"], "--device 'gpu' is not a torch device (cpu, cuda, cuda:1"),
    Case(
        "generate-model-type-unknown", ["--model_type", "gpt3"], "--model_type must be one of gpt2, gpt1, got 'gpt3'"
    ),
    Case("generate-preset-unknown", ["--preset", "7B"], "--preset '7B' is not a gpt2 preset; known: tiny, 124M"),
    Case(
        "generate-model-of-the-other-family",
        ["--model", "{gpt1}", "--model_type", "gpt2"],
        "is a gpt1 model, not --model_type gpt2.",
    ),
    Case(
        "generate-config-field-wrong-type",
        ["--model", "{root}/bad-config"],
        "config.json is not a valid gpt2 config",
    ),
]
if not torch.cuda.is_available():
    GENERATE_CASES.append(
        Case(
            "generate-device-absent",
            ["--device", "cuda"],
            "--device cuda: this machine has 0 CUDA device(s); use --device cpu",
        )
    )


@pytest.mark.parametrize("case", GENERATE_CASES, ids=lambda case: case.id)
def test_generate_bad_input_is_one_line_before_the_weights_load(folders, tmp_path, capsys, monkeypatch, case):
    monkeypatch.setattr(generation, "load_model", no_loading)
    with pytest.raises(SystemExit) as exit_info:
        generate.main(fill(case.argv, folders, tmp_path))
    line = error_line(capsys)
    assert exit_info.value.code == 2 and line.startswith(GENERATE) and case.match in line, line


def test_generate_fills_the_context_exactly(folders, capsys):
    """A prompt of 5 tokens and 11 new ones: the 16 positions of the model, accepted (the check is not off by one)."""
    output = generate.main(["--model", str(folders / "gpt2"), "--prompt", "To be, or not", "--max_new_tokens", "11"])
    assert output.shape == (1, 16)


def test_generate_new_options_reach_generate(folders, capsys):
    """--top_p, --repetition_penalty and --num_return_sequences: 2 prompts x 3 sampled continuations, each printed
    under its own prompt."""
    argv = ["--model", str(folders / "gpt1"), "--prompt", "to be", "--prompt", "the king", "--max_new_tokens", "3"]
    argv += ["--do_sample", "--top_p", "0.9", "--repetition_penalty", "1.3", "--num_return_sequences", "3"]
    output = generate.main(argv)
    printed = capsys.readouterr().out
    assert output.shape[0] == 6 and printed.count("--- 'to be'") == 3 and printed.count("--- 'the king'") == 3


# -------------------------------------------------------------------------------------------------- zero-shot

ZERO_SHOT = "python -m recipes.evaluate_zero_shot: error: "
TEXT, CHOICES = "{tmp}/texts.jsonl", "{tmp}/choices.jsonl"
ZERO_SHOT_CASES = [
    Case(
        "zero-shot-max-length-past-context",
        ["--task", "perplexity", "--data_file", TEXT, "--max_length", "17"],
        "--max_length 17 is larger than the model's n_positions=16",
    ),
    Case(
        "zero-shot-stride-past-window",
        ["--task", "perplexity", "--data_file", TEXT, "--max_length", "8", "--stride", "9"],
        "--stride 9 is larger than the window of 8 tokens",
    ),
    Case(
        "zero-shot-vocab-larger-than-model",
        ["--task", "perplexity", "--data_file", TEXT, "--model", "{root}/small-vocab"],
        "The tokenizer has 50,257 tokens but the model's vocab_size is 100",
    ),
    Case(
        "zero-shot-answer-past-window",
        ["--task", "multiple_choice", "--data_file", CHOICES, "--max_length", "2"],
        "row 1: the answer is 3 tokens long, more than the window of 2 tokens",
    ),
    Case(
        "zero-shot-option-of-another-task",
        ["--task", "lambada", "--data_file", TEXT, "--stride", "4"],
        "--stride is read for --task perplexity only, not --task lambada: leave it out",
    ),
    Case(
        "zero-shot-template-for-perplexity",
        ["--task", "perplexity", "--data_file", TEXT, "--template", "{{text}}"],
        "--template is read for --task multiple_choice only, not --task perplexity",
    ),
    Case(
        "zero-shot-normalize-for-lambada",
        ["--task", "lambada", "--data_file", TEXT, "--normalize", "tokens"],
        "--normalize is read for --task multiple_choice only, not --task lambada",
    ),
    Case(
        "zero-shot-text-column-for-multiple-choice",
        ["--task", "multiple_choice", "--data_file", CHOICES, "--text_column", "body"],
        "--text_column is read for --task perplexity and lambada only, not --task multiple_choice",
    ),
    Case(
        "zero-shot-dataset-split-with-file",
        ["--task", "perplexity", "--data_file", TEXT, "--dataset_split", "validation"],
        "--dataset_split picks from a Hub dataset (--dataset_name); --data_file is read whole",
    ),
    Case(
        "zero-shot-template-unbalanced",
        ["--task", "multiple_choice", "--data_file", CHOICES, "--template", "{{context"],
        "--template '{context' is not a format string: expected '}' before end of string",
    ),
    Case(
        "zero-shot-template-positional",
        ["--task", "multiple_choice", "--data_file", CHOICES, "--template", "Q: {{}} A:"],
        "--template 'Q: {} A:' has the positional field {}: name a column of the rows, e.g. {context}",
    ),
    Case(
        "zero-shot-batch-size-zero",
        ["--task", "perplexity", "--data_file", TEXT, "--per_device_eval_batch_size", "0"],
        "--per_device_eval_batch_size must be at least 1, got 0",
    ),
    Case(
        "zero-shot-max-length-zero",
        ["--task", "perplexity", "--data_file", TEXT, "--max_length", "0"],
        "--max_length must be at least 1, got 0",
    ),
    Case(
        "zero-shot-stride-zero",
        ["--task", "perplexity", "--data_file", TEXT, "--stride", "0"],
        "--stride must be at least 1, got 0",
    ),
    Case(
        "zero-shot-seed-negative",
        ["--task", "perplexity", "--data_file", TEXT, "--seed", "-2"],
        "--seed must be in [0, 2**64), got -2",
    ),
    Case(
        "zero-shot-output-file-is-a-folder",
        ["--task", "perplexity", "--data_file", TEXT, "--output_file", "{tmp}"],
        "is a folder: name the JSON file to write.",
    ),
    Case(
        "zero-shot-output-file-under-a-file",
        ["--task", "perplexity", "--data_file", TEXT, "--output_file", "{tmp}/texts.jsonl/out.json"],
        "texts.jsonl' is not a writable folder.",
    ),
    Case(
        "zero-shot-config-field-wrong-type",
        ["--task", "perplexity", "--data_file", TEXT, "--model", "{root}/bad-config"],
        "does not load:",
    ),
]


@pytest.mark.parametrize("case", ZERO_SHOT_CASES, ids=lambda case: case.id)
def test_zero_shot_bad_input_is_one_line_before_the_weights_load(folders, tmp_path, capsys, monkeypatch, case):
    (tmp_path / "texts.jsonl").write_text(json.dumps({"text": "To be, or not to be"}) + "\n")
    row = {"context": "He drank the", "choices": ["cold water today", "wall"], "label": 0}
    (tmp_path / "choices.jsonl").write_text(json.dumps(row) + "\n")
    monkeypatch.setattr(zero_shot, "load_model_by_name", no_loading)
    argv = fill(case.argv, folders, tmp_path)
    argv = argv if "--model" in argv else ["--model", str(folders / "gpt2"), *argv]
    argv = argv if "--output_file" in argv else [*argv, "--output_file", str(tmp_path / "results.json")]
    with pytest.raises(SystemExit) as exit_info:
        evaluate_zero_shot.main(argv)
    line = error_line(capsys)
    assert exit_info.value.code == 2 and line.startswith(ZERO_SHOT) and case.match in line, line
    assert not (tmp_path / "results.json").exists()


def test_zero_shot_normalize_empty():
    """A run config's `normalize: []` (the command line needs at least one value) would report no accuracy."""
    with pytest.raises(ValueError, match="--normalize needs at least one of none, tokens, chars"):
        evaluate_zero_shot.ZeroShotArguments(
            task="multiple_choice", model="tiny", data_file=["rows.jsonl"], normalize=[]
        )


def test_every_generation_case_is_in_the_reliability_table(documented_cases):
    ids = {case.id for case in GENERATE_CASES + ZERO_SHOT_CASES} | {
        "generate-device-absent",
        "zero-shot-normalize-empty",
    }
    assert not ids - documented_cases, f"docs/RELIABILITY.md has no row for {sorted(ids - documented_cases)}"
