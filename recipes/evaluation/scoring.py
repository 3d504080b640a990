"""Scoring continuations with a causal language model, the machinery every zero-shot task shares.

A request is (tokens, first_target): the model reads tokens[:-1] and the targets tokens[first_target:] are scored,
each given every token before it. A task turns its data into requests (`continuation_request`: an answer after its
context; `sliding_window_requests`: windows over a long token stream), `score_requests` scores them in batches of
similar length on the Accelerator's device, and the task turns the scores into its metrics.
"""

import inspect

import torch
from accelerate.utils import gather_object
from tqdm.auto import tqdm

from ..core.errors import RecipeError

PADDING_SIDES = ("right", "left")


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
