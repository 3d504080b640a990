"""Text generation: prompts continued by a GPT-2 or GPT-1 with transformers' `generate`, for recipes/generate.py.

The model is a saved folder, a Hub name or a random preset (recipes/models/loading.py); the prompts are checked against
its context before its weights are read, then continued greedily, by sampling or by beam search, and printed with
their continuations and the speed.
"""

import time

import torch

from ..core.errors import RecipeError
from ..models.loading import load_config_and_tokenizer, load_model

DEFAULT_PROMPT = "It was a dark and stormy night"
SAMPLING_OPTIONS = ("temperature", "top_k", "top_p")  # read only with --do_sample


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(name: str):
    """`--device` names a device torch knows and this machine has."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"--device {name!r} is not a torch device (cpu, cuda, cuda:1, mps, ...): {error}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise ValueError(f"--device {name}: this machine has {count} CUDA device(s); use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available on this machine; use --device cpu")


def check_lengths(prompts: list[str], lengths: list[int], max_new_tokens: int, n_positions: int):
    """Every prompt has a token, and the longest prompt with `max_new_tokens` after it fits the model's context."""
    for prompt, length in zip(prompts, lengths):
        if length == 0:
            raise RecipeError(f"--prompt {prompt!r} has no tokens (the tokenizer drops it): give some text.")
    longest = max(range(len(prompts)), key=lengths.__getitem__)
    length = lengths[longest]
    if length + max_new_tokens > n_positions:
        fix = (
            f"give --max_new_tokens at most {n_positions - length}"
            if length < n_positions
            else f"shorten the prompt to at most {n_positions - 1} tokens"
        )
        raise RecipeError(
            f"--prompt {prompts[longest][:40]!r} ({length} tokens) + --max_new_tokens {max_new_tokens} = "
            f"{length + max_new_tokens} positions, more than the model's n_positions={n_positions}: {fix}."
        )


def generate_continuations(args):
    """Continues every prompt of `args` (`GenerateArguments` of recipes/generate.py), prints them with their
    continuations and the speed, and returns the token ids. Everything that can be wrong with the options and prompts
    is found before the model's weights are read."""
    prompts = args.prompt or [DEFAULT_PROMPT]
    config, tokenizer = load_config_and_tokenizer(args.model, args.model_type, args.preset)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation continues at the right edge of every row
    # No special tokens: a GPT-1 tokenizer would frame a single text as a task input (`_start_ ... _classify_`).
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    check_lengths(prompts, batch["attention_mask"].sum(-1).tolist(), args.max_new_tokens, config.n_positions)

    model = load_model(args.model, args.model_type, args.preset, args.seed, tokenizer)
    model.to(args.device).eval()
    batch = batch.to(args.device)

    torch.manual_seed(args.seed)
    start = time.perf_counter()
    # Without --do_sample the sampling options are None, so that a model's generation_config cannot bring its own.
    sampling = {name: getattr(args, name) if args.do_sample else None for name in SAMPLING_OPTIONS}
    with torch.no_grad():
        output = model.generate(
            **batch,
            max_new_tokens=args.max_new_tokens,
            do_sample=args.do_sample,
            **sampling,
            repetition_penalty=args.repetition_penalty,
            num_beams=args.num_beams,
            num_return_sequences=args.num_return_sequences,
            pad_token_id=tokenizer.pad_token_id,
        )
    seconds = time.perf_counter() - start
    new_tokens = output[:, batch["input_ids"].shape[1] :]
    # The whole sequence decoded, so that a word boundary at the prompt's end is kept (GPT-1's BPE marks word ends,
    # and a continuation decoded alone would be glued to the prompt's last word).
    for row, text in enumerate(tokenizer.batch_decode(output, skip_special_tokens=True)):
        print(f"--- {prompts[row // args.num_return_sequences]!r}\n{text}\n")
    print(
        f"{model.num_parameters():,} parameters, {new_tokens.numel()} new tokens in {seconds:.2f} s "
        f"({new_tokens.numel() / seconds:.1f} tokens/s) on {args.device}"
    )
    return output
