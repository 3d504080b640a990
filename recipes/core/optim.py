"""One optimizer and scheduler builder for the training recipes."""

import inspect

import torch
from transformers import get_scheduler

from .errors import RecipeError


def build_optimizer(
    model,
    learning_rate: float,
    betas: tuple,
    weight_decay: float,
    device,
    no_decay=(),
    embedding_lr_scale: float = 1.0,
):
    """AdamW with weight decay on the matrices only (embeddings and linear weights), none on biases and LayerNorm
    gains (GPT-1, section 4.1); torch's fused kernel where the device has it. `no_decay`: matrices to leave undecayed
    too (fine-tuning's `--freeze_body` keeps the frozen rows of the embedding exactly as they are).

    `embedding_lr_scale`: the token embedding (with the LM head tied to it) in a group of its own at that multiple of
    the learning rate (`--embedding_lr_scale`); at 1 the groups are the two above, as checkpoints hold them. Each
    group records `decayed` and `lr_scale` for `apply_resume_changes`."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    embedding = model.get_input_embeddings().weight if embedding_lr_scale != 1 else None
    undecayed = {id(p) for p in no_decay}
    decays = {id(p): p.dim() >= 2 and id(p) not in undecayed for p in parameters}
    body = [p for p in parameters if p is not embedding]
    groups = [
        {"params": [p for p in body if decays[id(p)]], "weight_decay": weight_decay, "decayed": True},
        {"params": [p for p in body if not decays[id(p)]], "weight_decay": 0.0, "decayed": False},
    ]
    if embedding is not None and embedding.requires_grad:
        decayed = decays[id(embedding)]
        groups.append(
            {
                "params": [embedding],
                "weight_decay": weight_decay if decayed else 0.0,
                "decayed": decayed,
                "lr": learning_rate * embedding_lr_scale,
                "lr_scale": embedding_lr_scale,
            }
        )
    kwargs = {"lr": learning_rate, "betas": tuple(betas)}
    if "fused" in inspect.signature(torch.optim.AdamW).parameters and device.type in ("cuda", "cpu", "xpu"):
        kwargs["fused"] = True
    return torch.optim.AdamW(groups, **kwargs)


def build_scheduler(name: str, optimizer, num_warmup_steps: int, max_steps: int):
    """A transformers schedule (linear warm-up, then `name`: cosine, linear, constant, ...) over `max_steps`."""
    return get_scheduler(name, optimizer=optimizer, num_warmup_steps=num_warmup_steps, num_training_steps=max_steps)


def apply_resume_changes(optimizer, lr_scheduler, options, learning_rate: float | None = None):
    """After `accelerator.load_state`, which restores the optimizer's and the schedule's settings as they were saved:
    the resumed run's `learning_rate`, `weight_decay` and betas instead, and the learning rate of the current step
    on the (possibly changed) schedule. `--max_steps`, the schedule type, the warm-up, `--max_grad_norm` and the
    precision need nothing here: the resumed run builds them from its own options."""
    optimizer = getattr(optimizer, "optimizer", optimizer)  # Accelerate's wrappers
    scheduler = getattr(lr_scheduler, "scheduler", lr_scheduler)
    if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
        raise RecipeError(
            f"--allow_resume_changes: the {type(scheduler).__name__} schedule cannot be changed on resume."
        )
    # build_optimizer's groups; a checkpoint from before they recorded `decayed` and `lr_scale` has two: the
    # matrices (decayed), then the rest.
    groups = optimizer.param_groups
    for index, group in enumerate(groups):
        if group.get("decayed", index == 0):
            group["weight_decay"] = options.weight_decay
    learning_rate = options.learning_rate if learning_rate is None else learning_rate  # e.g. found by a range test
    scheduler.base_lrs = [learning_rate * group.get("lr_scale", 1.0) for group in groups]
    for group, base, lr_lambda in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["initial_lr"] = base
        group["lr"] = base * lr_lambda(scheduler.last_epoch)  # as LambdaLR computes it
        group["betas"] = (options.adam_beta1, options.adam_beta2)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
