"""recipes/core/arguments.py and the options of generate, evaluate_zero_shot, benchmark and train_tokenizer: run
configs
load with their recipe's parser, the command line overrides a config, and every range check names the option, the
value and the limit before any work is done."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from recipes.core.arguments import LAUNCH_CONFIGS, parse_arguments, run_configs


@dataclass
class Toy:
    task: str = "default"
    flag: bool = True
    switch: bool = False
    prompt: list[str] | None = field(default=None, metadata={"action": "extend"})
    sizes: list[int] = field(default_factory=lambda: [1, 2])


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return str(path)


def test_config_booleans_set_the_value_they_say(tmp_path):
    (toy,) = parse_arguments([Toy], ["--config", write(tmp_path, "task: x\nflag: false\nswitch: true\n")])
    assert toy.flag is False and toy.switch is True
    (toy,) = parse_arguments([Toy], ["--config", write(tmp_path, "task: x\nflag: true\nswitch: false\n")])
    assert toy.flag is True and toy.switch is False


def test_the_command_line_overrides_the_config(tmp_path):
    config = write(tmp_path, "task: from-config\nprompt: [a, b]\nsizes: [7, 8]\n")
    (toy,) = parse_arguments([Toy], ["--config", config])
    assert toy == Toy(task="from-config", prompt=["a", "b"], sizes=[7, 8])
    (toy,) = parse_arguments([Toy], ["--config", config, "--task", "typed", "--prompt", "c", "--sizes", "3"])
    assert toy == Toy(task="typed", prompt=["c"], sizes=[3])  # replaced, not added to the config's
    (toy,) = parse_arguments([Toy], ["--task", "t", "--prompt", "a", "--prompt", "b", "c"])
    assert toy.prompt == ["a", "b", "c"]


def test_launch_configs_are_not_run_configs(capsys):
    launch = sorted(path.stem for path in LAUNCH_CONFIGS.glob("*.yaml"))
    assert "single_gpu" in launch and not set(launch) & set(run_configs())
    with pytest.raises(SystemExit) as exit_info:
        parse_arguments([Toy], ["--task", "x", "--config", str(LAUNCH_CONFIGS / "single_gpu.yaml")])
    assert exit_info.value.code == 2 and "is an Accelerate launch config" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # by name, only run configs are found
        parse_arguments([Toy], ["--task", "x", "--config", "single_gpu"])
    assert exit_info.value.code == 2 and "nor the name of a run config" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------------
# the run configs of these recipes: each loads with its recipe's parser (parsed only, nothing runs)


def recipe_of(config: Path):
    """The options of the recipe a run config is for, by its name's prefix (benchmark-*.yaml: recipes.benchmark)."""
    from recipes import benchmark

    return {"benchmark": [benchmark.BenchmarkArguments]}[config.stem.split("-")[0]]


@pytest.mark.parametrize(
    "config",
    sorted(path for path in run_configs().values() if path.parent.name == "benchmark"),
    ids=lambda path: path.stem,
)
def test_run_configs_load_with_their_recipe(config):
    assert config.parent.name == "benchmark"
    parsed = parse_arguments(recipe_of(config), ["--config", config.stem])
    by_path = parse_arguments(recipe_of(config), ["--config", str(config)])
    assert parsed == by_path and parsed[0].output_dir.startswith("runs/bench/")


def test_the_benchmark_runs_of_the_docs_have_their_configs():
    """Every run recorded in docs/BENCHMARKS.md is one `--config` command."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "BENCHMARKS.md").read_text()
    for name in ("gpt2-fp32", "gpt1-fp32", "gpt2-bf16", "gpu-bf16"):
        assert run_configs()[f"benchmark-{name}"].is_file()
        assert f"python -m recipes.benchmark --config benchmark-{name}" in docs


@pytest.mark.parametrize("flag", ["--no_flag_on", "--no-flag_on", "--no-flag-on"])
def test_every_spelling_of_a_negative_boolean(flag):
    """HfArgumentParser's two spellings and argparse's BooleanOptionalAction's (the recipes' old options)."""

    @dataclass
    class Flags:
        flag_on: bool = True

    assert parse_arguments([Flags], [flag]) == (Flags(flag_on=False),)
