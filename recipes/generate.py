"""Generate text with a GPT-2 or GPT-1 of gpt-origins.

The model is a saved folder or Hub repository (`--model path/or/name`: a pre-training run's folder, a fine-tuned
GPT-1's, or transformers' own GPT-2 and GPT-1 checkpoints such as openai-community/gpt2; config.json says which
family it is), or a preset of the paper's sizes with random weights (`--preset tiny`, the default here, of
`--model_type gpt2` or `gpt1`, so this runs on a fresh machine without the Hub: expect noise until the model is
trained). The tokenizer is the model folder's; a GPT-2 folder without one gets OpenAI's GPT-2 vocabulary, which ships
with gpt-origins and needs no network, and a random GPT-1 preset a GPT-1 style BPE learned from the bundled
Shakespeare.

    python -m recipes.generate --prompt "It was a dark and stormy night"
    python -m recipes.generate --model runs/pretrain-gpt1 --prompt "To be, or not to be"
    python -m recipes.generate --model openai-community/gpt2 --prompt "Hello" --do_sample --top_k 40
"""

if __name__ == "__main__" and not __package__:  # a script path: `python recipes/generate.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)

import math
import time
from dataclasses import dataclass, field, fields

import torch

from .core.arguments import at_least, parse_arguments
from .core.errors import RecipeError, exit_with_error
from .core.options import option
from .models.families import (
    MODEL_FAMILIES,
    get_family,
    load_causal_lm,
    load_config,
    load_tokenizer_for,
    preset_model,
    preset_tokenizer,
)

PROG = "python -m recipes.generate"
DEFAULT_PROMPT = "It was a dark and stormy night"
EXTEND = {"action": "extend"}  # a repeated option adds its values (--prompt A --prompt B: two prompts)
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


@dataclass
class GenerateArguments:
    model: str | None = option(None, "saved folder or Hub name; default: a random --preset")
    model_type: str | None = option(None, f"the family of the random --preset: {' or '.join(MODEL_FAMILIES)} (gpt2)")
    preset: str = option("tiny", "GPT-2: tiny, 124M, 355M, 774M, 1.5B; GPT-1: tiny, gpt1 (without --model)")
    prompt: list[str] | None = option(None, f"prompt text; repeat for a batch (default: {DEFAULT_PROMPT!r})", **EXTEND)
    max_new_tokens: int = option(40, "tokens to generate after each prompt (prompt + new tokens <= n_positions)")
    do_sample: bool = option(False, "sample instead of greedy decoding")
    temperature: float = option(1.0, "with --do_sample: divide the logits by this (> 0)")
    top_k: int = option(50, "with --do_sample: sample among the k likeliest tokens (0: all)")
    top_p: float = option(1.0, "with --do_sample: sample among the likeliest tokens of total probability p, in (0, 1]")
    repetition_penalty: float = option(1.0, "> 0: penalise the tokens already in the sequence by this (1: none)")
    num_beams: int = option(1, "beam search with this many beams (1: none)")
    num_return_sequences: int = option(1, "continuations of each prompt (more than 1: --do_sample or --num_beams)")
    seed: int = option(0, "of the sampling, and of a preset's random weights")
    device: str = field(default_factory=default_device, metadata={"help": "cuda where there is one, else cpu"})

    def __post_init__(self):
        """Every option on its own and with the others, before a tokenizer or model is loaded; the length of the
        prompts is checked against the model's context once the tokenizer and config are read (`check_lengths`)."""
        for name in ("max_new_tokens", "num_beams", "num_return_sequences"):
            at_least(name, getattr(self, name), 1)
        at_least("top_k", self.top_k, 0)
        for name in ("temperature", "repetition_penalty"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"--{name} must be a finite number > 0, got {value}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"--top_p must be in (0, 1], got {self.top_p}")
        if not self.do_sample:
            defaults = {f.name: f.default for f in fields(self)}
            for name in SAMPLING_OPTIONS:
                if getattr(self, name) != defaults[name]:
                    raise ValueError(
                        f"--{name} {getattr(self, name)} applies to sampling only: add --do_sample (without it, "
                        f"decoding takes the likeliest token and would ignore --{name})"
                    )
        # Greedy decoding and beam search return at most num_beams different continuations; sampling any number.
        if self.num_return_sequences > self.num_beams and not (self.do_sample and self.num_beams == 1):
            raise ValueError(
                f"--num_return_sequences {self.num_return_sequences} is more than --num_beams {self.num_beams}: "
                f"{'beam search' if self.num_beams > 1 else 'greedy decoding'} returns at most num_beams "
                f"continuations; raise --num_beams or add --do_sample"
            )
        if not 0 <= self.seed < 2**64:
            raise ValueError(f"--seed must be in [0, 2**64), got {self.seed}")
        for index, prompt in enumerate(self.prompt or []):
            if not prompt:
                raise ValueError(f"--prompt number {index + 1} is empty: a continuation needs a prompt to continue")
        if self.model_type is not None and self.model_type not in MODEL_FAMILIES:
            raise ValueError(f"--model_type must be one of {', '.join(MODEL_FAMILIES)}, got {self.model_type!r}")
        presets = MODEL_FAMILIES[self.model_type or "gpt2"].presets
        if self.model is None and self.preset not in presets:
            raise ValueError(
                f"--preset {self.preset!r} is not a {self.model_type or 'gpt2'} preset; known: {', '.join(presets)}"
            )
        check_device(self.device)


def load_config_and_tokenizer(model: str | None, model_type: str | None = None, preset: str = "tiny"):
    """(config, tokenizer) of `model` (a folder or Hub name, of whichever family its config.json names; `model_type`,
    if given, must agree), or without it of a random `preset` of `model_type` (default gpt2): no weights are read."""
    if model is None:
        family = get_family(model_type or "gpt2")
        tokenizer = preset_tokenizer(family.name)
        return family.config_class.from_preset(preset, **preset_overrides(family.name, tokenizer)), tokenizer
    family, config = load_config(model)
    if model_type is not None and model_type != family.name:
        raise RecipeError(f"--model {model!r} is a {family.name} model, not --model_type {model_type}.")
    return config, load_tokenizer_for(model)


def preset_overrides(family: str, tokenizer) -> dict:
    # A learned GPT-1 vocabulary is smaller than the paper's 40,478 tokens: the embedding is sized to it.
    return {} if family == "gpt2" else {"vocab_size": len(tokenizer)}


def load_model(model: str | None, model_type: str | None, preset: str, seed: int, tokenizer):
    """The weights of `model`, or a random `preset` of `model_type` drawn from `seed`."""
    if model is None:
        family = get_family(model_type or "gpt2").name
        return preset_model(family, preset, seed, **preset_overrides(family, tokenizer))
    return load_causal_lm(model)


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


def generate(args: GenerateArguments):
    """Continues every prompt, prints them with their continuations and the speed, and returns the token ids.
    Everything that can be wrong with the options and prompts is found before the model's weights are read."""
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


def main(argv=None):
    (args,) = parse_arguments([GenerateArguments], argv, prog=PROG, description=__doc__)
    try:
        return generate(args)
    except RecipeError as error:
        exit_with_error(PROG, error)


if __name__ == "__main__":
    main()
