"""The benchmark of the token-shard preparation (recipes/benchmark_data.py): recipes/prepare_data.py against the
`tokenizers` library's own batch encoding of the same real text, round by round, and its peak memory by corpus size.

Each measurement runs in a fresh interpreter, so that its peak RSS is its own: the recipe as a user runs it (its
`main`, timed from the call to its end) and the reference, `Tokenizer.encode_batch` / `encode_batch_fast` on the
documents already in memory.
"""

import json
import lzma
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path

from ..core.errors import RecipeError
from ..data.corpus import SHAKESPEARE, SOTU

# The held-out Persuasion chapters (docs/DATA.md), bundled beside the pre-training corpora.
HELD_OUT = SHAKESPEARE.parent / "held_out_persuasion.txt"
# The folder above the recipes package (the repository in a clone), where the measuring processes run.
REPO = Path(__file__).parents[2]
# The recipes' package as imported here: `recipes` in a clone, `gpt_origins_recipes` installed.
PACKAGE = __package__.split(".")[0]


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
        from {PACKAGE} import prepare_data
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


def benchmark(args) -> dict:
    """The benchmark of `args` (recipes/benchmark_data.py's `DataBenchmarkArguments`): throughput round by round,
    then memory by corpus size, printed as measured; writes benchmark.json in `args.output_dir` and returns it."""
    folder = Path(args.output_dir)
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    documents = real_documents()
    cores = os.cpu_count()
    ratio_corpus = build_corpus(data, args.ratio_mb, documents)
    megabytes = ratio_corpus.stat().st_size / 1e6  # of the .jsonl; the text's bytes are counted below
    with open(ratio_corpus) as file:
        text_mb = sum(len(json.loads(line)["text"].encode()) for line in file) / 1e6
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


__all__ = ["benchmark", "build_corpus", "build_single_document", "real_documents", "time_recipe", "time_reference"]
