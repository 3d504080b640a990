"""Bad rows of fine-tuning task files (`--train_file`, `--validation_file`, `--test_file` of `python -m
recipes.finetune`, read by `recipes.data.tasks.load_task_data`): each is a `RecipeError` naming the file and the
line (1-based, of a .jsonl / .csv / .tsv file; `row N`, from 0, of a JSON array), before any work is spent. Then the
label set (exactly the training labels, `--label_names`, or a fine-tuned model's id2label; anything else is an error,
never a new class) and a tokenizer whose vocabulary is not the model's. docs/RELIABILITY.md lists the same cases.
"""

import codecs
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsLMHeadModel, train_gpt1_tokenizer
from recipes.core.errors import RecipeError
from recipes.data.tasks import load_task_data
from recipes.training import finetune_options, task_setup

REPO = Path(__file__).resolve().parents[2]
POLARITY = [
    {"text": "a fine, warm film", "label": "positive"},
    {"text": "a dull film", "label": "negative"},
    {"text": "it moved me", "label": "positive"},
]
PAIRS = [
    {"premise": "she sold the car", "hypothesis": "she had a car", "label": "entailment"},
    {"premise": "he never left home", "hypothesis": "he travelled abroad", "label": "contradiction"},
    {"premise": "the shop opened late", "hypothesis": "the shop was open", "label": "entailment"},
]
CHOICES = [{"context": "to open a jar", "choices": ["twist the lid", "paint it"], "label": 0}] * 3


def jsonl(*records) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


@dataclass
class Case:
    id: str
    family: str
    files: dict[str, tuple[str, bytes]]  # split -> (file name, its bytes)
    match: str  # regex the message must contain
    options: dict = field(default_factory=dict)  # more load_task_data arguments


def train(name: str, data: bytes) -> dict[str, tuple[str, bytes]]:
    return {"train": (name, data)}


def with_validation(data: bytes) -> dict[str, tuple[str, bytes]]:
    return {"train": ("train.jsonl", jsonl(*POLARITY)), "validation": ("validation.jsonl", data)}


LATIN1 = '{"text": "a caf\xe9 film", "label": "negative"}\n'.encode("latin-1")
CASES = [
    # The file: what datasets would fail on (naming neither file nor line) or misread.
    Case("task-file-malformed-json", "classification",
         train("train.jsonl", jsonl(*POLARITY[:2]) + b'{"text": "x", "label": "positive"\n'),
         r"train.jsonl, line 3, column 34: not JSON \(Expecting ',' delimiter\)"),
    Case("task-file-not-utf8", "classification", train("train.jsonl", jsonl(POLARITY[0]) + LATIN1),
         r"train.jsonl, line 2: byte 16 \(0xe9\) is not UTF-8 \(invalid continuation byte\); save the file as UTF-8"),
    Case("task-file-utf16-bom", "classification", train("train.jsonl", jsonl(*POLARITY).decode().encode("utf-16")),
         r"train.jsonl is UTF-16 \(it starts with a UTF-16 byte-order mark\): save the file as UTF-8 \(e.g. `iconv"),
    Case("task-file-utf16-no-bom", "classification",
         train("train.jsonl", jsonl(*POLARITY).decode().encode("utf-16-le")),
         r"train.jsonl, line 1: byte 2 is NUL \(0x00\), which text files do not hold: the file looks UTF-16"),
    Case("task-file-utf16-csv", "classification",
         train("train.csv", "text,label\na,positive\n".encode("utf-16-be")), r"train.csv, line 1: byte 1 is NUL"),
    Case("task-file-not-utf8-csv", "classification",
         train("train.csv", b'text,label\n"two\nlines",positive\n\nbad \xff,negative\n'),
         r"train.csv, line 5: byte 5 \(0xff\) is not UTF-8"),
    Case("task-file-row-not-object", "classification", train("train.jsonl", jsonl(POLARITY[0], ["a", "positive"])),
         r"train.jsonl, line 2: a JSON list \(\['a', 'positive'\]\); each row is a JSON object of fields"),
    Case("task-file-field-type-changes", "classification",
         train("train.jsonl", jsonl(*POLARITY, {"text": "so so", "label": 1})),
         r"train.jsonl, line 4: 'label' is a number \(1\), but a string at line 1: a field must have the same type"),
    Case("task-file-csv-extra-cell", "classification",
         train("train.csv", b"text,label\na fine film,positive\na dull, flat film,negative\n"),
         r"train.csv, line 3: 3 cells, but the header \(line 1\) has 2: quote a cell that holds the delimiter ','"),
    Case("task-file-json-array-malformed", "classification",
         train("train.json", json.dumps(POLARITY, indent=1).encode()[:-3]),
         r"train.json, line 13, column 2: not JSON \(Expecting ',' delimiter\): a .json file holds a JSON array"),
    # A row: a missing field, a wrong type.
    Case("task-row-missing-field", "classification",
         train("train.jsonl", b"\n" + jsonl(*POLARITY) + b"\n" + jsonl({"text": "no label here"})),
         r"train.jsonl, line 6: the field 'label' is missing \(every classification row needs text, label\)"),
    Case("task-row-missing-csv-cell", "classification", train("train.csv", b"text,label\na,1\nb,0\nc,\nd,1\n"),
         r"train.csv, line 4: the field 'label' is missing"),
    Case("task-row-missing-tsv-cell", "entailment",
         train("train.tsv", b"premise\thypothesis\tlabel\np\th\tentailment\np2\t\tcontradiction\n"),
         r"train.tsv, line 3: the field 'hypothesis' is missing"),
    Case("task-row-wrong-type", "entailment",
         train("train.jsonl", jsonl(*[{**row, "hypothesis": 7} for row in PAIRS])),
         r"train.jsonl, line 1: 'hypothesis' must be a string, got int 7"),
    Case("task-row-float-class-id", "classification",
         train("train.jsonl", jsonl({"text": "a", "label": 1.0}, {"text": "b", "label": 0})),
         r"train.jsonl, line 1: label 1.0 must be an int class id or a class name, not a float"),
    Case("task-row-json-array-index", "classification",
         train("train.json", json.dumps([*POLARITY, {"text": "", "label": "negative"}]).encode()),
         r"train.json, row 3: 'text' is empty"),
    # Empty texts.
    Case("task-text-empty", "classification",
         train("train.jsonl", jsonl(*POLARITY, {"text": "", "label": "positive"})),
         r"train.jsonl, line 4: 'text' is empty: the model would read no text there; fix or drop the row"),
    Case("task-text-whitespace", "entailment",
         train("train.jsonl", jsonl(PAIRS[0], {**PAIRS[1], "premise": " \t"})),
         r"train.jsonl, line 2: 'premise' is empty \(only whitespace\)"),
    Case("task-text-empty-choice", "multiple_choice",
         train("train.jsonl", jsonl(*CHOICES, {**CHOICES[0], "choices": ["twist the lid", "  "]})),
         r"train.jsonl, line 4: choice 1 of 'choices' is empty \(only whitespace\)"),
    Case("task-text-empty-csv-cell", "classification", train("train.csv", b'text,label\n"",positive\nb,negative\n'),
         r"train.csv, line 2: the field 'text' is missing"),  # pandas reads an empty cell as missing
    # Labels outside the label set.
    Case("task-label-unknown", "classification",
         with_validation(jsonl(POLARITY[0], {"text": "meh", "label": "neutral"})),
         r"validation.jsonl, line 2: label 'neutral' is not one of the class names \['negative', 'positive'\] \(the "
         r"labels of --train_file .*train.jsonl\)\.$"),
    Case("task-label-case", "classification", with_validation(jsonl({"text": "great", "label": "Positive"})),
         r"line 1: label 'Positive' is not one of the class names \['negative', 'positive'\] .* Did you mean "
         r"'positive'\? Labels must match exactly\."),
    Case("task-label-entailment-absent-class", "entailment",
         {"train": ("train.jsonl", jsonl(*PAIRS)),
          "test": ("test.jsonl", jsonl({**PAIRS[0], "label": "neutral"}))},
         r"test.jsonl, line 1: label 'neutral' is not one of the class names \['entailment', 'contradiction'\]"),
    Case("task-label-not-in-label-names", "classification", train("train.jsonl", jsonl(*POLARITY)),
         r"train.jsonl, line 1: label 'positive' is not one of the class names \['negative', 'neutral'\] "
         r"\(--label_names\)", {"label_names": ["negative", "neutral"]}),
    Case("task-label-not-in-model-classes", "classification", train("train.jsonl", jsonl(*POLARITY)),
         r"line 1: label 'positive' is not one of the class names \['good', 'bad'\] \(the classes of the fine-tuned "
         r"--model_name_or_path, its id2label; --label_names trains it for others\)",
         {"model_classes": ["good", "bad"]}),
    Case("task-label-int-among-names", "classification", with_validation(jsonl({"text": "great", "label": 1})),
         r"validation.jsonl, line 1: label 1 is an int, but the class names \['negative', 'positive'\] come from the "
         r"labels of --train_file .*, which gives them no ids"),
    Case("task-label-one-class", "classification", train("train.jsonl", jsonl(POLARITY[0], POLARITY[2])),
         r"Every training label of --train_file .*train.jsonl is 'positive': a classifier needs at least 2 classes"),
]  # fmt: skip


def write(folder: Path, files: dict[str, tuple[str, bytes]]) -> dict[str, list[Path]]:
    """load_task_data's file arguments for `files`, written to `folder`."""
    arguments = {}
    for split, (name, data) in files.items():
        (folder / split).mkdir(parents=True)
        (folder / split / name).write_bytes(data)
        arguments[f"{split}_files"] = [folder / split / name]
    return arguments


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_bad_row_is_named_by_its_file_and_line(case, tmp_path):
    files = write(tmp_path, case.files)
    with pytest.raises(RecipeError, match=case.match) as error:
        load_task_data(case.family, **files, **case.options, cache_dir=tmp_path / "cache")
    assert "\n" not in str(error.value)  # the recipe prints it as one line


def test_good_files_next_to_the_bad_ones_load(tmp_path):
    """The boundaries: a UTF-8 byte-order mark (Excel's "CSV UTF-8"), blank lines, a quoted cell over two lines, a
    label set of the training labels only, the model's classes in the model's id order."""
    bom = codecs.BOM_UTF8
    csv = bom + b'text,label\n"two\nlines",positive\n\n   \nflat,negative\n'
    task = load_task_data("classification", **write(tmp_path / "csv", {"train": ("a.csv", csv),
                          "validation": ("v.jsonl", bom + b"\n" + jsonl(*POLARITY))}))  # fmt: skip
    assert task.dataset["train"]["text"] == ["two\nlines", "flat"] and task.label_names == ("negative", "positive")

    # Two of GLUE's three entailment classes: two classes, in GLUE's order; no "neutral" that no row has.
    task = load_task_data("entailment", **write(tmp_path / "pairs", {"train": ("t.jsonl", jsonl(*PAIRS, *PAIRS))}))
    assert task.label_names == ("entailment", "contradiction") and task.num_labels == 2

    task = load_task_data("classification", **write(tmp_path / "model", {"train": ("t.jsonl", jsonl(*POLARITY * 2))}),
                          model_classes=["positive", "negative"])  # fmt: skip
    assert task.label_names == ("positive", "negative")
    assert task.dataset.num_rows == {"train": 5, "validation": 1}

    # A field the task does not read may change its type (datasets reads it, then it is dropped); a renamed one not.
    rows = jsonl(*[{"sentence": row["text"], "label": row["label"], "id": [7, "b7"][i % 2]} for i, row in
                   enumerate(POLARITY * 2)])  # fmt: skip
    task = load_task_data("classification", **write(tmp_path / "other", {"train": ("t.jsonl", rows)}),
                          column_mapping={"sentence": "text"})  # fmt: skip
    assert task.dataset["train"].column_names == ["text", "label"]
    with pytest.raises(RecipeError, match=r"t.jsonl, line 2: 'id' is a string \('b7'\), but a number at line 1"):
        load_task_data("classification", **write(tmp_path / "renamed", {"train": ("t.jsonl", rows)}),
                       column_mapping={"sentence": "text", "id": "label"})  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------------
# Through the recipe: the fine-tuned model's classes, a tokenizer that is not the model's, the command line.


def tokenizer_of(size: int):
    words = [f"w{i}" for i in range(size)]
    return train_gpt1_tokenizer([" ".join(words)] * 2, vocab_size=size, min_frequency=1, model_max_length=128)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A pre-trained GPT-1 folder (tiny preset) with its own tokenizer."""
    folder = tmp_path_factory.mktemp("pretrained")
    tokenizer = tokenizer_of(120)
    torch.manual_seed(0)
    GPT1OriginsLMHeadModel(GPT1OriginsConfig.from_preset("tiny", vocab_size=len(tokenizer))).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def recipe_args(tmp_path, *options):
    train_file = tmp_path / "train.jsonl"
    train_file.write_bytes(jsonl(*POLARITY * 2))
    return finetune_options.parse_args([*map(str, ["--task_type", "classification", "--train_file", train_file,
                                           "--output_dir", tmp_path / "out", *options])])  # fmt: skip


def test_a_fine_tuned_model_gives_the_label_set(tmp_path):
    """Fine-tuning a fine-tuned GPT-1 further keeps its classes (id2label): labels it lacks are refused."""
    model = tmp_path / "fine-tuned"
    GPT1OriginsConfig.from_preset("tiny", task_type="classification", id2label={0: "good", 1: "bad"}).save_pretrained(
        model
    )
    assert task_setup.fine_tuned_classes(recipe_args(tmp_path, "--model_name_or_path", model)) == ["good", "bad"]
    with pytest.raises(RecipeError, match=r"label 'positive' is not one of the class names \['good', 'bad'\]"):
        task_setup.get_task_data(recipe_args(tmp_path, "--model_name_or_path", model))
    task = task_setup.get_task_data(recipe_args(tmp_path, "--model_name_or_path", model, "--label_names", "negative",
                                                "positive"))  # fmt: skip
    assert task.label_names == ("negative", "positive")
    # Another task type, transformers' placeholder names: the training labels.
    assert task_setup.fine_tuned_classes(recipe_args(tmp_path, "--model_name_or_path", model, "--task_type",
                                                     "entailment")) is None  # fmt: skip
    GPT1OriginsConfig.from_preset("tiny", task_type="classification", num_labels=3).save_pretrained(model)
    assert task_setup.fine_tuned_classes(recipe_args(tmp_path, "--model_name_or_path", model)) is None


VOCABULARY_CASES = {
    "task-vocab-tokenizer-larger": (200, r"--tokenizer '.*' has 200 tokens, but the embedding of "
                                         r"--model_name_or_path '.*' has 120: 80 tokens past the embedding \('w"),
    "task-vocab-tokenizer-smaller": (60, r"has 60 tokens, but the embedding .* has 120: its token ids would name "
                                         r"other words than the embedding learned"),
}  # fmt: skip


@pytest.mark.parametrize("case", VOCABULARY_CASES)
def test_a_tokenizer_that_is_not_the_models_is_refused(case, pretrained, tmp_path):
    size, match = VOCABULARY_CASES[case]
    tokenizer_of(size).save_pretrained(tmp_path / "tokenizer")
    args = recipe_args(tmp_path, "--model_name_or_path", pretrained, "--tokenizer", tmp_path / "tokenizer")
    task = task_setup.get_task_data(args)
    tokenizer, added = task_setup.get_tokenizer(args, task)
    with pytest.raises(RecipeError, match=match):
        task_setup.get_model(args, task, tokenizer, added)


def test_the_models_own_tokenizer_and_the_task_tokens_pass(pretrained, tmp_path):
    """The model's tokenizer, and a copy of it given with --tokenizer; transformers' openai-gpt case (task tokens
    appended past the embedding) is tests/recipes/test_finetune.py's --freeze_body test."""
    for options in ([], ["--tokenizer", pretrained]):
        args = recipe_args(tmp_path, "--model_name_or_path", pretrained, *options)
        task = task_setup.get_task_data(args)
        tokenizer, added = task_setup.get_tokenizer(args, task)
        model, _ = task_setup.get_model(args, task, tokenizer, added)
        assert model.config.vocab_size == len(tokenizer) == 120 and added == []


def test_the_command_line_names_the_file_and_line(tmp_path):
    """`python -m recipes.finetune` on a file with a malformed line: exit status 2 and one line naming both, before
    any tokenizer or model is loaded (the preset has none here)."""
    bad = tmp_path / "train.jsonl"
    bad.write_bytes(jsonl(*POLARITY) + b'{"text": "unterminated, "label": "negative"}\n')
    result = subprocess.run(
        [sys.executable, "-m", "recipes.finetune", "--model_name_or_path", "tiny", "--task_type", "classification",
         "--train_file", bad, "--output_dir", tmp_path / "out", "--cpu"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == [
        f"python -m recipes.finetune: error: --train_file {bad}, line 4, column 26: not JSON (Expecting ',' "
        f"delimiter): each line of a JSON Lines file holds one JSON object."
    ], result.stderr[-2000:]


def test_every_task_row_case_is_in_the_reliability_table(documented_cases):
    ids = {case.id for case in CASES} | set(VOCABULARY_CASES)
    missing = sorted(ids - documented_cases)
    assert not missing, f"docs/RELIABILITY.md has no row for {missing}"
