"""Tokenise a corpus once into token shards for pre-training at corpus scale (recipes/data/token_shards.py).

The corpus is local files (`--train_file`: .txt read as a stream, one document per file, line or paragraph with
`--document_boundary`; .jsonl/.csv/.parquet one document per record, compressed or not) or a Hub dataset read as a
stream (`--dataset_name`, `--dataset_config_name`, `--dataset_split`), so nothing is copied or cached first. Documents
are cut into pieces of about 16K characters where the tokenizer splits words anyway (the ids are those of the whole
document, recipes/data/corpus.py `split_text`), the pieces go to the `tokenizers` library in calls of about 1 MB of
text, which it encodes on all cores (`encode_batch_fast`), and the ids are appended to shard files of about
`--shard_tokens` tokens, each document preceded by the separator token (GPT-2's `<|endoftext|>`, GPT-1's `_start_`).
Memory is bounded by one call's text and ids, whatever the corpus' size or its longest document. The preparation is
recipes/data/preparation.py, its sources recipes/data/document_streams.py.

The validation shard is `--validation_file` / `--validation_split_name` when given, else the first documents of the
training corpus, up to `--validation_tokens` tokens (whole documents).

A killed run resumes where its last complete shard ended when the same command is run again (progress.json records the
source's position: the documents and pieces done, a streamed Hub dataset's own `state_dict`); a finished folder has an
index.json, and is never written over without `--overwrite_output_dir`.

    python -m recipes.prepare_data --train_file shakespeare sotu --output_dir data/demo-shards
    python -m recipes.prepare_data --config prepare-fineweb-edu-10B          # 10B GPT-2 tokens of FineWeb-Edu
    python -m recipes.pretrain --config pretrain-gpt2-124M --token_shards data/fineweb-edu-10B

Options can also come from a YAML run config (`--config FILE`, recipes/core/arguments.py); the command line overrides
it.
"""

if __name__ == "__main__" and not __package__:  # a script path: `python recipes/prepare_data.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)

from dataclasses import dataclass

from .core.arguments import at_least
from .core.command import run_cli
from .core.options import option
from .data.corpus import DOCUMENT_BOUNDARIES
from .data.preparation import prepare

PROG = "python -m recipes.prepare_data"


@dataclass
class PrepareArguments:
    output_dir: str = option(None, "the folder of shards (written as it goes; resumed if a run was killed)")
    train_file: list[str] | None = option(
        None, ".txt (documents: --document_boundary), .jsonl, .csv, .parquet, or a bundled corpus: shakespeare, sotu"
    )
    validation_file: list[str] | None = option(None, "validation documents (default: the first --validation_tokens)")
    dataset_name: str | None = option(None, "a Hub dataset, read as a stream (instead of files)")
    dataset_config_name: str | None = option(None, "the Hub dataset's configuration")
    dataset_split: str = option("train", "the training split of the Hub dataset")
    validation_split_name: str | None = option(None, "a validation split of the Hub dataset")
    text_column: str = option("text", "the column of .jsonl/.csv/.parquet files and Hub datasets")
    document_boundary: str = option("file", f"{', '.join(DOCUMENT_BOUNDARIES)}: where a .txt file's documents end")
    tokenizer: str = option("gpt2", '"gpt2" (OpenAI\'s vocabulary, offline) or a tokenizer folder or Hub name')
    shard_tokens: int = option(100_000_000, "tokens per shard (a shard ends at the first 1 MB call past it)")
    validation_tokens: int = option(
        1 << 20,
        "without a validation set: the first documents up to this many tokens are held out (whole documents; inside "
        "a document that runs past twice as many)",
    )
    max_documents: int | None = option(None, "read at most this many training documents (a slice of a corpus)")
    overwrite_output_dir: bool = option(False, "delete a finished or different preparation in --output_dir first")

    def __post_init__(self):
        if not self.output_dir:
            raise ValueError("give --output_dir, the folder the shards go to")
        at_least("shard_tokens", self.shard_tokens, 1024)
        at_least("validation_tokens", self.validation_tokens, 1)
        at_least("max_documents", self.max_documents, 1)
        if self.train_file and self.dataset_name:
            raise ValueError("give either --train_file or --dataset_name, not both")
        if self.validation_file and self.validation_split_name:
            raise ValueError("give either --validation_file or --validation_split_name, not both")
        if self.validation_split_name and not self.dataset_name:
            raise ValueError("--validation_split_name names a split of a Hub dataset: use it with --dataset_name")


def main(argv=None):
    return run_cli(PrepareArguments, prepare, argv, prog=PROG, description=__doc__)


if __name__ == "__main__":
    main()
