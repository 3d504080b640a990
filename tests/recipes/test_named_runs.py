"""The named run configs of the classic runs, each end to end on a tiny slice, with only what this machine lacks
replaced (the Hub dataset by a local folder laid out as the Hub's, the model's size, the step count):

- prepare-fineweb-edu-10B -> pretrain-gpt2-124M (bf16, SDPA; torch.compile in the slow test) on its shards;
- pretrain-gpt1-paper (a BPE learned from the corpus, 512-token context, the paper's optimiser);
- zero-shot-hellaswag on the GPT-2 just trained, HellaSwag rows by --dataset_name.

Every prepare-*, benchmark-data-* and zero-shot-* run config also parses with its recipe."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from transformers import AutoModelForCausalLM

from recipes import benchmark_data, evaluate_zero_shot, prepare_data
from recipes.core.arguments import parse_arguments, run_configs
from recipes.data.token_shards import ShardIndex

REPO = Path(__file__).parents[2]
FIXTURES = Path(__file__).parents[1] / "fixtures"
SHAKESPEARE = FIXTURES / "shakespeare_sample.txt"
# The model's size and the run's length: everything else is the config's.
TINY_GPT2 = ["--preset", "tiny", "--config_overrides", "n_layer=2,n_embd=64,n_head=2", "--block_size", "64"]
SHORT = ["--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "2", "--max_steps", "3",
         "--num_warmup_steps", "1", "--eval_steps", "3", "--max_eval_samples", "4", "--checkpointing_steps", "3",
         "--num_samples", "1", "--sample_length", "4", "--no-with_tracking"]  # fmt: skip

RECIPE_ARGUMENTS = {
    "prepare": prepare_data.PrepareArguments,
    "benchmark-data": benchmark_data.DataBenchmarkArguments,
    "zero-shot": evaluate_zero_shot.ZeroShotArguments,
}


def configs_of(prefix: str) -> list[str]:
    return sorted(name for name in run_configs() if name.startswith(f"{prefix}-"))


@pytest.mark.parametrize("name", [name for prefix in RECIPE_ARGUMENTS for name in configs_of(prefix)])
def test_every_run_config_parses_with_its_recipe(name):
    prefix = next(prefix for prefix in sorted(RECIPE_ARGUMENTS, key=len, reverse=True) if name.startswith(prefix))
    values = yaml.safe_load(run_configs()[name].read_text())
    (args,) = parse_arguments([RECIPE_ARGUMENTS[prefix]], ["--config", name])
    for key, value in values.items():
        assert getattr(args, key) == value, key


def hub_like_fineweb(folder: Path) -> Path:
    """A local dataset laid out as FineWeb-Edu on the Hub: a README whose YAML declares the config `sample-10BT` over
    its jsonl files (rows text, id, url, ...), which `load_dataset(folder, "sample-10BT", streaming=True)` reads as
    it reads the Hub's. The rows are paragraphs of the Shakespeare sample."""
    (folder / "sample" / "10BT").mkdir(parents=True)
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: sample-10BT\n  data_files:\n  - split: train\n    path: sample/10BT/*.jsonl\n"
        "---\nA local stand-in for HuggingFaceFW/fineweb-edu (tests/recipes/test_named_runs.py).\n"
    )
    paragraphs = [part.strip() for part in SHAKESPEARE.read_text()[:60000].split("\n\n") if part.strip()]
    for number in range(2):
        rows = paragraphs[number::2]
        (folder / "sample" / "10BT" / f"00{number}_00000.jsonl").write_text(
            "".join(json.dumps({"text": text, "id": f"<urn:{number}:{i}>", "url": "local", "score": 3.1}) + "\n"
                    for i, text in enumerate(rows))
        )  # fmt: skip
    return folder


def run(module: str, *args, timeout=900) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def fineweb_shards(tmp_path_factory) -> Path:
    """prepare-fineweb-edu-10B as configured, on the local stand-in, 200 documents of it."""
    tmp_path = tmp_path_factory.mktemp("fineweb")
    dataset = hub_like_fineweb(tmp_path / "fineweb-edu")
    folder = tmp_path / "shards"
    result = run("recipes.prepare_data", "--config", "prepare-fineweb-edu-10B", "--dataset_name", dataset,
                 "--max_documents", 200, "--validation_tokens", 1500, "--shard_tokens", 4096,
                 "--output_dir", folder)  # fmt: skip
    assert "training tokens in" in result.stdout
    return folder


def pretrain_gpt2_124M(shards: Path, output_dir: Path, *extra) -> subprocess.CompletedProcess:
    return run("recipes.pretrain", "--config", "pretrain-gpt2-124M", "--token_shards", shards, *TINY_GPT2, *SHORT,
               "--output_dir", output_dir, *extra)  # fmt: skip


@pytest.fixture(scope="module")
def gpt2_run(fineweb_shards, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("gpt2-124M") / "run"
    pretrain_gpt2_124M(fineweb_shards, output_dir, "--torch_compile", "false")
    return output_dir


def test_gpt2_124M_trains_on_its_fineweb_shards(fineweb_shards, gpt2_run):
    index = ShardIndex.read(fineweb_shards)
    assert index.content["settings"]["dataset_config_name"] == "sample-10BT" and index.dtype.str == "<u2"
    assert sum(shard["documents"] for split in ("train", "validation") for shard in index.shards(split)) == 200
    history = json.loads((gpt2_run / "history.json").read_text())["hyperparameters"]
    # The published recipe's settings, as the config gives them (only the size and the length were changed).
    expected = {"learning_rate": 6e-4, "adam_beta1": 0.9, "adam_beta2": 0.95, "weight_decay": 0.1,
                "lr_scheduler_type": "cosine", "max_grad_norm": 1.0, "mixed_precision": "bf16",
                "attn_implementation": "sdpa"}  # fmt: skip
    assert {key: history[key] for key in expected} == expected
    model = AutoModelForCausalLM.from_pretrained(gpt2_run)
    assert model.config.model_type == "gpt2-origins" and model.config.n_layer == 2


@pytest.mark.slow
def test_gpt2_124M_with_torch_compile(fineweb_shards, tmp_path):
    result = pretrain_gpt2_124M(fineweb_shards, tmp_path / "run", "--max_steps", "2", "--eval_steps", "2")
    assert json.loads((tmp_path / "run" / "history.json").read_text())["hyperparameters"]["torch_compile"] is True
    assert "Validation perplexity" in result.stdout


def test_gpt1_at_the_paper_settings(tmp_path):
    corpus = tmp_path / "books.txt"
    corpus.write_text(SHAKESPEARE.read_text()[:40000])
    output_dir = tmp_path / "run"
    run("recipes.pretrain", "--config", "pretrain-gpt1-paper", "--train_file", corpus, "--vocab_size", 400,
        "--config_overrides", "n_layer=2,n_embd=64,n_head=2", "--block_size", 64, *SHORT, "--num_train_epochs", 1,
        "--output_dir", output_dir)  # fmt: skip
    history = json.loads((output_dir / "history.json").read_text())["hyperparameters"]
    expected = {"learning_rate": 2.5e-4, "weight_decay": 0.01, "adam_beta2": 0.999, "lr_scheduler_type": "cosine",
                "preset": "gpt1", "tokenizer": "train"}  # fmt: skip
    assert {key: history[key] for key in expected} == expected
    model = AutoModelForCausalLM.from_pretrained(output_dir)
    assert model.config.model_type == "gpt1-origins" and model.config.afn == "gelu"


def test_hellaswag_zero_shot_of_the_trained_model(gpt2_run, tmp_path):
    output_file = tmp_path / "hellaswag.json"
    run("recipes.evaluate_zero_shot", "--config", "zero-shot-hellaswag", "--model", gpt2_run, "--dataset_name",
        FIXTURES / "hellaswag", "--output_file", output_file)  # fmt: skip
    results = json.loads(output_file.read_text())
    assert results["data"] == f"{FIXTURES / 'hellaswag'} (validation)"  # the config's split, of the given copy
    assert results["settings"]["add_start_token"] is False  # as the harness: no <|endoftext|> before the context
    metrics, predictions = results["metrics"], results["predictions"]
    labels = predictions["labels"]
    assert metrics["examples"] == len(labels) == 6 and metrics["choices"] == 24 and metrics["chance"] == 0.25
    for metric, normalize in (("acc", "none"), ("acc_norm", "chars")):  # each figure is its predictions' accuracy
        assert len(predictions[normalize]) == 6 and all(0 <= choice < 4 for choice in predictions[normalize])
        assert metrics[metric] == sum(p == g for p, g in zip(predictions[normalize], labels)) / 6


def test_the_gpu_check_script_and_its_report(gpt2_run, tmp_path):
    """recipes/gpu_check.sh is valid bash naming the configs it runs; its report, on CPU stand-ins of its two runs
    (the tiny pre-training above, a tiny benchmark train case), gives tokens/s, MFU and the ratio."""
    script = (REPO / "recipes" / "gpu_check.sh").read_text()
    assert subprocess.run(["bash", "-n", REPO / "recipes" / "gpu_check.sh"]).returncode == 0
    assert "--config pretrain-gpt2-124M" in script and "--config benchmark-gpu-pretrain" in script
    (tmp_path / "pretrain").symlink_to(gpt2_run)
    run("recipes.benchmark", "--models", "gpt2", "--preset", "tiny", "--seq_lens", 32, "--cases", "train",
        "--dtypes", "fp32", "--repeats", 2, "--warmup", 1, "--output_dir", tmp_path / "bench")  # fmt: skip
    result = run("recipes.gpu_check_report", tmp_path)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["pretrain_tokens_per_s"] > 0 and report["pretrain_mfu"] > 0  # a tiny CPU stand-in: no bound
    assert report["ratio_to_transformers"] > 0 and isinstance(report["mfu_target_met"], bool)
    assert "MFU" in result.stdout and "x (target >= 1.1x" in result.stdout


def test_the_gpu_check_report_names_what_is_missing(tmp_path, capsys):
    from recipes import gpu_check_report

    with pytest.raises(SystemExit) as exit_info:
        gpu_check_report.main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "history.json is missing: run `bash recipes/gpu_check.sh" in capsys.readouterr().err


@pytest.mark.slow
def test_the_benchmark_compiles_both_models(tmp_path):
    run("recipes.benchmark", "--models", "gpt2", "--preset", "tiny", "--seq_lens", 32, "--cases", "train", "forward",
        "--dtypes", "fp32", "--repeats", 2, "--warmup", 1, "--torch_compile", "--output_dir", tmp_path)  # fmt: skip
    rows = json.loads((tmp_path / "benchmark.json").read_text())["rows"]
    assert {row["case"] for row in rows} == {"train", "forward"}
