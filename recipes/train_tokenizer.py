"""Train a GPT-1 or GPT-2 style BPE tokenizer on a corpus, with `tokenizers`, and save it for `AutoTokenizer`.

- GPT-2 style (`--model_type gpt2`): byte-level BPE exactly as OpenAI's tokenizer works (same pre-tokenisation
  regex, byte alphabet and decoder; only the merges and vocabulary are learned here), `<|endoftext|>` as the one
  special token. It is transformers' `GPT2Tokenizer`, like the real GPT-2 tokenizer, which is one option away:
  `python -m recipes.pretrain --tokenizer gpt2` (offline, shipped with gpt-origins) or `openai-community/gpt2`.
- GPT-1 style (`--model_type gpt1`): lower-cased BPE with `</w>` word ends and the task tokens `_start_`,
  `_delimiter_`, `_classify_` (plus `_pad_`, `<unk>`), from `modeling_gpt1.train_gpt1_tokenizer`. The default of
  40,483 tokens is GPT-1's: 40,000 merges over 478 base symbols, then the 5 special tokens.

The corpus is local files (`--train_file`, .txt = one document, or one per line or paragraph with
`--document_boundary`, .jsonl/.csv/.parquet = one per record, compressed or not) or a Hub dataset (`--dataset_name`,
`--dataset_config_name`, `--dataset_split`); by default the bundled complete works of Shakespeare.

    python -m recipes.train_tokenizer --model_type gpt2 --vocab_size 8192 --output_dir runs/tokenizer-gpt2
    python -m recipes.train_tokenizer --model_type gpt1 --dataset_name wikitext --dataset_config_name \\
        wikitext-103-raw-v1 --output_dir runs/tokenizer-gpt1

Options can also come from a YAML run config (`--config FILE`, recipes/arguments.py); the command line overrides it.
"""

if __name__ == "__main__" and not __package__:  # a script path: `python recipes/train_tokenizer.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)

import os
from dataclasses import dataclass, field
from pathlib import Path

from .arguments import at_least, parse_arguments
from .corpus import DOCUMENT_BOUNDARIES, check_document_boundary, iter_text_batches, load_documents
from .errors import RecipeError, exit_with_error
from .options import option

PROG = "python -m recipes.train_tokenizer"

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


@dataclass
class TokenizerArguments:
    output_dir: str = field(metadata={"help": "the tokenizer's folder (AutoTokenizer.from_pretrained loads it)"})
    model_type: str = option("gpt2", "gpt2 (byte-level BPE) or gpt1 (lower-cased, </w>)")
    vocab_size: int | None = option(None, "default: the released size (50,257 / 40,483)")
    train_file: list[str] | None = option(
        None, "local text files or bundled corpora: shakespeare, sotu (default: shakespeare)"
    )
    dataset_name: str | None = option(None, "a Hub dataset, e.g. wikitext")
    dataset_config_name: str | None = option(None, "the Hub dataset's config")
    dataset_split: str = option("train", 'e.g. "train" or "train[:10%]"')
    text_column: str = option("text", "the column of .jsonl/.csv/.parquet/Hub records")
    document_boundary: str = option(
        "file", f"one of {', '.join(DOCUMENT_BOUNDARIES)}: a .txt file is one document, one per line or per paragraph"
    )
    model_max_length: int | None = option(None, "the tokenizer's model_max_length")
    push_to_hub: bool = option(False, "upload the tokenizer at the end")
    hub_model_id: str | None = option(None, "repository for --push_to_hub")

    def __post_init__(self):
        check_vocab_size(self.model_type, self.vocab_size)
        at_least("model_max_length", self.model_max_length, 1)
        if self.train_file and self.dataset_name:
            raise ValueError("Give either --train_file or --dataset_name, not both.")
        check_document_boundary(self.document_boundary, self.train_file, dataset_name=self.dataset_name)


def main(argv=None):
    (args,) = parse_arguments([TokenizerArguments], argv, prog=PROG, description=__doc__)
    try:
        source = {"train_files": args.train_file, "dataset_name": args.dataset_name, "text_column": args.text_column}
        documents = load_documents(
            **source,
            dataset_config_name=args.dataset_config_name,
            train_split=args.dataset_split,
            document_boundary=args.document_boundary,
        )
        tokenizer = train_tokenizer(args.model_type, documents["train"], args.vocab_size, args.model_max_length)
    except RecipeError as error:
        exit_with_error(PROG, error)
    tokenizer.save_pretrained(args.output_dir)
    example = "To be, or not to be, that is the question."
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(example, add_special_tokens=False)["input_ids"])
    print(f"{len(tokenizer):,} tokens learned from {documents['train'].num_rows:,} documents -> {args.output_dir}")
    print(f"{example!r} -> {tokens}")
    if args.push_to_hub:
        tokenizer.push_to_hub(args.hub_model_id or args.output_dir.rstrip("/").split("/")[-1])
    return tokenizer


if __name__ == "__main__":
    main()
