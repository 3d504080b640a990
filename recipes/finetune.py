"""Fine-tune a GPT-1 on a labelled task, as the paper did (Radford et al. 2018, section 3.2), with Accelerate.

One script for the paper's four task families (`--task_type`): classification (SST-2, CoLA), entailment (SNLI,
MNLI, QNLI, RTE, SciTail), similarity (STS-B as regression; MRPC, QQP as classes of pairs) and multiple choice
(RACE, Story Cloze). The model is GPT1OriginsDoubleHeadsModel: the pre-trained transformer, its tied LM head and a new
linear head on the extract token, trained on L3 = L2(task) + lm_coef * L1(LM).

    python -m recipes.finetune --task_type classification --model_name_or_path runs/pretrain-gpt1 \\
        --dataset_name nyu-mll/glue --dataset_config_name sst2
    python -m recipes.finetune --task_type entailment --model_name_or_path openai-community/openai-gpt \\
        --train_file train.jsonl --validation_file validation.jsonl --test_file test.jsonl
    python -m recipes.finetune --task_type multiple_choice --model_name_or_path tiny --tokenizer train \\
        --train_file choices.jsonl --num_train_epochs 1          # random weights: a smoke test, not a model
    accelerate launch --config_file recipes/configs/multi_gpu.yaml -m recipes.finetune ...

What happens, in order:
1. The data is loaded and every row checked (recipes/task_data.py); the tokenizer is loaded (`--tokenizer`, default
   the model's) and given the task tokens `_start_`, `_delimiter_`, `_classify_` if it lacks them, the model's
   embedding growing to match (new rows N(0, 0.02)); the config gets the task type, the classes and the token ids.
2. Each example becomes the paper's input transformation (`modeling_gpt1.GPT1TaskEncoder`, `--max_length` tokens at
   most), batched by `GPT1TaskCollator`.
3. The paper's fine-tuning recipe, every value overridable: AdamW lr 6.25e-5, betas (0.9, 0.999), weight decay 0.01
   on matrices only, batch 32, 3 epochs, linear warm-up over 0.2% of the steps then linear decay to 0, gradient
   norm clipped at 1, classifier dropout 0.1, lambda (`--lm_coef`) 0.5. `--freeze_body` trains only what
   fine-tuning adds: the task head and the three task-token embeddings.
4. After every epoch: validation loss and the task's metrics (recipes/metrics); the best model by
   `--metric_for_best_model` is saved with its tokenizer in `--output_dir` (Auto classes, or remote code). Atomic
   checkpoints as in pre-training (`--checkpointing_steps`, `--resume_from_checkpoint latest` continues bit for bit).
5. At the end: the best model on the test split (and any other evaluation split, e.g. MNLI mismatched), and
   `results.json`: hyper-parameters, per-epoch validation metrics, the majority-class baseline, test metrics.

`recipes/finetune_trainer.py` does the same through transformers' Trainer.
"""

import argparse
import inspect
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from datasets import DatasetDict
from safetensors.torch import load_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import (
    AutoConfig,
    AutoModelForMultipleChoice,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedConfig,
    get_scheduler,
)

import modeling_gpt1
from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsDoubleHeadsModel, GPT1TaskCollator, GPT1TaskEncoder
from modeling_gpt1.configuration_gpt1 import PRESETS
from modeling_gpt1.tokenization_gpt1 import DELIMITER_TOKEN, EXTRACT_TOKEN, START_TOKEN, _wrap

from .checkpointing import (
    ARCHITECTURE_FIELDS,
    check_same_model,
    complete_checkpoints,
    resolve_checkpoint,
    save_checkpoint,
)
from .errors import RecipeError
from .metrics import compute_task_metrics
from .pretrain import CHECKPOINTS, check_layout, check_output_dir, get_optimizer, has_accelerator
from .task_data import TEXT_FIELDS, TaskData, load_task_data, majority_baseline

# Section 4.1 ("Fine-tuning details") and the released train.py: the defaults of every option below.
PAPER_DEFAULTS = {
    "learning_rate": 6.25e-5,
    "per_device_train_batch_size": 32,
    "num_train_epochs": 3,
    "warmup_ratio": 0.002,  # "linear learning rate decay schedule with warmup over 0.2% of training"
    "lm_coef": 0.5,
    "classifier_dropout": 0.1,
    "max_grad_norm": 1.0,
    "weight_decay": 0.01,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
}
TASK_TOKENS = (START_TOKEN, DELIMITER_TOKEN, EXTRACT_TOKEN)  # what fine-tuning adds to the vocabulary
GPT1_MODEL_TYPES = (GPT1OriginsConfig.model_type, "openai-gpt")  # ours, and transformers' OpenAIGPT folders
TOKEN_ID_FIELDS = ("start_token_id", "delimiter_token_id", "extract_token_id", "pad_token_id")
RESULTS = "results.json"


@dataclass
class FineTuningProgress:
    """What the loop has done, saved in every checkpoint (`accelerator.register_for_checkpointing`)."""

    step: int = 0
    train_history: list = field(default_factory=list)  # [{"step", "epoch", "loss", "lr"}]
    eval_history: list = field(default_factory=list)  # [{"step", "epoch", "loss", metrics...}] on validation
    best: dict = field(default_factory=dict)  # the eval_history record of the saved model
    # The training loss summed since the last log (one sum per process) and the micro-batches it sums: a checkpoint
    # between two logs must carry them, or the next logged loss of a resumed run averages fewer steps.
    running_loss: list = field(default_factory=list)
    running_count: int = 0

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict):
        for key, value in state.items():
            setattr(self, key, value)


def resolve_hyperparameters(args) -> dict:
    return {
        "task_type": args.task_type,
        "model_name_or_path": args.model_name_or_path,
        "learning_rate": args.learning_rate,
        "adam_beta1": args.adam_beta1,
        "adam_beta2": args.adam_beta2,
        "weight_decay": args.weight_decay,
        "lr_scheduler_type": args.lr_scheduler_type,
        "warmup_ratio": args.warmup_ratio,
        "max_grad_norm": args.max_grad_norm,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "num_train_epochs": args.num_train_epochs,
        "max_train_steps": args.max_train_steps,
        "lm_coef": args.lm_coef,
        "classifier_dropout": args.classifier_dropout,
        "freeze_body": args.freeze_body,
        "max_length": args.max_length,
        "seed": args.seed,
        "mixed_precision": args.mixed_precision,
    }


# ---------------------------------------------------------------------------------------------------------------------
# Data, tokenizer and model: shared with recipes/finetune_trainer.py.


def get_task_data(args) -> TaskData:
    task = load_task_data(
        args.task_type,
        train_files=args.train_file,
        validation_files=args.validation_file,
        test_files=args.test_file,
        dataset_name=args.dataset_name,
        dataset_config_name=args.dataset_config_name,
        data_dir=args.dataset_data_dir,
        column_mapping=args.column_mapping,
        label_names=args.label_names,
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


def is_preset(name: str) -> bool:
    return name in PRESETS and not Path(name).exists()


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
    # The same special tokens and template as every GPT-1 tokenizer of modeling_gpt1 (`tokenization_gpt1._wrap`).
    wrapped = _wrap(backend, tokenizer.model_max_length if tokenizer.model_max_length < 1e9 else 512)
    vocab = wrapped.get_vocab()
    return wrapped, sorted((token for token in vocab if token not in before), key=vocab.get)


def get_tokenizer(args, task: TaskData):
    """`--tokenizer` (a folder or Hub name, or "train": learned from the training texts), else the model's."""
    choice = args.tokenizer or (None if is_preset(args.model_name_or_path) else args.model_name_or_path)
    if choice is None:
        raise RecipeError(
            f"--model_name_or_path {args.model_name_or_path!r} is a preset with random weights and no tokenizer: "
            f"give --tokenizer (a GPT-1 tokenizer folder, e.g. a pre-training run's, or 'train')."
        )
    if choice == "train":
        if not is_preset(args.model_name_or_path):
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


def get_model(args, task: TaskData, tokenizer, added_tokens) -> GPT1OriginsDoubleHeadsModel:
    """A preset with random weights, or the weights of a GPT-1 folder / Hub name (LM, double-heads, transformers'
    openai-gpt), with the task's head and, for added task tokens, grown and N(0, 0.02)-initialised embedding rows."""
    name = args.model_name_or_path
    fields = task_config_fields(args, task, tokenizer)
    token_ids = {key: fields.pop(key) for key in TOKEN_ID_FIELDS}  # set once the embedding holds them
    try:
        if is_preset(name):
            config = GPT1OriginsConfig.from_preset(name, vocab_size=len(tokenizer))
        else:
            model_type = PreTrainedConfig.get_config_dict(name)[0].get("model_type")
            if model_type not in GPT1_MODEL_TYPES:
                raise RecipeError(
                    f"--model_name_or_path {name!r} is a {model_type!r} model; this recipe fine-tunes GPT-1 "
                    f"({', '.join(GPT1_MODEL_TYPES)}) or a preset ({', '.join(PRESETS)})."
                )
            config = GPT1OriginsConfig.from_pretrained(name)
        architecture = {key: getattr(config, key, None) for key in ARCHITECTURE_FIELDS}
        for key, value in fields.items():
            setattr(config, key, value)
        if args.config_overrides:
            config.update_from_string(args.config_overrides)
        config.validate()
    except OSError as error:
        raise RecipeError(f"--model_name_or_path {name!r} is neither a preset, a folder nor a Hub name: {error}")
    except ValueError as error:
        raise RecipeError(f"Bad model configuration: {error}") from error
    changed = [key for key, value in architecture.items() if getattr(config, key, None) != value]
    if changed and not is_preset(name):
        raise RecipeError(f"--config_overrides cannot change the shape of pre-trained weights ({', '.join(changed)}).")
    if args.max_length is None:
        args.max_length = min(config.n_positions, 512)
    if args.max_length > config.n_positions:
        raise RecipeError(f"--max_length {args.max_length} is more than the model's n_positions={config.n_positions}.")

    if is_preset(name):
        model = GPT1OriginsDoubleHeadsModel._from_config(config, attn_implementation=args.attn_implementation)
    else:
        # The task head is new, or replaced when it was trained for another number of classes; the body has the
        # checkpoint's shapes (checked above), so nothing else can mismatch.
        model = GPT1OriginsDoubleHeadsModel.from_pretrained(
            name, config=config, ignore_mismatched_sizes=True, attn_implementation=args.attn_implementation
        )
    if len(tokenizer) > model.config.vocab_size:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    if added_tokens and not is_preset(name):
        rows = tokenizer.convert_tokens_to_ids(added_tokens)
        with torch.no_grad():  # the paper's init for the new task-token embeddings
            embedding = model.get_input_embeddings().weight
            embedding[rows] = torch.randn_like(embedding[rows]) * model.config.initializer_range
    for key, value in token_ids.items():
        setattr(model.config, key, value)
    model.config.validate()
    # Saved with the model: its inputs are cut where they were in training (GPT1TaskEncoder's default length).
    tokenizer.model_max_length = args.max_length
    return model


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


def make_encoder(task: TaskData, tokenizer, max_length: int):
    """The paper's input transformation of one example (a `datasets` row) into model features."""
    return GPT1TaskEncoder(
        tokenizer,
        task.family,
        max_length=max_length,
        # Classes of pairs (MRPC, QQP) are similarity with label names; scores (STS-B) are similarity without.
        label_names=None if task.family == "multiple_choice" or task.is_regression else class_names(task),
        label_field=task.target,
    )


def encode_task(task: TaskData, tokenizer, max_length: int, num_proc: int | None = None) -> DatasetDict:
    encode = make_encoder(task, tokenizer, max_length)
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


def task_metrics(task: TaskData, predictions, references) -> dict:
    """recipes.metrics for the task, as plain floats."""
    metrics = compute_task_metrics(task.family, task.num_labels, list(predictions), list(references))
    return {name: float(value) for name, value in metrics.items()}


def majority_metrics(task: TaskData) -> dict | None:
    """The validation metrics of always answering the most frequent training class (or choice index)."""
    majority = majority_baseline(task)
    if majority is None:
        return None
    references = task.dataset["validation"][task.target]
    prediction = task.label_names[majority] if task.label_names else majority
    return {"prediction": prediction, **task_metrics(task, [majority] * len(references), references)}


def greater_is_better(metric: str) -> bool:
    return not metric.endswith("loss")


def check_metric(task: TaskData, metric: str) -> list[str]:
    """What the evaluation reports: the losses, then the task's metrics (computed here on a perfect prediction); the
    metric to pick the best model by must be one of them."""
    references = task.dataset["validation"][task.target][:4]
    known = ["loss", "task_loss", "lm_loss", *task_metrics(task, references, references)]
    if metric not in known:
        raise RecipeError(f"--metric_for_best_model {metric!r} is not reported for this task; known: {known}.")
    return known


# ---------------------------------------------------------------------------------------------------------------------
# The Accelerate loop.


def get_dataloaders(args, encoded: DatasetDict, collator) -> tuple[DataLoader, dict[str, DataLoader]]:
    train_dataloader = DataLoader(
        encoded["train"],
        shuffle=True,
        batch_size=args.per_device_train_batch_size,
        collate_fn=collator,
        # Its own generator: the loader must not draw from the global RNG, which a resumed run restores exactly.
        generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloaders = {
        split: DataLoader(rows, batch_size=args.per_device_eval_batch_size, collate_fn=collator)
        for split, rows in encoded.items()
        if split != "train"
    }
    return train_dataloader, eval_dataloaders


def evaluate(model, dataloader, accelerator, task: TaskData) -> dict:
    """Mean losses (combined, task, LM) and the task's metrics over one evaluation split."""
    model.eval()
    logits, references, losses = [], [], {"loss": [], "task_loss": [], "lm_loss": []}
    for batch in dataloader:
        with torch.no_grad():
            outputs = model(**batch)
        batch_size = len(batch["labels"])
        for name in losses:
            value = outputs[name].detach().float().repeat(batch_size)
            losses[name].append(accelerator.gather_for_metrics(value).cpu())
        gathered_logits, gathered_labels = accelerator.gather_for_metrics((outputs.logits.float(), batch["labels"]))
        logits.append(gathered_logits.cpu())
        references.append(gathered_labels.cpu())
    model.train()
    references = torch.cat(references).tolist()
    predictions = predictions_from_logits(task, torch.cat(logits).numpy())
    metrics = {name: torch.cat(values).mean().item() for name, values in losses.items()}
    metrics.update(task_metrics(task, predictions.tolist(), references))
    return metrics


def load_saved_weights(model, folder: Path):
    """Puts the weights saved in `folder` back into `model` (the tied LM head is the embedding)."""
    state = load_file(folder / "model.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise RuntimeError(f"{folder} does not hold this model: missing {missing}, unexpected {unexpected}.")


def training_function(config: dict, args):
    """`config`: the resolved hyper-parameters (logged and written to results.json); `args`: everything else."""
    output_dir = Path(args.output_dir)
    checkpoints = output_dir / CHECKPOINTS
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        cpu=args.cpu or not has_accelerator(),
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=args.report_to if args.with_tracking else None,
        project_dir=os.fspath(output_dir / "logs"),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        step_scheduler_with_optimizer=False,  # stepped by hand, once per optimizer step
    )
    set_seed(args.seed)

    # 1. Everything that can be wrong is checked before any training time is spent.
    resume_dir = None
    if args.resume_from_checkpoint == "latest" and not complete_checkpoints(checkpoints):
        accelerator.print(f"No complete checkpoint in {checkpoints} yet: starting from scratch.")
    elif args.resume_from_checkpoint:
        resume_dir = resolve_checkpoint(args.resume_from_checkpoint, checkpoints)
    check_output_dir(args, accelerator, resume_dir)
    task = get_task_data(args)
    metric = args.metric_for_best_model or task.main_metric
    check_metric(task, metric)
    if resume_dir is not None:
        tokenizer, added_tokens = AutoTokenizer.from_pretrained(resume_dir), []
    else:
        tokenizer, added_tokens = get_tokenizer(args, task)
    model = get_model(args, task, tokenizer, added_tokens)
    # Dropout draws the same numbers whatever the initialisation drew (Trainer seeds again after the model is built).
    set_seed(args.seed)
    layout = {
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "num_processes": accelerator.num_processes,
        "seed": args.seed,
        "train_rows": task.dataset["train"].num_rows,
        "max_length": args.max_length,
    }
    if resume_dir is not None:
        check_same_model(resume_dir, model.config)
        check_layout(resume_dir, layout)
    config.update(metric_for_best_model=metric, max_length=args.max_length, added_tokens=added_tokens)

    # 2. Data, optimizer, scheduler.
    with accelerator.main_process_first():
        encoded = encode_task(task, tokenizer, args.max_length, args.preprocessing_num_workers)
    pad_to = 8 if args.mixed_precision in ("fp16", "bf16", "fp8") else None
    collator = GPT1TaskCollator(tokenizer, pad_to_multiple_of=pad_to)
    train_dataloader, eval_dataloaders = get_dataloaders(args, encoded, collator)
    no_decay = freeze_body(model, tokenizer) if args.freeze_body else []
    optimizer = get_optimizer(model, config, accelerator.device, no_decay=no_decay)
    batches_per_process = math.ceil(len(train_dataloader) / accelerator.num_processes)
    steps_per_epoch = math.ceil(batches_per_process / args.gradient_accumulation_steps)
    max_steps = args.max_train_steps or steps_per_epoch * args.num_train_epochs
    num_epochs = math.ceil(max_steps / steps_per_epoch)
    warmup = math.ceil(max_steps * args.warmup_ratio)  # as transformers' Trainer counts a warm-up ratio
    lr_scheduler = get_scheduler(
        args.lr_scheduler_type, optimizer=optimizer, num_warmup_steps=warmup, num_training_steps=max_steps
    )
    config.update(
        max_train_steps=max_steps,
        num_warmup_steps=warmup,
        num_parameters=model.num_parameters(),
        trainable_parameters=trained_parameters(model, args.freeze_body),
    )
    splits = list(eval_dataloaders)
    model, optimizer, train_dataloader, lr_scheduler, *loaders = accelerator.prepare(
        model, optimizer, train_dataloader, lr_scheduler, *eval_dataloaders.values()
    )
    eval_dataloaders = dict(zip(splits, loaders))
    progress = FineTuningProgress()
    accelerator.register_for_checkpointing(progress)
    if resume_dir is not None:
        accelerator.load_state(os.fspath(resume_dir))  # weights, optimizer, scheduler, every RNG, the progress
        accelerator.print(f"Resumed from {resume_dir} at step {progress.step}.")
    if args.with_tracking:
        accelerator.init_trackers("finetune", {k: v for k, v in config.items() if isinstance(v, (int, float, str))})
    accelerator.print(
        f"{task.family} on {task.source}: {task.summary()['rows']} rows | {config['num_parameters']:,} parameters "
        f"({config['trainable_parameters']:,} trained) | {max_steps} steps of {args.per_device_train_batch_size} x "
        f"{accelerator.num_processes} process(es) x {args.gradient_accumulation_steps} accumulation, "
        f"{num_epochs} epoch(s), on {accelerator.device}"
    )

    def save_best():
        accelerator.wait_for_everyone()
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.save_pretrained(
            output_dir,
            is_main_process=accelerator.is_main_process,
            save_function=accelerator.save,
            state_dict=accelerator.get_state_dict(model),
        )
        if accelerator.is_main_process:
            tokenizer.save_pretrained(output_dir)
        accelerator.wait_for_everyone()

    def write_extra(folder):
        accelerator.unwrap_model(model).config.to_json_file(Path(folder) / "config.json")
        tokenizer.save_pretrained(folder)

    def run_evaluation(epoch: float):
        metrics = evaluate(model, eval_dataloaders["validation"], accelerator, task)
        record = {"step": progress.step, "epoch": epoch, **metrics}
        progress.eval_history.append(record)
        if args.with_tracking:
            accelerator.log({f"eval/{k}": v for k, v in record.items() if k != "step"}, step=progress.step)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k not in ("step", "epoch"))
        message = f"epoch {epoch:g} (step {progress.step}): validation {shown}"
        best = progress.best.get(metric)
        better = best is None or (record[metric] > best if greater_is_better(metric) else record[metric] < best)
        if better:
            progress.best = record
            save_best()
            message += f" | best {metric} so far: saved to {output_dir}"
        if accelerator.is_local_main_process:
            tqdm.write(message)

    # 3. The loop. Position in the data = optimizer steps done x micro-batches per step, within the epoch.
    model.train()
    bar = tqdm(
        total=max_steps, initial=progress.step, disable=not accelerator.is_local_main_process, desc="fine-tuning"
    )
    running = progress.running_loss[accelerator.process_index] if progress.running_loss else 0.0
    running_loss, running_count = torch.tensor(running, device=accelerator.device), progress.running_count
    for epoch in range(progress.step // steps_per_epoch, num_epochs):
        if progress.step >= max_steps:
            break
        train_dataloader.set_epoch(epoch)
        skip = (progress.step - epoch * steps_per_epoch) * args.gradient_accumulation_steps
        active_dataloader = accelerator.skip_first_batches(train_dataloader, skip) if skip else train_dataloader
        for batch in active_dataloader:
            with accelerator.accumulate(model):
                outputs = model(**batch)
                accelerator.backward(outputs.loss)
                if accelerator.sync_gradients and args.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            running_loss += outputs.loss.detach().float()
            running_count += 1
            if not accelerator.sync_gradients:
                continue
            lr_scheduler.step()
            progress.step += 1
            bar.update(1)
            epoch_done = progress.step % steps_per_epoch == 0 or progress.step == max_steps
            if progress.step % args.logging_steps == 0 or epoch_done:
                loss = accelerator.reduce(running_loss / running_count, reduction="mean").item()
                record = {
                    "step": progress.step,
                    "epoch": progress.step / steps_per_epoch,
                    "loss": loss,
                    "lr": lr_scheduler.get_last_lr()[0],
                }
                progress.train_history.append(record)
                bar.set_postfix(loss=f"{loss:.3f}")
                if args.with_tracking:
                    accelerator.log({"train/loss": loss, "train/lr": record["lr"]}, step=progress.step)
                running_loss, running_count = running_loss * 0, 0
            if epoch_done:
                run_evaluation(progress.step / steps_per_epoch)
            if args.checkpointing_steps == "epoch":
                at_interval = epoch_done
            else:
                at_interval = progress.step % int(args.checkpointing_steps) == 0
            if at_interval or progress.step == max_steps:
                progress.running_loss = accelerator.gather(running_loss.reshape(1)).tolist()
                progress.running_count = running_count
                info = {"layout": layout}
                save_checkpoint(
                    accelerator, checkpoints, progress.step, write_extra, args.checkpoints_total_limit, info
                )
            if progress.step >= max_steps:
                break
    bar.close()

    # 4. The best model on the other evaluation splits, and the results.
    accelerator.wait_for_everyone()
    if progress.best["step"] != progress.step:
        load_saved_weights(accelerator.unwrap_model(model), output_dir)
    final = {
        split: evaluate(model, loader, accelerator, task)
        for split, loader in eval_dataloaders.items()
        if split != "validation"
    }
    results = {
        "task": task.summary(),
        "hyperparameters": config,
        "majority_baseline": majority_metrics(task),
        "validation": progress.eval_history,
        "best": {"metric": metric, "value": progress.best[metric], **{k: progress.best[k] for k in ("step", "epoch")}},
        **final,
        "train_history": progress.train_history,
    }
    if accelerator.is_main_process:
        (output_dir / RESULTS).write_text(json.dumps(results, indent=1))
    if args.with_tracking:
        accelerator.end_training()
    report(accelerator, results, output_dir, metric)
    if accelerator.is_main_process and args.push_to_hub:
        push_to_hub(accelerator.unwrap_model(model), tokenizer, args.hub_model_id or output_dir.name)
        accelerator.print(f"Pushed to https://huggingface.co/{args.hub_model_id or output_dir.name}")
    return results


def report(accelerator, results: dict, output_dir: Path, metric: str):
    best = results["best"]
    lines = [f"\nBest validation {metric}: {best['value']:.4f} (epoch {best['epoch']:g}, step {best['step']})"]
    if results["majority_baseline"]:
        baseline = results["majority_baseline"]
        value = baseline.get(metric, float("nan"))
        lines.append(f"Majority class ({baseline['prediction']}) on validation: {metric} {value:.4f}")
    for split in results["task"]["rows"]:
        if split not in ("train", "validation"):
            shown = ", ".join(f"{k} {v:.4f}" for k, v in results[split].items())
            lines.append(f"{split} (best model): {shown}")
    auto = "MultipleChoice" if results["task"]["family"] == "multiple_choice" else "SequenceClassification"
    lines.append(f"Model and tokenizer: {output_dir}/ (AutoModelFor{auto}.from_pretrained({str(output_dir)!r}))")
    lines.append(f"Results: {output_dir / RESULTS}")
    accelerator.print("\n".join(lines))


def push_to_hub(model, tokenizer, repo_id: str):
    if "tokenizer" in inspect.signature(model.push_to_hub).parameters:
        model.push_to_hub(repo_id, tokenizer=tokenizer)
    else:
        model.push_to_hub(repo_id)
        tokenizer.push_to_hub(repo_id)


# ---------------------------------------------------------------------------------------------------------------------
# Using a fine-tuned folder.


def predict(model_dir, examples: list[dict], batch_size: int = 16, max_length: int | None = None) -> list:
    """Predictions of a fine-tuned folder (or Hub name) for `examples` in the DATA.md layout (labels, if any, are
    ignored): class names for classification, entailment and similarity classes, scores for similarity regression,
    choice indices for multiple choice. The folder is loaded with the Auto classes."""
    config = AutoConfig.from_pretrained(model_dir)
    family = config.task_type or "multiple_choice"
    auto_class = AutoModelForMultipleChoice if family == "multiple_choice" else AutoModelForSequenceClassification
    model = auto_class.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoder = GPT1TaskEncoder(tokenizer, family, max_length=max_length)
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


# ---------------------------------------------------------------------------------------------------------------------
# Command line.


def column_mapping(text: str) -> dict:
    try:
        return dict(pair.split("=", 1) for pair in text.split(",") if pair)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list old=new,old2=new2") from None


def get_parser(prog: str = "python -m recipes.finetune", description: str = __doc__) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model_name_or_path",
        required=True,
        help=f"a GPT-1 folder (a pre-training run, a LM or fine-tuned GPT-1, transformers' openai-gpt) or Hub name, "
        f"or a preset with random weights: {', '.join(PRESETS)}",
    )
    model.add_argument(
        "--tokenizer",
        default=None,
        help='a tokenizer folder or Hub name (default: the model\'s), or "train" (learned from the training texts)',
    )
    model.add_argument("--vocab_size", type=int, default=8000, help='of a --tokenizer "train"')
    model.add_argument("--config_overrides", default=None, help='config fields, e.g. "resid_pdrop=0.0,attn_pdrop=0.0"')
    model.add_argument("--attn_implementation", default="sdpa", help="sdpa, eager, flash_attention_2, flex_attention")
    model.add_argument("--lm_coef", type=float, default=PAPER_DEFAULTS["lm_coef"], help="lambda; 0: no LM loss")
    model.add_argument("--classifier_dropout", type=float, default=PAPER_DEFAULTS["classifier_dropout"])
    model.add_argument(
        "--freeze_body",
        action="store_true",
        help="train only the task head and the task tokens' embeddings (the LM loss still applies)",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--task_type", required=True, choices=list(modeling_gpt1.FAMILIES))
    data.add_argument("--train_file", nargs="+", default=None, help=".jsonl, .json, .csv, .tsv or .parquet")
    data.add_argument("--validation_file", nargs="+", default=None)
    data.add_argument("--test_file", nargs="+", default=None)
    data.add_argument("--dataset_name", default=None, help="a Hub dataset: nyu-mll/glue, stanfordnlp/snli, ehovy/race")
    data.add_argument("--dataset_config_name", default=None, help="e.g. sst2, mnli, stsb")
    data.add_argument("--dataset_data_dir", default=None, help="data_dir of a manual download (story_cloze)")
    data.add_argument("--column_mapping", type=column_mapping, default=None, help="rename columns: sentence=text,...")
    data.add_argument("--label_names", nargs="+", default=None, help="class names in id order")
    data.add_argument("--num_labels", type=int, default=None, help="classes of integer labels without names")
    data.add_argument("--similarity_target", choices=["score", "label"], default=None, help="regression or classes")
    data.add_argument("--validation_split_percentage", type=float, default=10.0, help="held out without validation")
    data.add_argument("--max_length", type=int, default=None, help="tokens per sequence (min(n_positions, 512))")
    data.add_argument("--max_train_samples", type=int, default=None)
    data.add_argument("--max_eval_samples", type=int, default=None)
    data.add_argument("--preprocessing_num_workers", type=int, default=None)
    train = parser.add_argument_group("training (defaults: the paper's)")
    train.add_argument(
        "--per_device_train_batch_size", type=int, default=PAPER_DEFAULTS["per_device_train_batch_size"]
    )
    train.add_argument("--per_device_eval_batch_size", type=int, default=32)
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--learning_rate", type=float, default=PAPER_DEFAULTS["learning_rate"])
    train.add_argument("--weight_decay", type=float, default=PAPER_DEFAULTS["weight_decay"], help="on matrices only")
    train.add_argument("--adam_beta1", type=float, default=PAPER_DEFAULTS["adam_beta1"])
    train.add_argument("--adam_beta2", type=float, default=PAPER_DEFAULTS["adam_beta2"])
    train.add_argument("--lr_scheduler_type", default="linear", help="any transformers scheduler name")
    train.add_argument("--warmup_ratio", type=float, default=PAPER_DEFAULTS["warmup_ratio"])
    train.add_argument("--max_grad_norm", type=float, default=PAPER_DEFAULTS["max_grad_norm"])
    train.add_argument("--num_train_epochs", type=int, default=PAPER_DEFAULTS["num_train_epochs"])
    train.add_argument("--max_train_steps", type=int, default=None, help="stop after this many steps")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--mixed_precision", choices=["no", "fp16", "bf16", "fp8"], default=None)
    train.add_argument("--cpu", action="store_true", help="train on the CPU even if an accelerator is present")
    out = parser.add_argument_group("evaluation, checkpoints and output")
    out.add_argument("--output_dir", default=None, help="default: runs/finetune-<task_type>")
    out.add_argument("--overwrite_output_dir", action="store_true", help="delete the checkpoints of an earlier run")
    out.add_argument("--metric_for_best_model", default=None, help="default: the task's main metric (e.g. accuracy)")
    out.add_argument("--logging_steps", type=int, default=10)
    out.add_argument("--checkpointing_steps", default="epoch", help='"epoch" or a number of steps')
    out.add_argument("--checkpoints_total_limit", type=int, default=2, help="keep the newest N checkpoints")
    out.add_argument("--resume_from_checkpoint", default=None, help='"latest", a checkpoint or a folder of them')
    out.add_argument("--with_tracking", action="store_true", help="log to --report_to (TensorBoard)")
    out.add_argument("--report_to", default="tensorboard")
    out.add_argument("--push_to_hub", action="store_true")
    out.add_argument("--hub_model_id", default=None, help="repository for --push_to_hub (default: output_dir's name)")
    return parser


def parse_args(parser, argv=None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    args.output_dir = args.output_dir or f"runs/finetune-{args.task_type}"
    positive = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps")
    for name in (*positive, "logging_steps", "num_train_epochs", "max_train_steps", "max_length", "vocab_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    steps = args.checkpointing_steps
    if steps != "epoch" and not (steps.isdigit() and int(steps) > 0):
        parser.error(f'--checkpointing_steps must be "epoch" or a positive number, got {args.checkpointing_steps!r}')
    if not 0 <= args.warmup_ratio < 1:
        parser.error(f"--warmup_ratio must be in [0, 1), got {args.warmup_ratio}")
    if args.lm_coef < 0:
        parser.error(f"--lm_coef must be >= 0, got {args.lm_coef}")
    return args


def main(argv=None):
    parser = get_parser()
    args = parse_args(parser, argv)
    try:
        return training_function(resolve_hyperparameters(args), args)
    except RecipeError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")


if __name__ == "__main__":
    main()
