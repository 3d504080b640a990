"""recipes/evaluate_zero_shot.py --task hellaswag: the cleaning of lm-evaluation-harness's `hellaswag` task on known
inputs, a run on rows in HellaSwag's schema (tests/fixtures/hellaswag, read like the Hub dataset) whose acc and
acc_norm equal a direct computation done the harness's way with the same tiny random GPT-2, the Hub name it reads by
default, and every bad input (the unlabelled test split first) refused with a one-line error before any scoring."""

import json
from pathlib import Path

import pytest
import torch
from datasets import load_dataset

from recipes import evaluate_zero_shot
from recipes.core.arguments import parse_arguments, run_configs
from recipes.evaluation import zero_shot, zero_shot_data
from recipes.evaluation.hellaswag import clean_hellaswag, hellaswag_examples, hellaswag_query

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hellaswag"
EOT = 50256

# The fixture's validation rows as the harness poses them, worked out by hand: (query, cleaned endings, gold).
EXPECTED = [
    (
        "Walking the dog: A woman leads a small terrier along a path in a park. The dog stops at a tree and sniffs "
        "the bark",  # ctx_b through str.capitalize: "the ... Tree" -> "The ... tree"
        [
            "while the woman waits, then they walk on together.",
            "and jumps into the lake to swim after a rowing boat.",
            "as a man starts painting the tree bright blue.",
            "so the woman sits on the grass and plays a guitar.",
        ],
        0,
    ),
    (
        # ctx_b starts with "[step]", so capitalize() upper-cases the bracket and "moist" stays lower case
        "Home and Garden: How to repot a houseplant. Water the plant a day before. moist soil holds together and "
        "slides out of the pot more easily.",
        [
            " Paint the leaves with varnish. This makes them shine for weeks.",  # a leading tag leaves its space
            "Throw the plant away and buy a plastic one instead.",
            " Choose a pot slightly larger than the old one. A pot one size up gives the roots room.",
            " Put the pot in the freezer overnight.",
        ],
        2,
    ),
    (
        # ctx_a ends with "[step]" and ctx_b is empty: the query ends with a space
        "Food and Entertaining: How to clean a cast iron pan. Rinse the pan with hot water. ",
        [
            "Fill the pan with sand and bury it in the garden.",
            "Scrub away stuck food with a stiff brush, without soap.",
            " Leave it in the dishwasher for a week.",
            "Polish the handle with toothpaste until it sparkles.",
        ],
        1,
    ),
    (
        "Making a sandwich: A man lays two slices of bread on a cutting board. He",
        [
            "throws the bread at the camera and runs out of the kitchen.",
            "puts the whole cutting board in the oven.",
            "reads a newspaper while the bread floats away.",
            "spreads butter on one slice and adds cheese and ham.",
        ],
        3,
    ),
    (
        "Playing violin: A girl in a red dress stands on a stage holding a violin. She lifts the bow and",
        [
            "eats it like a carrot.",
            "hands the violin to a horse.",
            "begins to play a slow tune while the audience listens.",
            "the stage turns into a swimming pool.",
        ],
        2,
    ),
    (
        "Personal Care and Style: How to tie a tie. Drape the tie around your neck. The wide end should hang lower "
        "than the narrow end. cross the wide end over the narrow end.",  # capitalize() lower-cases "Cross"
        [
            " Cut the narrow end off with scissors.",
            " Bring the wide end up through the loop at your neck and pull it down.",
            " Tie the tie around your ankle instead.",
            " Iron the tie while wearing it.",
        ],
        1,
    ),
]


def run(model_dir, tmp_path, *options):
    return evaluate_zero_shot.main(["--model", str(model_dir), "--output_file", str(tmp_path / "out.json"), *options])


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


# ---------------------------------------------------------------------------------------------------------------------
# the cleaning


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        ("[header] Foo [title] Bar", " Foo. Bar"),  # " [title]" -> ". ", "[header]" goes, its space stays
        ("  Rinse the pan. [step] Dry it. ", "Rinse the pan. Dry it."),  # stripped first; the tag's two spaces -> one
        ("Cut it [title] Serve", "Cut it. Serve"),
        ("Ends with a tag [step]", "Ends with a tag "),  # stripped before the tag goes, so its space is left
        ("a [step] [substeps] b", "a  b"),  # three spaces: one pass of "  " -> " " leaves two, as in the harness
        ("[a] b [c]", " b "),  # the shortest bracketed run each time
        ("no tags at all", "no tags at all"),
    ],
)
def test_clean_hellaswag(raw, cleaned):
    assert clean_hellaswag(raw) == cleaned


def test_the_query_capitalises_ctx_b_with_str_capitalize():
    row = {"activity_label": "Disc dog", "ctx_a": "A man throws a disc.", "ctx_b": "the dog catches the Frisbee"}
    assert hellaswag_query(row) == "Disc dog: A man throws a disc. The dog catches the frisbee"
    row = {"activity_label": "Cooking", "ctx_a": "[header] How to boil an egg [title] Fill a pot.", "ctx_b": ""}
    assert hellaswag_query(row) == "Cooking: How to boil an egg. Fill a pot."


def test_the_fixture_rows_become_the_harness_queries_and_endings():
    rows = load_dataset(str(FIXTURE), split="validation")
    examples = hellaswag_examples(rows, "fixture")
    assert len(examples) == len(EXPECTED) == 6
    for example, (query, endings, gold) in zip(examples, EXPECTED):
        moved = query[len(query.rstrip()) :]  # the query's trailing space goes to the front of every ending
        assert example.prompt == query.rstrip() and example.label == gold
        assert example.choices == [moved + " " + ending for ending in endings]
        assert example.lengths == [len(ending) for ending in endings]  # acc_norm: per character of the ending
    assert examples[2].choices[0] == "  Fill the pan with sand and bury it in the garden."


# ---------------------------------------------------------------------------------------------------------------------
# end to end


def harness_tokens(tokenizer, context: str, continuation: str, start: list[int]) -> tuple[list[int], int]:
    """The tokens lm-evaluation-harness scores for (context, continuation) with a causal LM, and where the
    continuation's begin: the context's trailing whitespace moved to the continuation, the pair encoded whole and
    split after the context's own tokens."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation)["input_ids"]
    context_ids = tokenizer(context)["input_ids"]
    return start + whole, len(start) + len(context_ids)


@torch.no_grad()
def loglikelihood(model, ids: list[int], first: int) -> float:
    logits = model(torch.tensor([ids[:-1]])).logits[0]
    logprobs = logits.log_softmax(-1).gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1)
    return logprobs[first - 1 :].sum().item()


@pytest.mark.parametrize("start", [True, False], ids=["start-token", "no-start-token"])
def test_acc_and_acc_norm_equal_the_harness_computation(model_dir, model, tokenizer, tmp_path, monkeypatch, start):
    """The fixture folder as --dataset_name (load_dataset reads it as it reads the Hub's Rowan/hellaswag): the
    tokens scored are the harness's, each ending's log-likelihood is one plain forward's, and acc / acc_norm are the
    argmax of the sum / of the sum per character of the cleaned ending, as the harness computes them."""
    scored = []

    def recording(model, requests, *args, **kwargs):
        scores = score_requests(model, requests, *args, **kwargs)
        scored.extend(zip(requests, scores))
        return scores

    score_requests = zero_shot.score_requests
    monkeypatch.setattr(zero_shot, "score_requests", recording)
    options = ["--task", "hellaswag", "--dataset_name", str(FIXTURE), "--per_device_eval_batch_size", "5"]
    results = run(model_dir, tmp_path, *options, *([] if start else ["--no-add_start_token"]))

    assert len(scored) == 24
    expected = {"none": [], "chars": []}
    for row, (query, endings, _) in enumerate(EXPECTED):
        lls = []
        for choice, ending in enumerate(endings):
            (tokens, first), (nll, count, _) = scored[4 * row + choice]
            assert (list(tokens), first) == harness_tokens(tokenizer, query, " " + ending, [EOT] if start else [])
            ll = loglikelihood(model, tokens, first)
            assert count == len(tokens) - first and -nll == pytest.approx(ll, rel=1e-5, abs=1e-5)
            lls.append(ll)
        expected["none"].append(max(range(4), key=lls.__getitem__))
        normed = [ll / len(ending) for ll, ending in zip(lls, endings)]
        expected["chars"].append(max(range(4), key=normed.__getitem__))
    golds = [gold for _, _, gold in EXPECTED]
    assert results["predictions"] == {"labels": golds, **expected}
    metrics = results["metrics"]
    assert metrics["acc"] == sum(p == g for p, g in zip(expected["none"], golds)) / 6
    assert metrics["acc_norm"] == sum(p == g for p, g in zip(expected["chars"], golds)) / 6
    assert metrics["examples"] == 6 and metrics["choices"] == 24 and metrics["chance"] == 0.25
    assert metrics["family"] == "hellaswag" and set(metrics) == {
        "acc", "acc_norm", "chance", "examples", "choices", "family"
    }  # fmt: skip
    assert results["data"] == f"{FIXTURE} (validation)" and results["settings"]["add_start_token"] is start
    assert json.loads((tmp_path / "out.json").read_text()) == results


def test_reads_rowan_hellaswag_validation_by_default(model_dir, tmp_path, monkeypatch):
    calls = []

    def hub(name, config=None, split=None):  # the Hub, served from the fixture
        calls.append((name, config, split))
        return load_dataset("json", data_files=str(FIXTURE / "validation.jsonl"), split="train")

    monkeypatch.setattr(zero_shot_data, "load_dataset", hub)
    results = run(model_dir, tmp_path, "--task", "hellaswag", "--max_samples", "4")
    assert calls == [("Rowan/hellaswag", None, "validation")]
    assert results["data"] == "Rowan/hellaswag (validation)" and results["metrics"]["examples"] == 4
    run(model_dir, tmp_path, "--task", "hellaswag", "--dataset_split", "validation[:10]")
    assert calls[-1] == ("Rowan/hellaswag", None, "validation[:10]")


def test_a_parquet_file_of_the_rows_scores_the_same(model_dir, tmp_path):
    load_dataset(str(FIXTURE), split="validation").to_parquet(tmp_path / "rows.parquet")
    from_file = run(model_dir, tmp_path, "--task", "hellaswag", "--data_file", str(tmp_path / "rows.parquet"))
    from_folder = run(model_dir, tmp_path, "--task", "hellaswag", "--dataset_name", str(FIXTURE))
    assert from_file["predictions"] == from_folder["predictions"]
    assert from_file["metrics"] == from_folder["metrics"]


def test_the_run_config_parses():
    (args,) = parse_arguments([evaluate_zero_shot.ZeroShotArguments], ["--config", "zero-shot-hellaswag"])
    assert (args.task, args.model) == ("hellaswag", "openai-community/gpt2")
    assert (args.dataset_name, args.dataset_split, args.add_start_token) == ("Rowan/hellaswag", "validation", False)
    assert run_configs()["zero-shot-hellaswag"].parent.name == "evaluate_zero_shot"


# ---------------------------------------------------------------------------------------------------------------------
# bad input


ROW = json.loads((FIXTURE / "validation.jsonl").read_text().splitlines()[0])
BAD_INPUTS = {
    "test split": (
        None,
        ["--dataset_name", str(FIXTURE), "--dataset_split", "test"],
        "hellaswag (test): 2 of 2 rows have no label (row 1: '', split 'test'); HellaSwag's test split is unlabelled",
    ),
    "a row without a label": (
        [ROW, {**ROW, "label": None}],
        [],
        "rows.jsonl: 1 of 2 rows have no label (row 2: None, split 'val')",
    ),
    "unknown task": ([ROW], ["--task", "hellaswag2"], "--task must be one of perplexity, lambada, multiple_choice, "),
    "not hellaswag rows": (
        [{"context": "Pick one:", "choices": ["a", "b"], "label": 0}],
        [],
        "is not HellaSwag data: it has no 'activity_label', 'ctx_a', 'ctx_b', 'endings' column",
    ),
    "label not a number": ([{**ROW, "label": "B"}], [], "row 1: label 'B' is not the index of one of its 4 endings"),
    "label out of range": ([ROW, {**ROW, "label": "4"}], [], "row 2: label '4' is not the index of one of its 4 end"),
    "negative label": (
        [{**ROW, "label": -1}],
        [],
        "row 1: label -1 is not the index of one of its 4 endings (0 to 3)",
    ),
    "one ending": ([{**ROW, "endings": ["a"], "label": "0"}], [], "row 1 has ['a'] as endings: it needs a list of at"),
    "ending only a tag": (
        [{**ROW, "endings": ["a", "[title]", "c", "d"]}],
        [],
        "row 1: ending 2 ('[title]') is empty once cleaned",
    ),
    "ctx_b missing": ([ROW, {**ROW, "ctx_b": None}], [], "row 2: ctx_b must be a text, got None"),
    "template": ([ROW], ["--template", "{{ctx}}"], "--template is read for --task multiple_choice only, not --task h"),
    "normalize": ([ROW], ["--normalize", "tokens"], "--normalize is read for --task multiple_choice only, not --task"),
    "label column": ([ROW], ["--label_column", "gold"], "--label_column is read for --task multiple_choice only"),
    "text file": (None, ["--data_file", "{tmp}/rows.txt"], "--data_file '{tmp}/rows.txt': HellaSwag rows need .jsonl"),
    "split with a file": ([ROW], ["--dataset_split", "test"], "--dataset_split picks from a Hub dataset"),
    "config with a file": ([ROW], ["--dataset_config_name", "x"], "--dataset_config_name picks from a Hub dataset"),
    "max_samples 0": ([ROW], ["--max_samples", "0"], "--max_samples must be at least 1, got 0"),
    "answer past the window": ([ROW], ["--max_length", "4"], "row 1: the answer is 11 tokens long, more than the wi"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_one_line_error_before_any_scoring(model_dir, tmp_path, capsys, monkeypatch, case):
    rows, options, message = BAD_INPUTS[case]
    options = ["--task", "hellaswag", *options] if "--task" not in options else options
    if rows is not None:
        options = [*options, "--data_file", str(write_jsonl(tmp_path / "rows.jsonl", rows))]
    (tmp_path / "rows.txt").write_text("a b\n")
    options = [option.format(tmp=tmp_path) for option in options]

    def no_work(*args, **kwargs):
        raise AssertionError("the weights were read or a request was scored before the input was checked")

    monkeypatch.setattr(zero_shot, "score_requests", no_work)
    monkeypatch.setattr(zero_shot, "load_model_by_name", no_work)
    with pytest.raises(SystemExit) as exit_info:
        run(model_dir, tmp_path, *options)
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.split("\n")[-2]  # after any progress bars of loading
    assert last_line.startswith("python -m recipes.evaluate_zero_shot: error: ") and message in last_line.replace(
        str(tmp_path), "{tmp}"
    ), last_line
    assert not (tmp_path / "out.json").exists()
