"""recipes/arguments.py and the options of generate, evaluate_zero_shot, benchmark and train_tokenizer: run configs
load with their recipe's parser, the command line overrides a config, and every range check names the option, the
value and the limit before any work is done."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from recipes.arguments import CONFIGS, is_launch_config, parse_arguments


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
    launch = sorted(path.stem for path in CONFIGS.glob("*.yaml") if is_launch_config(path))
    assert "single_gpu" in launch
    with pytest.raises(SystemExit) as exit_info:
        parse_arguments([Toy], ["--task", "x", "--config", "single_gpu"])
    assert exit_info.value.code == 2 and "is an Accelerate launch config" in capsys.readouterr().err
