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

import json
import lzma
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path

from .core.arguments import at_least, parse_arguments
from .core.errors import RecipeError, exit_with_error
from .core.options import option
from .data.corpus import SHAKESPEARE, SOTU

PROG = "python -m recipes.benchmark_data"
HELD_OUT = Path(__file__).parent / "data" / "bundled" / "held_out_persuasion.txt"
REPO = Path(__file__).parents[1]


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


def real_documents() -> list[str]:
    documents = []
    for path in (SHAKESPEARE, SOTU):
        with lzma.open(path, "rt") as file:
            documents += [json.loads(line)["text"] for line in file]
    return [*documents, HELD_OUT.read_text()]


def build_corpus(folder: Path, megabytes: float, documents: list[str]) -> Path:
    """A .jsonl of `documents` repeated (in order) until `megabytes` MB of UTF-8 text."""
    path = folder / f"corpus-{megabytes:g}MB.jsonl"
    if path.is_file():
        return path
    target, size = megabytes * 1e6, 0
    with open(path.with_suffix(".tmp"), "w") as file:
        while size < target:
            for text in documents:
                file.write(json.dumps({"text": text}) + "\n")
                size += len(text.encode())
                if size >= target:
                    break
    os.replace(path.with_suffix(".tmp"), path)
    return path


def build_single_document(folder: Path, megabytes: float, documents: list[str]) -> Path:
    path = folder / f"document-{megabytes:g}MB.txt"
    if not path.is_file():
        with open(path.with_suffix(".tmp"), "w") as file:
            size = 0
            while size < megabytes * 1e6:
                for text in documents:
                    file.write(text + "\n\n")
                    size += len(text.encode()) + 2
        os.replace(path.with_suffix(".tmp"), path)
    return path


def run_python(code: str) -> dict:
    """`code` in a fresh interpreter; it prints one JSON line last, which is returned with the peak RSS."""
    wrapped = code + textwrap.dedent(
        """
        import json as _json, resource as _resource
        result["peak_rss_mb"] = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024
        print(_json.dumps(result))
        """
    )
    done = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise RecipeError(f"A benchmark process failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_recipe(corpus: Path, shards: Path) -> dict:
    shutil.rmtree(shards, ignore_errors=True)
    code = textwrap.dedent(
        f"""
        import time
        from recipes import prepare_data
        start = time.perf_counter()
        index = prepare_data.main(["--train_file", {os.fspath(corpus)!r}, "--output_dir", {os.fspath(shards)!r}])
        seconds = time.perf_counter() - start
        tokens = sum(s["tokens"] for shards in index["shards"].values() for s in shards)
        result = {{"seconds": seconds, "tokens": tokens}}
        """
    )
    result = run_python(code)
    shutil.rmtree(shards, ignore_errors=True)
    return result


def time_reference(corpus: Path, method: str) -> dict:
    code = textwrap.dedent(
        f"""
        import json, time
        from modeling_gpt2 import load_gpt2_tokenizer
        tokenizer = load_gpt2_tokenizer().backend_tokenizer
        documents = [json.loads(line)["text"] for line in open({os.fspath(corpus)!r})]
        batches, batch, size = [], [], 0
        for text in documents:  # about 1 MB of text per call, as the recipe's calls
            batch.append(text)
            size += len(text)
            if size >= 1 << 20:
                batches.append(batch)
                batch, size = [], 0
        batches.append(batch)
        start = time.perf_counter()
        tokens = 0
        for batch in batches:
            tokens += sum(len(encoding.ids) for encoding in tokenizer.{method}(batch, add_special_tokens=False))
        result = {{"seconds": time.perf_counter() - start, "tokens": tokens}}
        """
    )
    return run_python(code)


def benchmark(args: DataBenchmarkArguments) -> dict:
    folder = Path(args.output_dir)
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    documents = real_documents()
    cores = os.cpu_count()
    ratio_corpus = build_corpus(data, args.ratio_mb, documents)
    megabytes = ratio_corpus.stat().st_size / 1e6  # of the .jsonl; the text's bytes are counted below
    text_mb = sum(len(json.loads(line)["text"].encode()) for line in open(ratio_corpus)) / 1e6
    print(
        f"Throughput on {text_mb:.1f} MB of text ({megabytes:.1f} MB of .jsonl), {cores} cores, {args.repeats} rounds"
    )
    rounds = []
    for number in range(args.repeats):
        row = {
            "recipe": time_recipe(ratio_corpus, folder / "shards"),
            "encode_batch": time_reference(ratio_corpus, "encode_batch"),
            "encode_batch_fast": time_reference(ratio_corpus, "encode_batch_fast"),
        }
        for name in row:
            row[name]["mb_per_s"] = text_mb / row[name]["seconds"]
        rounds.append(row)
        print(
            f"  round {number + 1}: recipe {row['recipe']['mb_per_s']:.2f} MB/s, encode_batch "
            f"{row['encode_batch']['mb_per_s']:.2f}, encode_batch_fast {row['encode_batch_fast']['mb_per_s']:.2f}"
        )
    summary = {}
    for name in ("recipe", "encode_batch", "encode_batch_fast"):
        median = statistics.median(row[name]["mb_per_s"] for row in rounds)
        summary[name] = {"mb_per_s": median, "mb_per_s_per_core": median / cores}
    for reference in ("encode_batch", "encode_batch_fast"):
        ratios = [row["recipe"]["mb_per_s"] / row[reference]["mb_per_s"] for row in rounds]
        summary[f"ratio_to_{reference}"] = {
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
        }
    memory = []
    for size in args.corpus_mb:
        corpus = build_corpus(data, size, documents)
        result = time_recipe(corpus, folder / "shards")
        memory.append({"corpus": corpus.name, "megabytes": corpus.stat().st_size / 1e6, **result})
        print(f"Memory: {corpus.name}: peak RSS {result['peak_rss_mb']:.0f} MB, {result['tokens']:,} tokens")
    if args.single_document:
        document = build_single_document(data, max(args.corpus_mb), documents)
        result = time_recipe(document, folder / "shards")
        memory.append({"corpus": document.name, "megabytes": document.stat().st_size / 1e6, **result})
        print(f"Memory: {document.name} (one document): peak RSS {result['peak_rss_mb']:.0f} MB")
    report = {"arguments": asdict(args), "cores": cores, "text_mb": text_mb, "rounds": rounds, "summary": summary,
              "memory": memory}  # fmt: skip
    (folder / "benchmark.json").write_text(json.dumps(report, indent=1))
    print(
        f"\nRecipe / encode_batch: {summary['ratio_to_encode_batch']['median']:.2f}x, recipe / encode_batch_fast: "
        f"{summary['ratio_to_encode_batch_fast']['median']:.2f}x (target >= 0.8); recipe "
        f"{summary['recipe']['mb_per_s_per_core']:.2f} MB/s per core. Results: {folder / 'benchmark.json'}"
    )
    return report


def main(argv=None):
    (args,) = parse_arguments([DataBenchmarkArguments], argv, prog=PROG, description=__doc__)
    try:
        return benchmark(args)
    except RecipeError as error:
        exit_with_error(PROG, error)


if __name__ == "__main__":
    main()
