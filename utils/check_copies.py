"""Checks that the code GPT-1 shares with GPT-2 is the same, and with --fix rewrites GPT-1's copies from GPT-2's
(transformers' `utils/check_copies.py`, for two stand-alone packages).

modeling_gpt1 and modeling_gpt2 import nothing from each other (a saved folder carries one package's files and loads
without the other), so what they share is copied, and GPT-2 holds the original:

- Files: a file with the same name in both packages, other than `__init__.py`, is byte-identical; those of
  `SHARED_FILES` must exist in both.
- Blocks: `# Copied from modeling_gpt2.<module>.<name> [with A->B, C->D]` in a modeling_gpt1 file sits right above a
  copy of `<name>` of `modeling_gpt2/<module>.py` after the replacements (plain string replacements, in order; a
  marker that ends with a comma continues on the next comment line). `<name>` is a top-level function or class, a
  method (`Class.method`), or a class attribute (`Class.attribute`), which stands for the paragraph of statements
  it starts, up to the next blank line.
- Unmarked copies: a GPT-1 function, class or method outside the marked blocks that equals the GPT-2 one of the same
  name, up to the family's names, is reported: marked, its drift would be caught.

Either side may drift: the copy edited, or the original edited and the copy not. The fix always copies GPT-2's code
into GPT-1, so a change made in GPT-1's copy must be made in GPT-2's original first.

    python utils/check_copies.py          # report every difference; exit status 1 if there is any
    python utils/check_copies.py --fix    # rewrite GPT-1's shared files and marked blocks from GPT-2's

`make repo-consistency` runs the first, `make fix-copies` the second. It needs only the standard library, so CI runs it
before installing anything.
"""

import argparse
import ast
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE_PACKAGE, TARGET_PACKAGE = "modeling_gpt2", "modeling_gpt1"
# The infrastructure files both packages hold, byte-identical (GPT-2's the original, GPT-1's generated from it): a
# saved folder's remote code imports them, so each package has all of them. The only list of them; tests import it.
SHARED_FILES = ("chunked_loss.py", "compat.py", "hub.py", "input_checks.py", "loading.py")
MARKER = re.compile(
    r"^(?P<indent> *)# Copied from modeling_gpt2\.(?P<module>\w+)\.(?P<name>[\w.]+)(?: with (?P<with>.+))?$"
)
# How GPT-1 spells what GPT-2 calls the left-hand side; used to recognise unmarked copies only.
FAMILY_SPELLINGS = (
    ("GPT2", "GPT1"),
    ("GPT-2", "GPT-1"),
    ("gpt2", "gpt1"),
    ("wte", "tokens_embed"),
    ("wpe", "positions_embed"),
)


@dataclass
class Span:
    """Lines [start, end) of a file (0-based) and whether they are a definition (else a paragraph of statements)."""

    start: int
    end: int
    is_definition: bool


def named_spans(source: str) -> dict[str, Span]:
    """Every top-level function and class, every method ("Class.method") and every class attribute
    ("Class.attribute", the paragraph of statements it starts) of `source`, decorators included."""
    lines, found = source.splitlines(), {}

    def visit(nodes, prefix: str):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                start = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list]) - 1
                found[prefix + node.name] = Span(start, node.end_lineno, True)
                if isinstance(node, ast.ClassDef) and not prefix:
                    visit(node.body, node.name + ".")
            elif prefix and isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                start = node.lineno - 1
                for target in targets:
                    if isinstance(target, ast.Name):
                        found.setdefault(prefix + target.id, Span(start, paragraph_end(lines, start), False))

    visit(ast.parse(source).body, "")
    return found


def paragraph_end(lines: list[str], start: int) -> int:
    """The end of the paragraph of statements that starts at line `start`: the next blank line, or a line indented
    less than the first."""
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start
    while end < len(lines) and lines[end].strip() and len(lines[end]) - len(lines[end].lstrip()) >= indent:
        end += 1
    return end


def replace_all(text: str, replacements: list[tuple[str, str]]) -> str:
    for old, new in replacements:
        text = text.replace(old, new)
    return text


def parse_replacements(spec: str | None) -> list[tuple[str, str]]:
    pairs = []
    for item in (spec or "").split(","):
        if item.strip():
            if "->" not in item:
                raise ValueError(f"replacement {item.strip()!r} is not of the form A->B")
            old, new = (part.strip() for part in item.split("->", 1))
            pairs.append((old, new))
    return pairs


@dataclass
class Copy:
    """One `# Copied from` block of a target file."""

    marker_line: int  # 0-based line of the marker's first line
    module: str
    name: str
    replacements: list[tuple[str, str]]
    indent: str
    start: int  # first line of the copy (right below the marker)


def find_copies(lines: list[str]) -> list[Copy]:
    copies, index = [], 0
    while index < len(lines):
        match = MARKER.match(lines[index])
        if not match:
            index += 1
            continue
        spec, marker_line = match["with"] or "", index
        # A marker that ends with a comma continues on the next comment line.
        while spec.rstrip().endswith(",") and index + 1 < len(lines) and lines[index + 1].strip().startswith("#"):
            index += 1
            spec += " " + lines[index].strip().lstrip("#").strip()
        copies.append(
            Copy(marker_line, match["module"], match["name"], parse_replacements(spec), match["indent"], index + 1)
        )
        index += 1
    return copies


def dedented(lines: list[str], span: Span) -> str:
    return textwrap.dedent("\n".join(lines[span.start : span.end]))


def check_blocks(target: Path, source_dir: Path, fix: bool) -> tuple[list[str], list[Span], list[str]]:
    """The problems of the marked blocks of `target`, the spans they cover, and the names of GPT-2 they copy; with
    `fix`, drifted blocks are rewritten in place."""
    text = target.read_text()
    lines = text.splitlines()
    spans = named_spans(text)
    by_start = {span.start: (name, span) for name, span in spans.items()}
    problems, covered, names, rewrites = [], [], [], []
    where = f"{target.parent.name}/{target.name}"
    for copy in find_copies(lines):
        origin = f"modeling_gpt2.{copy.module}.{copy.name}"
        source_file = source_dir / f"{copy.module}.py"
        if not source_file.exists():
            problems.append(f"{where}:{copy.marker_line + 1}: {origin}: modeling_gpt2/{copy.module}.py does not exist")
            continue
        source_text = source_file.read_text()
        source_span = named_spans(source_text).get(copy.name)
        if source_span is None:
            problems.append(f"{where}:{copy.marker_line + 1}: {origin} does not exist in modeling_gpt2")
            continue
        expected = replace_all(dedented(source_text.splitlines(), source_span), copy.replacements)
        if source_span.is_definition:
            copy_name = replace_all(copy.name, copy.replacements)
            found = by_start.get(copy.start)
            if found is None or found[0] != copy_name or not found[1].is_definition:
                problems.append(
                    f"{where}:{copy.marker_line + 1}: {copy_name} is not right below its marker ({origin})"
                )
                continue
            span = found[1]
        else:
            span = Span(copy.start, paragraph_end(lines, copy.start) if copy.start < len(lines) else copy.start, False)
        covered.append(span)
        names.append(copy.name)
        if dedented(lines, span) != expected:
            problems.append(f"{where}:{copy.start + 1}: the copy of {origin} differs from it")
            rewrites.append((span, textwrap.indent(expected, copy.indent, lambda line: bool(line.strip()))))
    if fix and rewrites:
        for span, new_text in sorted(rewrites, key=lambda item: -item[0].start):
            lines[span.start : span.end] = new_text.splitlines()
        target.write_text("\n".join(lines) + "\n")
    return problems, covered, names


def check_unmarked(target: Path, source_dir: Path, covered: list[Span]) -> list[str]:
    """GPT-1 definitions outside the marked blocks that are copies of GPT-2's of the same name."""
    counterpart = source_dir / target.name.replace("gpt1", "gpt2")
    if not counterpart.exists() or counterpart.name == "__init__.py":
        return []
    source_text, target_text = counterpart.read_text(), target.read_text()
    source_spans, target_lines = named_spans(source_text), target_text.splitlines()
    source_lines = source_text.splitlines()

    def as_gpt2(text: str) -> str:
        return replace_all(text, [(new, old) for old, new in FAMILY_SPELLINGS])

    problems = []
    for name, span in named_spans(target_text).items():
        inside = any(block.start <= span.start and span.end <= block.end for block in covered)
        original = source_spans.get(as_gpt2(name))
        if inside or not span.is_definition or original is None or not original.is_definition:
            continue
        if as_gpt2(dedented(target_lines, span)) == as_gpt2(dedented(source_lines, original)):
            problems.append(
                f"{target.parent.name}/{target.name}:{span.start + 1}: {name} is a copy of GPT-2's "
                f"{as_gpt2(name)} without a `# Copied from` marker"
            )
    return problems


def check(repo: Path = REPO, fix: bool = False) -> tuple[list[str], set[str]]:
    """Every difference between GPT-1's copies and GPT-2's code (see the module docstring), and the GPT-2 names that
    marked blocks copy. With `fix`, GPT-1's shared files and drifted blocks are rewritten from GPT-2's first; what
    a fix cannot mend (a marker naming nothing, an unmarked copy) is still reported."""
    source_dir, target_dir = repo / SOURCE_PACKAGE, repo / TARGET_PACKAGE
    problems = []
    source_names = {path.name for path in source_dir.glob("*.py")} - {"__init__.py"}
    target_names = {path.name for path in target_dir.glob("*.py")} - {"__init__.py"}
    for name in sorted(set(SHARED_FILES) | (source_names & target_names)):
        original, copy = source_dir / name, target_dir / name
        if not original.exists():
            problems.append(f"{SOURCE_PACKAGE}/{name} is missing (a shared file: GPT-2 holds the original)")
            continue
        if copy.exists() and copy.read_bytes() == original.read_bytes():
            continue
        if fix:
            copy.write_bytes(original.read_bytes())
        state = "is missing" if not copy.exists() else "differs from"
        problems.append(f"{TARGET_PACKAGE}/{name} {state} {SOURCE_PACKAGE}/{name} (shared files are byte-identical)")
    copied = set()
    for target in sorted(target_dir.glob("*.py")):
        if target.name in source_names:
            continue  # a shared file, compared whole above
        block_problems, covered, names = check_blocks(target, source_dir, fix)
        problems += block_problems + check_unmarked(target, source_dir, covered)
        copied.update(names)
    return problems, copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fix", action="store_true", help="rewrite GPT-1's copies from GPT-2's")
    parser.add_argument("--repo", type=Path, default=REPO, help="the repository to check (default: this one)")
    args = parser.parse_args(argv)
    problems, _ = check(args.repo, fix=args.fix)
    if args.fix:
        for problem in problems:
            print(f"found: {problem}")
        problems, _ = check(args.repo)  # what the fix could not mend
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} copies differ; `make fix-copies` (python utils/check_copies.py --fix) rewrites them.")
    elif args.fix:
        print("Every copy now equals GPT-2's code.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
