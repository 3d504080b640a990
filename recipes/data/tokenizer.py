"""Tokenizers of the recipes: loading one (a folder or Hub name, never an empty vocabulary) and learning a GPT-2
style (byte-level BPE) or GPT-1 style (lower-cased BPE with `</w>`) one from documents, with `tokenizers`.

`python -m recipes.train_tokenizer` (recipes/train_tokenizer.py) is the command; pre-training (`--tokenizer train`),
token-shard preparation and the model families' presets use the same functions.
"""

import os
from pathlib import Path

from ..core.errors import RecipeError
from .corpus import iter_text_batches, load_documents

DEFAULT_VOCAB_SIZE = {"gpt2": 50257, "gpt1": 40483}  # the released vocabularies' sizes
MIN_VOCAB_SIZE = {"gpt2": 257, "gpt1": 6}  # GPT-2: the 256 bytes and <|endoftext|>; GPT-1: the special tokens and one


def check_vocab_size(model_type: str, vocab_size: int | None):
    """A known model type, and a vocabulary (when given) at least its special tokens and base symbols."""
    if model_type not in DEFAULT_VOCAB_SIZE:
        raise RecipeError(f"model_type must be one of {', '.join(DEFAULT_VOCAB_SIZE)}, got {model_type!r}.")
    if vocab_size is not None and vocab_size < MIN_VOCAB_SIZE[model_type]:
        raise RecipeError(
            f"--vocab_size {vocab_size} is too small for a {model_type} tokenizer: the minimum is "
            f"{MIN_VOCAB_SIZE[model_type]}."
        )


def load_tokenizer(name_or_path, option: str = "--tokenizer"):
    """`AutoTokenizer.from_pretrained(name_or_path)`, where what transformers lets through is a `RecipeError`: a folder
    whose tokenizer files are missing or broken never loads as an empty vocabulary (a GPT-2 folder without
    tokenizer.json loads in transformers as a tokenizer of one token that encodes every text to nothing)."""
    from transformers import AutoTokenizer

    folder = Path(name_or_path)
    present = (
        f" (it holds {', '.join(sorted(p.name for p in folder.iterdir())) or 'nothing'})" if folder.is_dir() else ""
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError, TypeError) as error:
        raise RecipeError(
            f"{option} {os.fspath(name_or_path)!r} is neither a tokenizer folder nor a Hub name that loads{present}: "
            f"{str(error).splitlines()[0]}"
        ) from error
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        raise RecipeError(
            f"{option} {os.fspath(name_or_path)!r} loads as a tokenizer of {len(tokenizer)} token(s), its special "
            f"tokens only{present}: its vocabulary file (tokenizer.json) is missing or empty."
        )
    return tokenizer


def train_tokenizer(model_type: str, documents, vocab_size: int | None = None, model_max_length: int | None = None):
    """A new tokenizer of `model_type` style learned from `documents` (a `Dataset` with a `text` column)."""
    vocab_size = DEFAULT_VOCAB_SIZE.get(model_type) if vocab_size is None else vocab_size
    check_vocab_size(model_type, vocab_size)
    if model_type == "gpt2":
        from modeling_gpt2 import load_gpt2_tokenizer

        # OpenAI's tokenizer as the template: train_new_from_iterator keeps its normaliser, pre-tokeniser, decoder
        # and special token, and learns new merges (tokenizers' BpeTrainer on the byte-level alphabet).
        template = load_gpt2_tokenizer()
        tokenizer = template.train_new_from_iterator(
            iter_text_batches(documents), vocab_size=vocab_size, show_progress=False
        )
        tokenizer.model_max_length = model_max_length or template.model_max_length
        return tokenizer
    from modeling_gpt1 import train_gpt1_tokenizer

    kwargs = {"model_max_length": model_max_length} if model_max_length else {}
    return train_gpt1_tokenizer(iter_text_batches(documents), vocab_size=vocab_size, **kwargs)


def learn_and_save(args):
    """`python -m recipes.train_tokenizer`: the corpus of `args` read, a tokenizer learned from it, saved, pushed."""
    source = {"train_files": args.train_file, "dataset_name": args.dataset_name, "text_column": args.text_column}
    documents = load_documents(
        **source,
        dataset_config_name=args.dataset_config_name,
        train_split=args.dataset_split,
        document_boundary=args.document_boundary,
    )
    tokenizer = train_tokenizer(args.model_type, documents["train"], args.vocab_size, args.model_max_length)
    tokenizer.save_pretrained(args.output_dir)
    example = "To be, or not to be, that is the question."
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(example, add_special_tokens=False)["input_ids"])
    print(f"{len(tokenizer):,} tokens learned from {documents['train'].num_rows:,} documents -> {args.output_dir}")
    print(f"{example!r} -> {tokens}")
    if args.push_to_hub:
        tokenizer.push_to_hub(args.hub_model_id or args.output_dir.rstrip("/").split("/")[-1])
    return tokenizer
