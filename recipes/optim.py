"""One optimizer and scheduler builder for the training recipes."""

import inspect

import torch
from transformers import get_scheduler


def build_optimizer(model, learning_rate: float, betas: tuple, weight_decay: float, device, no_decay=()):
    """AdamW with weight decay on the matrices only (embeddings and linear weights), none on biases and LayerNorm
    gains (GPT-1, section 4.1); torch's fused kernel where the device has it. `no_decay`: matrices to leave undecayed
    too (fine-tuning's `--freeze_body` keeps the frozen rows of the embedding exactly as they are)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    undecayed = {id(p) for p in no_decay}
    decays = [p.dim() >= 2 and id(p) not in undecayed for p in parameters]
    groups = [
        {"params": [p for p, decay in zip(parameters, decays) if decay], "weight_decay": weight_decay},
        {"params": [p for p, decay in zip(parameters, decays) if not decay], "weight_decay": 0.0},
    ]
    kwargs = {"lr": learning_rate, "betas": tuple(betas)}
    if "fused" in inspect.signature(torch.optim.AdamW).parameters and device.type in ("cuda", "cpu", "xpu"):
        kwargs["fused"] = True
    return torch.optim.AdamW(groups, **kwargs)


def build_scheduler(name: str, optimizer, num_warmup_steps: int, max_steps: int):
    """A transformers schedule (linear warm-up, then `name`: cosine, linear, constant, ...) over `max_steps`."""
    return get_scheduler(name, optimizer=optimizer, num_warmup_steps=num_warmup_steps, num_training_steps=max_steps)
