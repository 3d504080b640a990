"""The one exception the recipes raise for bad input, so `main()` can print it as a one-line error and exit."""


class RecipeError(ValueError):
    """A bad argument, file, tokenizer or checkpoint, found before any training time is spent.

    The message names the value and the limit it broke. `main()` prints it as `error: ...` and exits with status 2,
    like argparse does; any other exception is a bug and keeps its traceback.
    """


__all__ = ["RecipeError"]
