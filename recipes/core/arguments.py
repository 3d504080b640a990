"""Recipe options as dataclasses, read from the command line and from YAML run configs.

Every recipe declares its options as dataclasses (one field per option, its default and its help in one place, its
range checks in `__post_init__`) and parses them with `parse_arguments`, which builds on transformers'
`HfArgumentParser`. The precedence is: the dataclass defaults, then the run config (`--config FILE.yaml`, or the name
of a run config in `recipes/configs/<recipe>/`, e.g. `--config pretrain-demo-gpt1`), then the command line:

    python -m recipes.pretrain --config recipes/configs/pretrain/pretrain-gpt2-124M.yaml --max_steps 200

A run config is a flat YAML mapping of option names to values. A key that is not an option of the recipe, or a value
of the wrong type, is an error naming the key, the file and the options; so is a bad value on the command line. The
checks run before the recipe does any work, and nothing changes the parsed options afterwards.
"""

import argparse
import math
import os
import sys
from pathlib import Path

import yaml
from transformers import HfArgumentParser

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# Accelerate's launch configs (`accelerate launch --config_file recipes/configs/launch/NAME.yaml`): not run configs.
LAUNCH_CONFIGS = CONFIGS / "launch"


def run_configs() -> dict[str, Path]:
    """Every run config by name: `recipes/configs/<recipe>/<name>.yaml` (names are unique across the recipes)."""
    return {
        path.stem: path
        for folder in sorted(CONFIGS.iterdir())
        if folder.is_dir() and folder != LAUNCH_CONFIGS
        for path in sorted(folder.glob("*.yaml"))
    }


def config_path(name: str | os.PathLike) -> Path:
    """A run config by path, or by name (with or without `.yaml`) among `run_configs()`."""
    path = Path(name)
    if path.is_file():
        return path
    known = run_configs()
    stem = path.name[: -len(".yaml")] if path.name.endswith(".yaml") else path.name
    if path.parent == Path(".") and stem in known:
        return known[stem]
    raise FileNotFoundError(
        f"--config {os.fspath(name)!r} is neither a YAML file nor the name of a run config in {CONFIGS}/<recipe>/ "
        f"({sorted(known)})"
    )


def read_config(name: str | os.PathLike) -> dict:
    path = config_path(name)
    if path.resolve().parent == LAUNCH_CONFIGS:
        raise ValueError(
            f"{os.fspath(path)!r} is an Accelerate launch config: give it to `accelerate launch --config_file`, and a "
            f"run config (recipes/configs/<recipe>/*.yaml) to --config."
        )
    try:
        with open(path) as file:
            values = yaml.safe_load(file) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{os.fspath(path)!r} is not valid YAML: {error}") from None
    if not isinstance(values, dict) or not all(isinstance(key, str) for key in values):
        raise ValueError(
            f"{os.fspath(path)!r} must be a mapping of option names to values, got {type(values).__name__}"
        )
    return values


def _check_config_keys(parser: argparse.ArgumentParser, values: dict, source: str):
    known = {action.dest for action in parser._actions if action.dest != "help"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{source} sets {unknown}, which are not options of this recipe; known: {sorted(known)}")


def _as_argv(parser: argparse.ArgumentParser, values: dict) -> list[str]:
    """A run config as command-line words, so that its values are converted and checked exactly like typed ones."""
    actions = {}
    for action in parser._actions:  # the option itself: a bool field's `--no_NAME` (same dest) is added after it
        actions.setdefault(action.dest, action)
    argv = []
    for key, value in values.items():
        action = actions[key]
        flag = action.option_strings[0]
        if value is None:
            continue  # the dataclass default (None) stays
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            if not isinstance(value, bool):
                raise ValueError(f"option {key!r} must be true or false, got {value!r}")
            if value != action.default:
                argv.append(flag)
            continue
        if isinstance(value, dict):
            raise ValueError(f"option {key!r} takes a value, not a mapping ({value!r})")
        if action.nargs in ("+", "*"):
            items = value if isinstance(value, list) else [value]
            argv += [flag, *(str(item) for item in items)]
        elif isinstance(value, list):
            raise ValueError(f"option {key!r} takes one value, got the list {value!r}")
        else:
            argv += [flag, str(value).lower() if isinstance(value, bool) else str(value)]
    return argv


def parse_arguments(dataclass_types, argv=None, prog=None, description=None, default_config=None):
    """Parses `argv` (default: sys.argv[1:]) into one instance of each dataclass type.

    `default_config(namespace) -> name or None`: a run config to use when the command line gives no `--config` (the
    pre-training recipe runs its CPU demo that way). A bad option, config or value exits with status 2 and a one-line
    message, like argparse.
    """
    parser = HfArgumentParser(
        dataclass_types, prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # argparse's BooleanOptionalAction spelling (`--no-with_tracking`) for HfArgumentParser's `--no_with_tracking`;
    # the parser's own options (its `--no-with-tracking` alias) stay as they are.
    argv = [
        f"--no_{word[5:]}" if word.startswith("--no-") and word not in parser._option_string_actions else word
        for word in list(sys.argv[1:] if argv is None else argv)
    ]
    for action in parser._actions:  # a help text is a %-format for argparse: "train[:10%]" must not break --help
        if action.help and "%(" not in action.help:
            action.help = action.help.replace("%%", "%").replace("%", "%%")
    parser.add_argument(
        "--config",
        default=None,
        help="a YAML run config (a file, or a name in recipes/configs/<recipe>/); the command line overrides it",
    )
    required = [action for action in parser._actions if action.required]
    for action in required:  # a required option may come from the run config: checked once that is read
        action.required = False
    help_words = {"-h", "--help"} & set(argv)  # help is printed by the full parse, which shows what is required
    given, _ = parser.parse_known_args([word for word in argv if word not in help_words])
    for action in required:
        action.required = True
    name = given.config
    if name is None and default_config is not None:
        name = default_config(given)
    config_argv = []
    if name is not None:
        try:
            values = read_config(name)
            _check_config_keys(parser, values, f"--config {os.fspath(name)!r}")
            # An option the command line gives is left out of the config's words: for an option that collects its
            # values (`action="extend"`, e.g. generate's --prompt) both would add up instead of the last one winning.
            on_command_line = {key for key, value in vars(given).items() if value != parser.get_default(key)}
            config_argv = _as_argv(parser, {key: value for key, value in values.items() if key not in on_command_line})
            for action in required:
                action.required = action.dest not in values
        except (OSError, ValueError) as error:
            parser.error(str(error))
    try:
        # The config first, the command line after it: the last value given wins.
        parsed = parser.parse_args_into_dataclasses(args=[*config_argv, *argv], look_for_args_file=False)
    except (ValueError, TypeError) as error:  # a `__post_init__` check
        parser.error(str(error))
    return parsed[:-1] if len(parsed) > len(dataclass_types) else parsed


def at_least(name: str, value, minimum):
    """The range checks of `__post_init__`: `value` (when given) must be a finite number >= `minimum` (NaN fails every
    comparison, so it is refused by name)."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"--{name} must be a finite number, got {value}")
    if value < minimum:
        raise ValueError(f"--{name} must be at least {minimum}, got {value}")
