"""The continuations a pre-training run samples at the end: their prompts (`--sample_prompts`, else the first words of
a line of validation blocks drawn with `--seed`), the check that they fit the model's context, and the sampling by the
saved model loaded back with the Auto classes.
"""

import re

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ..core.errors import RecipeError

# Without --sample_prompts, each sample's prompt is the first whole words of a line of the validation text, at most
# this many tokens: enough for the model to pick up the corpus, short enough to leave it the rest of its context.
PROMPT_TOKENS = 8


def check_sample_length(args, tokenizer, config):
    """The samples printed at the end fit the model's context: the longest prompt (a drawn one has at most
    `PROMPT_TOKENS`) plus --sample_length tokens."""
    if not args.num_samples:
        return
    if args.sample_prompts:
        prompts = args.sample_prompts[: args.num_samples]
        longest = max(len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) for prompt in prompts)
        what = f"the longest sample prompt's {longest} tokens"
    else:
        longest = PROMPT_TOKENS
        what = f"the {longest} tokens a prompt drawn from the validation text may have (no --sample_prompts given)"
    if longest + args.sample_length > config.n_positions:
        raise RecipeError(
            f"--sample_length {args.sample_length} plus {what} is more than the model's "
            f"n_positions={config.n_positions}: give --sample_length at most {config.n_positions - longest}."
        )


def block_prompt(tokenizer, ids: list[int], separator: int) -> str:
    """The first whole words of a line of a validation block, at most `PROMPT_TOKENS` tokens: of the first document
    that starts in the block, else of the first line after its first line break, else after its first word (a block
    starts anywhere, even inside a word). "" when the block has no such word or the first one alone is longer."""
    if separator in ids:
        ids = ids[ids.index(separator) + 1 :]
        document_ends = separator in ids
        text = tokenizer.decode(ids[: ids.index(separator)] if document_ends else ids, skip_special_tokens=True)
        text += "\n" if document_ends else ""  # its last word is whole
    else:
        text = tokenizer.decode(ids, skip_special_tokens=True)
        _, newline, rest = text.partition("\n")
        text = rest if newline else text.partition(" ")[2]
    line = re.search(r"\S[^\n]*\n?", text)  # the first line with text, from its first word, with its line break
    if line is None:
        return ""
    line = line.group()
    # A word followed by whitespace is whole (the last one may be cut by the block's end); a word is 1 token or more.
    ends = [word.end() for word in re.finditer(r"\S+(?=\s)", line)][:PROMPT_TOKENS]
    for end in reversed(ends):
        if len(tokenizer(line[:end], add_special_tokens=False)["input_ids"]) <= PROMPT_TOKENS:
            return line[:end]
    return ""


def draw_prompts(blocks, tokenizer, separator: int, count: int, seed: int) -> list[str]:
    """`count` distinct prompts (`block_prompt`) from the validation blocks, fewer if they hold fewer: the blocks are
    read in an order drawn from `seed` with a generator of their own (a resumed run restores the global RNG), and at
    most 100 of them per prompt."""
    prompts = []
    for index in np.random.default_rng(seed).permutation(len(blocks))[: 100 * count]:
        prompt = block_prompt(tokenizer, np.asarray(blocks[int(index)]["input_ids"]).tolist(), separator)
        if prompt and prompt not in prompts:
            prompts.append(prompt)
            if len(prompts) == count:
                break
    return prompts


def sample_continuations(model_dir, prompts, device, max_new_tokens, seed) -> list[str]:
    """Continuations of `prompts` by the model saved in `model_dir`, loaded back with the Auto classes."""
    model = AutoModelForCausalLM.from_pretrained(model_dir).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = []
    torch.manual_seed(seed)
    for prompt in prompts:
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
        with torch.no_grad():
            output = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=True,
                top_k=40,
                temperature=0.8,
                pad_token_id=model.config.pad_token_id,
            )
        texts.append(tokenizer.decode(output[0], skip_special_tokens=True))
    return texts


__all__ = ["PROMPT_TOKENS", "block_prompt", "check_sample_length", "draw_prompts", "sample_continuations"]
