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


def run_cli(
    arguments: type, run: Callable, argv=None, *, prog: str, description: str | None = None, default_config=None
):
    """`run(args)` for the instance of the dataclass `arguments` that `argv` gives; `default_config(namespace)` names a
    run config for a command line without `--config`."""
    (args,) = parse_arguments([arguments], argv, prog=prog, description=description, default_config=default_config)
    try:
        return run(args)
    except RecipeError as error:
        exit_with_error(prog, error)


__all__ = ["run_cli"]
