"""Zero-shot evaluation of a GPT-2 (or GPT-1): perplexity, LAMBADA last-word accuracy and multiple choice.

GPT-2's claim (Radford et al. 2019, section 3) is that a language model does tasks it was never trained for when
they are posed as text to continue. This recipe measures that three ways, chosen by `--task`, on a saved model
folder, a Hub model (`--model openai-community/gpt2`; transformers' own GPT-2 checkpoints load as they are), or a
preset of the paper's sizes with random weights (`--model tiny`, for smoke runs without the Hub):

    python -m recipes.evaluate_zero_shot --task perplexity --model openai-community/gpt2 \\
        --dataset_name Salesforce/wikitext --dataset_config_name wikitext-2-raw-v1 --join_with '\\n'
    python -m recipes.evaluate_zero_shot --task lambada --model openai-community/gpt2 \\
        --dataset_name EleutherAI/lambada_openai --dataset_config_name en
    python -m recipes.evaluate_zero_shot --task multiple_choice --model runs/pretrain-gpt2 \\
        --data_file tests/fixtures/tasks/entailment-presuppositions.jsonl

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
  " False" by default). Each choice is scored by its log-likelihood given the prompt, summed over its tokens
  (`none`), divided by its token count (`tokens`) or by its length in characters (`chars`); the highest scoring
  choice is the prediction, and an accuracy is reported for every `--normalize` given.

All choices and windows of a task are scored in batches of `--per_device_eval_batch_size` sequences, sorted by
length, padded on `--padding_side` with an attention mask and position ids counted over the real tokens, under
`torch.inference_mode`, on the device Accelerate picks (`accelerate launch` splits the batches over processes).
The results go to `--output_file` (JSON, default runs/zero-shot/<task>-<model>.json) and are printed as a table.
A bad option, file, row or checkpoint stops the recipe with a one-line error (exit status 2) before any scoring.
"""

import argparse
import inspect
import json
import math
import os
import re
import string
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from datasets import Dataset, concatenate_datasets, load_dataset
from tqdm.auto import tqdm

import modeling_gpt1  # noqa: F401  (registers gpt1-origins with the Auto classes)
import modeling_gpt2

from . import generate
from .corpus import builder_for, check_files_exist, load_documents
from .errors import RecipeError

TASKS = ("perplexity", "lambada", "multiple_choice")
NORMALIZATIONS = ("none", "tokens", "chars")
MULTIPLE_CHOICE_TEMPLATE = "{context}"
ENTAILMENT_TEMPLATE = "{premise}\\nQuestion: {hypothesis} True, False or Neither?\\nAnswer:"
# Label names in the order of their ids in MNLI, SNLI and RTE-style data (0 = entailment), each with its answer.
ENTAILMENT_CHOICES = '{"entailment": " True", "neutral": " Neither", "contradiction": " False"}'


# ---------------------------------------------------------------------------------------------------------------------
# Model and tokenizer


def is_preset(model: str) -> bool:
    # Only the size names: "gpt2", "gpt2-medium", ... are also Hub names, of the released weights.
    return model in modeling_gpt2.PRESETS and not Path(model).exists()


def load_model_and_tokenizer(args):
    """`--model`: a preset name (random weights, OpenAI's tokenizer), else a folder or Hub name through the Auto
    classes, with the folder's tokenizer or OpenAI's when it has none (recipes/generate.py's loader)."""
    try:
        if is_preset(args.model):
            return generate.load_model_and_tokenizer(None, "gpt2", preset=args.model, seed=args.seed)
        return generate.load_model_and_tokenizer(args.model)
    except (OSError, ValueError) as error:
        presets = ", ".join(modeling_gpt2.PRESETS)
        raise RecipeError(
            f"--model {args.model!r} is neither a preset ({presets}), a model folder nor a Hub name: {error}"
        ) from error


def context_size(config) -> int:
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        if getattr(config, name, None):
            return getattr(config, name)
    raise RecipeError(f"The model config ({type(config).__name__}) gives no context size (n_positions).")


def check_window(args, model, tokenizer) -> int:
    """The window: `--max_length`, at most the model's context; the stride at most the window."""
    n_positions = context_size(model.config)
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
    if len(tokenizer) > model.config.vocab_size:
        raise RecipeError(
            f"The tokenizer has {len(tokenizer):,} tokens but the model's vocab_size is {model.config.vocab_size:,}: "
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
    """Perplexity: the documents (recipes/corpus.py drops empty ones), or all of them joined with `--join_with`."""
    documents = load_documents(
        train_files=args.data_file,
        dataset_name=args.dataset_name,
        dataset_config_name=args.dataset_config_name,
        train_split=args.dataset_split,
        text_column=args.text_column,
    )["train"]
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


def multiple_choice_examples(rows: Dataset, args, source: str) -> tuple[str, list[tuple[str, list[str], int]]]:
    """(prompt, choices, label) for every row, and the family: `multiple_choice` ({context, choices, label}) or
    `entailment` ({premise, hypothesis, label}, a choice among `--label_choices`)."""
    columns = rows.column_names
    if args.choices_column in columns:
        family, template, names = "multiple_choice", args.template or MULTIPLE_CHOICE_TEMPLATE, None
    elif {"premise", "hypothesis"} <= set(columns):
        family, template = "entailment", args.template or ENTAILMENT_TEMPLATE
        try:
            label_choices = json.loads(args.label_choices)
        except json.JSONDecodeError as error:
            raise RecipeError(f"--label_choices is not JSON ({error}): {args.label_choices!r}") from error
        if not isinstance(label_choices, dict) or len(label_choices) < 2:
            raise RecipeError(
                f"--label_choices must map at least 2 label names to their answers, got {args.label_choices!r}."
            )
        names, answers = list(label_choices), [str(answer) for answer in label_choices.values()]
    else:
        raise RecipeError(
            f"{source} has neither a {args.choices_column!r} column (multiple choice: context, choices, label) nor "
            f"premise and hypothesis columns (entailment); its columns: {', '.join(columns)}."
        )
    args.template = template  # the one used, for the results file
    template = unescape(template)
    fields = [field for _, field, _, _ in string.Formatter().parse(template) if field]
    examples = []
    for index, row in enumerate(rows):
        where = f"{source} row {index + 1}"
        for field in fields:
            if row.get(field) is None:  # a JSON lines file missing a field in one row reads as None there
                raise RecipeError(f"{where} has no field {field!r}, which --template {template!r} asks for.")
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
        examples.append((prompt, joined, label))
    return family, examples


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
# The three evaluations


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


def prepare_multiple_choice(args, data, tokenizer, window):
    source = data_source(args)
    family, examples = data
    start = start_token_id(tokenizer, args.add_start_token)
    prompts = encode(tokenizer, [prompt for prompt, _, _ in examples])
    requests, spans = [], []  # spans[i]: the requests of example i
    for index, ((_, choices, _), prompt) in enumerate(zip(examples, prompts)):
        answers = encode(tokenizer, choices)
        spans.append(range(len(requests), len(requests) + len(choices)))
        where = f"{source} row {index + 1}"
        requests.extend(continuation_request(start + prompt, answer, window, where) for answer in answers)

    def finish(scores):
        metrics = {}
        for normalize in args.normalize:
            correct = 0
            for (_, choices, label), span in zip(examples, spans):
                values = []
                for choice, (nll, count, _) in zip(choices, (scores[i] for i in span)):
                    divisor = {"none": 1, "tokens": count, "chars": len(choice)}[normalize]
                    values.append(-nll / divisor)
                correct += max(range(len(values)), key=values.__getitem__) == label
            metrics[f"accuracy_{normalize}"] = correct / len(examples)
        metrics["chance"] = sum(1 / len(choices) for _, choices, _ in examples) / len(examples)
        metrics.update(examples=len(examples), choices=len(requests), family=family)
        return metrics

    return requests, finish


PREPARE = {"perplexity": prepare_perplexity, "lambada": prepare_lambada, "multiple_choice": prepare_multiple_choice}


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


def default_output_file(args) -> Path:
    model = re.sub(r"[^A-Za-z0-9._-]+", "--", args.model.strip("/")).strip("-.") or "model"
    return Path("runs") / "zero-shot" / f"{args.task}-{model}.json"


# ---------------------------------------------------------------------------------------------------------------------


def has_accelerator() -> bool:
    return torch.accelerator.is_available() if hasattr(torch, "accelerator") else torch.cuda.is_available()


def check_args(args):
    """What can be checked before anything is loaded."""
    for option in ("per_device_eval_batch_size", "max_samples"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise RecipeError(f"--{option} must be at least 1, got {value}.")
    if args.stride is not None and args.stride < 1:
        raise RecipeError(f"--stride must be at least 1, got {args.stride}.")
    if args.max_length is not None and args.max_length < 1:
        raise RecipeError(f"--max_length must be at least 1, got {args.max_length}.")
    if bool(args.data_file) == bool(args.dataset_name):
        raise RecipeError("Give the data with either --data_file (--text_file) or --dataset_name.")
    check_files_exist(args.data_file, "--data_file")
    for path in args.data_file or []:
        if builder_for(path) == "text" and args.task == "multiple_choice":
            raise RecipeError(
                f"--data_file {os.fspath(path)!r}: multiple-choice rows need .jsonl/.json/.csv/.parquet."
            )
    if args.join_with is not None and args.task != "perplexity":
        raise RecipeError("--join_with joins documents for --task perplexity only.")


def evaluation_function(args) -> dict:
    check_args(args)
    # Without an accelerator, `accelerate launch` / torchrun processes form a gloo group only with cpu=True.
    accelerator = Accelerator(mixed_precision=args.mixed_precision, cpu=args.cpu or not has_accelerator())
    data = read_data(args)
    model, tokenizer = load_model_and_tokenizer(args)
    window = check_window(args, model, tokenizer)
    requests, finish = PREPARE[args.task](args, data, tokenizer, window)  # tokenised, each fitted to the window

    model = accelerator.prepare_model(model, evaluation_mode=True)
    if is_preset(args.model):
        accelerator.print(f"--model {args.model}: a random {args.model} GPT-2 (a smoke run, expect chance level).")
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    start = time.perf_counter()
    scores = score_requests(
        model, requests, accelerator, args.per_device_eval_batch_size, pad_token_id, args.padding_side, args.task
    )
    results = {
        "task": args.task,
        "model": args.model,
        "data": data_source(args),
        "metrics": finish(scores),
        "settings": {
            "max_length": window,
            "stride": (args.stride or window) if args.task == "perplexity" else None,
            "add_start_token": args.add_start_token,
            "max_samples": args.max_samples,
            "join_with": args.join_with,
            "template": args.template if args.task == "multiple_choice" else None,
            "mixed_precision": accelerator.mixed_precision,
        },
        "seconds": time.perf_counter() - start,
        "device": str(accelerator.device),
        "num_processes": accelerator.num_processes,
    }
    output_file = Path(args.output_file) if args.output_file else default_output_file(args)
    if accelerator.is_main_process:
        output_file.parent.mkdir(parents=True, exist_ok=True)
        output_file.write_text(json.dumps(results, indent=1) + "\n")
    accelerator.print(format_table(results))
    accelerator.print(f"Results: {output_file}")
    return results


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recipes.evaluate_zero_shot",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument(
        "--model", required=True, help="a model folder, a Hub name, or a preset (tiny, 124M, ...) with random weights"
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data_file", "--text_file", nargs="+", default=None, help=".txt, .jsonl, .json, .csv, .parquet"
    )
    data.add_argument("--dataset_name", default=None, help="a Hub dataset (instead of files)")
    data.add_argument("--dataset_config_name", default=None)
    data.add_argument("--dataset_split", default="test", help='e.g. "validation" or "test[:500]"')
    data.add_argument("--text_column", default="text", help="perplexity and lambada")
    data.add_argument("--max_samples", type=int, default=None, help="the first N documents / rows only")
    data.add_argument(
        "--join_with",
        default=None,
        help="perplexity: join all documents with this text (escapes like \\n allowed) into one stream, instead of "
        "scoring each document on its own",
    )
    choice = parser.add_argument_group("multiple choice")
    choice.add_argument(
        "--template",
        default=None,
        help=f"the prompt, fields of a row in braces (default {MULTIPLE_CHOICE_TEMPLATE!r}, entailment rows "
        f"{ENTAILMENT_TEMPLATE!r})",
    )
    choice.add_argument(
        "--label_choices",
        default=ENTAILMENT_CHOICES,
        help="entailment rows: JSON object of label name -> answer, in the order of integer labels",
    )
    choice.add_argument("--choices_column", default="choices")
    choice.add_argument("--label_column", default="label")
    choice.add_argument(
        "--normalize",
        nargs="+",
        choices=NORMALIZATIONS,
        default=list(NORMALIZATIONS),
        help="score = choice log-likelihood summed (none), per token (tokens) or per character (chars)",
    )
    run = parser.add_argument_group("scoring")
    run.add_argument("--max_length", type=int, default=None, help="tokens per window (default: n_positions)")
    run.add_argument("--stride", type=int, default=None, help="perplexity: new tokens per window (default: window)")
    run.add_argument(
        "--add_start_token",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start every sequence with the tokenizer's bos/eos token (<|endoftext|> for GPT-2)",
    )
    run.add_argument("--per_device_eval_batch_size", type=int, default=8)
    run.add_argument("--padding_side", choices=("right", "left"), default="right")
    run.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default=None)
    run.add_argument("--cpu", action="store_true", help="stay on the CPU even where there is an accelerator")
    run.add_argument("--seed", type=int, default=0, help="of a preset's random weights")
    run.add_argument("--output_file", default=None, help="JSON results (default runs/zero-shot/<task>-<model>.json)")
    return parser


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        return evaluation_function(args)
    except RecipeError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")


if __name__ == "__main__":
    main()
