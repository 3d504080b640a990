"""The main block of every recipe: parse the options, run, and turn a `RecipeError` into a one-line error.

    def main(argv=None):
        return run_cli(PretrainArguments, training_function, argv, prog=PROG, description=__doc__)

Options are read by `arguments.parse_arguments` (dataclass defaults, then `--config`, then the command line; a bad one
exits with status 2 before anything runs); a `RecipeError` raised while running exits with status 2 and the message
(`errors.exit_with_error`); any other exception is a bug and keeps its traceback. `main()` returns what the run
returns, for callers in Python (the console scripts of recipes/cli.py drop it).
"""

from collections.abc import Callable

from .arguments import parse_arguments
from .errors import RecipeError, exit_with_error


def run_cli(arguments, run: Callable, argv=None, *, prog: str, description: str | None = None, default_config=None):
    """`run(args)` for the options `argv` gives an instance of the dataclass `arguments` (a list of dataclasses gives
    `run` a tuple of instances); `default_config(namespace)` names a run config for a command line without
    `--config`."""
    many = isinstance(arguments, (list, tuple))
    parsed = parse_arguments(
        list(arguments) if many else [arguments], argv, prog=prog, description=description,
        default_config=default_config,
    )  # fmt: skip
    try:
        return run(parsed if many else parsed[0])
    except RecipeError as error:
        exit_with_error(prog, error)


__all__ = ["run_cli"]
