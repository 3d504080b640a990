"""The console scripts (`gpt-origins-<recipe>`, pyproject.toml). A recipe's `main()` returns its results for callers in
Python; a console script hands its return value to `sys.exit`, which would print a dict and exit with status 1, so each
script runs `main()` and returns None (exit 0). Errors still exit with status 2 from inside `main()`."""

from importlib import import_module


def _script(recipe: str):
    def run() -> None:
        import_module(f"{__package__}.{recipe}").main()

    run.__name__ = recipe
    return run


pretrain = _script("pretrain")
finetune = _script("finetune")
finetune_trainer = _script("finetune_trainer")
ablation = _script("ablation")
generate = _script("generate")
evaluate_zero_shot = _script("evaluate_zero_shot")
zero_shot_probe = _script("zero_shot_probe")
benchmark = _script("benchmark")
train_tokenizer = _script("train_tokenizer")
prepare_data = _script("prepare_data")
