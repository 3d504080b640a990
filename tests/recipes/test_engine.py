"""recipes/core/engine.py, the one training loop, and the recipes' entry points.

- Pre-training and fine-tuning both train through `TrainingLoop.run` (recorded in process), with their own hooks.
- The loop on a toy model: the optimizer steps every `gradient_accumulation_steps` micro-batches, across epoch ends
  in pre-training's mode and on every epoch end in fine-tuning's; a resumed progress starts at the exact micro-batch;
  the training loss is logged before every evaluation; evaluations and checkpoints fall where the schedule says.
- Entry points: `python recipes/<name>.py` (the form `accelerate launch recipes/pretrain.py` uses), the installed
  console scripts and `python -m gpt_origins_recipes.<name>` from outside the repository, and
  `accelerate launch recipes/pretrain.py --config pretrain-demo-gpt2` itself (with a few overrides).
- Every run config in recipes/configs/ parses with its recipe's options.
"""

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import torch
import yaml
from accelerate.state import AcceleratorState
from torch.utils.data import DataLoader

from recipes import ablation, cli, finetune, pretrain
from recipes.core import engine
from recipes.core.accelerators import build_accelerator
from recipes.core.arguments import parse_arguments, run_configs
from recipes.core.engine import Hooks, Schedule, TrainingLoop, TrainingProgress
from recipes.core.options import TrainingOptions
from recipes.training import finetune_options

REPO = Path(__file__).parents[2]
FIXTURES = REPO / "tests" / "fixtures"
TASK = FIXTURES / "tasks" / "classification-movie-sentence-polarity.jsonl"


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def small_corpus(tmp_path: Path) -> Path:
    path = tmp_path / "small.txt"
    path.write_text((FIXTURES / "shakespeare_sample.txt").read_text()[:6000])
    return path


def test_pretraining_and_finetuning_run_through_the_one_loop(tmp_path, monkeypatch):
    runs = []
    original = TrainingLoop.run

    def recording_run(self, max_grad_norm):
        progress = original(self, max_grad_norm)
        runs.append((type(self.hooks).__name__, self.schedule, progress.step, len(progress.eval_history)))
        return progress

    monkeypatch.setattr(engine.TrainingLoop, "run", recording_run)
    pretrain.main(
        ["--preset", "tiny", "--tokenizer", "train", "--vocab_size", "400", "--block_size", "32",
         "--train_file", str(small_corpus(tmp_path)), "--per_device_train_batch_size", "4", "--max_steps", "4",
         "--eval_steps", "2", "--max_eval_samples", "8", "--num_samples", "0", "--no_with_tracking",
         "--output_dir", str(tmp_path / "pretrain")]
    )  # fmt: skip
    AcceleratorState._reset_state(reset_partial_state=True)
    lines = TASK.read_text().splitlines(keepends=True)
    (tmp_path / "train.jsonl").write_text("".join(lines[:16]))
    (tmp_path / "validation.jsonl").write_text("".join(lines[16:]))
    finetune.main(
        ["--task_type", "classification", "--model_name_or_path", "tiny", "--tokenizer", "train",
         "--vocab_size", "600", "--train_file", str(tmp_path / "train.jsonl"),
         "--validation_file", str(tmp_path / "validation.jsonl"), "--per_device_train_batch_size", "8",
         "--num_train_epochs", "2", "--max_length", "32", "--output_dir", str(tmp_path / "finetune")]
    )  # fmt: skip
    (pre_hooks, pre_schedule, pre_steps, pre_evals), (ft_hooks, ft_schedule, ft_steps, ft_evals) = runs
    assert (pre_hooks, pre_steps, pre_evals) == ("PretrainHooks", 4, 3)  # before step 1, at 2 and 4
    assert pre_schedule.steps_cross_epochs and pre_schedule.eval_every == 2 and pre_schedule.tokens_per_step == 128
    assert (ft_hooks, ft_steps, ft_evals) == ("FinetuneHooks", 4, 2)  # after each of the 2 epochs
    assert not ft_schedule.steps_cross_epochs and ft_schedule.eval_every == "epoch"


# ---------------------------------------------------------------------------------------------------------------------
# The loop itself, on a toy model.


class Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return type("Out", (), {"loss": (self.weight * x).pow(2).mean()})()


class RecordingHooks(Hooks):
    def __init__(self):
        super().__init__(run=None)
        self.seen, self.events = [], []

    def checkpoint_info(self, loop):
        return {"layout": {"toy": True}}

    def forward(self, model, batch):
        self.seen.append(batch.flatten().tolist())
        return model(batch)

    def evaluate(self, loop):
        self.events.append(("eval", loop.progress.step, len(loop.progress.train_history)))
        record = {"step": loop.progress.step, "loss": 0.0}
        loop.log_evaluation(record, f"eval at {loop.progress.step}")
        return record

    def write_extra(self, loop, folder):
        self.events.append(("checkpoint", loop.progress.step))


def toy_loop(tmp_path, accumulation, cross, max_steps, progress=None, eval_every=2, checkpoint_every=0):
    options = TrainingOptions(gradient_accumulation_steps=accumulation, logging_steps=100, cpu=True)
    accelerator = build_accelerator(options, tmp_path, steps_cross_epochs=cross)
    model = Toy()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    loader = DataLoader(torch.arange(10.0).reshape(10, 1), batch_size=1)  # 10 micro-batches an epoch
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    per_epoch = engine.steps_per_epoch(len(loader), accumulation, cross)
    schedule = Schedule(max_steps, per_epoch, accumulation, 100, eval_every, checkpoint_every, cross)
    hooks = RecordingHooks()
    loop = TrainingLoop(accelerator, model, optimizer, scheduler, loader, progress or TrainingProgress(), schedule,
                        hooks, tmp_path / "checkpoints", 10)  # fmt: skip
    return loop, hooks


def test_accumulation_crosses_epoch_ends_in_pretraining_mode(tmp_path):
    loop, hooks = toy_loop(tmp_path, accumulation=3, cross=True, max_steps=5)
    assert loop.schedule.steps_per_epoch == 3
    loop.run(max_grad_norm=1.0)
    assert [x for (x,) in hooks.seen] == [*range(10), *range(5)]  # 15 micro-batches = 5 steps of 3
    # The loss is logged right before each evaluation (every 2 steps and at the end).
    assert hooks.events == [("eval", 2, 1), ("eval", 4, 2), ("eval", 5, 3), ("checkpoint", 5)]  # saved at the end
    assert [record["step"] for record in loop.progress.train_history] == [2, 4, 5]


def test_every_epoch_ends_on_a_step_in_finetuning_mode(tmp_path):
    loop, hooks = toy_loop(tmp_path, accumulation=3, cross=False, max_steps=8, eval_every="epoch")
    assert loop.schedule.steps_per_epoch == 4  # 3 + 3 + 3 + 1
    loop.run(max_grad_norm=0.0)
    assert [x for (x,) in hooks.seen] == [*range(10), *range(10)]
    assert [event[:2] for event in hooks.events] == [("eval", 4), ("eval", 8), ("checkpoint", 8)]
    assert [record["epoch"] for record in loop.progress.train_history] == [1.0, 2.0]  # logged at each evaluation


@pytest.mark.parametrize(("cross", "step", "position", "first"), [(True, 4, (1, 2), 2), (False, 5, (1, 3), 3)])
def test_a_resumed_progress_starts_at_its_exact_micro_batch(tmp_path, cross, step, position, first):
    loop, hooks = toy_loop(tmp_path, 3, cross, max_steps=step + 1, progress=TrainingProgress(step=step))
    assert loop.start_position() == position  # (epoch, micro-batches of it already consumed)
    loop.run(max_grad_norm=1.0)
    assert hooks.seen[0] == [first]


def test_checkpoints_fall_where_the_schedule_says(tmp_path):
    loop, hooks = toy_loop(tmp_path, accumulation=1, cross=True, max_steps=5, eval_every=100, checkpoint_every=2)
    loop.run(max_grad_norm=1.0)
    assert [event for event in hooks.events if event[0] == "checkpoint"] == [
        ("checkpoint", 2),
        ("checkpoint", 4),
        ("checkpoint", 5),
    ]
    marker = json.loads((tmp_path / "checkpoints" / "step_00000005" / "checkpoint_complete.json").read_text())
    assert marker["step"] == 5
    assert loop.progress.running_count == 0 and len(loop.progress.running_loss) == 1


# ---------------------------------------------------------------------------------------------------------------------
# Entry points.


@pytest.mark.parametrize(
    "script",
    [
        "pretrain",
        "finetune",
        "finetune_trainer",
        "ablation",
        "generate",
        "evaluate_zero_shot",
        "benchmark",
        "train_tokenizer",
    ],
)
def test_a_recipe_runs_as_a_script_path(script):
    result = subprocess.run(
        [sys.executable, f"recipes/{script}.py", "--help"], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--config" in result.stdout


def test_installed_entry_points_work_outside_the_repository(tmp_path):
    """The installed package is `gpt_origins_recipes` (not a bare `recipes`), with console scripts."""
    result = subprocess.run(
        [sys.executable, "-m", "gpt_origins_recipes.finetune", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    bare = subprocess.run([sys.executable, "-c", "import recipes"], capture_output=True, text=True, cwd=tmp_path)
    assert bare.returncode != 0  # nothing called `recipes` in site-packages
    script = shutil.which("gpt-origins-pretrain")
    if script is None:
        pytest.skip("gpt-origins is not installed with its console scripts in this environment")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0 and "--config" in result.stdout, result.stderr[-2000:]


def test_console_scripts_exit_0_after_a_recipe_that_returns_its_results(monkeypatch):
    """`sys.exit(main())` would print a returned dict and exit 1: the scripts' targets return None."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts and all(target.startswith("gpt_origins_recipes.cli:") for target in scripts.values())
    for target in scripts.values():
        recipe = target.split(":")[1]
        module = importlib.import_module(f"recipes.{recipe}")
        monkeypatch.setattr(module, "main", lambda argv=None: {"results": 1})
        assert getattr(cli, recipe)() is None


def test_accelerate_launch_of_the_script_with_the_demo_config(tmp_path):
    """`accelerate launch recipes/pretrain.py --config pretrain-demo-gpt2`, shortened to 3 steps on a small corpus."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1"]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "--cpu", "recipes/pretrain.py"]
    command += ["--config", "pretrain-demo-gpt2", "--train_file", str(small_corpus(tmp_path)), "--vocab_size", "400"]
    command += ["--max_steps", "3", "--eval_steps", "3", "--max_eval_samples", "8", "--num_samples", "1"]
    command += ["--sample_length", "4", "--block_size", "32", "--output_dir", str(tmp_path / "run")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["hyperparameters"]["learning_rate"] == 1e-3  # the demo config's
    assert history["hyperparameters"]["config_overrides"].startswith("n_layer=4")
    assert [record["step"] for record in history["eval_history"]] == [0, 3]
    assert "--- sample ---" in result.stdout


# ---------------------------------------------------------------------------------------------------------------------
# Run configs.

RECIPES = {"pretrain": pretrain.parse_args, "finetune": finetune_options.parse_args}
REQUIRED = {
    "finetune": ["--task_type", "classification", "--model_name_or_path", "tiny"],
    "ablation": ["--pretrained", "runs/pretrain-gpt1"],
}


def configs_of(prefix: str) -> list[str]:
    return sorted(name for name, path in run_configs().items() if path.parent.name == prefix)


@pytest.mark.parametrize("name", configs_of("pretrain") + configs_of("finetune") + configs_of("ablation"))
def test_every_training_run_config_parses_with_its_recipe(name):
    recipe = name.split("-")[0]
    values = yaml.safe_load(run_configs()[name].read_text())
    if recipe == "ablation":
        (args,) = parse_arguments([ablation.AblationArguments], ["--config", name, *REQUIRED[recipe]])
    else:
        args = RECIPES[recipe](["--config", name, *REQUIRED.get(recipe, [])])
    for key, value in values.items():
        assert getattr(args, key) == value or str(getattr(args, key)) == str(value), key  # "1000" for 1000


def test_a_run_config_is_overridden_by_the_command_line_and_checked():
    args = pretrain.parse_args(["--config", "pretrain-gpt2-124M", "--max_steps", "1000", "--learning_rate", "1e-4"])
    assert (args.max_steps, args.learning_rate, args.preset) == (1000, 1e-4, "124M")
    with pytest.raises(SystemExit):
        pretrain.parse_args(["--config", "multi_gpu"])  # an Accelerate launch config is not a run config
    with pytest.raises(SystemExit):
        pretrain.parse_args(["--config", "no-such-config"])


BAD_OPTIONS = [
    (["--learning_rate", "0"], "--learning_rate must be a finite number > 0, got 0.0"),
    (["--weight_decay", "-0.1"], "--weight_decay must be at least 0, got -0.1"),
    (["--embedding_lr_scale", "0"], "--embedding_lr_scale must be a finite number > 0, got 0.0"),
    (["--adam_beta2", "1"], "--adam_beta2 must be in [0, 1), got 1.0"),
    (["--max_grad_norm", "-1"], "--max_grad_norm must be at least 0, got -1.0"),
    (["--num_warmup_steps", "-1"], "--num_warmup_steps must be at least 0, got -1"),
    (["--num_warmup_steps", "50", "--max_steps", "10"], "--num_warmup_steps 50 is more than --max_steps 10"),
    (["--warmup_ratio", "1.5"], "--warmup_ratio must be in [0, 1), got 1.5"),
    (["--checkpoints_total_limit", "0"], "--checkpoints_total_limit must be at least 1, got 0"),
    (["--checkpointing_steps", "-3"], "--checkpointing_steps must be \"epoch\" or a number of steps >= 0, got '-3'"),
    (["--eval_strategy", "sometimes"], "--eval_strategy must be one of ('steps', 'epoch'), got 'sometimes'"),
    (["--mixed_precision", "fp64"], "--mixed_precision must be one of"),
    (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be at least 1, got 0"),
]


@pytest.mark.parametrize(("recipe", "required"), [("pretrain", []), ("finetune", REQUIRED["finetune"])])
@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_a_bad_shared_option_stops_both_recipes_at_parse_time(recipe, required, options, message, capsys):
    with pytest.raises(SystemExit) as raised:
        RECIPES[recipe]([*required, *options])
    assert raised.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--model_type", "gpt3"], "--model_type must be one of ['gpt2', 'gpt1'], got 'gpt3'"),
        (["--preset", "tiny", "--block_size", "1"], "--block_size must be at least 2, got 1"),
        (["--preset", "tiny", "--checkpointing_steps", "epoch"], '"epoch" is fine-tuning\'s'),
        (["--preset", "tiny", "--validation_split_percentage", "100"], "must be in (0, 100), got 100.0"),
        (["--config", "pretrain-demo-gpt2", "--num_samples", "-1"], "--num_samples must be at least 0, got -1"),
    ],
)
def test_pretraining_options_are_checked_at_parse_time(options, message, capsys):
    with pytest.raises(SystemExit) as raised:
        pretrain.parse_args(options)
    assert raised.value.code == 2 and message in capsys.readouterr().err


def test_a_run_config_with_an_unknown_key_is_refused(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("preset: tiny\nlearning_rat: 1.0e-3\n")
    with pytest.raises(SystemExit):
        pretrain.parse_args(["--config", str(config)])
    assert "sets ['learning_rat'], which are not options of this recipe" in capsys.readouterr().err


def test_a_compiled_model_saves_under_its_own_weight_names(tmp_path):
    """`--torch_compile`: Accelerate's unwrapping keeps torch.compile's wrapper, whose state dict says
    "_orig_mod.<name>"; the saved folder holds the model's own names and loads (the wrapper compiles lazily: nothing
    is compiled here)."""
    from accelerate import Accelerator
    from transformers import AutoModelForCausalLM

    from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel, load_gpt2_tokenizer

    AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(cpu=True)
    model = GPT2OriginsLMHeadModel(GPT2OriginsConfig.from_preset("tiny"))
    compiled = torch.compile(model)
    assert all(name.startswith("_orig_mod.") for name in accelerator.get_state_dict(compiled))
    engine.save_model(accelerator, compiled, load_gpt2_tokenizer(), tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert type(loaded) is GPT2OriginsLMHeadModel
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert engine.bare_model(accelerator, compiled) is model
    AcceleratorState._reset_state(reset_partial_state=True)
