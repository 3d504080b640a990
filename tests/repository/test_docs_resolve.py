"""Every command, run config and repository file the documentation quotes exists.

The documents: README.md, recipes/README.md and docs/*.md, the module docstrings of recipes/*.py (read with ast, not
imported) and the `--help` of every entry point. Their whole text is read, prose as well as code: a stale name in a
sentence misleads as much as one in a command. A failure names the document, its line and the stale name. Checked:

- `python -m recipes.X`, `-m recipes.X` (after `accelerate launch`), `python recipes/X.py` and `accelerate launch ...
  recipes/X.py`: recipes/X.py is an entry point (a module of recipes/ with a top-level `main`); `-m modeling_gpt1.X`
  (or gpt2): the module exists.
- `--config NAME` and `--finetune_config NAME`: NAME is a run config of `recipes.core.arguments.run_configs()`, with
  or without `.yaml`, or a path to a run config relative to the repository; `--config_file PATH`: an existing file
  (a glob: at least one).
- A repository path, one starting with recipes/, modeling_gpt1/, modeling_gpt2/, tests/, docs/ or utils/ (or `../`
  and one of those): it exists; a glob (`*`, `{a,b}`) matches at least one file.
- A bare file name, `NAME.py`, `NAME.yaml` or `NAME.sh` (a glob too): some file of the repository has that name.
- A markdown code span that is a run config's name without `.yaml` (a word starting `pretrain-`, `benchmark-`, ...,
  a recipe's config prefix; not the first cell of a table row, where docs/RELIABILITY.md keeps its case ids): it is
  a run config.
- A dotted Python name, `recipes.X.name`, `modeling_gpt1.name`, `modeling_gpt2.module.name`: the module exists and
  defines, assigns or imports `name` at its top level (read with ast).
- `gpt-origins-NAME` (a glob too): a console script of pyproject.toml's [project.scripts].
- A markdown code span `make TARGET`: the Makefile has that target.
- A relative markdown link `[text](path#anchor)`: the file exists, and the markdown file it names has that heading.

Not repository names, so skipped:
- placeholders: a name holding `<...>` or `...`, a run of `NNN`, a path part or option value that is an upper-case
  word (`X`, `FILE`, `NAME`, `FOLDER`, `DIR`, `OUT`, `PATH`, `TEXT`, `CONFIG`), or a name starting with `my`
  (`my-run.yaml`, `my/polarity`: the reader's own files);
- what a command creates: the value of `--output_dir`, `--output_file` and `--logdir`;
- any other path (`runs/...`, `data/...`, `/tmp/...`, `~/...`): a run's outputs and the reader's files.
"""

import ast
import difflib
import fnmatch
import glob
import importlib
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKDOWN = ["README.md", "recipes/README.md", *sorted(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md"))]
RECIPE_MODULES = sorted(f"recipes/{path.name}" for path in (ROOT / "recipes").glob("*.py"))
# The importable names of the repository's packages, and their folders.
PACKAGES = {name: name for name in ("recipes", "modeling_gpt1", "modeling_gpt2")} | {"gpt_origins_recipes": "recipes"}
PATH_ROOTS = ("recipes", "modeling_gpt1", "modeling_gpt2", "tests", "docs", "utils")
RUN_CONFIG_PREFIXES = ("pretrain", "prepare", "finetune", "ablation", "benchmark", "zero-shot")
OUTPUT_FOLDERS = {"build", "dist", "runs", "outputs", "data"}  # at the top: what runs and builds write

# What separates an option from its value: `=`, blanks, or a line continued with a backslash.
SEP = r"(?:=|(?:\s|\\\n)+)"
VALUE = r"([^\s`'\"(),;\[\]]+)"
ENTRY_MODULE = re.compile(r"(?<![\w.-])-m\s+((?:recipes|modeling_gpt1|modeling_gpt2)(?:\.[\w<>]+)*)")
ENTRY_SCRIPT = re.compile(r"(?:\bpython3?|\baccelerate launch\b[^\n]*?)\s(recipes/\w+\.py)\b")
RUN_CONFIG_OPTION = re.compile(rf"--(?:finetune_)?config(?![\w-]){SEP}{VALUE}")
LAUNCH_CONFIG_OPTION = re.compile(rf"--config_file{SEP}{VALUE}")
REPO_PATH = re.compile(rf"(?<![\w./~@$-])((?:\.\./)*(?:{'|'.join(PATH_ROOTS)})/(?:[\w./*<>+-]|\{{[\w.,-]*\}})*)")
BARE_FILE = re.compile(r"(?<![\w./~@<>$-])([\w*-]+\.(?:py|yaml|sh))(?![\w/-])")
DOTTED_NAME = re.compile(rf"(?<![\w./-])((?:{'|'.join(PACKAGES)})(?:\.\w+)+)")
CONSOLE_SCRIPT = re.compile(r"(?<![\w./-])(gpt-origins-[\w*<>-]+)")
CREATED = re.compile(rf"--(?:output_dir|output_file|logdir){SEP}$")
PLACEHOLDER_WORDS = "X|FILE|NAME|FOLDER|DIR|OUT|PATH|TEXT|CONFIG"
PLACEHOLDER = re.compile(rf"<[^>]*>|\.\.\.|N{{3,}}|(?:^|/)(?:{PLACEHOLDER_WORDS})(?:\.\w+)?(?:$|/)|(?:^|/)my[-_/]")
UPPER_WORD = re.compile(r"[A-Z][A-Z_]*")


@dataclass(frozen=True)
class Reference:
    """One name a document quotes: what kind of name it is and the text as quoted."""

    kind: str  # "entry point", "module", "run config", "launch config", "path", "file name", "python name", ...
    text: str

    def __str__(self):
        return f"{self.kind} {self.text!r}"


# ------------------------------------------------------------------------------------------------------- extraction


def is_placeholder(text: str) -> bool:
    return PLACEHOLDER.search(text) is not None


def references(text: str) -> list[tuple[Reference, int]]:
    """The names `text` (a markdown file, a docstring or a --help text) quotes, each with the line of `text` (from 1)
    where it starts. Placeholders and the paths a command creates are left out."""
    found = []

    def add(kind: str, match: re.Match, group: int = 1):
        value = match.group(group).rstrip(".") if not match.group(group).endswith("...") else match.group(group)
        if not is_placeholder(value):
            found.append((Reference(kind, value), text.count("\n", 0, match.start(group)) + 1))

    for match in ENTRY_MODULE.finditer(text):
        add("entry point" if match.group(1).startswith("recipes.") else "module", match)
    for match in ENTRY_SCRIPT.finditer(text):
        add("entry point", match)
    for match in RUN_CONFIG_OPTION.finditer(text):
        if not match.group(1).startswith("-") and not UPPER_WORD.fullmatch(match.group(1)):
            add("run config", match)
    for match in LAUNCH_CONFIG_OPTION.finditer(text):
        if not match.group(1).startswith("-") and not UPPER_WORD.fullmatch(match.group(1)):
            add("launch config", match)
    for match in REPO_PATH.finditer(text):
        if not CREATED.search(text, 0, match.start()):
            add("path", match)
    for match in BARE_FILE.finditer(text):
        add("file name", match)
    for match in DOTTED_NAME.finditer(text):
        if not re.search(r"\.(py|md|yaml|json|sh)$", match.group(1)):
            add("python name", match)
    for match in CONSOLE_SCRIPT.finditer(text):
        add("console script", match)
    return found


@dataclass(frozen=True)
class Quote:
    """A code span or a link target of a markdown text, and the line where it starts."""

    text: str
    line: int
    table_key: bool = False  # the first cell of a table row: a case id (docs/RELIABILITY.md), not a name


FENCE = re.compile(r"^ {0,3}(```|~~~)[^\n]*\n(.*?)^ {0,3}\1[ \t]*$", flags=re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", flags=re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def code_spans_and_links(text: str) -> tuple[list[Quote], list[Quote]]:
    """The code spans and the link targets of a markdown text, outside its fenced code blocks."""
    spans, links = [], []
    blank_fences = FENCE.sub(lambda fence: "\n" * fence.group(0).count("\n"), text)  # keeps the line numbers
    for span in CODE_SPAN.finditer(blank_fences):
        line_start = blank_fences.rfind("\n", 0, span.start()) + 1
        table_key = re.fullmatch(r"\s*\|\s*", blank_fences[line_start : span.start()]) is not None
        spans.append(Quote(span.group(2), blank_fences.count("\n", 0, span.start(2)) + 1, table_key))
    prose = CODE_SPAN.sub(lambda span: "\n" * span.group(0).count("\n"), blank_fences)
    for link in LINK.finditer(prose):
        links.append(Quote(link.group(1), prose.count("\n", 0, link.start()) + 1))
    return spans, links


def headings(markdown_file: Path) -> set[str]:
    """The anchors GitHub gives the headings of a markdown file (lower case, punctuation dropped, blanks to `-`)."""
    text = FENCE.sub("", markdown_file.read_text(encoding="utf-8"))
    anchors, seen = set(), {}
    for title in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", title.replace("`", "").strip().lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def document_references(document: str) -> dict[Reference, list[int]]:
    """Every name a document quotes, with the lines that quote it: a markdown file's text (with the run configs its
    code spans name, and its relative links), or a recipe module's docstring."""
    path = ROOT / document
    found: dict[Reference, list[int]] = {}
    if path.suffix == ".md":
        text = path.read_text(encoding="utf-8")
        for reference, line in references(text):
            found.setdefault(reference, []).append(line)
        spans, links = code_spans_and_links(text)
        for span in spans:
            name = span.text.strip()
            if not span.table_key and re.fullmatch(rf"(?:{'|'.join(RUN_CONFIG_PREFIXES)})-[\w-]+", name):
                found.setdefault(Reference("run config", name), []).append(span.line)
            if re.fullmatch(r"make [\w -]+", name):
                for target in name.split()[1:]:
                    found.setdefault(Reference("make target", target), []).append(span.line)
        for link in links:
            if not re.match(r"\w[\w+.-]*:", link.text):  # not a URL
                same_file = link.text.startswith("#")
                target = document + link.text if same_file else os.path.relpath(path.parent / link.text, ROOT)
                found.setdefault(Reference("link", target.replace(os.sep, "/")), []).append(link.line)
    else:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstring = ast.get_docstring(tree, clean=False) or ""
        for reference, line in references(docstring):
            found.setdefault(reference, []).append(tree.body[0].lineno + line - 1)
    return found


# -------------------------------------------------------------------------------------------------------- resolution


@cache
def repository_file_names() -> frozenset[str]:
    """The names of the repository's files (not those of its outputs, caches and build folders)."""
    names = set()
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [
            name for name in subfolders
            if not (name.startswith(".") or name == "__pycache__" or name.endswith(".egg-info"))
            and not (folder == str(ROOT) and name in OUTPUT_FOLDERS)
        ]  # fmt: skip
        names.update(files)
    return frozenset(names)


@cache
def run_configs() -> dict[str, Path]:
    from recipes.core.arguments import run_configs

    return run_configs()


@cache
def console_scripts() -> frozenset[str]:
    """The console scripts of pyproject.toml (read as text: tomllib is Python 3.11+)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("\n[project.scripts]\n", 1)[1].split("\n[", 1)[0]
    return frozenset(re.findall(r"^([\w-]+)\s*=", section, flags=re.MULTILINE))


def top_level_names(module: Path) -> set[str]:
    """The names a module defines, assigns or imports at its top level (inside top-level `if` / `try` too)."""
    names, body = set(), list(ast.parse(module.read_text(encoding="utf-8")).body)
    while body:
        node = body.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(name.id for name in ast.walk(target) if isinstance(name, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            body.extend(node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                body.extend(handler.body)
    return names


def module_file(dotted: str) -> tuple[Path, list[str]]:
    """The file of the longest module prefix of `dotted` (a package's __init__.py), and the parts after it."""
    parts = dotted.split(".")
    folder = ROOT / PACKAGES[parts[0]]
    for index, part in enumerate(parts[1:], start=1):
        if (folder / part / "__init__.py").is_file():
            folder = folder / part
        elif (folder / f"{part}.py").is_file():
            return folder / f"{part}.py", parts[index + 1 :]
        else:
            return folder / "__init__.py", parts[index:]
    return folder / "__init__.py", []


def expand_braces(pattern: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", pattern)
    if match is None:
        return [pattern]
    return [
        expanded
        for choice in match.group(1).split(",")
        for expanded in expand_braces(pattern[: match.start()] + choice + pattern[match.end() :])
    ]


def path_exists(relative: str) -> bool:
    patterns = expand_braces(relative)
    if any(char in relative for char in "*?["):
        return all(glob.glob(str(ROOT / pattern)) for pattern in patterns)
    return all((ROOT / pattern).exists() for pattern in patterns)


def entry_point_problem(text: str) -> str | None:
    name = text[len("recipes.") :] if text.startswith("recipes.") else text[len("recipes/") : -len(".py")]
    path = ROOT / "recipes" / f"{name}.py"
    if "." in name or not path.is_file():
        return f"no entry point recipes/{name.replace('.', '/')}.py (the commands: recipes/<command>.py)"
    if "main" not in top_level_names(path):
        return f"recipes/{name}.py has no main(): it is not an entry point"
    return None


def module_problem(text: str) -> str | None:
    return f"no module {text}" if module_file(text)[1] else None


def run_config_problem(text: str) -> str | None:
    stem = text[: -len(".yaml")] if text.endswith(".yaml") else text
    if stem in run_configs() or (text.endswith(".yaml") and (ROOT / text).is_file()):
        return None
    close = difflib.get_close_matches(stem, run_configs(), n=3)
    return f"no run config {text!r} in recipes/configs/<recipe>/" + (f" (did you mean {close}?)" if close else "")


def launch_config_problem(text: str) -> str | None:
    return None if path_exists(text) else f"no launch config file {text}"


def path_problem(text: str) -> str | None:
    path, _, anchor = text.partition("#")
    path = re.sub(r"^(\.\./)+", "", path)
    if not path_exists(path):
        return f"no file or folder {path} in the repository"
    if anchor and path.endswith(".md") and anchor not in headings(ROOT / path):
        return f"{path} has no heading with the anchor #{anchor}"
    return None


def file_name_problem(text: str) -> str | None:
    return None if fnmatch.filter(repository_file_names(), text) else f"no file named {text} in the repository"


def python_name_problem(text: str) -> str | None:
    path, rest = module_file(text)
    return (
        f"{path.relative_to(ROOT)} defines no {rest[0]!r}" if rest and rest[0] not in top_level_names(path) else None
    )


def make_target_problem(text: str) -> str | None:
    targets = re.findall(r"^([\w-]+)\s*:", (ROOT / "Makefile").read_text(encoding="utf-8"), flags=re.MULTILINE)
    return None if text in targets else f"no target {text} in the Makefile ({targets})"


def console_script_problem(text: str) -> str | None:
    if fnmatch.filter(console_scripts(), text):
        return None
    return f"no console script {text} in pyproject.toml's [project.scripts] ({sorted(console_scripts())})"


PROBLEMS = {
    "entry point": entry_point_problem,
    "module": module_problem,
    "run config": run_config_problem,
    "launch config": launch_config_problem,
    "path": path_problem,
    "link": path_problem,
    "file name": file_name_problem,
    "python name": python_name_problem,
    "console script": console_script_problem,
    "make target": make_target_problem,
}


def problem(reference: Reference) -> str | None:
    """Why `reference` names nothing that exists, or None when it does."""
    return PROBLEMS[reference.kind](reference.text)


# -------------------------------------------------------------------------------------------------------------- tests


def cases() -> list:
    params = []
    for document in [*MARKDOWN, *RECIPE_MODULES]:
        for reference, lines in document_references(document).items():
            params.append(
                pytest.param(document, reference, lines, id=f"{document}::{reference.kind}:{reference.text}")
            )
    return params


@pytest.mark.parametrize("document, reference, lines", cases())
def test_quoted_name_exists(document, reference, lines):
    reason = problem(reference)
    assert reason is None, f"{document}, line {', '.join(map(str, lines))}: {reference} is stale: {reason}"


def entry_points() -> list:
    """The recipes/*.py modules with a `main()`; one whose module parses no options (no run_cli, no argparse parser)
    has no --help to read, and is skipped."""
    commands = []
    for document in RECIPE_MODULES:
        if "main" not in top_level_names(ROOT / document):
            continue
        parses = re.search(r"\b(run_cli|parse_arguments|ArgumentParser)\b", (ROOT / document).read_text("utf-8"))
        skip = pytest.mark.skip(reason=f"{document}'s main() parses no options: it has no --help")
        commands.append(pytest.param(Path(document).stem, marks=() if parses else skip))
    return commands


@pytest.mark.parametrize("command", entry_points())
def test_help_names_exist(command, capsys, monkeypatch):
    """The `--help` of each entry point: its docstring and every option's help."""
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping inside a name
    module = importlib.import_module(f"recipes.{command}")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code in (0, None)
    help_text = capsys.readouterr().out
    assert "usage:" in help_text
    stale = [
        f"line {line}: {reference} is stale: {reason}"
        for reference, line in references(help_text)
        if (reason := problem(reference)) is not None
    ]
    assert not stale, f"python -m recipes.{command} --help quotes names that do not exist:\n" + "\n".join(stale)


def test_stale_names_are_reported():
    """The check fails on what it is for: a run config and a recipe that do not exist, an entry point that is a
    library module, a path, a console script and a Python name that are gone; placeholders pass."""
    text = (
        "python -m recipes.pretrain --config no-such-run\n"
        "python recipes/no_such.py --config_file recipes/configs/launch/none.yaml\n"
        "python -m recipes.core.engine   # docs/NO_SUCH.md, gpt-origins-no-such, recipes.finetune.no_such_function\n"
        "python -m recipes.pretrain --config FILE --output_dir recipes/made-by-the-run\n"
        "python -m recipes.<name> --config my-run.yaml   # recipes/configs/<recipe>/*.yaml, step_NNNNNNNN\n"
    )
    found = {reference: problem(reference) for reference, _ in references(text)}
    stale = {str(reference) for reference, reason in found.items() if reason is not None}
    assert stale == {
        "run config 'no-such-run'",
        "entry point 'recipes/no_such.py'",
        "path 'recipes/no_such.py'",
        "launch config 'recipes/configs/launch/none.yaml'",
        "path 'recipes/configs/launch/none.yaml'",
        "entry point 'recipes.core.engine'",
        "path 'docs/NO_SUCH.md'",
        "console script 'gpt-origins-no-such'",
        "python name 'recipes.finetune.no_such_function'",
    }
    assert "entry point 'recipes.pretrain'" in {str(reference) for reference in found}
    markdown = "| `case-id` | `pretrain-demo-gpt2` |\n\n```bash\n[not](a-link.md)\n```\nsee [x](../docs/NO.md#y).\n"
    spans, links = code_spans_and_links(markdown)
    assert [(span.text, span.line, span.table_key) for span in spans] == [
        ("case-id", 1, True),
        ("pretrain-demo-gpt2", 1, False),
    ]
    assert [(link.text, link.line) for link in links] == [("../docs/NO.md#y", 6)]
    assert problem(Reference("make target", "no-such-target")) is not None
    assert problem(Reference("make target", "fix-copies")) is None
