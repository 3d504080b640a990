"""Zero-shot evaluation (Radford et al. 2019, section 3): a task posed as text to continue, scored by likelihood.

`evaluation_function(args)` runs one task of recipes/evaluate_zero_shot.py on one model: it reads and checks the data
(zero_shot_data.py, then the task's module: perplexity.py, lambada.py, multiple_choice.py, hellaswag.py), the model's
config and tokenizer (recipes/models/loading.py) and every request (scoring.py) before the weights are read, then
scores the requests in batches under Accelerate, writes the results as JSON and prints them as a table.
"""

import json
import os
import re
import time
from pathlib import Path

from accelerate import Accelerator

from ..core.accelerators import has_accelerator
from ..core.errors import RecipeError
from ..data.corpus import check_files_exist
from ..models.families import is_preset
from ..models.loading import load_config_and_tokenizer_by_name, load_model_by_name
from .hellaswag import hellaswag_examples, prepare_hellaswag
from .lambada import lambada_examples, prepare_lambada
from .multiple_choice import PREDICTIONS, multiple_choice_examples, prepare_multiple_choice
from .perplexity import prepare_perplexity
from .scoring import check_window, score_requests
from .zero_shot_data import data_source, load_rows, load_texts

TASKS = ("perplexity", "lambada", "multiple_choice", "hellaswag")
MIXED_PRECISION = ("no", "fp16", "bf16")
# The options that only some tasks read: given (other than their default) for another task, they would be ignored.
TASK_OPTIONS = {
    "join_with": ("perplexity",),
    "stride": ("perplexity",),
    "text_column": ("perplexity", "lambada"),
    **dict.fromkeys(
        ("template", "label_choices", "choices_column", "label_column", "normalize"), ("multiple_choice",)
    ),
}


def read_data(args):
    """The task's texts or examples, read and checked: no tokenizer or model is needed for that, so a bad file is
    found before a model is downloaded."""
    if args.task == "perplexity":
        return load_texts(args)
    if args.task == "lambada":
        return lambada_examples(load_rows(args), args.text_column, data_source(args))
    if args.task == "hellaswag":
        return "hellaswag", None, hellaswag_examples(load_rows(args), data_source(args))
    return multiple_choice_examples(load_rows(args), args, data_source(args))


PREPARE = {
    "perplexity": prepare_perplexity,
    "lambada": prepare_lambada,
    "multiple_choice": prepare_multiple_choice,
    "hellaswag": prepare_hellaswag,
}


def format_table(results: dict) -> str:
    rows = [
        (name, f"{value:.4f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else value)
        for name, value in results["metrics"].items()
    ]
    width = max(len(name) for name, _ in rows)
    head = f"Zero-shot {results['task']}: {results['model']} on {results['data']}"
    lines = [head, "-" * min(len(head), 119)]
    lines += [f"{name:<{width}}  {value:>14}" for name, value in rows]
    lines.append(f"({results['seconds']:.1f} s on {results['device']})")
    return "\n".join(lines)


def check_output_file(path: Path):
    """The results can be written: `path` is not a folder, and its nearest existing parent is a writable folder (the
    scoring is not spent on results that cannot be saved)."""
    if path.is_dir():
        raise RecipeError(f"--output_file {os.fspath(path)!r} is a folder: name the JSON file to write.")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise RecipeError(
            f"--output_file {os.fspath(path)!r} cannot be written: {os.fspath(parent)!r} is not a writable folder."
        )


def default_output_file(args) -> Path:
    model = re.sub(r"[^A-Za-z0-9._-]+", "--", args.model.strip("/")).strip("-.") or "model"
    return Path("runs") / "zero-shot" / f"{args.task}-{model}.json"


def evaluation_function(args) -> dict:
    """Runs `args.task` on `args.model` (`ZeroShotArguments` of recipes/evaluate_zero_shot.py): reads and checks the
    data, the model's config and tokenizer and every request before the weights load, scores the requests, writes
    the results to the output file, prints them as a table and returns them."""
    check_files_exist(args.data_file, "--data_file")
    output_file = Path(args.output_file) if args.output_file else default_output_file(args)
    check_output_file(output_file)
    # Without an accelerator, `accelerate launch` / torchrun processes form a gloo group only with cpu=True.
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=args.cpu or not has_accelerator())
    # Every check before the weights are read: the data, the window against the model's config, every request.
    data = read_data(args)
    config, tokenizer = load_config_and_tokenizer_by_name(args.model)
    window = check_window(args, config, tokenizer)
    requests, finish = PREPARE[args.task](args, data, tokenizer, window)  # tokenised, each fitted to the window

    model = accelerator.prepare_model(load_model_by_name(args.model, args.seed), evaluation_mode=True)
    if is_preset(args.model, "gpt2"):
        accelerator.print(f"--model {args.model}: a random {args.model} GPT-2 (a smoke run, expect chance level).")
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    start = time.perf_counter()
    scores = score_requests(
        model, requests, accelerator, args.per_device_eval_batch_size, pad_token_id, args.padding_side, args.task
    )
    metrics = finish(scores)
    predictions = metrics.pop(PREDICTIONS, None)
    results = {
        "task": args.task,
        "model": args.model,
        "data": data_source(args),
        "metrics": metrics,
        "predictions": predictions,
        "settings": {
            "max_length": window,
            "stride": (args.stride or window) if args.task == "perplexity" else None,
            "add_start_token": args.add_start_token,
            "max_samples": args.max_samples,
            "join_with": args.join_with,
            "template": data[1] if args.task == "multiple_choice" else None,
            "mixed_precision": accelerator.mixed_precision,
        },
        "seconds": time.perf_counter() - start,
        "device": str(accelerator.device),
        "num_processes": accelerator.num_processes,
    }
    if accelerator.is_main_process:
        output_file.parent.mkdir(parents=True, exist_ok=True)
        output_file.write_text(json.dumps(results, indent=1) + "\n")
    accelerator.print(format_table(results))
    accelerator.print(f"Results: {output_file}")
    return results


__all__ = ["MIXED_PRECISION", "TASKS", "TASK_OPTIONS", "evaluation_function"]
