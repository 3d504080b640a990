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

import time
from dataclasses import dataclass, field

import torch

from .arguments import at_least, parse_arguments
from .errors import RecipeError, exit_with_error
from .families import (
    MODEL_FAMILIES,
    family_of,
    get_family,
    load_causal_lm,
    load_tokenizer_for,
    preset_model,
    preset_tokenizer,
)
from .options import option

PROG = "python -m recipes.generate"
DEFAULT_PROMPT = "It was a dark and stormy night"
EXTEND = {"action": "extend"}  # a repeated option adds its values (--prompt A --prompt B: two prompts)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class GenerateArguments:
    model: str | None = option(None, "saved folder or Hub name; default: a random --preset")
    model_type: str | None = option(None, f"the family of the random --preset: {' or '.join(MODEL_FAMILIES)} (gpt2)")
    preset: str = option("tiny", "GPT-2: tiny, 124M, 355M, 774M, 1.5B; GPT-1: tiny, gpt1 (without --model)")
    prompt: list[str] | None = option(None, f"prompt text; repeat for a batch (default: {DEFAULT_PROMPT!r})", **EXTEND)
    max_new_tokens: int = option(40, "tokens to generate after each prompt")
    do_sample: bool = option(False, "sample instead of greedy decoding")
    temperature: float = option(1.0, "with --do_sample: divide the logits by this")
    top_k: int = option(50, "with --do_sample: sample among the k likeliest tokens (0: all)")
    num_beams: int = option(1, "beam search with this many beams (1: none)")
    seed: int = option(0, "of the sampling, and of a preset's random weights")
    device: str = field(default_factory=default_device, metadata={"help": "cuda where there is one, else cpu"})

    def __post_init__(self):
        at_least("max_new_tokens", self.max_new_tokens, 1)
        at_least("top_k", self.top_k, 0)
        at_least("num_beams", self.num_beams, 1)
        if not self.temperature > 0:
            raise ValueError(f"--temperature must be > 0, got {self.temperature}")
        if self.model_type is not None and self.model_type not in MODEL_FAMILIES:
            raise ValueError(f"--model_type must be one of {', '.join(MODEL_FAMILIES)}, got {self.model_type!r}")
        presets = MODEL_FAMILIES[self.model_type or "gpt2"].presets
        if self.model is None and self.preset not in presets:
            raise ValueError(
                f"--preset {self.preset!r} is not a {self.model_type or 'gpt2'} preset; known: {', '.join(presets)}"
            )


def load_model_and_tokenizer(model: str | None, model_type: str | None = None, preset: str = "tiny", seed: int = 0):
    """(model, tokenizer): `model` (a folder or Hub name, of whichever family its config.json names; `model_type`,
    if given, must agree), or without it a random `preset` of `model_type` (default gpt2) drawn from `seed`."""
    if model is None:
        family = get_family(model_type or "gpt2").name
        tokenizer = preset_tokenizer(family)
        # A learned GPT-1 vocabulary is smaller than the paper's 40,478 tokens: the embedding is sized to it.
        overrides = {} if family == "gpt2" else {"vocab_size": len(tokenizer)}
        return preset_model(family, preset, seed, **overrides), tokenizer
    family = family_of(model)
    if model_type is not None and model_type != family.name:
        raise RecipeError(f"--model {model!r} is a {family.name} model, not --model_type {model_type}.")
    return load_causal_lm(model), load_tokenizer_for(model)


def generate(args: GenerateArguments):
    """Continues every prompt, prints them with their continuations and the speed, and returns the token ids."""
    prompts = args.prompt or [DEFAULT_PROMPT]
    model, tokenizer = load_model_and_tokenizer(args.model, args.model_type, args.preset, args.seed)
    model.to(args.device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation continues at the right edge of every row
    # No special tokens: a GPT-1 tokenizer would frame a single text as a task input (`_start_ ... _classify_`).
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(args.device)

    torch.manual_seed(args.seed)
    start = time.perf_counter()
    with torch.no_grad():
        output = model.generate(
            **batch,
            max_new_tokens=args.max_new_tokens,
            do_sample=args.do_sample,
            temperature=args.temperature if args.do_sample else None,
            top_k=args.top_k if args.do_sample else None,
            num_beams=args.num_beams,
            pad_token_id=tokenizer.pad_token_id,
        )
    seconds = time.perf_counter() - start
    new_tokens = output[:, batch["input_ids"].shape[1] :]
    # The whole sequence decoded, so that a word boundary at the prompt's end is kept (GPT-1's BPE marks word ends,
    # and a continuation decoded alone would be glued to the prompt's last word).
    for prompt, text in zip(prompts, tokenizer.batch_decode(output, skip_special_tokens=True)):
        print(f"--- {prompt!r}\n{text}\n")
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
