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
from dataclasses import dataclass, field, fields

from .core.arguments import at_least
from .core.command import run_cli
from .core.options import option
from .evaluation.generation import (
    DEFAULT_PROMPT,
    SAMPLING_OPTIONS,
    check_device,
    default_device,
    generate_continuations,
)
from .models.families import MODEL_FAMILIES

PROG = "python -m recipes.generate"
EXTEND = {"action": "extend"}  # a repeated option adds its values (--prompt A --prompt B: two prompts)


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


def main(argv=None):
    return run_cli(GenerateArguments, generate_continuations, argv, prog=PROG, description=__doc__)


if __name__ == "__main__":
    main()
