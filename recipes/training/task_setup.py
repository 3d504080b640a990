"""A GPT-1 for a labelled task: the data, the tokenizer with the task tokens, the double-heads model, the encoded
splits, the metrics (with the positive class of a 2-class task) and predictions of a fine-tuned folder. Shared by
`recipes.finetune` (the Accelerate loop) and `recipes.finetune_trainer` (transformers' Trainer), so both train exactly
the same model on exactly the same data and score it the same way.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import DatasetDict
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModelForMultipleChoice,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedConfig,
)

import modeling_gpt1
from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsDoubleHeadsModel, GPT1TaskCollator, GPT1TaskEncoder
from modeling_gpt1.configuration_gpt1 import PRESETS
from modeling_gpt1.tokenization_gpt1 import (
    DELIMITER_TOKEN,
    EXTRACT_TOKEN,
    SPECIAL_TOKENS,
    START_TOKEN,
    with_task_template,
)

from ..core.checkpointing import ARCHITECTURE_FIELDS
from ..core.errors import RecipeError
from ..data.tasks import TEXT_FIELDS, TaskData, load_task_data, majority_baseline
from ..evaluation.metrics import compute_task_metrics
from ..models.families import MODEL_FAMILIES, is_preset

TASK_TOKENS = (START_TOKEN, DELIMITER_TOKEN, EXTRACT_TOKEN)  # what fine-tuning adds to the vocabulary
TOKEN_ID_FIELDS = ("start_token_id", "delimiter_token_id", "extract_token_id", "pad_token_id")
# The positive class of a 2-class task when --positive_label names none: the class with one of these names, case aside
# (SST-2's positive, RTE's and QNLI's entailment, SciTail's entails, MRPC's equivalent, QQP's duplicate, CoLA's
# acceptable, BoolQ's true; "1" of the classes "0" / "1"), else the class X whose other class is its negation
# (not_X, non-X, no X, nonX, ...). Never the class that sorts second: otherwise the run asks for --positive_label.
POSITIVE_NAMES = ("positive", "entailment", "entails", "equivalent", "duplicate", "paraphrase", "acceptable", "yes")
POSITIVE_NAMES += ("true", "1")
POSITIVE_RULE = (
    f"the class named {', '.join(POSITIVE_NAMES)} (case aside), else the class X whose other class is not_X, non-X, "
    f"no_X or the like; no other guess"
)
NEGATIONS = tuple(f"{word}{separator}" for word in ("not", "non", "no") for separator in ("_", "-", " ", ""))


def get_task_data(args) -> TaskData:
    task = load_task_data(
        args.task_type,
        train_files=args.train_file,
        validation_files=args.validation_file,
        test_files=args.test_file,
        dataset_name=args.dataset_name,
        dataset_config_name=args.dataset_config_name,
        data_dir=args.dataset_data_dir,
        column_mapping=args.columns,
        label_names=args.label_names,
        model_classes=fine_tuned_classes(args),
        num_labels=args.num_labels,
        similarity_target=args.similarity_target,
        validation_split_percentage=args.validation_split_percentage,
        seed=args.seed,
    )
    limits = {"train": args.max_train_samples}
    for split, rows in task.dataset.items():
        limit = limits.get(split, args.max_eval_samples)
        if limit is not None and rows.num_rows > limit:
            task.dataset[split] = rows.select(range(limit))
    return task


def fine_tuned_classes(args) -> list[str] | None:
    """The class names, in id order, of a GPT-1 fine-tuned for this --task_type (its config's id2label): the label set
    that fine-tuning it further keeps. None for any other model, and for transformers' placeholders LABEL_0, ..."""
    if is_preset(args.model_name_or_path, "gpt1"):
        return None
    try:
        config = PreTrainedConfig.get_config_dict(args.model_name_or_path)[0]
    except (OSError, ValueError):
        return None  # get_model says what is wrong with it
    id2label = config.get("id2label") or {}
    names = [id2label[key] for key in sorted(id2label, key=int)]
    if config.get("task_type") != args.task_type or names == [f"LABEL_{i}" for i in range(len(names))]:
        return None
    return names


def has_task_template(tokenizer) -> bool:
    """Whether the tokenizer has the task tokens and wraps a pair as `_start_ a _delimiter_ b _classify_`."""
    ids = tokenizer.convert_tokens_to_ids(list(TASK_TOKENS))
    if any(i is None or i == tokenizer.unk_token_id for i in ids):
        return False
    encoded = tokenizer("a", "b")["input_ids"]
    return encoded[0] == ids[0] and encoded[-1] == ids[2] and ids[1] in encoded


def add_task_tokens(tokenizer):
    """The tokenizer itself if it has GPT-1's task tokens and template; otherwise a copy with them added after its
    vocabulary (ids len(tokenizer), ...), as the released code appended them to the 40,478 BPE tokens, and returns the
    tokens added. transformers' openai-gpt tokenizer, for one, has neither."""
    if has_task_template(tokenizer):
        return tokenizer, []
    if not getattr(tokenizer, "is_fast", False):
        raise RecipeError(f"{type(tokenizer).__name__} has no `tokenizers` backend to add GPT-1's task tokens to.")
    before = set(tokenizer.get_vocab())
    backend = type(tokenizer.backend_tokenizer).from_str(tokenizer.backend_tokenizer.to_str())
    # The same special tokens and template as every GPT-1 tokenizer of modeling_gpt1.
    wrapped = with_task_template(backend, tokenizer.model_max_length if tokenizer.model_max_length < 1e9 else 512)
    vocab = wrapped.get_vocab()
    return wrapped, sorted((token for token in vocab if token not in before), key=vocab.get)


def get_tokenizer(args, task: TaskData):
    """`--tokenizer` (a folder or Hub name, or "train": learned from the training texts), else the model's."""
    choice = args.tokenizer or (None if is_preset(args.model_name_or_path, "gpt1") else args.model_name_or_path)
    if choice is None:
        raise RecipeError(
            f"--model_name_or_path {args.model_name_or_path!r} is a preset with random weights and no tokenizer: "
            f"give --tokenizer (a GPT-1 tokenizer folder, e.g. a pre-training run's, or 'train')."
        )
    if choice == "train":
        if not is_preset(args.model_name_or_path, "gpt1"):
            raise RecipeError(
                "--tokenizer train learns a new vocabulary, which only a preset's random embedding can take; a "
                f"pre-trained model ({args.model_name_or_path!r}) needs its own tokenizer."
            )
        train = task.dataset["train"]
        texts = [text for name in TEXT_FIELDS[task.family] for text in train[name]]
        texts = [text for item in texts for text in (item if isinstance(item, list) else [item])]
        return modeling_gpt1.train_gpt1_tokenizer(texts, vocab_size=args.vocab_size), []
    try:
        tokenizer = AutoTokenizer.from_pretrained(choice)
    except (OSError, ValueError) as error:
        raise RecipeError(f"--tokenizer {choice!r} is neither a tokenizer folder nor a Hub name: {error}") from error
    return add_task_tokens(tokenizer)


def task_config_fields(args, task: TaskData, tokenizer) -> dict:
    """The config fields that make a GPT-1 a model of this task."""
    fields = {
        "task_type": task.family,
        "num_labels": task.num_labels,
        "lm_coef": args.lm_coef,
        "classifier_dropout": args.classifier_dropout,
        "start_token_id": tokenizer.convert_tokens_to_ids(START_TOKEN),
        "delimiter_token_id": tokenizer.convert_tokens_to_ids(DELIMITER_TOKEN),
        "extract_token_id": tokenizer.convert_tokens_to_ids(EXTRACT_TOKEN),
        "pad_token_id": tokenizer.pad_token_id,
    }
    if task.family != "multiple_choice":
        fields["problem_type"] = "regression" if task.is_regression else "single_label_classification"
    if task.label_names:
        fields["id2label"] = dict(enumerate(task.label_names))
        fields["label2id"] = {name: i for i, name in enumerate(task.label_names)}
    return fields


def check_vocabulary(args, tokenizer, vocab_size: int):
    """A pre-trained embedding has a row for each token of the vocabulary it learned, by id. The tokenizer may go past
    it only by the special tokens that fine-tuning appends (`add_task_tokens`; their rows are new, N(0, 0.02), and
    learned in fine-tuning): any other token there would get a row the model never learned. A --tokenizer from
    elsewhere must also not be smaller (its ids would name other words); the model's own tokenizer may be, for a
    vocabulary padded to a round size."""
    name = args.model_name_or_path
    source = f"--tokenizer {args.tokenizer!r}" if args.tokenizer else f"the tokenizer of {name!r}"
    past = tokenizer.convert_ids_to_tokens(list(range(vocab_size, len(tokenizer))))
    unknown = [token for token in past if token not in SPECIAL_TOKENS]
    smaller = args.tokenizer is not None and len(tokenizer) < vocab_size
    if unknown or smaller:
        what = (
            f"{len(unknown):,} tokens past the embedding ({', '.join(map(repr, unknown[:3]))}, ...) are not "
            f"the task tokens fine-tuning adds ({', '.join(SPECIAL_TOKENS)}) and would get rows it never learned"
            if unknown
            else "its token ids would name other words than the embedding learned"
        )
        raise RecipeError(
            f"{source} has {len(tokenizer):,} tokens, but the embedding of --model_name_or_path {name!r} has "
            f"{vocab_size:,}: {what}. Fine-tune a pre-trained model with the tokenizer it was trained with (leave out "
            f"--tokenizer to use the model's own); only a preset (random weights) takes any tokenizer."
        )


def get_model(args, task: TaskData, tokenizer, added_tokens) -> tuple[GPT1OriginsDoubleHeadsModel, int]:
    """A preset with random weights, or the weights of a GPT-1 folder / Hub name (LM, double-heads, transformers'
    openai-gpt), with the task's head and, for added task tokens, grown and N(0, 0.02)-initialised embedding rows;
    and the input length, `--max_length` (default: min(n_positions, 512)), checked against the model's context."""
    name = args.model_name_or_path
    fields = task_config_fields(args, task, tokenizer)
    token_ids = {key: fields.pop(key) for key in TOKEN_ID_FIELDS}  # set once the embedding holds them
    try:
        if is_preset(name, "gpt1"):
            config = GPT1OriginsConfig.from_preset(name, vocab_size=len(tokenizer))
        else:
            model_type = PreTrainedConfig.get_config_dict(name)[0].get("model_type")
            if model_type not in MODEL_FAMILIES["gpt1"].model_types:
                raise RecipeError(
                    f"--model_name_or_path {name!r} is a {model_type!r} model; this recipe fine-tunes GPT-1 "
                    f"({', '.join(MODEL_FAMILIES['gpt1'].model_types)}) or a preset ({', '.join(PRESETS)})."
                )
            config = GPT1OriginsConfig.from_pretrained(name)
        architecture = {key: getattr(config, key, None) for key in ARCHITECTURE_FIELDS}
        for key, value in fields.items():
            setattr(config, key, value)
        if args.config_overrides:
            config.update_from_string(args.config_overrides)
        config.validate()
    except OSError as error:
        raise RecipeError(
            f"--model_name_or_path {name!r} is neither a preset, a folder nor a Hub name: {error}"
        ) from error
    except ValueError as error:
        raise RecipeError(f"Bad model configuration: {error}") from error
    changed = [key for key, value in architecture.items() if getattr(config, key, None) != value]
    if changed and not is_preset(name, "gpt1"):
        raise RecipeError(f"--config_overrides cannot change the shape of pre-trained weights ({', '.join(changed)}).")
    max_length = args.max_length or min(config.n_positions, 512)
    if max_length > config.n_positions:
        raise RecipeError(f"--max_length {max_length} is more than the model's n_positions={config.n_positions}.")
    if not is_preset(name, "gpt1"):
        check_vocabulary(args, tokenizer, config.vocab_size)

    if is_preset(name, "gpt1"):
        model = GPT1OriginsDoubleHeadsModel._from_config(config, attn_implementation=args.attn_implementation)
    else:
        # The task head is new, or replaced when it was trained for another number of classes; the body has the
        # checkpoint's shapes (checked above), so nothing else can mismatch.
        model = GPT1OriginsDoubleHeadsModel.from_pretrained(
            name, config=config, ignore_mismatched_sizes=True, attn_implementation=args.attn_implementation
        )
    if len(tokenizer) > model.config.vocab_size:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    if added_tokens and not is_preset(name, "gpt1"):
        rows = tokenizer.convert_tokens_to_ids(added_tokens)
        with torch.no_grad():  # the paper's init for the new task-token embeddings
            embedding = model.get_input_embeddings().weight
            embedding[rows] = torch.randn_like(embedding[rows]) * model.config.initializer_range
    for key, value in token_ids.items():
        setattr(model.config, key, value)
    model.config.validate()
    # Saved with the model: its inputs are cut where they were in training (GPT1TaskEncoder's default length).
    tokenizer.model_max_length = max_length
    return model, max_length


def freeze_body(model: GPT1OriginsDoubleHeadsModel, tokenizer) -> list[torch.nn.Parameter]:
    """`--freeze_body`: only the task head and the task tokens' embedding rows train; returns the parameters whose
    weight decay must be off (the embedding: decoupled decay would shrink its frozen rows).

    The token embedding is one matrix (tied to the LM head), so it keeps `requires_grad` and a gradient hook zeroes
    every row but the task tokens'. AdamW then leaves those rows exactly unchanged: zero gradients keep both moments at
    zero, so the update is 0 / (0 + eps) = 0. The auxiliary LM loss still reaches the task-token rows and the head.
    """
    for parameter in model.transformer.parameters():
        parameter.requires_grad_(False)
    embedding = model.get_input_embeddings().weight
    embedding.requires_grad_(True)
    rows = torch.tensor(tokenizer.convert_tokens_to_ids(list(TASK_TOKENS)))
    masks = {}

    def keep_task_rows(grad: torch.Tensor) -> torch.Tensor:
        key = (grad.device, grad.dtype)
        if key not in masks:
            masks[key] = torch.zeros(grad.shape[0], 1, device=grad.device, dtype=grad.dtype)
            masks[key][rows.to(grad.device)] = 1
        return grad * masks[key]  # (V, C) * (V, 1)

    embedding.register_hook(keep_task_rows)
    return [embedding]


def trained_parameters(model, frozen_body: bool) -> int:
    """How many weights fine-tuning changes (with --freeze_body: the head and the task tokens' embedding rows)."""
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if frozen_body:
        embedding = model.get_input_embeddings().weight
        count -= embedding.numel() - len(TASK_TOKENS) * embedding.shape[1]
    return count


def class_names(task: TaskData) -> tuple[str, ...]:
    """The class names in id order; integer labels without names are named by their ids ("0", "1", ...)."""
    return task.label_names or tuple(str(index) for index in range(task.num_labels))


def make_encoder(task: TaskData, tokenizer, max_length: int, keep: str = "head"):
    """The paper's input transformation of one example (a `datasets` row) into model features; `keep`: the tokens
    kept of a text over its budget (`GPT1TaskEncoder`)."""
    return GPT1TaskEncoder(
        tokenizer,
        task.family,
        max_length=max_length,
        keep=keep,
        # Classes of pairs (MRPC, QQP) are similarity with label names; scores (STS-B) are similarity without.
        label_names=None if task.family == "multiple_choice" or task.is_regression else class_names(task),
        label_field=task.target,
    )


def encode_task(
    task: TaskData, tokenizer, max_length: int, num_proc: int | None = None, keep: str = "head"
) -> DatasetDict:
    encode = make_encoder(task, tokenizer, max_length, keep)
    return DatasetDict(
        {
            split: rows.map(encode, remove_columns=rows.column_names, num_proc=num_proc, desc=f"Encoding {split}")
            for split, rows in task.dataset.items()
        }
    )


def predictions_from_logits(task_or_regression, logits) -> np.ndarray:
    """Task logits (N, num_labels) or (N, num_choices) -> class ids / choice indices, or (N, 1) -> scores."""
    regression = task_or_regression if isinstance(task_or_regression, bool) else task_or_regression.is_regression
    logits = np.asarray(logits, dtype=np.float64)
    return logits[:, 0] if regression else logits.argmax(-1)


@dataclass(frozen=True)
class PositiveLabel:
    """The class of a 2-class task whose F1 is reported as `f1`, and how it was chosen (results.json records it)."""

    name: str
    id: int
    chosen_by: str  # "--positive_label", or the default rule that picked it

    def as_dict(self) -> dict:
        return asdict(self)


def _negates(name: str, other: str) -> bool:
    """Whether class name `other` is the negation of `name`: not_spam, non-toxic, "no hate", nonentailment, ..."""
    return any(other.casefold() == negation + name.casefold() for negation in NEGATIONS)


def positive_label(task: TaskData, name: str | None) -> PositiveLabel | None:
    """The positive class of a 2-class task: `name` (--positive_label), else the default rule `POSITIVE_RULE`; None
    for any other task. A `name` that is not a class of the task, a `name` for a task without 2 classes, and a
    2-class task that the rule cannot decide are each a RecipeError, raised before any training."""
    binary = task.family != "multiple_choice" and not task.is_regression and task.num_labels == 2
    classes = list(class_names(task)) if task.family != "multiple_choice" and not task.is_regression else None
    if name is not None:
        if classes is None:
            labels = "choice indices" if task.family == "multiple_choice" else f"{task.target}s (regression)"
            raise RecipeError(
                f"--positive_label {name!r}: this {task.family} task has no classes (its labels are {labels}); "
                f"--positive_label names the class of a 2-class task whose F1 is reported as f1."
            )
        if name not in classes:
            near = [c for c in classes if c.casefold() == name.casefold()]
            hint = f" Did you mean {near[0]!r}? Class names must match exactly." if near else ""
            raise RecipeError(f"--positive_label {name!r} is not one of the classes of this task: {classes}.{hint}")
        if not binary:
            raise RecipeError(
                f"--positive_label {name!r}: this {task.family} task has {len(classes)} classes ({classes}), and "
                f"its F1 is macro_f1, the mean over them; --positive_label is for tasks of 2 classes."
            )
        return PositiveLabel(name, classes.index(name), "--positive_label")
    if not binary:
        return None
    # "1" is the positive class only of integer labels without names (classes "0" and "1"): a named "1" may be
    # anything (Yelp's polarity names its classes "1" = negative and "2").
    names = POSITIVE_NAMES if sorted(classes) == ["0", "1"] else tuple(n for n in POSITIVE_NAMES if n != "1")
    by_name = [c for c in classes if c.casefold() in names]
    if len(by_name) == 1:
        return PositiveLabel(by_name[0], classes.index(by_name[0]), f"the default rule: a class named {by_name[0]!r}")
    negated = [c for c, other in zip(classes, classes[::-1]) if _negates(c, other)]
    if not by_name and len(negated) == 1:
        (positive,) = negated
        other = classes[1 - classes.index(positive)]
        return PositiveLabel(positive, classes.index(positive), f"the default rule: {other!r} negates {positive!r}")
    why = "both are positive by name" if by_name else "neither is positive by the default rule"
    raise RecipeError(
        f"This {task.family} task has 2 classes, {classes}, and {why} ({POSITIVE_RULE}): give --positive_label "
        f"{classes[0]} or --positive_label {classes[1]}, the class whose F1 is reported as f1."
    )


def task_summary(task: TaskData, positive: PositiveLabel | None) -> dict:
    """results.json's "task": the data's summary and the positive class (None without 2 classes)."""
    return {**task.summary(), "positive_label": positive.as_dict() if positive else None}


def task_metrics(task: TaskData, predictions, references, positive: PositiveLabel | None) -> dict:
    """recipes.evaluation.metrics for the task, as plain floats: "f1" is the F1 of `positive` (2 classes), "macro_f1"
    the mean
    F1 over the classes."""
    metrics = compute_task_metrics(
        task.family, task.num_labels, list(predictions), list(references), positive.id if positive else None
    )
    return {name: float(value) for name, value in metrics.items()}


def majority_metrics(task: TaskData, positive: PositiveLabel | None) -> dict | None:
    """Always answering the most frequent training class (or choice index): {"prediction": it, split: its metrics}
    for every evaluation split (validation, test, ...); None for regression."""
    majority = majority_baseline(task)
    if majority is None:
        return None
    baseline = {"prediction": task.label_names[majority] if task.label_names else majority}
    for split, rows in task.dataset.items():
        if split != "train":
            references = rows[task.target]
            baseline[split] = task_metrics(task, [majority] * len(references), references, positive)
    return baseline


def greater_is_better(metric: str) -> bool:
    return not metric.endswith("loss")


def check_metric(task: TaskData, metric: str, positive: PositiveLabel | None) -> list[str]:
    """What the evaluation reports: the losses, then the task's metrics (computed here on a perfect prediction); the
    metric to pick the best model by must be one of them."""
    references = task.dataset["validation"][task.target][:4]
    known = ["loss", "task_loss", "lm_loss", *task_metrics(task, references, references, positive)]
    if metric not in known:
        raise RecipeError(f"--metric_for_best_model {metric!r} is not reported for this task; known: {known}.")
    return known


def load_saved_weights(model, folder: Path):
    """Puts the weights saved in `folder` back into `model` (the tied LM head is the embedding)."""
    state = load_file(folder / "model.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise RuntimeError(f"{folder} does not hold this model: missing {missing}, unexpected {unexpected}.")


def predict(
    model_dir, examples: list[dict], batch_size: int = 16, max_length: int | None = None, keep: str = "head"
) -> list:
    """Predictions of a fine-tuned folder (or Hub name) for `examples` in the layout of docs/DATA.md (labels, if any,
    are ignored): class names for classification, entailment and similarity classes, scores for similarity regression,
    choice indices for multiple choice. The folder is loaded with the Auto classes. `keep`: the truncation the model
    was fine-tuned with (`--truncation_keep`, in its results.json hyper-parameters)."""
    config = AutoConfig.from_pretrained(model_dir)
    family = config.task_type or "multiple_choice"
    auto_class = AutoModelForMultipleChoice if family == "multiple_choice" else AutoModelForSequenceClassification
    model = auto_class.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoder = GPT1TaskEncoder(tokenizer, family, max_length=max_length, keep=keep)
    collator = GPT1TaskCollator(tokenizer)
    regression = family != "multiple_choice" and config.num_labels == 1
    predictions = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        batch = collator([encoder({name: example[name] for name in TEXT_FIELDS[family]}) for example in chunk])
        with torch.no_grad():
            logits = model(**batch).logits
        for value in predictions_from_logits(regression, logits.float().numpy()).tolist():
            predictions.append(value if regression or family == "multiple_choice" else config.id2label[value])
    return predictions
