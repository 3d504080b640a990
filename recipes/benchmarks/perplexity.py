"""Each model's perplexity on a held-out text, the benchmark's check that our CPU inference forms (int8, oneDNN)
and transformers' model with the same weights still compute what ours does."""

import math
from pathlib import Path

import torch

from ..core.errors import RecipeError


def perplexity_row(models: dict, config, tokenizer, args, device) -> dict:
    """Each model's perplexity on `args.eval_file`: its first `args.eval_tokens` tokens in blocks of the context,
    every next-token loss counted once."""
    text = Path(args.eval_file).read_text(encoding="utf-8")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][: args.eval_tokens]
    blocks = [ids[i : i + config.n_positions] for i in range(0, len(ids), config.n_positions)]
    blocks = [block for block in blocks if len(block) > 1]
    if not blocks:
        raise RecipeError(f"--eval_file {args.eval_file!r} holds {len(ids)} token(s): perplexity needs at least 2.")
    row = {"case": "perplexity", "seq_len": config.n_positions, "batch_size": 1, "eval_tokens": len(ids)}
    for name, model in models.items():
        total, count = 0.0, 0
        with torch.inference_mode():
            for block in blocks:
                tensor = torch.tensor([block], device=device)
                total += float(model(input_ids=tensor, labels=tensor).loss) * (len(block) - 1)
                count += len(block) - 1
        row[f"{name}_perplexity"] = math.exp(total / count)
    return row


__all__ = ["perplexity_row"]
