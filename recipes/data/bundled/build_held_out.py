"""Rebuilds `held_out_persuasion.txt`: the first chapters of Jane Austen's *Persuasion* (1818, public domain), text
that none of the bundled pre-training corpora holds, for perplexity on held-out text (the benchmark's int8 and fp32
comparison, docs/BENCHMARKS.md). It comes from the Debian package of the R data package janeaustenr (MIT packaging
of the Project Gutenberg texts), read with PyPI `rdata`:

    cd /tmp && apt-get download r-cran-janeaustenr && dpkg-deb -x r-cran-janeaustenr_*.deb ja && pip install rdata
    python recipes/data/bundled/build_held_out.py /tmp/ja/usr/lib/R/site-library/janeaustenr/data

The novel is one string per line of the printed book; paragraphs are joined into lines of their own, blank lines
dropped, up to `MAX_CHARACTERS` (cut at a paragraph's end).
"""

import gzip
import sys
import zlib
from pathlib import Path

MAX_CHARACTERS = 64_000


def read_lazy_load(data_dir: Path, name: str) -> list[str]:
    """One object of an R lazy-load database: the index Rdata.rdx (gzip), each object of Rdata.rdb serialised and
    compressed with zlib after a 4-byte length."""
    import rdata

    def parse(blob: bytes):
        raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else zlib.decompress(blob[4:])
        return rdata.conversion.convert(rdata.parser.parse_data(raw))

    index = parse((data_dir / "Rdata.rdx").read_bytes())
    offset, length = (int(value) for value in index["variables"][name])
    return [str(line) for line in parse((data_dir / "Rdata.rdb").read_bytes()[offset : offset + length])]


def main(data_dir: str, output: str = str(Path(__file__).with_name("held_out_persuasion.txt"))):
    lines = read_lazy_load(Path(data_dir), "persuasion")
    paragraphs, current = [], []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    kept, size = [], 0
    for paragraph in paragraphs:
        if size + len(paragraph) > MAX_CHARACTERS:
            break
        kept.append(paragraph)
        size += len(paragraph) + 1
    Path(output).write_text("\n".join(kept) + "\n", encoding="utf-8")
    print(f"{len(kept)} paragraphs -> {output} ({Path(output).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(*sys.argv[1:])
