"""recipes/benchmark.py runs end to end on a tiny config (so it cannot rot); it asserts what it reports, never a
timing."""

import json

import pytest
import torch
import yaml

from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel
from recipes import benchmark
from recipes.benchmarks import comparison
from recipes.benchmarks.machine import training_flops_per_token
from recipes.benchmarks.model_pairs import build_pair
from recipes.core.arguments import parse_arguments, run_configs


@pytest.mark.parametrize("family", ["gpt2", "gpt1"])
def test_pair_has_identical_weights_and_outputs(family):
    ours, reference = build_pair(family, "tiny", "eager", vocab_size=97)
    ids = torch.randint(0, 97, (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, reference(ids).logits)


def test_benchmark_end_to_end_on_a_tiny_config(tmp_path, capsys):
    args = ["--preset", "tiny", "--vocab_size", "97", "--seq_lens", "16", "200", "--new_tokens", "4"]
    args += ["--repeats", "1", "--warmup", "0", "--dtypes", "fp32", "--output_dir", str(tmp_path)]
    report = benchmark.main(args)
    printed = capsys.readouterr().out
    assert "sequence 200 exceeds n_positions=128: skipped" in printed
    cases = {(row["family"], row["case"]) for row in report["rows"]}
    for family in ("gpt2", "gpt1"):
        for case in ("train", "forward", "generate_b1", "generate_b8", "train_memory"):
            assert (family, case) in cases
    for row in report["rows"]:
        key = "bytes" if row["case"] == "train_memory" else "tokens_per_s"
        assert row[f"ours_{key}"] > 0 and row[f"reference_{key}"] > 0  # a training step always allocates
        if row["case"] == "train":
            assert row["ratio_tokens_per_s"] == pytest.approx(row["ours_tokens_per_s"] / row["reference_tokens_per_s"])
            for name in ("ours", "reference"):  # against the machine's reported peak (the better of start and end)
                flops = row[f"{name}_tokens_per_s"] * row["flops_per_token"]
                assert row[f"{name}_mfu"] == pytest.approx(flops / report["machine"]["matmul_flops_fp32"])
        if row["case"] == "generate_b1":  # each model against its own matrix-vector bound, measured in the run
            for name in ("ours", "reference"):
                bound = row[f"{name}_bound_tokens_per_s"]
                assert bound > 0 and row[f"{name}_bound_fraction"] == pytest.approx(
                    row[f"{name}_tokens_per_s"] / bound
                )
    assert report["attention"]["gpt1"]["reference"] == "eager"  # transformers' GPT-1 has no sdpa
    saved = json.loads((tmp_path / "benchmark.json").read_text())
    assert saved["machine"]["matmul_flops_fp32"] > 0 and saved["machine"]["read_bandwidth"] > 0
    assert saved["machine"]["device"]  # the CPU's name (platform.processor() alone is often empty on Linux)
    assert (tmp_path / "benchmark.png").stat().st_size > 0


def test_flops_per_token_counts_matrices_and_attention():
    config = GPT2OriginsConfig.from_preset("124M")
    # 6 x (12 layers x 12 x 768^2 + 50257 x 768) + 12 x 12 x 1024 x 768
    expected = 6 * (12 * 12 * 768**2 + 50257 * 768) + 12 * 12 * 1024 * 768
    assert training_flops_per_token(config, 1024) == expected


def test_cuda_without_a_device_is_a_clear_error(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(["--device", "cuda", "--preset", "tiny", "--output_dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "no CUDA device" in capsys.readouterr().err


def test_cases_and_generate_batches_select_what_runs(tmp_path, capsys):
    args = ["--preset", "tiny", "--vocab_size", "97", "--seq_lens", "16", "--new_tokens", "3", "--repeats", "1"]
    args += ["--warmup", "0", "--dtypes", "fp32", "--models", "gpt1", "--cases", "generate", "memory"]
    args += ["--generate_batches", "2", "--output_dir", str(tmp_path)]
    report = benchmark.main(args)
    assert [row["case"] for row in report["rows"]] == ["generate_b2", "train_memory"]
    printed = capsys.readouterr().out
    assert printed.count("generate_b2") == 2  # printed as measured, then in the final table
    with pytest.raises(SystemExit):
        benchmark.main([*args[:-2], "--generate_batches", "0", "--output_dir", str(tmp_path)])


TINY = ["--preset", "tiny", "--vocab_size", "97", "--seq_lens", "16", "--repeats", "1", "--warmup", "0"]
BAD_OPTIONS = {
    "repeats": (["--repeats", "0"], "--repeats must be at least 1, got 0"),
    "batch_size": (["--batch_size", "0"], "--batch_size must be at least 1, got 0"),
    "new_tokens": (["--new_tokens", "1"], "--new_tokens must be at least 2, got 1"),
    "variants": (["--variants", "int4"], "--variants takes int8, onednn, got 'int4'"),
    "variants on cuda": (
        ["--variants", "int8", "--device", "cuda"],
        "--variants int8 are CPU inference forms; --device is 'cuda'",
    ),
    "eval_file without a model": (
        ["--eval_file", "README.md"],
        "--eval_file needs --model_path: the perplexity of random weights says nothing",
    ),
    "eval_tokens": (["--eval_tokens", "1"], "--eval_tokens must be at least 2, got 1"),
    "warmup": (["--warmup", "-1"], "--warmup must be at least 0, got -1"),
    "vocab_size": (["--vocab_size", "0"], "--vocab_size must be at least 1, got 0"),
    "seq_lens": (["--seq_lens", "16", "0"], "--seq_lens must be at least 1 each, got [16, 0]"),
    "generate_batches": (["--generate_batches", "0"], "--generate_batches must be at least 1 each, got [0]"),
    "models": (["--models", "gpt3"], "--models takes gpt2, gpt1, got 'gpt3'"),
    "dtypes": (["--dtypes", "fp16"], "--dtypes takes fp32, bf16, got 'fp16'"),
    "cases": (["--cases", "train", "speed"], "--cases takes train, forward, generate, memory, got 'speed'"),
    "preset of one family": (
        ["--preset", "355M"],
        "--preset '355M' is not a gpt1 preset; known: tiny, gpt1, openai-gpt, 117M, 124M",
    ),
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_bad_options_stop_before_any_measurement(tmp_path, capsys, monkeypatch, case):
    options, message = BAD_OPTIONS[case]
    monkeypatch.setattr(comparison, "run", lambda args: pytest.fail("measured before the options were checked"))
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main([*TINY, *options, "--output_dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"python -m recipes.benchmark: error: {message}"


def test_skip_memory_leaves_the_options_as_parsed(tmp_path):
    report = benchmark.main([*TINY, "--models", "gpt2", "--cases", "forward", "memory", "--skip_memory",
                             "--dtypes", "fp32", "--output_dir", str(tmp_path)])  # fmt: skip
    assert [row["case"] for row in report["rows"]] == ["forward"]
    assert report["settings"]["cases"] == ["forward", "memory"] and report["settings"]["skip_memory"] is True


@pytest.fixture(scope="module")
def trained_gpt2(tmp_path_factory):
    """A small saved GPT-2 of ours with OpenAI's vocabulary (no tokenizer in its folder: the bundled one is used)."""
    folder = tmp_path_factory.mktemp("gpt2_folder")
    torch.manual_seed(0)
    GPT2OriginsLMHeadModel(GPT2OriginsConfig.from_preset("tiny", n_positions=64)).save_pretrained(folder)
    return folder


def test_a_trained_folder_with_its_int8_and_onednn_forms(tmp_path, trained_gpt2):
    """--model_path measures a saved folder (transformers' model gets its weights), --variants adds the int8 and
    oneDNN forms to generation and perplexity, each against transformers' fp32 model; --eval_file gives
    each model's perplexity on a held-out text."""
    text = tmp_path / "held_out.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 30)
    args = ["--model_path", str(trained_gpt2), "--variants", "int8", "onednn", "--eval_file", str(text)]
    args += ["--seq_lens", "16", "--new_tokens", "3", "--repeats", "1", "--warmup", "0", "--dtypes", "fp32"]
    report = benchmark.main([*args, "--generate_batches", "1", "--output_dir", str(tmp_path / "out")])
    assert report["settings"]["models"] == ["gpt2"]  # the folder's family
    rows = {row["case"]: row for row in report["rows"]}
    assert set(rows) == {"train", "forward", "generate_b1", "perplexity"}  # memory: random weights only
    generate = rows["generate_b1"]
    for variant in ("int8", "onednn"):
        speed = generate[f"ours_{variant}_tokens_per_s"]
        assert generate[f"ratio_{variant}_tokens_per_s"] == pytest.approx(speed / generate["reference_tokens_per_s"])
        assert 0 < generate[f"ours_{variant}_bound_fraction"]
    perplexity = rows["perplexity"]
    assert 290 < perplexity["eval_tokens"] < 310  # about 10 tokens per sentence, 30 times
    assert perplexity["ours_perplexity"] == pytest.approx(perplexity["reference_perplexity"], rel=1e-4)
    assert perplexity["ours_onednn_perplexity"] == pytest.approx(perplexity["ours_perplexity"], rel=1e-4)
    assert perplexity["ratio_int8_perplexity"] == pytest.approx(
        perplexity["ours_int8_perplexity"] / perplexity["ours_perplexity"]
    )
    assert abs(perplexity["ratio_int8_perplexity"] - 1) < 0.05


def test_model_path_of_another_family_is_refused(tmp_path, capsys, trained_gpt2, monkeypatch):
    monkeypatch.setattr(comparison, "run", lambda args: pytest.fail("measured before the options were checked"))
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(["--model_path", str(trained_gpt2), "--models", "gpt1", "--output_dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "holds a gpt2 model, not one of --models ['gpt1']" in capsys.readouterr().err
    missing = tmp_path / "none.txt"
    with pytest.raises(SystemExit):
        benchmark.main(["--model_path", str(trained_gpt2), "--eval_file", str(missing), "--output_dir", str(tmp_path)])
    assert f"--eval_file {str(missing)!r} is not a file" in capsys.readouterr().err


# benchmark-data-*.yaml are recipes/benchmark_data.py's (tests/recipes/test_named_runs.py).
@pytest.mark.parametrize(
    "name",
    sorted(name for name, path in run_configs().items() if path.parent.name == "benchmark"),
)
def test_every_benchmark_run_config_parses(name, trained_gpt2):
    """The runs docs/BENCHMARKS.md records; those of a trained folder get a tiny one in its place."""
    values = yaml.safe_load(run_configs()[name].read_text())
    extra = ["--model_path", str(trained_gpt2)] if "model_path" in values else []
    (args,) = parse_arguments([benchmark.BenchmarkArguments], ["--config", name, *extra])
    for key, value in values.items():
        if key != "model_path":
            assert getattr(args, key) == value, key
