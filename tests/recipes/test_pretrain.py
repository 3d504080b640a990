"""recipes/pretrain.py run for real on a tiny preset and a committed Shakespeare sample: what it leaves behind, exact
resume after SIGKILL (also in the middle of a checkpoint save), 2 processes against 1, and every bad input."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from modeling_gpt2 import GPT2OriginsConfig
from recipes import pretrain
from recipes.core import run_folder
from recipes.core.checkpointing import MARKER, complete_checkpoints, file_digests
from recipes.data.corpus import load_documents, pack_blocks
from recipes.models.families import MODEL_FAMILIES
from recipes.training import pretraining, pretraining_samples

FIXTURE = Path(__file__).parents[1] / "fixtures" / "shakespeare_sample.txt"
REPO = Path(__file__).parents[2]
# A small, fast run: a 512-token byte-level BPE learned from the sample, the tiny preset (with its dropout, so the
# RNG state matters for exact resume), and gradient accumulation (so the data position is not just the step).
FAST = [
    "--preset", "tiny", "--tokenizer", "train", "--vocab_size", "512", "--block_size", "32",
    "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2", "--learning_rate", "3e-3",
    "--logging_steps", "2", "--eval_steps", "4", "--max_eval_samples", "16", "--num_samples", "1",
    "--sample_length", "8", "--no-with_tracking",
]  # fmt: skip


def small_corpus(tmp_path, characters=6000) -> Path:
    """The first `characters` of the sample: about 60 blocks of 32 tokens, so an epoch is a handful of steps."""
    path = tmp_path / "small.txt"
    path.write_text(FIXTURE.read_text()[:characters])
    return path


def run_recipe(args, kill_at_optimizer_step=None, kill_in_save_of=None, kill_in_evaluation_batch=None, timeout=600,
               recipe="pretrain"):  # fmt: skip
    """`python -m recipes.pretrain ARGS` (`recipe="finetune"`: recipes.finetune) in a subprocess. With
    `kill_at_optimizer_step=k` the process SIGKILLs itself when AdamW.step is called for the k-th time (so k - 1 steps
    are done); with `kill_in_save_of="step_00000008"` it SIGKILLs itself in the middle of writing that checkpoint
    (after the weights, before the optimizer state); with `kill_in_evaluation_batch=k` it SIGKILLs itself in the
    middle of an evaluation, at the k-th call of `Accelerator.gather_for_metrics` of the process (pre-training gathers
    once per validation batch, fine-tuning four times)."""
    runner = textwrap.dedent(
        f"""
        import os, signal, sys, torch, accelerate
        kill_at, kill_in, kill_eval = {kill_at_optimizer_step!r}, {kill_in_save_of!r}, {kill_in_evaluation_batch!r}
        calls = eval_batches = 0
        original_step, original_save = torch.optim.AdamW.step, torch.save
        original_gather = accelerate.Accelerator.gather_for_metrics
        def step(self, *args, **kwargs):
            global calls
            calls += 1
            if calls == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return original_step(self, *args, **kwargs)
        def save(obj, f, *args, **kwargs):
            if kill_in and f".{{kill_in}}.tmp" in str(f):
                os.kill(os.getpid(), signal.SIGKILL)
            return original_save(obj, f, *args, **kwargs)
        def gather_for_metrics(self, *args, **kwargs):
            global eval_batches
            eval_batches += 1
            if eval_batches == kill_eval:
                os.kill(os.getpid(), signal.SIGKILL)
            return original_gather(self, *args, **kwargs)
        torch.optim.AdamW.step, torch.save = step, save
        accelerate.Accelerator.gather_for_metrics = gather_for_metrics
        from recipes import {recipe} as recipe
        recipe.main(sys.argv[1:])
        """
    )
    return subprocess.run(
        [sys.executable, "-c", runner, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def weights(folder) -> dict:
    return load_file(Path(folder) / "model.safetensors")


def assert_bitwise_equal(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: 12 steps straight (8 micro-batches of 4 blocks per step ... crosses an epoch end)."""
    tmp_path = tmp_path_factory.mktemp("uninterrupted")
    corpus = small_corpus(tmp_path)
    # Logs every 3 steps, checkpoints every 4: a checkpoint falls between two logs and must carry the running loss.
    args = [*FAST, "--train_file", corpus, "--max_steps", "12", "--checkpointing_steps", "4", "--logging_steps", "3"]
    result = run_recipe([*args, "--output_dir", tmp_path / "run"])
    assert result.returncode == 0, result.stderr[-3000:]
    return {"args": args, "output_dir": tmp_path / "run", "stdout": result.stdout, "stderr": result.stderr}


def test_end_to_end_leaves_a_model_plot_logs_samples_and_checkpoints(tmp_path):
    """The default tokenizer for GPT-2 (OpenAI's vocabulary), TensorBoard on, a plain command line."""
    output_dir = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "recipes.pretrain",
            "--preset",
            "tiny",
            "--train_file",
            str(FIXTURE),
            "--block_size",
            "64",
            "--max_steps",
            "16",
            "--eval_steps",
            "8",
            "--checkpointing_steps",
            "8",
            "--per_device_train_batch_size",
            "4",
            "--learning_rate",
            "3e-3",
            "--max_eval_samples",
            "32",
            "--sample_length",
            "6",
            "--output_dir",
            str(output_dir),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "validation loss" in result.stdout + result.stderr and "Validation perplexity" in out
    assert out.count("--- sample ---") == 3 and "Loss curve:" in out and "tensorboard --logdir" in out

    history = json.loads((output_dir / "history.json").read_text())
    evals = history["eval_history"]
    assert [record["step"] for record in evals] == [0, 8, 16]
    assert evals[-1]["loss"] < evals[0]["loss"] - 1.0  # it learns
    assert history["hyperparameters"]["tokenizer"] == "gpt2" and history["tokens_seen"] == 16 * 4 * 64
    assert (output_dir / "loss_curve.png").stat().st_size > 10_000
    assert list((output_dir / "logs" / "pretrain").glob("events.out.tfevents.*"))
    assert [path.name for path in complete_checkpoints(output_dir / "checkpoints")] == [
        "step_00000008",
        "step_00000016",
    ]

    model = AutoModelForCausalLM.from_pretrained(output_dir)
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    assert type(model).__name__ == "GPT2OriginsLMHeadModel" and len(tokenizer) == 50257
    assert model.config.bos_token_id == model.config.eos_token_id == 50256
    generated = model.generate(**tokenizer("ROMEO.", return_tensors="pt"), max_new_tokens=5, do_sample=False)
    assert generated.shape == (1, 3 + 5)
    # The folder carries its code: it loads as remote code too.
    remote = AutoModelForCausalLM.from_pretrained(output_dir, trust_remote_code=True)
    assert remote.config.auto_map["AutoModelForCausalLM"] == "modeling_gpt2.GPT2OriginsLMHeadModel"


def test_gpt1_is_one_option_away(tmp_path):
    output_dir = tmp_path / "gpt1"
    result = run_recipe(
        [*FAST, "--model_type", "gpt1", "--vocab_size", "600", "--train_file", small_corpus(tmp_path, 12000),
         "--max_steps", "6", "--output_dir", output_dir]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    model = AutoModelForCausalLM.from_pretrained(output_dir)
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    assert type(model).__name__ == "GPT1OriginsLMHeadModel" and model.config.vocab_size == len(tokenizer) <= 600
    assert model.config.start_token_id == tokenizer.convert_tokens_to_ids("_start_") == model.config.bos_token_id
    assert model.config.extract_token_id == tokenizer.convert_tokens_to_ids("_classify_")
    history = json.loads((output_dir / "history.json").read_text())
    assert history["hyperparameters"]["learning_rate"] == 3e-3 and history["hyperparameters"]["adam_beta2"] == 0.999
    assert model.generate(**tokenizer("romeo", return_tensors="pt"), max_new_tokens=3).shape[1] >= 3


def test_killed_run_resumes_bitwise_exactly(uninterrupted, tmp_path):
    output_dir = tmp_path / "run"
    killed = run_recipe([*uninterrupted["args"], "--output_dir", output_dir], kill_at_optimizer_step=11)
    assert killed.returncode == -signal.SIGKILL
    assert [path.name for path in complete_checkpoints(output_dir / "checkpoints")] == [
        "step_00000004",
        "step_00000008",
    ]
    assert not (output_dir / "model.safetensors").exists()

    resumed = run_recipe([*uninterrupted["args"], "--output_dir", output_dir, "--resume_from_checkpoint", "latest"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resumed from" in resumed.stdout and "step_00000008 at step 8" in resumed.stdout
    assert_bitwise_equal(weights(output_dir), weights(uninterrupted["output_dir"]))
    assert_bitwise_equal(
        weights(output_dir / "checkpoints" / "step_00000012"),
        weights(uninterrupted["output_dir"] / "checkpoints" / "step_00000012"),
    )
    # The history (and so the plot) covers the whole run, the killed part included.
    history = json.loads((output_dir / "history.json").read_text())
    reference = json.loads((uninterrupted["output_dir"] / "history.json").read_text())
    same_keys = ("step", "loss", "lr")  # tokens_per_second is a measurement, not a result
    assert [[r[k] for k in same_keys] for r in history["train_history"]] == [
        [r[k] for k in same_keys] for r in reference["train_history"]
    ]
    assert history["eval_history"] == reference["eval_history"]


def test_kill_during_a_checkpoint_save_leaves_the_previous_one_usable(uninterrupted, tmp_path):
    output_dir = tmp_path / "run"
    killed = run_recipe([*uninterrupted["args"], "--output_dir", output_dir], kill_in_save_of="step_00000008")
    assert killed.returncode == -signal.SIGKILL
    checkpoints = output_dir / "checkpoints"
    partial = checkpoints / ".step_00000008.tmp"
    assert (partial / "model.safetensors").exists() and not (partial / MARKER).exists()
    assert [path.name for path in complete_checkpoints(checkpoints)] == ["step_00000004"]

    resumed = run_recipe([*uninterrupted["args"], "--output_dir", output_dir, "--resume_from_checkpoint", "latest"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "step_00000004 at step 4" in resumed.stdout
    assert not partial.exists()  # cleared by the next save
    assert_bitwise_equal(weights(output_dir), weights(uninterrupted["output_dir"]))


# ---------------------------------------------------------------------------------------------------------------------
# Bad input: each stops with a one-line error naming the value and the limit, before any data is packed.


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if the recipe gets as far as packing blocks (the first expensive step)."""
    AcceleratorState._reset_state(reset_partial_state=True)

    def forbidden(*args, **kwargs):
        raise AssertionError("the recipe started preparing data before rejecting its input")

    monkeypatch.setattr(pretraining, "get_dataloaders", forbidden)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def fails_with(args, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        pretrain.main([*map(str, args), "--no-with_tracking"])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_empty_corpus(tmp_path, capsys, no_training):
    (tmp_path / "empty.txt").write_text("\n  \n")
    err = fails_with(["--train_file", tmp_path / "empty.txt", "--output_dir", tmp_path / "out"], capsys)
    assert "error: The train corpus is empty:" in err and "empty.txt holds 1 document(s) and none has any text" in err


def test_missing_file(tmp_path, capsys, no_training):
    err = fails_with(["--train_file", tmp_path / "missing.txt", "--output_dir", tmp_path / "out"], capsys)
    assert "error: --train_file" in err and "missing.txt' does not exist" in err


def test_block_size_above_n_positions(tmp_path, capsys, no_training):
    args = ["--preset", "tiny", "--block_size", "129", "--train_file", FIXTURE, "--output_dir", tmp_path / "out"]
    err = fails_with(args, capsys)
    assert "--block_size 129 is larger than the model's n_positions=128" in err


def test_tokenizer_larger_than_the_model_vocabulary(tmp_path, capsys, no_training):
    GPT2OriginsConfig.from_preset("tiny", vocab_size=1000).save_pretrained(tmp_path / "config")
    for model_options in (
        ["--config_name", tmp_path / "config"],
        ["--preset", "tiny", "--config_overrides", "vocab_size=1000"],
    ):
        err = fails_with([*model_options, "--train_file", FIXTURE, "--output_dir", tmp_path / "out"], capsys)
        assert "The tokenizer has 50,257 tokens but the model's vocab_size is 1,000" in err


def test_checkpoint_of_another_model(tmp_path, capsys, no_training):
    checkpoint = tmp_path / "out" / "checkpoints" / "step_00000004"
    checkpoint.mkdir(parents=True)
    GPT2OriginsConfig.from_preset("tiny", vocab_size=50257).to_json_file(checkpoint / "config.json")
    (checkpoint / MARKER).write_text(json.dumps({"step": 4, "files": file_digests(checkpoint)}))
    args = ["--preset", "tiny", "--config_overrides", "n_layer=3", "--train_file", FIXTURE]
    err = fails_with([*args, "--output_dir", tmp_path / "out", "--resume_from_checkpoint", "latest"], capsys)
    assert "belongs to another model (n_layer: checkpoint 2, this run 3)" in err

    err = fails_with([*args, "--output_dir", tmp_path / "x", "--resume_from_checkpoint", tmp_path], capsys)
    assert "holds no complete checkpoint" in err  # a folder that is not a checkpoint at all


def test_fresh_run_into_a_folder_with_checkpoints(tmp_path, capsys, no_training):
    checkpoint = tmp_path / "out" / "checkpoints" / "step_00000004"
    checkpoint.mkdir(parents=True)
    (checkpoint / MARKER).write_text("{}")
    err = fails_with(["--train_file", FIXTURE, "--output_dir", tmp_path / "out"], capsys)
    assert "already holds checkpoints (newest: step_00000004)" in err and "--resume_from_checkpoint latest" in err


def test_samples_too_long_for_their_prompts(tmp_path, capsys, no_training):
    """Given prompts are measured; a drawn one (no --sample_prompts) may have up to `PROMPT_TOKENS` tokens."""
    args = ["--preset", "tiny", "--train_file", FIXTURE, "--output_dir", tmp_path / "out"]
    err = fails_with([*args, "--sample_length", "121"], capsys)
    assert (
        "--sample_length 121 plus the 8 tokens a prompt drawn from the validation text may have (no --sample_prompts "
        "given) is more than the model's n_positions=128: give --sample_length at most 120." in err
    )
    err = fails_with([*args, "--sample_length", "122", "--sample_prompts", "The king", "To be, or not to be"], capsys)
    assert "plus the longest sample prompt's 7 tokens is more than the model's n_positions=128" in err


def test_corpus_smaller_than_one_block_is_rejected_before_training(tmp_path, capsys):
    AcceleratorState._reset_state(reset_partial_state=True)
    (tmp_path / "short.txt").write_text("Exeunt.")
    err = fails_with(["--preset", "tiny", "--train_file", tmp_path / "short.txt", "--output_dir", tmp_path], capsys)
    assert "fills only 0 block(s): need at least 2" in err and "smaller --block_size" in err
    assert not (tmp_path / "checkpoints").exists()


# ---------------------------------------------------------------------------------------------------------------------
# Two processes (gloo on CPU) against one process with the same global batch.


def test_two_processes_train_evaluate_checkpoint_and_resume_like_one(tmp_path):
    corpus = small_corpus(tmp_path)
    common = [*FAST, "--train_file", corpus, "--max_steps", "8", "--checkpointing_steps", "4"]
    common += ["--config_overrides", "resid_pdrop=0,embd_pdrop=0,attn_pdrop=0"]  # dropout masks differ per process
    one = run_recipe([*common, "--per_device_train_batch_size", "4", "--output_dir", tmp_path / "one"])
    assert one.returncode == 0, one.stderr[-3000:]

    def launch(*extra):
        # `--multi_gpu` picks torchrun, which starts the 2 processes (`--cpu` alone starts one, without mpirun); on a
        # machine without GPUs the recipe then trains on the CPU over gloo.
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
        command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        command += ["-m", "recipes.pretrain", *map(str, common), "--per_device_train_batch_size", "2", "--cpu", *extra]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)

    two = launch("--output_dir", tmp_path / "two")
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 process(es) x 2 x 2 accumulation" in two.stdout
    history_one = json.loads((tmp_path / "one" / "history.json").read_text())
    history_two = json.loads((tmp_path / "two" / "history.json").read_text())
    losses_one = [r["loss"] for r in history_one["train_history"]]
    losses_two = [r["loss"] for r in history_two["train_history"]]
    torch.testing.assert_close(losses_two, losses_one, rtol=1e-4, atol=1e-4)
    evals_one = [r["loss"] for r in history_one["eval_history"]]
    evals_two = [r["loss"] for r in history_two["eval_history"]]
    torch.testing.assert_close(evals_two, evals_one, rtol=1e-4, atol=1e-4)
    assert [p.name for p in complete_checkpoints(tmp_path / "two" / "checkpoints")] == [
        "step_00000004",
        "step_00000008",
    ]

    # Resume the 2-process run from its step-4 checkpoint: it ends where the uninterrupted one did.
    final = weights(tmp_path / "two")
    for path in [tmp_path / "two" / "checkpoints" / "step_00000008", tmp_path / "two" / "model.safetensors"]:
        subprocess.run(["rm", "-rf", str(path)], check=True)
    resumed = launch("--output_dir", tmp_path / "two", "--resume_from_checkpoint", "latest")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 4" in resumed.stdout
    for name, tensor in weights(tmp_path / "two").items():
        torch.testing.assert_close(tensor, final[name], rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------------------
# The demo defaults, --push_to_hub, and the README's main job itself (slow).


def test_without_a_model_option_the_defaults_are_the_cpu_demo():
    """No model option and no --config: the run config pretrain-demo-<model_type>.yaml; any option overrides it."""
    args = pretrain.parse_args([])
    assert args.output_dir == "runs/pretrain-gpt2" and args.preset == "tiny" and "n_layer=4" in args.config_overrides
    assert (args.tokenizer, args.vocab_size, args.max_steps, args.learning_rate) == ("train", 8192, 800, 1e-3)
    assert args.train_file == ["shakespeare", "sotu"] and args.embedding_lr_scale == 10
    gpt1_demo = pretrain.parse_args(["--model_type", "gpt1"])
    assert (gpt1_demo.learning_rate, gpt1_demo.embedding_lr_scale, gpt1_demo.adam_beta2) == (1e-3, 10, 0.999)
    assert pretrain.parse_args(["--max_steps", "7"]).max_steps == 7
    real = pretrain.parse_args(["--preset", "124M"])
    assert real.config_overrides is None and real.max_steps is None and real.max_eval_samples is None
    assert real.tokenizer == "gpt2" and real.learning_rate == 6e-4  # OpenAI's vocabulary, the family's settings
    gpt1 = pretrain.parse_args(["--model_type", "gpt1", "--preset", "gpt1"])
    assert (gpt1.tokenizer, gpt1.vocab_size, gpt1.learning_rate, gpt1.adam_beta2) == ("train", 40483, 2.5e-4, 0.999)


def test_samples_continue_prompts_drawn_from_the_validation_blocks(tmp_path):
    """Without --sample_prompts, each sample's prompt is the first words of a validation line (one document per line,
    `--document_boundary line`), drawn with --seed from the blocks evaluation reads, and recorded in history.json."""
    AcceleratorState._reset_state(reset_partial_state=True)
    lines = [f"Held out line {i}, spoken by the {word} king." for i, word in enumerate(["old", "young", "mad"] * 8)]
    (tmp_path / "held_out.txt").write_text("\n".join(lines) + "\n")
    args = [*FAST, "--train_file", small_corpus(tmp_path), "--validation_file", tmp_path / "held_out.txt"]
    args += ["--document_boundary", "line", "--max_steps", "2", "--num_samples", "2", "--output_dir", tmp_path / "out"]
    pretrain.main(list(map(str, args)))
    AcceleratorState._reset_state(reset_partial_state=True)
    prompts = json.loads((tmp_path / "out" / "history.json").read_text())["hyperparameters"]["sample_prompts"]
    assert len(set(prompts)) == 2 and all(any(line.startswith(prompt) for line in lines) for prompt in prompts)
    samples = (tmp_path / "out" / "samples.txt").read_text()
    assert samples.startswith(prompts[0]) and f"\n\n{prompts[1]}" in samples

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    files = {"train_files": [tmp_path / "small.txt"], "validation_files": [tmp_path / "held_out.txt"]}
    validation = load_documents(**files, document_boundary="line")["validation"]
    blocks = pack_blocks(validation, tokenizer, 32, tokenizer.eos_token_id).select(range(16))  # --max_eval_samples
    assert pretraining_samples.draw_prompts(blocks, tokenizer, tokenizer.eos_token_id, 2, seed=0) == prompts


def test_push_to_hub_uploads_model_and_tokenizer_together(tmp_path, monkeypatch):
    AcceleratorState._reset_state(reset_partial_state=True)
    pushed = []
    monkeypatch.setattr(
        MODEL_FAMILIES["gpt2"].lm_class,
        "push_to_hub",
        lambda self, repo_id, tokenizer=None: pushed.append((repo_id, len(tokenizer))),
    )
    monkeypatch.setattr(run_folder, "get_token", lambda: "hf_test")  # a logged-in user (checked before training)
    args = [*FAST, "--train_file", small_corpus(tmp_path), "--max_steps", "2", "--num_samples", "0"]
    pretrain.main([*map(str, args), "--output_dir", str(tmp_path / "out"), "--push_to_hub", "--hub_model_id", "me/x"])
    AcceleratorState._reset_state(reset_partial_state=True)
    assert pushed == [("me/x", 512)]


@pytest.mark.slow
def test_readme_main_job_runs_as_the_readme_says(tmp_path):
    """`python -m recipes.pretrain` as the README runs it: perplexity falls at every evaluation, samples and paths are
    printed. Its wall clock (8.8 minutes on the 2-core CI machine) is measured, not asserted: tests assert no
    timings."""
    result = subprocess.run(
        [sys.executable, "-m", "recipes.pretrain", "--output_dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    perplexities = [
        r["perplexity"] for r in json.loads((tmp_path / "run" / "history.json").read_text())["eval_history"]
    ]
    assert len(perplexities) == 9 and all(b < a for a, b in zip(perplexities, perplexities[1:]))
    assert perplexities[-1] < 400  # 225 measured; the unigram level of its validation blocks is 1,234
    assert result.stdout.count("--- sample ---") == 3 and "Loss curve:" in result.stdout
