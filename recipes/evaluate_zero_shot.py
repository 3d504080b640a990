"""Zero-shot evaluation of a GPT-2 (or GPT-1): perplexity, LAMBADA last-word accuracy, multiple choice, HellaSwag.

GPT-2's claim (Radford et al. 2019, section 3) is that a language model does tasks it was never trained for when
they are posed as text to continue. This recipe measures that four ways, chosen by `--task`, on a saved GPT-2 or
GPT-1 folder (a pre-training run's, a fine-tuned GPT-1's; its config.json names the family, recipes/models/families.py
loads it), a Hub model (`--model openai-community/gpt2`; transformers' own GPT-2 and GPT-1 checkpoints load as they
are), or a GPT-2 preset of the paper's sizes with random weights (`--model tiny`, for smoke runs without the Hub):

    python -m recipes.evaluate_zero_shot --task perplexity --model openai-community/gpt2 \\
        --dataset_name Salesforce/wikitext --dataset_config_name wikitext-2-raw-v1 --join_with '\\n'
    python -m recipes.evaluate_zero_shot --task lambada --model openai-community/gpt2 \\
        --dataset_name EleutherAI/lambada_openai --dataset_config_name en
    python -m recipes.evaluate_zero_shot --task multiple_choice --model runs/pretrain-gpt2 \\
        --data_file tests/fixtures/tasks/entailment-presuppositions.jsonl
    python -m recipes.evaluate_zero_shot --task hellaswag --model openai-community/gpt2 --no-add_start_token

Every scored sequence starts with the tokenizer's start token (GPT-2's `<|endoftext|>`, GPT-1's `_start_`), as the
model saw documents start in pre-training (`--no-add_start_token` leaves it out), and is cut to `--max_length`
tokens (default: the model's `n_positions`), keeping the end.

- `perplexity`: the texts (`--data_file`/`--text_file`: `.txt` = one document per file, `.jsonl`/`.csv`/`.parquet` =
  one per record, column `--text_column`; or a Hub dataset) are scored document by document: every document is its
  own token stream (`[start] + tokens`), so no document is conditioned on another; `--join_with TEXT` instead joins
  all documents with TEXT into one stream first (WikiText's rows are lines of one article file: `--join_with '\\n'`).
  A stream longer than the window is scored with a sliding window (the transformers guide "Perplexity of
  fixed-length models"): each window of `--max_length` tokens predicts the `--stride` tokens at its end, the tokens
  before them are context only (label -100), so every token is scored exactly once, with at least
  `max_length - stride` tokens of context. Unlike the guide's loop, a window here holds `max_length` inputs and
  its first scored token is predicted from the token before it, so `--stride` = `--max_length` leaves no token
  unscored. Reported: NLL per token (nats), perplexity, token count, and bits per byte (total NLL in bits over the
  UTF-8 bytes of the texts, which does not depend on the tokenizer).
- `lambada`: the context is each text up to its last word, the target is the last word with its leading space
  (" word", as GPT-2's BPE writes words inside a sentence). Correct when greedy decoding reproduces every target
  token, that is when the argmax at each target position, given the true prefix, is the target token. Reported:
  accuracy and the last-word perplexity (exp of the mean NLL of the whole word, as lm-evaluation-harness does).
- `multiple_choice`: rows `{context, choices, label}` (label = index of the right choice) or entailment rows
  `{premise, hypothesis, label}`, which become a multiple choice over the label names through `--template` and
  `--label_choices` ("premise / Question: hypothesis True, False or Neither? / Answer:" and " True", " Neither",
  " False" by default), or classification rows `{text, label}`, a choice among the class names ("text very" and
  " negative", " positive" for sentiment by default: GPT-1's zero-shot heuristic, section 5). Each choice is
  scored by its log-likelihood given the prompt, summed over its tokens (`none`), divided by its token count
  (`tokens`) or by its length in characters (`chars`); the highest scoring choice is the prediction, and an accuracy
  is reported for every `--normalize` given.
- `hellaswag`: HellaSwag's rows (Zellers et al. 2019; the Hub's `Rowan/hellaswag`, `validation` split, by default;
  `--dataset_name`/`--dataset_split` or a `--data_file` of rows with its columns instead) as lm-evaluation-harness
  poses them: the prompt is "activity_label: ctx_a Ctx_b" (ctx_b through `str.capitalize`), the choices are the four
  endings, each after a space, prompt and endings cleaned of WikiHow's tags (" [title]" becomes ". ", other
  "[...]" tags go, double spaces become one), the answer is int(label). Scored as `multiple_choice` is; reported:
  `acc` (summed log-likelihood) and `acc_norm` (per character of the cleaned ending), the harness's two figures
  (it adds no start token: `--no-add_start_token` for its numbers). Unlabelled rows (the test split) are refused.

All choices and windows of a task are scored in batches of `--per_device_eval_batch_size` sequences, sorted by
length, padded on `--padding_side` with an attention mask and position ids counted over the real tokens, under
`torch.inference_mode`, on the device Accelerate picks (`accelerate launch` splits the batches over processes).
The results go to `--output_file` (JSON, default runs/zero-shot/<task>-<model>.json) and are printed as a table.
Options can also come from a YAML run config (`--config FILE`, recipes/core/arguments.py); the command line overrides
it. A bad option, file, row or checkpoint stops the recipe with a one-line error (exit status 2) before any scoring.
"""

if __name__ == "__main__" and not __package__:  # a script path: `python recipes/evaluate_zero_shot.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)

import inspect
import json
import math
import os
import re
import string
import time
from dataclasses import MISSING, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import NamedTuple

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from datasets import Dataset, concatenate_datasets, load_dataset
from tqdm.auto import tqdm

import modeling_gpt2

from .core.arguments import at_least, parse_arguments
from .core.errors import RecipeError, exit_with_error
from .core.options import option
from .data.corpus import builder_for, check_files_exist, load_documents
from .models.families import (
    family_of,
    load_causal_lm,
    load_config,
    load_tokenizer_for,
    preset_model,
    preset_tokenizer,
)

PROG = "python -m recipes.evaluate_zero_shot"

TASKS = ("perplexity", "lambada", "multiple_choice", "hellaswag")
PREDICTIONS = "predictions"  # multiple choice: results.json's row-by-row predictions, beside the metrics
NORMALIZATIONS = ("none", "tokens", "chars")
PADDING_SIDES = ("right", "left")
MIXED_PRECISION = ("no", "fp16", "bf16")
MULTIPLE_CHOICE_TEMPLATE = "{context}"
ENTAILMENT_TEMPLATE = "{premise}\\nQuestion: {hypothesis} True, False or Neither?\\nAnswer:"
# GPT-1's zero-shot sentiment heuristic (Radford et al. 2018, section 5): "append the token very to each example and
# restrict the language model's output distribution to only the words positive and negative".
CLASSIFICATION_TEMPLATE = "{text} very"
# Label names in the order of their ids in MNLI, SNLI and RTE-style data (0 = entailment), each with its answer.
ENTAILMENT_CHOICES = '{"entailment": " True", "neutral": " Neither", "contradiction": " False"}'
# The options that only some tasks read: given (other than their default) for another task, they would be ignored.
TASK_OPTIONS = {
    "join_with": ("perplexity",),
    "stride": ("perplexity",),
    "text_column": ("perplexity", "lambada"),
    **dict.fromkeys(
        ("template", "label_choices", "choices_column", "label_column", "normalize"), ("multiple_choice",)
    ),
}
HUB_OPTIONS = ("dataset_config_name", "dataset_split")  # read with --dataset_name only
DEFAULT_SPLIT = "test"
# HellaSwag (Zellers et al. 2019): its Hub copy, and the split with answers (the test split's labels are held out).
HELLASWAG_DATASET, HELLASWAG_SPLIT = "Rowan/hellaswag", "validation"
HELLASWAG_COLUMNS = ("activity_label", "ctx_a", "ctx_b", "endings", "label")
# Its two accuracies, named as lm-evaluation-harness names them: the summed log-likelihood of each ending (acc) and
# that sum per character of the cleaned ending (acc_norm).
HELLASWAG_ACCURACIES = {"acc": "none", "acc_norm": "chars"}


# ---------------------------------------------------------------------------------------------------------------------
# Model and tokenizer


def is_preset(model: str) -> bool:
    # Only the size names: "gpt2", "gpt2-medium", ... are also Hub names, of the released weights.
    return model in modeling_gpt2.PRESETS and not Path(model).exists()


def load_config_and_tokenizer(args):
    """`--model`'s config and tokenizer, no weights: a GPT-2 preset name (OpenAI's tokenizer), else a GPT-2 or GPT-1
    folder or Hub name (recipes/models/families.py: its config.json names the family), with the folder's tokenizer (a
    GPT-2 folder without one: OpenAI's)."""
    if is_preset(args.model):
        return modeling_gpt2.GPT2OriginsConfig.from_preset(args.model), preset_tokenizer("gpt2")
    try:
        family_of(args.model)
    except RecipeError as error:
        presets = ", ".join(modeling_gpt2.PRESETS)
        raise RecipeError(f"--model {args.model!r} is neither a preset ({presets}) nor a model: {error}") from error
    _, config = load_config(args.model)
    try:
        return config, load_tokenizer_for(args.model)
    except RecipeError:
        raise
    except (OSError, ValueError) as error:
        raise RecipeError(f"--model {args.model!r} does not load: {' '.join(str(error).split())}") from error


def load_model(args):
    """`--model`'s weights (a preset's random ones, drawn from `--seed`)."""
    if is_preset(args.model):
        return preset_model("gpt2", args.model, args.seed)
    try:
        return load_causal_lm(args.model)
    except (OSError, ValueError) as error:
        raise RecipeError(f"--model {args.model!r} does not load: {error}") from error


def context_size(config) -> int:
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        if getattr(config, name, None):
            return getattr(config, name)
    raise RecipeError(f"The model config ({type(config).__name__}) gives no context size (n_positions).")


def check_window(args, config, tokenizer) -> int:
    """The window: `--max_length`, at most the model's context; the stride at most the window."""
    n_positions = context_size(config)
    window = args.max_length if args.max_length is not None else n_positions
    if window > n_positions:
        raise RecipeError(
            f"--max_length {window} is larger than the model's n_positions={n_positions}: the position table has no "
            f"row for the tokens past {n_positions}."
        )
    if args.stride is not None and args.stride > window:
        raise RecipeError(
            f"--stride {args.stride} is larger than the window of {window} tokens: the tokens between two windows "
            f"would never be scored. Use a stride of at most {window}."
        )
    if len(tokenizer) > config.vocab_size:
        raise RecipeError(
            f"The tokenizer has {len(tokenizer):,} tokens but the model's vocab_size is {config.vocab_size:,}: "
            f"use the tokenizer the model was trained with."
        )
    return window


def start_token_id(tokenizer, add_start_token: bool) -> list[int]:
    """[the token documents start with in pre-training]: the bos token (GPT-1's `_start_`), else eos (GPT-2)."""
    if not add_start_token:
        return []
    token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if token is None:
        raise RecipeError(
            "The tokenizer has neither a bos nor an eos token to start sequences with: pass --no-add_start_token."
        )
    return [token]


def encode(tokenizer, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    # verbose=False: long texts are cut into windows below, the tokenizer need not warn about model_max_length.
    return tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]


# ---------------------------------------------------------------------------------------------------------------------
# Data


def unescape(text: str) -> str:
    """`\\n`, `\\t`, ... typed on a command line, as the characters they stand for."""
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")


def data_source(args) -> str:
    if args.dataset_name:
        return args.dataset_name + "".join(
            f" ({part})" for part in (args.dataset_config_name, args.dataset_split) if part
        )
    return ", ".join(args.data_file)


def load_rows(args) -> Dataset:
    """The records of `--data_file` (.jsonl/.json/.csv/.parquet; .txt = one record per non-empty line, column
    `text`) or of a Hub dataset split, the first `--max_samples` of them."""
    if args.dataset_name:
        rows = load_dataset(args.dataset_name, args.dataset_config_name, split=args.dataset_split)
    else:
        parts = []
        for path in args.data_file:
            builder = builder_for(path)
            part = load_dataset(builder, data_files=[os.fspath(path)], split="train")
            if builder == "text":
                part = part.filter(lambda batch: [bool(text.strip()) for text in batch["text"]], batched=True)
            parts.append(part)
        rows = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    if args.max_samples is not None:
        rows = rows.select(range(min(args.max_samples, rows.num_rows)))
    if rows.num_rows == 0:
        raise RecipeError(f"{data_source(args)} holds no rows.")
    return rows


def load_texts(args) -> list[str]:
    """Perplexity: the documents (recipes/data/corpus.py drops empty ones), or all of them joined with
    `--join_with`."""
    source = {"dataset_name": args.dataset_name, "dataset_config_name": args.dataset_config_name}
    documents = load_documents(args.data_file, **source, train_split=args.dataset_split, text_column=args.text_column)
    documents = documents["train"]
    if args.max_samples is not None:
        documents = documents.select(range(min(args.max_samples, documents.num_rows)))
    texts = list(documents["text"])
    return [unescape(args.join_with).join(texts)] if args.join_with is not None else texts


def row_text(row: dict, column: str, index: int, source: str) -> str:
    text = row.get(column)
    if not isinstance(text, str):
        raise RecipeError(f"{source} row {index + 1} has no text column {column!r} (fields: {', '.join(row)}).")
    if not text.strip():
        raise RecipeError(f"{source} row {index + 1}: the {column!r} text is empty.")
    return text


def lambada_examples(rows: Dataset, column: str, source: str) -> list[tuple[str, str]]:
    """(context, " last word") for every row: the target is the text's last whitespace-separated word."""
    examples = []
    for index, row in enumerate(rows):
        text = row_text(row, column, index, source).rstrip()
        match = re.fullmatch(r"(.*\S)\s+(\S+)", text, flags=re.DOTALL)
        if match is None:
            raise RecipeError(
                f"{source} row {index + 1} ({text[:40]!r}) is a single word: a LAMBADA text needs a context before "
                f"its last word."
            )
        examples.append((match.group(1), " " + match.group(2)))
    return examples


class Example(NamedTuple):
    """One multiple-choice question: each of `choices` is scored as the continuation of `prompt`."""

    prompt: str
    choices: list[str]  # as scored, with the space that joins each to the prompt
    label: int  # the index of the right choice
    lengths: list[int]  # each choice's length in characters, the divisor of the `chars` normalisation


def multiple_choice_examples(rows: Dataset, args, source: str) -> tuple[str, str, list[Example]]:
    """The family, the template used and an Example for every row: `multiple_choice` ({context, choices, label}),
    `entailment` ({premise, hypothesis, label}, a choice among `--label_choices`) or `classification` ({text,
    label})."""
    columns = rows.column_names
    if args.choices_column in columns:
        family, used_template, names = "multiple_choice", args.template or MULTIPLE_CHOICE_TEMPLATE, None
    elif {"premise", "hypothesis"} <= set(columns):
        family, used_template = "entailment", args.template or ENTAILMENT_TEMPLATE
        label_choices = label_answers(args.label_choices or ENTAILMENT_CHOICES)
        names, answers = list(label_choices), [str(answer) for answer in label_choices.values()]
    elif "text" in columns:
        family, used_template = "classification", args.template or CLASSIFICATION_TEMPLATE
        if args.label_choices is not None:
            label_choices = label_answers(args.label_choices)
        else:
            classes = sorted({label for label in rows[args.label_column] if isinstance(label, str)})
            if len(classes) < 2:
                raise RecipeError(
                    f"{source}: classification rows need at least 2 class names in {args.label_column!r} to choose "
                    f"among, or --label_choices; found {classes}."
                )
            label_choices = {name: " " + name for name in classes}
        names, answers = list(label_choices), [str(answer) for answer in label_choices.values()]
    else:
        raise RecipeError(
            f"{source} has neither a {args.choices_column!r} column (multiple choice: context, choices, label), "
            f"premise and hypothesis columns (entailment) nor a text column (classification); its columns: "
            f"{', '.join(columns)}."
        )
    template = unescape(used_template)
    fields = [field for _, field, _, _ in string.Formatter().parse(template) if field]
    examples = []
    for index, row in enumerate(rows):
        where = f"{source} row {index + 1}"
        for name in fields:
            if row.get(name) is None:  # a JSON lines file missing a field in one row reads as None there
                raise RecipeError(f"{where} has no field {name!r}, which --template {template!r} asks for.")
        try:
            prompt = template.format_map(row)
        except (KeyError, IndexError, ValueError) as error:
            raise RecipeError(f"{where}: --template {template!r} cannot be filled in: {error!r}.") from error
        if not prompt.strip():
            raise RecipeError(f"{where}: the prompt is empty (template {template!r}).")
        label = row.get(args.label_column)
        if names is not None:
            choices = answers
            if isinstance(label, str):
                if label not in names:
                    raise RecipeError(f"{where}: label {label!r} is none of the --label_choices ({', '.join(names)}).")
                label = names.index(label)
        else:
            choices = row[args.choices_column]
            if choices is None:
                raise RecipeError(f"{where} has no field {args.choices_column!r} (fields: {', '.join(row)}).")
            if not isinstance(choices, list) or len(choices) < 2:
                raise RecipeError(f"{where} has {choices!r} as choices: it needs a list of at least 2.")
            if not all(isinstance(choice, str) and choice.strip() for choice in choices):
                raise RecipeError(f"{where}: every choice must be a non-empty text, got {choices!r}.")
        if label is None:
            raise RecipeError(f"{where} has no field {args.label_column!r} (fields: {', '.join(row)}).")
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(choices):
            raise RecipeError(
                f"{where}: label {label!r} is out of range: it must be the index of one of its {len(choices)} choices "
                f"(0 to {len(choices) - 1})."
            )
        # A choice continues the prompt after a space, as GPT-2's BPE writes a word inside a sentence.
        joined = [choice if choice[:1].isspace() or prompt[-1:].isspace() else " " + choice for choice in choices]
        examples.append(Example(prompt, joined, label, [len(choice) for choice in joined]))
    return family, used_template, examples


def clean_hellaswag(text: str) -> str:
    """HellaSwag text cleaned as lm-evaluation-harness cleans it (its `hellaswag` task): stripped, then each
    " [title]" of the WikiHow rows' section tags made a sentence end (". "), every other bracketed tag ("[header]",
    "[step]", ...) deleted, and each pair of spaces made one, in a single pass (three spaces leave two)."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)  # shortest match: "[a] b [c]" keeps " b "
    return text.replace("  ", " ")


def hellaswag_query(row: dict) -> str:
    """The prompt of a HellaSwag row: "activity_label: ctx_a Ctx_b", cleaned. `str.capitalize` (as the harness
    does) upper-cases ctx_b's first letter and lower-cases the rest of it."""
    return clean_hellaswag(f"{row['activity_label']}: {row['ctx_a']} {row['ctx_b'].capitalize()}")


def has_no_label(label) -> bool:
    return label is None or (isinstance(label, str) and not label.strip())


def hellaswag_examples(rows: Dataset, source: str) -> list[Example]:
    """An Example for every HellaSwag row: the query, each cleaned ending after a space, gold = int(label). The
    query's trailing whitespace (left where a tag ended it) goes to the front of every ending, as the harness moves
    it; `lengths` are those of the cleaned endings, which the harness's acc_norm divides by."""
    missing = [column for column in HELLASWAG_COLUMNS if column not in rows.column_names]
    if missing:
        raise RecipeError(
            f"{source} is not HellaSwag data: it has no {', '.join(map(repr, missing))} column (columns: "
            f"{', '.join(rows.column_names)})."
        )
    labels = rows["label"]
    unlabelled = [index for index, label in enumerate(labels) if has_no_label(label)]
    if unlabelled:
        first = unlabelled[0]
        split = rows[first].get("split")
        split = f", split {split!r}" if isinstance(split, str) and split else ""
        raise RecipeError(
            f"{source}: {len(unlabelled)} of {len(labels)} rows have no label (row {first + 1}: "
            f"{labels[first]!r}{split}); HellaSwag's test split is unlabelled (its answers are held out): score the "
            f"{HELLASWAG_SPLIT} split (--dataset_split {HELLASWAG_SPLIT}, the default for --task hellaswag)."
        )
    examples = []
    for index, row in enumerate(rows):
        where = f"{source} row {index + 1}"
        for column in ("activity_label", "ctx_a", "ctx_b"):
            if not isinstance(row[column], str):
                raise RecipeError(f"{where}: {column} must be a text, got {row[column]!r}.")
        endings = row["endings"]
        if not isinstance(endings, list) or len(endings) < 2 or not all(isinstance(e, str) for e in endings):
            raise RecipeError(f"{where} has {endings!r} as endings: it needs a list of at least 2 texts.")
        cleaned = [clean_hellaswag(ending) for ending in endings]
        for number, (ending, text) in enumerate(zip(endings, cleaned), 1):
            if not text.strip():
                raise RecipeError(f"{where}: ending {number} ({ending!r}) is empty once cleaned.")
        label = row["label"]
        if isinstance(label, str) and re.fullmatch(r"\s*\d+\s*", label):
            label = int(label)
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(endings):
            raise RecipeError(
                f"{where}: label {row['label']!r} is not the index of one of its {len(endings)} endings "
                f"(0 to {len(endings) - 1})."
            )
        query = hellaswag_query(row)
        prompt = query.rstrip()
        if not prompt:
            raise RecipeError(f"{where}: the query is empty once cleaned.")
        moved = query[len(prompt) :]
        examples.append(Example(prompt, [moved + " " + text for text in cleaned], label, [len(t) for t in cleaned]))
    return examples


# ---------------------------------------------------------------------------------------------------------------------
# Requests and scoring. A request is (tokens, first_target): the model reads tokens[:-1] and the targets
# tokens[first_target:] are scored, each given every token before it.


def continuation_request(context: list[int], continuation: list[int], window: int, where: str) -> tuple[list, int]:
    """Context + continuation, cut on the left to `window` inputs; the continuation must fit whole."""
    if len(continuation) > window:
        raise RecipeError(
            f"{where}: the answer is {len(continuation)} tokens long, more than the window of {window} tokens."
        )
    if not continuation:
        raise RecipeError(f"{where}: the answer has no tokens.")
    tokens = (context + continuation)[-(window + 1) :]
    return tokens, len(tokens) - len(continuation)


def sliding_window_requests(tokens: list[int], window: int, stride: int) -> list[tuple[list, int]]:
    """Windows over one token stream that score every token but the first exactly once: the window ending at target
    `end - 1` holds the `window` tokens before it as inputs and scores the last `stride` (or fewer) targets."""
    requests = []
    for first in range(1, len(tokens), stride):
        end = min(first + stride, len(tokens))
        begin = max(0, end - 1 - window)
        requests.append((tokens[begin:end], first - begin))
    return requests


def _score_batch(model, requests, device, pad_token_id: int, padding_side: str):
    width = max(len(tokens) - 1 for tokens, _ in requests)
    input_ids = torch.full((len(requests), width), pad_token_id, dtype=torch.long)
    targets = torch.zeros_like(input_ids)
    attention_mask = torch.zeros_like(input_ids)
    scored = torch.zeros_like(input_ids, dtype=torch.bool)
    for row, (tokens, first_target) in enumerate(requests):
        length = len(tokens) - 1
        offset = width - length if padding_side == "left" else 0
        input_ids[row, offset : offset + length] = torch.tensor(tokens[:-1])
        targets[row, offset : offset + length] = torch.tensor(tokens[1:])
        attention_mask[row, offset : offset + length] = 1
        scored[row, offset + first_target - 1 : offset + length] = True
    input_ids, targets, attention_mask, scored = (t.to(device) for t in (input_ids, targets, attention_mask, scored))
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # counted over the real tokens, whatever the padding
    # The LM head (the largest matmul of a small model) runs only from the first scored position on: for an answer
    # after a long prompt, a few positions instead of all.
    keep = width - int(scored.int().argmax(-1).min())
    kwargs = {"logits_to_keep": keep} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    logits = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False, **kwargs
    ).logits[:, -keep:]  # (B, keep, V)
    scored, targets = scored[:, -keep:], targets[:, -keep:]
    selected = logits[scored].float()  # (N, V): only the scored positions, in float32
    wanted = targets[scored]  # (N,)
    logprobs = selected.log_softmax(-1).gather(-1, wanted[:, None]).squeeze(-1)  # (N,)
    misses = (selected.argmax(-1) != wanted).float()
    rows = scored.nonzero()[:, 0]
    nll = torch.zeros(len(requests), device=device).index_add_(0, rows, -logprobs)
    wrong = torch.zeros(len(requests), device=device).index_add_(0, rows, misses)
    hits = (wrong == 0).tolist()
    return list(zip(nll.tolist(), scored.sum(-1).tolist(), hits))  # one transfer from the device, not 3 per row


@torch.inference_mode()
def score_requests(
    model, requests, accelerator, batch_size: int, pad_token_id: int = 0, padding_side="right", desc="scoring"
):
    """For every request (tokens, first_target): (summed NLL in nats of tokens[first_target:], their count, whether
    the argmax reproduces every one of them). Batches of similar length; under several processes each scores its
    share of the batches and all get every result."""
    order = sorted(range(len(requests)), key=lambda i: len(requests[i][0]), reverse=True)
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    model.eval()
    scores = []
    with accelerator.split_between_processes(batches) as mine:
        for batch in tqdm(mine, desc=desc, disable=not accelerator.is_local_main_process):
            results = _score_batch(model, [requests[i] for i in batch], accelerator.device, pad_token_id, padding_side)
            scores.extend(zip(batch, results))
    if accelerator.num_processes > 1:
        scores = gather_object(scores)
    by_index = dict(scores)
    return [by_index[i] for i in range(len(requests))]


# ---------------------------------------------------------------------------------------------------------------------
# The evaluations


def perplexity(nll: float, count: int) -> float:
    mean = nll / count
    return math.exp(mean) if mean < 700 else float("inf")


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


def prepare_perplexity(args, texts, tokenizer, window):
    """The windows over the texts' token streams, and the function that turns their scores into metrics."""
    start = start_token_id(tokenizer, args.add_start_token)
    stride = args.stride or window
    requests = []
    for ids in encode(tokenizer, texts):
        requests.extend(sliding_window_requests(start + ids, window, stride))
    if not requests:
        raise RecipeError(f"{data_source(args)}: no document has a token to score (each needs 2 with its start).")
    data = {"documents": len(texts), "bytes": sum(len(text.encode("utf-8")) for text in texts)}

    def finish(scores):
        nll, count = sum(s[0] for s in scores), sum(s[1] for s in scores)
        return {
            "perplexity": perplexity(nll, count),
            "nll_per_token": nll / count,
            "bits_per_byte": nll / math.log(2) / data["bytes"],
            "tokens": count,
            "bytes": data["bytes"],
            "documents": data["documents"],
            "windows": len(requests),
        }

    return requests, finish


def prepare_lambada(args, examples, tokenizer, window):
    source = data_source(args)
    start = start_token_id(tokenizer, args.add_start_token)
    contexts = encode(tokenizer, [context for context, _ in examples])
    words = encode(tokenizer, [word for _, word in examples])
    requests = [
        continuation_request(start + context, word, window, f"{source} row {index + 1}")
        for index, (context, word) in enumerate(zip(contexts, words))
    ]

    def finish(scores):
        nll = sum(s[0] for s in scores)
        return {
            "accuracy": sum(s[2] for s in scores) / len(scores),
            "perplexity": perplexity(nll, len(scores)),
            "nll_per_word": nll / len(scores),
            "examples": len(scores),
            "target_tokens": sum(s[1] for s in scores),
        }

    return requests, finish


def prepare_multiple_choice(args, data, tokenizer, window, accuracies=None):
    """Every choice of every example as a request; `finish` reports an accuracy for each of `accuracies` (metric
    name -> normalisation; default: `accuracy_<normalisation>` for each `--normalize`)."""
    source = data_source(args)
    family, _, examples = data
    accuracies = accuracies or {f"accuracy_{normalize}": normalize for normalize in args.normalize}
    start = start_token_id(tokenizer, args.add_start_token)
    prompts = encode(tokenizer, [example.prompt for example in examples])
    requests, spans = [], []  # spans[i]: the requests of example i
    for index, (example, prompt) in enumerate(zip(examples, prompts)):
        answers = encode(tokenizer, example.choices)
        spans.append(range(len(requests), len(requests) + len(example.choices)))
        where = f"{source} row {index + 1}"
        requests.extend(continuation_request(start + prompt, answer, window, where) for answer in answers)

    def finish(scores):
        metrics, predictions = {}, {}
        labels = [example.label for example in examples]
        for name, normalize in accuracies.items():
            predicted = []
            for example, span in zip(examples, spans):
                values = []
                for length, (nll, count, _) in zip(example.lengths, (scores[i] for i in span)):
                    divisor = {"none": 1, "tokens": count, "chars": length}[normalize]
                    values.append(-nll / divisor)
                predicted.append(max(range(len(values)), key=values.__getitem__))
            metrics[name] = sum(p == label for p, label in zip(predicted, labels)) / len(examples)
            predictions[normalize] = predicted
        metrics["chance"] = sum(1 / len(example.choices) for example in examples) / len(examples)
        metrics.update(examples=len(examples), choices=len(requests), family=family)
        # Each row's predicted choice (an index; for entailment and classification rows, of the label names), and
        # the right one: results.json keeps them beside the metrics.
        metrics[PREDICTIONS] = {"labels": labels, **predictions}
        return metrics

    return requests, finish


PREPARE = {
    "perplexity": prepare_perplexity,
    "lambada": prepare_lambada,
    "multiple_choice": prepare_multiple_choice,
    # HellaSwag is a multiple choice among the endings, scored the same way, with the harness's two accuracies
    "hellaswag": partial(prepare_multiple_choice, accuracies=HELLASWAG_ACCURACIES),
}


# ---------------------------------------------------------------------------------------------------------------------
# Output


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


# ---------------------------------------------------------------------------------------------------------------------


def has_accelerator() -> bool:
    return torch.accelerator.is_available() if hasattr(torch, "accelerator") else torch.cuda.is_available()


def evaluation_function(args) -> dict:
    check_files_exist(args.data_file, "--data_file")
    output_file = Path(args.output_file) if args.output_file else default_output_file(args)
    check_output_file(output_file)
    # Without an accelerator, `accelerate launch` / torchrun processes form a gloo group only with cpu=True.
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=args.cpu or not has_accelerator())
    # Every check before the weights are read: the data, the window against the model's config, every request.
    data = read_data(args)
    config, tokenizer = load_config_and_tokenizer(args)
    window = check_window(args, config, tokenizer)
    requests, finish = PREPARE[args.task](args, data, tokenizer, window)  # tokenised, each fitted to the window

    model = accelerator.prepare_model(load_model(args), evaluation_mode=True)
    if is_preset(args.model):
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


def check_template(template: str):
    """`--template` is a format string whose fields are named (a row's columns), so every row can fill it in."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(unescape(template)) if name is not None]
    except ValueError as error:
        raise ValueError(f"--template {template!r} is not a format string: {error}") from None
    positional = [name for name in names if name == "" or name.isdigit()]
    if positional:
        raise ValueError(
            f"--template {template!r} has the positional field {{{positional[0]}}}: name a column of the rows, "
            f"e.g. {{context}}"
        )


def label_answers(label_choices: str) -> dict:
    """`--label_choices` as {label name: answer}, in the order of the integer labels."""
    try:
        answers = json.loads(label_choices)
    except json.JSONDecodeError as error:
        raise ValueError(f"--label_choices is not JSON ({error}): {label_choices!r}") from None
    if not isinstance(answers, dict) or len(answers) < 2:
        raise ValueError(f"--label_choices must map at least 2 label names to their answers, got {label_choices!r}")
    return answers


@dataclass
class ZeroShotArguments:
    task: str = field(metadata={"help": f"one of {', '.join(TASKS)}"})
    model: str = field(
        metadata={"help": "a model folder (GPT-2 or GPT-1), a Hub name, or a GPT-2 preset (tiny, 124M, ...)"}
    )
    # data
    data_file: list[str] | None = option(None, ".txt, .jsonl, .json, .csv, .parquet", aliases=["--text_file"])
    dataset_name: str | None = option(
        None, f"a Hub dataset (instead of files; --task hellaswag: default {HELLASWAG_DATASET})"
    )
    dataset_config_name: str | None = option(None, "the Hub dataset's config")
    dataset_split: str | None = option(
        None,
        f'default {DEFAULT_SPLIT} ({HELLASWAG_SPLIT} for --task hellaswag), or e.g. "validation" or "test[:500]"',
    )
    text_column: str = option("text", "perplexity and lambada")
    max_samples: int | None = option(None, "the first N documents / rows only (lm-evaluation-harness's --limit)")
    join_with: str | None = option(
        None,
        "perplexity: join all documents with this text (escapes like \\n allowed) into one stream, instead of "
        "scoring each document on its own",
    )
    # multiple choice
    template: str | None = option(
        None,
        f"the prompt, fields of a row in braces (default {MULTIPLE_CHOICE_TEMPLATE!r}, entailment rows "
        f"{ENTAILMENT_TEMPLATE!r})",
    )
    label_choices: str | None = option(
        None,
        f"entailment and classification rows: JSON object of label name -> answer, in the order of integer labels "
        f"(default: entailment {ENTAILMENT_CHOICES}; classification: each class name its own answer)",
    )
    choices_column: str = option("choices", "multiple choice rows: the column of the choices")
    label_column: str = option("label", "the column of the right choice's index (or label name)")
    normalize: list[str] = option(
        list(NORMALIZATIONS),
        f"score = choice log-likelihood summed (none), per token (tokens) or per character (chars): {NORMALIZATIONS}",
    )
    # scoring
    max_length: int | None = option(None, "tokens per window (default: n_positions)")
    stride: int | None = option(None, "perplexity: new tokens per window (default: window)")
    add_start_token: bool = option(
        True, "start every sequence with the tokenizer's bos/eos token (<|endoftext|> for GPT-2, _start_ for GPT-1)"
    )
    per_device_eval_batch_size: int = option(8, "sequences per device and batch")
    padding_side: str = option("right", f"one of {PADDING_SIDES}")
    mixed_precision: str | None = option(None, f"one of {MIXED_PRECISION} (default: Accelerate's config)")
    cpu: bool = option(False, "stay on the CPU even where there is an accelerator")
    seed: int = option(0, "of a preset's random weights")
    output_file: str | None = option(None, "JSON results (default runs/zero-shot/<task>-<model>.json)")

    def __post_init__(self):
        """The checks that need no file, model or tokenizer."""
        for name, choices in (("task", TASKS), ("padding_side", PADDING_SIDES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"--{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if self.mixed_precision is not None and self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"--mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        unknown = [name for name in self.normalize if name not in NORMALIZATIONS]
        if unknown:
            raise ValueError(f"--normalize takes {', '.join(NORMALIZATIONS)}, got {', '.join(map(repr, unknown))}")
        for name in ("per_device_eval_batch_size", "max_samples", "stride", "max_length"):
            at_least(name, getattr(self, name), 1)
        if self.task == "hellaswag" and not self.data_file and not self.dataset_name:
            self.dataset_name = HELLASWAG_DATASET
        if bool(self.data_file) == bool(self.dataset_name):
            raise ValueError("Give the data with either --data_file (--text_file) or --dataset_name.")
        for path in self.data_file or []:
            if builder_for(path) == "text" and self.task in ("multiple_choice", "hellaswag"):
                rows = {"multiple_choice": "multiple-choice", "hellaswag": "HellaSwag"}[self.task]
                raise ValueError(f"--data_file {path!r}: {rows} rows need .jsonl/.json/.csv/.parquet.")
        defaults = {
            f.name: f.default if f.default_factory is MISSING else f.default_factory()
            for f in fields(self)
            if f.name in TASK_OPTIONS or f.name in HUB_OPTIONS
        }
        for name, tasks in TASK_OPTIONS.items():
            if self.task not in tasks and getattr(self, name) != defaults[name]:
                raise ValueError(
                    f"--{name} is read for --task {' and '.join(tasks)} only, not --task {self.task}: leave it out"
                )
        for name in HUB_OPTIONS if self.data_file else ():
            if getattr(self, name) != defaults[name]:
                raise ValueError(
                    f"--{name} picks from a Hub dataset (--dataset_name); --data_file is read whole (--max_samples "
                    f"takes its first rows): leave --{name} out"
                )
        if self.dataset_name and self.dataset_split is None:
            self.dataset_split = HELLASWAG_SPLIT if self.task == "hellaswag" else DEFAULT_SPLIT
        if not self.normalize:
            raise ValueError(f"--normalize needs at least one of {', '.join(NORMALIZATIONS)}")
        if not 0 <= self.seed < 2**64:
            raise ValueError(f"--seed must be in [0, 2**64), got {self.seed}")
        if self.template is not None:
            check_template(self.template)
        if self.label_choices is not None:
            label_answers(self.label_choices)  # read here too, so that bad JSON stops the run before any work


def main(argv=None):
    (args,) = parse_arguments([ZeroShotArguments], argv, prog=PROG, description=__doc__)
    try:
        return evaluation_function(args)
    except RecipeError as error:
        exit_with_error(PROG, error)


if __name__ == "__main__":
    main()
