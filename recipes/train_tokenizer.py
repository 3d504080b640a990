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

Options can also come from a YAML run config (`--config FILE`, recipes/core/arguments.py); the command line overrides
it.
"""

if __name__ == "__main__" and not __package__:  # a script path: `python recipes/train_tokenizer.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)

from dataclasses import dataclass, field

from .core.arguments import at_least
from .core.command import run_cli
from .core.options import option
from .data.corpus import DOCUMENT_BOUNDARIES, check_document_boundary
from .data.tokenizer import check_vocab_size, learn_and_save

PROG = "python -m recipes.train_tokenizer"


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
    return run_cli(TokenizerArguments, learn_and_save, argv, prog=PROG, description=__doc__)


if __name__ == "__main__":
    main()
