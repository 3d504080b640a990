"""recipes/evaluate_zero_shot.py: each of its three evaluations against an independent computation with the same tiny
random GPT-2 (one plain forward per sequence, no batching, no windows), the same for a tiny GPT-1 folder with its own
tokenizer, the committed task fixtures, the JSON and table output, and every bad input refused with a one-line error
before anything is scored."""

import json
import math
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsLMHeadModel, train_gpt1_tokenizer
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel
from recipes import evaluate_zero_shot
from recipes.evaluation import multiple_choice, scoring, zero_shot
from recipes.models.families import load_tokenizer_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tasks"
EOT = 50256  # <|endoftext|>, the start token of every scored sequence
DOCUMENTS = [
    "It was a dark and stormy night; the rain fell in torrents, except at occasional intervals.",
    "Call me Ishmael. Some years ago, never mind how long precisely, I thought I would sail about a little.",
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def run(model_dir, tmp_path, *options):
    return evaluate_zero_shot.main(["--model", str(model_dir), "--output_file", str(tmp_path / "out.json"), *options])


@torch.no_grad()
def logprobs(model, ids: list[int]) -> torch.Tensor:
    """log p(ids[t] | ids[:t]) for t = 1 .. len(ids) - 1, from one plain forward."""
    logits = model(torch.tensor([ids[:-1]])).logits[0]
    return logits.log_softmax(-1).gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1)


# ---------------------------------------------------------------------------------------------------------------------
# perplexity


def test_perplexity_equals_one_forward_per_document(model_dir, model, tokenizer, tmp_path):
    data = write_jsonl(tmp_path / "docs.jsonl", [{"text": text} for text in DOCUMENTS])
    results = run(model_dir, tmp_path, "--task", "perplexity", "--text_file", str(data))
    streams = [[EOT, *tokenizer(text)["input_ids"]] for text in DOCUMENTS]  # each document scored on its own
    nll = sum(-logprobs(model, ids).sum().item() for ids in streams)
    tokens = sum(len(ids) - 1 for ids in streams)
    metrics = results["metrics"]
    assert metrics["tokens"] == tokens and metrics["windows"] == 2 and metrics["documents"] == 2
    assert metrics["perplexity"] == pytest.approx(math.exp(nll / tokens), rel=1e-5)
    assert metrics["nll_per_token"] == pytest.approx(nll / tokens, rel=1e-5)
    n_bytes = sum(len(text.encode()) for text in DOCUMENTS)
    assert metrics["bytes"] == n_bytes and metrics["bits_per_byte"] == pytest.approx(nll / math.log(2) / n_bytes)
    assert json.loads((tmp_path / "out.json").read_text()) == results

    # --join_with: one stream of the joined text
    results = run(model_dir, tmp_path, "--task", "perplexity", "--text_file", str(data), "--join_with", "\\n")
    ids = [EOT, *tokenizer("\n".join(DOCUMENTS))["input_ids"]]
    nll = -logprobs(model, ids).sum().item()
    assert results["metrics"]["tokens"] == len(ids) - 1 and results["metrics"]["documents"] == 1
    assert results["metrics"]["perplexity"] == pytest.approx(math.exp(nll / (len(ids) - 1)), rel=1e-5)


def test_sliding_window_scores_every_token_once_with_its_window_of_context(model_dir, model, tokenizer, tmp_path):
    text = tmp_path / "doc.txt"
    text.write_text(DOCUMENTS[1])
    ids = [EOT, *tokenizer(DOCUMENTS[1])["input_ids"]]
    window = 8
    base = ["--task", "perplexity", "--text_file", str(text), "--max_length", str(window)]
    # stride 1: each token is predicted from exactly the `window` tokens before it (fewer at the start)
    expected = sum(-logprobs(model, ids[max(0, t - window) : t + 1])[-1].item() for t in range(1, len(ids)))
    stride_1 = run(model_dir, tmp_path, *base, "--stride", "1", "--per_device_eval_batch_size", "5")["metrics"]
    assert stride_1["tokens"] == len(ids) - 1 and stride_1["windows"] == len(ids) - 1
    assert stride_1["nll_per_token"] == pytest.approx(expected / (len(ids) - 1), rel=1e-5)
    # stride = window: disjoint groups of `window` targets, each scored in one forward over the `window` tokens before
    # its last target (the last, shorter group gets a full window of context too); stride 3: other contexts, same count
    disjoint = 0.0
    for first in range(1, len(ids), window):
        end = min(first + window, len(ids))
        disjoint -= logprobs(model, ids[max(0, end - 1 - window) : end])[first - end :].sum().item()
    stride_w = run(model_dir, tmp_path, *base)["metrics"]
    assert stride_w["tokens"] == len(ids) - 1 and stride_w["windows"] == math.ceil((len(ids) - 1) / window)
    assert stride_w["nll_per_token"] == pytest.approx(disjoint / (len(ids) - 1), rel=1e-5)
    stride_3 = run(model_dir, tmp_path, *base, "--stride", "3")["metrics"]
    assert stride_3["tokens"] == len(ids) - 1
    assert stride_3["perplexity"] != pytest.approx(stride_w["perplexity"], rel=1e-4)


# ---------------------------------------------------------------------------------------------------------------------
# GPT-1: a saved folder with its own (trained) tokenizer, through the same recipe


@pytest.fixture(scope="module")
def gpt1_dir(tmp_path_factory):
    tokenizer = train_gpt1_tokenizer([DOCUMENTS], vocab_size=250)
    folder = tmp_path_factory.mktemp("tiny-gpt1")
    torch.manual_seed(0)
    GPT1OriginsLMHeadModel(GPT1OriginsConfig.from_preset("tiny", vocab_size=len(tokenizer))).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_gpt1_perplexity_starts_each_document_with_start(gpt1_dir, tmp_path):
    tokenizer = load_tokenizer_for(gpt1_dir)
    model = GPT1OriginsLMHeadModel.from_pretrained(gpt1_dir).eval()
    data = write_jsonl(tmp_path / "docs.jsonl", [{"text": text} for text in DOCUMENTS])
    metrics = run(gpt1_dir, tmp_path, "--task", "perplexity", "--text_file", str(data))["metrics"]
    start = tokenizer.convert_tokens_to_ids("_start_")
    streams = [[start, *tokenizer(text, add_special_tokens=False)["input_ids"]] for text in DOCUMENTS]
    nll = sum(-logprobs(model, ids).sum().item() for ids in streams)
    tokens = sum(len(ids) - 1 for ids in streams)
    assert metrics["tokens"] == tokens and metrics["perplexity"] == pytest.approx(math.exp(nll / tokens), rel=1e-5)


@pytest.mark.parametrize("fixture", ["multiple-choice-social-iqa", "entailment-presuppositions"])
def test_gpt1_runs_lambada_and_multiple_choice(gpt1_dir, tmp_path, fixture):
    options = ["--task", "multiple_choice", "--data_file", str(FIXTURES / f"{fixture}.jsonl"), "--max_samples", "6"]
    metrics = run(gpt1_dir, tmp_path, *options)["metrics"]
    assert metrics["examples"] == 6 and all(0.0 <= metrics[f"accuracy_{n}"] <= 1.0 for n in ("none", "tokens"))
    data = write_jsonl(tmp_path / "lambada.jsonl", [{"text": text} for text in DOCUMENTS])
    metrics = run(gpt1_dir, tmp_path, "--task", "lambada", "--data_file", str(data))["metrics"]
    assert metrics["examples"] == 2 and metrics["target_tokens"] >= 2


# ---------------------------------------------------------------------------------------------------------------------
# lambada


def test_lambada_accuracy_on_a_model_that_always_says_dog(tokenizer, tmp_path):
    torch.manual_seed(0)
    model = GPT2OriginsLMHeadModel(GPT2OriginsConfig.from_preset("tiny")).eval()
    dog = tokenizer(" dog")["input_ids"]
    assert len(dog) == 1
    with torch.no_grad():  # the last LayerNorm outputs its bias only, so every position's argmax is " dog"
        model.transformer.wte.weight[dog[0]] *= 20
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(model.transformer.wte.weight[dog[0]])
    model.save_pretrained(tmp_path / "dog")
    tokenizer.save_pretrained(tmp_path / "dog")
    texts = [
        "The cat sat on the dog",  # right
        "Every morning I walk my\ndog  ",  # right: the target is " dog" whatever the whitespace before it
        "The dog sat on the cat",  # wrong
        "He kept saying dogdog",  # " dog" + "dog": the first token right, the word wrong
    ]
    data = write_jsonl(tmp_path / "lambada.jsonl", [{"text": text} for text in texts])
    metrics = run(tmp_path / "dog", tmp_path, "--task", "lambada", "--data_file", str(data))["metrics"]
    assert metrics["accuracy"] == 0.5 and metrics["examples"] == 4 and metrics["target_tokens"] == 5
    nll = 0.0
    for text in texts:
        context, word = text.rstrip().rsplit(maxsplit=1)
        ids = [EOT, *tokenizer(context)["input_ids"]]
        target = tokenizer(" " + word)["input_ids"]
        nll -= logprobs(model, ids + target)[-len(target) :].sum().item()
    assert metrics["nll_per_word"] == pytest.approx(nll / 4, rel=1e-5)
    assert metrics["perplexity"] == pytest.approx(math.exp(nll / 4), rel=1e-5)


def test_lambada_from_a_dataset_folder_and_a_random_preset(tmp_path):
    # --dataset_name takes what load_dataset takes: a folder of data files reads like a Hub dataset, offline
    (tmp_path / "data").mkdir()
    texts = ["the cat sat on the mat", "once upon a time there was a dog", "she opened the door and saw her brother"]
    write_jsonl(tmp_path / "data" / "test.jsonl", [{"text": text} for text in texts])
    options = ["--task", "lambada", "--dataset_name", str(tmp_path / "data"), "--max_samples", "2"]
    results = evaluate_zero_shot.main(["--model", "tiny", "--output_file", str(tmp_path / "out.json"), *options])
    assert results["metrics"]["examples"] == 2 and 0.0 <= results["metrics"]["accuracy"] <= 1.0
    assert results["data"] == f"{tmp_path / 'data'} (test)"


# ---------------------------------------------------------------------------------------------------------------------
# multiple choice


def test_multiple_choice_picks_the_highest_scoring_choice(model_dir, model, tokenizer, tmp_path):
    questions = [
        ("The weather today is", ["sunny", "very cold and wet all day long", "rain", "a bright and clear morning"]),
        ("My favourite food is", ["pizza with extra cheese and olives", "soup", "anything my grandmother cooks"]),
        ("The capital of France is", ["Paris", "a city called Lyon in the south", "Berlin, of course"]),
        ("To open the door you", ["push it", "need the key that hangs by the window", "knock twice"]),
    ]
    scores = {"none": [], "tokens": [], "chars": []}  # per question, per choice
    for context, choices in questions:
        for name in scores:
            scores[name].append([])
        for choice in choices:
            ids = [EOT, *tokenizer(context)["input_ids"]]
            target = tokenizer(" " + choice)["input_ids"]
            loglik = logprobs(model, ids + target)[-len(target) :].sum().item()
            scores["none"][-1].append(loglik)
            scores["tokens"][-1].append(loglik / len(target))
            scores["chars"][-1].append(loglik / len(" " + choice))
    best = {
        name: [max(range(len(s)), key=s.__getitem__) for s in per_question] for name, per_question in scores.items()
    }
    assert best["none"] != best["tokens"]  # the normalisations disagree somewhere, so the check below has teeth
    for name in ("none", "tokens"):
        rows = [{"context": c, "choices": ch, "label": label} for (c, ch), label in zip(questions, best[name])]
        data = write_jsonl(tmp_path / f"{name}.jsonl", rows)
        for padding_side in ("right", "left") if name == "none" else ("right",):
            options = ["--task", "multiple_choice", "--data_file", str(data), "--padding_side", padding_side]
            metrics = run(model_dir, tmp_path, *options, "--per_device_eval_batch_size", "3")["metrics"]
            for other in ("none", "tokens", "chars"):
                expected = sum(a == b for a, b in zip(best[other], best[name])) / len(questions)
                assert metrics[f"accuracy_{other}"] == expected, (name, other, padding_side)
            assert metrics["accuracy_" + name] == 1.0 and metrics["choices"] == 13


def test_classification_rows_choose_among_the_class_names_after_very(model_dir, model, tokenizer, tmp_path):
    """GPT-1's sentiment heuristic: "text very", then each class name as a choice; the predictions are kept."""
    texts = ["The film was a delight from start to end", "A dull, tired and pointless remake", "I laughed a lot"]
    expected = []
    for text in texts:
        ids = [EOT, *tokenizer(text + " very")["input_ids"]]
        scores = []
        for name in ("negative", "positive"):  # the class names, sorted: choice 0 is "negative"
            target = tokenizer(" " + name)["input_ids"]
            scores.append(logprobs(model, ids + target)[-len(target) :].sum().item() / len(target))
        expected.append(max(range(2), key=scores.__getitem__))
    rows = [{"text": t, "label": ["negative", "positive"][i % 2]} for i, t in enumerate(texts)]
    data = write_jsonl(tmp_path / "polarity.jsonl", rows)
    results = run(model_dir, tmp_path, "--task", "multiple_choice", "--data_file", str(data))
    assert results["metrics"]["family"] == "classification" and results["metrics"]["choices"] == 6
    assert results["settings"]["template"] == multiple_choice.CLASSIFICATION_TEMPLATE
    assert results["predictions"]["tokens"] == expected and results["predictions"]["labels"] == [0, 1, 0]
    accuracy = sum(p == label for p, label in zip(expected, [0, 1, 0])) / 3
    assert results["metrics"]["accuracy_tokens"] == pytest.approx(accuracy)
    answers = '{"negative": " bad", "positive": " good"}'
    results = run(
        model_dir, tmp_path, "--task", "multiple_choice", "--data_file", str(data), "--label_choices", answers
    )
    assert results["metrics"]["choices"] == 6 and len(results["predictions"]["none"]) == 3


def test_left_and_right_padding_give_the_same_scores(model, tokenizer):
    accelerator = Accelerator(cpu=True)
    requests = [
        ([EOT, *tokenizer(text)["input_ids"]], first) for text, first in zip(DOCUMENTS + ["Hi there"], [1, 5, 2])
    ]
    right = scoring.score_requests(model, requests, accelerator, 3, padding_side="right")
    left = scoring.score_requests(model, requests, accelerator, 3, padding_side="left")
    alone = scoring.score_requests(model, requests, accelerator, 1)
    for a, b, c, (ids, first) in zip(right, left, alone, requests):
        assert a[1] == b[1] == c[1] == len(ids) - first and a[2] == b[2] == c[2]
        assert a[0] == pytest.approx(c[0], rel=1e-5) and b[0] == pytest.approx(c[0], rel=1e-5)
        assert c[0] == pytest.approx(-logprobs(model, ids)[first - 1 :].sum().item(), rel=1e-5)


@pytest.mark.parametrize(
    "fixture, family",
    [("multiple-choice-social-iqa", "multiple_choice"), ("entailment-presuppositions", "entailment")],
)
def test_runs_on_the_task_fixtures_and_prints_a_table(model_dir, tmp_path, capsys, fixture, family):
    options = ["--task", "multiple_choice", "--data_file", str(FIXTURES / f"{fixture}.jsonl")]
    results = run(model_dir, tmp_path, *options, "--per_device_eval_batch_size", "24")
    metrics = results["metrics"]
    assert metrics["family"] == family and metrics["examples"] == 24 and metrics["choices"] == 72
    assert metrics["chance"] == pytest.approx(1 / 3)
    assert all(0.0 <= metrics[f"accuracy_{name}"] <= 1.0 for name in ("none", "tokens", "chars"))
    assert json.loads((tmp_path / "out.json").read_text()) == results
    printed = capsys.readouterr().out
    assert f"Zero-shot multiple_choice: {model_dir}" in printed and "accuracy_tokens" in printed
    assert f"{metrics['accuracy_chars']:.4f}" in printed and str(tmp_path / "out.json") in printed
    if family == "entailment":
        assert results["settings"]["template"] == multiple_choice.ENTAILMENT_TEMPLATE


# ---------------------------------------------------------------------------------------------------------------------
# bad input


MC = {"context": "Pick one:", "choices": ["a", "b", "c"], "label": 0}
NLI = {"premise": "It rains.", "hypothesis": "It is wet.", "label": "entailment"}
BAD_INPUTS = {
    "missing file": (None, ["--task", "perplexity", "--text_file", "{tmp}/nope.txt"], "nope.txt' does not exist"),
    "no data": (None, ["--task", "perplexity"], "either --data_file (--text_file) or --dataset_name"),
    "both data": (None, ["--task", "lambada", "--data_file", "{data}", "--dataset_name", "x"], "either --data_file"),
    "stride < 1": ([{"text": "a b"}], ["--task", "perplexity", "--stride", "0"], "--stride must be at least 1, got 0"),
    "stride > window": (
        [{"text": "a b"}],
        ["--task", "perplexity", "--max_length", "16", "--stride", "32"],
        "--stride 32 is larger than the window of 16 tokens",
    ),
    "max_length > n_positions": (
        [{"text": "a b"}],
        ["--task", "perplexity", "--max_length", "256"],
        "--max_length 256 is larger than the model's n_positions=128",
    ),
    "empty corpus": ([{"text": " "}, {"text": ""}], ["--task", "perplexity"], "none has any text"),
    "missing model": (None, ["--task", "perplexity", "--text_file", "{data}", "--model", "{tmp}/none"], "neither a"),
    "missing text": ([{"text": "a b c"}, {"txt": "a b"}], ["--task", "lambada"], "row 2 has no text column 'text'"),
    "empty text": ([{"text": "a b c"}, {"text": "  "}], ["--task", "lambada"], "row 2: the 'text' text is empty"),
    "one word": ([{"text": "word"}], ["--task", "lambada"], "row 1 ('word') is a single word"),
    "missing context": (
        [MC, {"choices": ["a", "b"], "label": 0}],
        ["--task", "multiple_choice"],
        "row 2 has no field 'context'",
    ),
    "missing choices": (
        [MC, {"context": "x", "label": 0}],
        ["--task", "multiple_choice"],
        "row 2 has no field 'choices'",
    ),
    "missing label": (
        [MC, {"context": "x", "choices": ["a", "b"]}],
        ["--task", "multiple_choice"],
        "row 2 has no field 'label'",
    ),
    "one choice": (
        [MC, {**MC, "choices": ["a"]}],
        ["--task", "multiple_choice"],
        "row 2 has ['a'] as choices: it needs a list of at least 2",
    ),
    "empty choice": (
        [{**MC, "choices": ["a", ""]}],
        ["--task", "multiple_choice"],
        "row 1: every choice must be a non-empty text",
    ),
    "label out of range": ([MC, {**MC, "label": 3}], ["--task", "multiple_choice"], "row 2: label 3 is out of range"),
    "negative label": ([{**MC, "label": -1}], ["--task", "multiple_choice"], "row 1: label -1 is out of range"),
    "unknown label name": (
        [NLI, {**NLI, "label": "maybe"}],
        ["--task", "multiple_choice"],
        "row 2: label 'maybe' is none",
    ),
    "nli label out of range": ([{**NLI, "label": 3}], ["--task", "multiple_choice"], "row 1: label 3 is out of range"),
    "bad label_choices": (
        [NLI],
        ["--task", "multiple_choice", "--label_choices", "{{true"],
        "--label_choices is not JSON",
    ),
    "no known columns": ([{"question": "q"}], ["--task", "multiple_choice"], "neither a 'choices' column"),
    "one class": (
        [{"text": "fine", "label": "positive"}],
        ["--task", "multiple_choice"],
        "classification rows need at least 2 class names in 'label' to choose among, or --label_choices",
    ),
    "class not in label_choices": (
        [{"text": "fine", "label": "positive"}],
        ["--task", "multiple_choice", "--label_choices", '{{"bad": " bad", "good": " good"}}'],  # .format()ted
        "row 1: label 'positive' is none of the --label_choices (bad, good)",
    ),
    "template field": (
        [MC],
        ["--task", "multiple_choice", "--template", "{{question}}"],
        "row 1 has no field 'question'",
    ),
    "answer > window": (
        [{**MC, "choices": ["a long answer", "b"]}],
        ["--task", "multiple_choice", "--max_length", "2"],
        "row 1: the answer is 3 tokens long, more than the window of 2 tokens",
    ),
    "mc from txt": (None, ["--task", "multiple_choice", "--data_file", "{tmp}/rows.txt"], "need .jsonl/.json/.csv"),
    "join_with for lambada": (
        [{"text": "a b"}],
        ["--task", "lambada", "--join_with", " "],
        "for --task perplexity only",
    ),
    "bad batch size": ([MC], ["--task", "multiple_choice", "--per_device_eval_batch_size", "0"], "at least 1, got 0"),
    "max_length < 1": ([{"text": "a b"}], ["--task", "perplexity", "--max_length", "0"], "--max_length must be at"),
    "max_samples < 1": ([{"text": "a b"}], ["--task", "lambada", "--max_samples", "0"], "--max_samples must be at"),
    "unknown task": ([{"text": "a b"}], ["--task", "summary"], "--task must be one of perplexity, lambada, multip"),
    "padding side": (
        [{"text": "a b"}],
        ["--task", "perplexity", "--padding_side", "middle"],
        "--padding_side must be one of right, left, got 'middle'",
    ),
    "mixed precision": (
        [{"text": "a b"}],
        ["--task", "perplexity", "--mixed_precision", "fp8"],
        "--mixed_precision must be one of ('no', 'fp16', 'bf16'), got 'fp8'",
    ),
    "normalize": (
        [MC],
        ["--task", "multiple_choice", "--normalize", "words"],
        "--normalize takes none, tokens",
    ),
    "label_choices not a mapping": (
        [NLI],
        ["--task", "multiple_choice", "--label_choices", '[" yes", " no"]'],
        "--label_choices must map at least 2 label names",
    ),
    "gpt1 without tokenizer": (
        [{"text": "a b"}],
        ["--task", "perplexity", "--model", "{tmp}/gpt1-no-tokenizer"],
        "holds a GPT-1 model but no tokenizer",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_one_line_error_before_any_scoring(model_dir, tmp_path, capsys, monkeypatch, case):
    rows, options, message = BAD_INPUTS[case]
    data = write_jsonl(tmp_path / "rows.jsonl", rows or [{"text": "a b"}])
    (tmp_path / "rows.txt").write_text("a b\n")
    if rows is not None and "--text_file" not in options and "--data_file" not in options:
        options = [*options, "--data_file", str(data)]
    options = [option.format(tmp=tmp_path, data=data) for option in options]
    if case == "gpt1 without tokenizer":
        GPT1OriginsLMHeadModel(GPT1OriginsConfig.from_preset("tiny")).save_pretrained(tmp_path / "gpt1-no-tokenizer")
    if "--model" not in options:
        options = ["--model", str(model_dir), *options]

    def no_scoring(*args, **kwargs):
        raise AssertionError("scored before the input was checked")

    monkeypatch.setattr(zero_shot, "score_requests", no_scoring)
    with pytest.raises(SystemExit) as exit_info:
        evaluate_zero_shot.main([*options, "--output_file", str(tmp_path / "out.json")])
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.split("\n")[-2]  # after any progress bars of loading
    assert last_line.startswith("python -m recipes.evaluate_zero_shot: error: ") and message in last_line, last_line
    assert not (tmp_path / "out.json").exists()
