"""recipes/finetune.py, recipes/finetune_trainer.py and recipes/data/tasks/ run for real on the tiny preset and
the committed task fixtures (24 real rows per family, split here 16 / 4 / 4): each family end to end and reloaded with
the Auto classes, exact resume after a crash, --freeze_body on a transformers openai-gpt folder, Trainer against
Accelerate, the Hub mappings on local stand-ins, and every bad input refused with the row named."""

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from helpers.causal_lm_checks import in_transformers_layout
from safetensors.torch import load_file
from transformers import (
    AutoModelForMultipleChoice,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    OpenAIGPTConfig,
    OpenAIGPTLMHeadModel,
    OpenAIGPTTokenizer,
)

from modeling_gpt1 import (
    SPECIAL_TOKENS,
    GPT1OriginsConfig,
    GPT1OriginsLMHeadModel,
    train_gpt1_tokenizer_from_files,
)
from recipes import finetune, finetune_trainer
from recipes.core.errors import RecipeError
from recipes.data import tasks as task_data
from recipes.data.tasks import sources as task_sources
from recipes.evaluation.metrics import compute_task_metrics
from recipes.training import finetune_options, finetuning, finetuning_with_trainer

FIXTURES = Path(__file__).parents[1] / "fixtures"
TASK_FOLDERS = {
    "classification": "classification-movie-sentence-polarity",
    "entailment": "entailment-presuppositions",
    "similarity": "similarity-answer-vs-source",
    "multiple_choice": "multiple-choice-social-iqa",
}
TASK_TOKENS = ["_start_", "_delimiter_", "_classify_"]
ENTAILMENT = ["entailment", "neutral", "contradiction"]
# 16 training rows in batches of 4: 4 steps an epoch, 2 epochs; 48 tokens per sequence.
FAST = [
    "--model_name_or_path", "tiny", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
    "--num_train_epochs", "2", "--learning_rate", "1e-3", "--max_length", "48",
]  # fmt: skip
NO_DROPOUT = ["--classifier_dropout", "0", "--config_overrides", "resid_pdrop=0,embd_pdrop=0,attn_pdrop=0"]


def rows(name: str) -> list[dict]:
    with open(FIXTURES / "tasks" / f"{name}.jsonl", encoding="utf-8") as file:
        return [json.loads(line) for line in file]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> dict[str, list[str]]:
    """Per family: --train_file, --validation_file and --test_file options over the fixture's 16 / 4 / 4 rows."""
    folder = tmp_path_factory.mktemp("tasks")
    options = {}
    for family, name in TASK_FOLDERS.items():
        records = rows(name)
        files = {
            split: write_jsonl(folder / f"{name}-{split}.jsonl", part)
            for split, part in (("train", records[:16]), ("validation", records[16:20]), ("test", records[20:]))
        }
        options[family] = [item for split, path in files.items() for item in (f"--{split}_file", str(path))]
    return options


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A 1,000-token GPT-1 tokenizer learned from the committed Shakespeare sample."""
    folder = tmp_path_factory.mktemp("tokenizer")
    train_gpt1_tokenizer_from_files(FIXTURES / "shakespeare_sample.txt", vocab_size=1000).save_pretrained(folder)
    return folder


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def run(*args, script=finetune) -> dict:
    AcceleratorState._reset_state(reset_partial_state=True)
    return script.main([str(arg) for arg in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, splits, tokenizer_dir) -> dict[str, tuple[Path, dict]]:
    """One fine-tuning run per family (the classification one checkpoints every 2 steps: the resume reference)."""
    done = {}
    for family in TASK_FOLDERS:
        output_dir = tmp_path_factory.mktemp(f"run-{family}")
        extra = ["--checkpointing_steps", "2"] if family == "classification" else []
        results = run(*FAST, "--tokenizer", tokenizer_dir, "--task_type", family, *splits[family], *extra,
                      "--output_dir", output_dir)  # fmt: skip
        done[family] = output_dir, results
    return done


def weights(folder: Path) -> dict:
    return load_file(folder / "model.safetensors")


# ---------------------------------------------------------------------------------------------------------------------
# Each family end to end.


@pytest.mark.parametrize("family", TASK_FOLDERS)
def test_each_family_trains_evaluates_and_reloads_for_prediction(family, runs, splits):
    output_dir, results = runs[family]
    assert json.loads((output_dir / "results.json").read_text()) == json.loads(json.dumps(results))
    metric = {"similarity": "pearson"}.get(family, "accuracy")
    assert results["best"]["metric"] == metric
    # Validation after each of the 2 epochs of 4 steps, with the task's metrics; test once, on the best model.
    assert [(r["step"], r["epoch"]) for r in results["validation"]] == [(4, 1.0), (8, 2.0)]
    for record in (*results["validation"], results["test"]):
        assert {"loss", "task_loss", "lm_loss", metric} <= set(record)
        assert record["loss"] == pytest.approx(record["task_loss"] + 0.5 * record["lm_loss"], rel=1e-5)
    hyperparameters = results["hyperparameters"]
    assert hyperparameters["lm_coef"] == 0.5 and hyperparameters["warmup_ratio"] == 0.002
    assert hyperparameters["num_warmup_steps"] == 1 and hyperparameters["max_train_steps"] == 8
    assert results["task"]["rows"] == {"train": 16, "validation": 4, "test": 4}
    if family == "similarity":
        assert results["majority_baseline"] is None and results["task"]["target"] == "score"
    else:  # always answering the most frequent training label, on validation and test
        assert set(results["majority_baseline"]) == {"prediction", "validation", "test"}
        assert all(0 <= results["majority_baseline"][split][metric] <= 1 for split in ("validation", "test"))
    assert {"config.json", "model.safetensors", "tokenizer.json", "modeling_gpt1.py"} <= {
        path.name for path in output_dir.iterdir()
    }

    auto_class = AutoModelForMultipleChoice if family == "multiple_choice" else AutoModelForSequenceClassification
    model = auto_class.from_pretrained(output_dir)
    assert type(model).__name__ == "GPT1OriginsDoubleHeadsModel" and model.config.task_type == family
    # The reloaded folder predicts the validation rows as the run scored its best model on them.
    validation = rows(TASK_FOLDERS[family])[16:20]
    predictions = finetune.predict(output_dir, validation)
    if family == "similarity":
        references = [row["score"] for row in validation]
        num_labels = 1
        assert all(isinstance(score, float) for score in predictions)
    elif family == "multiple_choice":
        references, num_labels = [row["label"] for row in validation], 1
    else:
        names = results["task"]["label_names"]
        assert set(predictions) <= set(names) and model.config.id2label == dict(enumerate(names))
        predictions = [names.index(label) for label in predictions]
        references, num_labels = [names.index(row["label"]) for row in validation], len(names)
    best = compute_task_metrics(family, num_labels, predictions, references)[metric]
    assert best == pytest.approx(results["best"]["value"], abs=1e-5)


def test_the_saved_folder_loads_as_remote_code(runs):
    output_dir, _ = runs["classification"]
    remote = AutoModelForSequenceClassification.from_pretrained(output_dir, trust_remote_code=True)
    assert remote.config.auto_map["AutoModelForMultipleChoice"] == "modeling_gpt1.GPT1OriginsDoubleHeadsModel"
    assert remote.config.id2label == {0: "negative", 1: "positive"}


# ---------------------------------------------------------------------------------------------------------------------
# Exact resume.


class Crash(Exception):
    pass


def test_a_crashed_run_resumes_bitwise_exactly(runs, splits, tokenizer_dir, tmp_path, monkeypatch):
    reference_dir, reference = runs["classification"]
    args = [*FAST, "--tokenizer", tokenizer_dir, "--task_type", "classification", *splits["classification"],
            "--checkpointing_steps", "2", "--output_dir", tmp_path]  # fmt: skip
    original_step, calls = torch.optim.AdamW.step, []

    def step(self, *step_args, **kwargs):
        calls.append(1)
        if len(calls) == 7:  # in the middle of the second epoch, one step after the step-6 checkpoint
            raise Crash
        return original_step(self, *step_args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(torch.optim.AdamW, "step", step)
        with pytest.raises(Crash):
            run(*args)
    checkpoints = sorted(path.name for path in (tmp_path / "checkpoints").iterdir())
    assert checkpoints == ["step_00000004", "step_00000006"]

    resumed = run(*args, "--resume_from_checkpoint", "latest")
    for name in ("checkpoints/step_00000008", "."):
        reference_weights, resumed_weights = weights(reference_dir / name), weights(tmp_path / name)
        assert reference_weights.keys() == resumed_weights.keys()
        for key in reference_weights:
            assert torch.equal(reference_weights[key], resumed_weights[key]), key
    assert resumed["validation"] == reference["validation"] and resumed["test"] == reference["test"]
    # The loss logged at step 8 averages steps 5 to 8: the checkpoint of step 6 carries the sum of steps 5 and 6.
    assert resumed["train_history"] == reference["train_history"]


# ---------------------------------------------------------------------------------------------------------------------
# --freeze_body, on a transformers openai-gpt folder whose tokenizer lacks the task tokens.


@pytest.fixture(scope="module")
def openai_gpt_dir(tmp_path_factory, tokenizer_dir) -> Path:
    """transformers' own OpenAIGPTLMHeadModel and OpenAIGPTTokenizer (no task tokens, no template), tiny."""
    folder = tmp_path_factory.mktemp("openai-gpt")
    backend = json.loads(AutoTokenizer.from_pretrained(tokenizer_dir).backend_tokenizer.to_str())
    tokens = sorted((i, token) for token, i in backend["model"]["vocab"].items() if token not in SPECIAL_TOKENS)
    vocab = {token: i for i, (_, token) in enumerate(tokens)} | {"<unk>": len(tokens)}  # the unknown token last
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in backend["model"]["merges"]]
    OpenAIGPTTokenizer(vocab=vocab, merges=merges).save_pretrained(folder)
    torch.manual_seed(0)
    config = OpenAIGPTConfig(vocab_size=len(vocab), n_positions=128, n_embd=64, n_layer=2, n_head=4)
    OpenAIGPTLMHeadModel(config).save_pretrained(folder)
    return folder


def test_freeze_body_trains_only_the_head_and_the_task_token_rows(openai_gpt_dir, splits, tmp_path):
    results = run(*FAST, "--model_name_or_path", openai_gpt_dir, "--task_type", "entailment", *splits["entailment"],
                  "--freeze_body", "--output_dir", tmp_path)  # fmt: skip
    hyperparameters = results["hyperparameters"]
    assert hyperparameters["added_tokens"][:3] == TASK_TOKENS  # appended after the openai-gpt vocabulary
    n_embd = 64
    assert hyperparameters["trainable_parameters"] == 3 * n_embd + (3 * n_embd + 3)  # task-token rows, W_y and bias

    original = weights(openai_gpt_dir)
    epoch_1 = weights(tmp_path / "checkpoints" / "step_00000004")
    epoch_2 = weights(tmp_path / "checkpoints" / "step_00000008")
    vocab_size = original["transformer.tokens_embed.weight"].shape[0]
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    task_rows = tokenizer.convert_tokens_to_ids(TASK_TOKENS)
    assert min(task_rows) >= vocab_size and len(tokenizer) == epoch_2["transformer.tokens_embed.weight"].shape[0]
    for name, value in original.items():
        if name.startswith("transformer.") and not name.endswith("attn.bias"):
            trained = epoch_2[name][:vocab_size] if name == "transformer.tokens_embed.weight" else epoch_2[name]
            # The checkpoint holds our nn.Linear layout, the openai-gpt folder transformers' Conv1D one.
            assert torch.equal(in_transformers_layout(name, trained), value), f"{name} changed"
    other_new_rows = [i for i in range(vocab_size, len(tokenizer)) if i not in task_rows]
    embedding_1, embedding_2 = epoch_1["transformer.tokens_embed.weight"], epoch_2["transformer.tokens_embed.weight"]
    assert torch.equal(embedding_1[other_new_rows], embedding_2[other_new_rows])  # _pad_, <unk>: not trained
    assert 0.01 < embedding_1[vocab_size:].std() < 0.03 and embedding_1[vocab_size:].abs().mean() > 0  # N(0, 0.02)
    assert not torch.equal(embedding_1[task_rows], embedding_2[task_rows])
    assert not torch.equal(epoch_1["score.weight"], epoch_2["score.weight"]) and epoch_2["score.bias"].abs().sum() > 0
    # The fine-tuned folder carries the grown vocabulary, the token ids and the classes.
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert model.config.extract_token_id == task_rows[2] and model.config.vocab_size == len(tokenizer)
    assert model.config.id2label == {0: "entailment", 1: "neutral", 2: "contradiction"}


# ---------------------------------------------------------------------------------------------------------------------
# Trainer against Accelerate, from a pre-trained GPT-1 folder (the tokenizer comes from the folder).


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory, tokenizer_dir) -> Path:
    """What `python -m recipes.pretrain --model_type gpt1` leaves: a GPT1OriginsLMHeadModel and its tokenizer."""
    folder = tmp_path_factory.mktemp("pretrained-gpt1")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    GPT1OriginsLMHeadModel(GPT1OriginsConfig.from_preset("tiny", vocab_size=len(tokenizer))).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_trainer_mode_gives_the_metrics_of_the_accelerate_loop(pretrained_dir, splits, tmp_path):
    """Without dropout (the two loops draw their masks from differently advanced RNG streams) the two are the same
    computation: same data order (Accelerate's seeded sampler), init, fused AdamW, schedule and clipping."""
    args = [*FAST, "--model_name_or_path", pretrained_dir, "--task_type", "multiple_choice",
            *splits["multiple_choice"], *NO_DROPOUT]  # fmt: skip
    accelerate_results = run(*args, "--output_dir", tmp_path / "accelerate")
    trainer_results = run(*args, "--output_dir", tmp_path / "trainer", script=finetune_trainer)
    for ours, theirs in zip(accelerate_results["validation"], trainer_results["validation"], strict=True):
        assert (ours["step"], ours["epoch"]) == (theirs["step"], theirs["epoch"])
        assert theirs["loss"] == pytest.approx(ours["loss"], abs=1e-5)
        assert theirs["accuracy"] == ours["accuracy"]
    assert trainer_results["best"] == accelerate_results["best"]
    assert trainer_results["test"]["accuracy"] == accelerate_results["test"]["accuracy"]
    assert trainer_results["test"]["loss"] == pytest.approx(accelerate_results["test"]["loss"], abs=1e-5)
    assert trainer_results["hyperparameters"]["num_warmup_steps"] == 1
    assert AutoModelForMultipleChoice.from_pretrained(tmp_path / "trainer").config.task_type == "multiple_choice"

    # Trainer drops the dataset columns that are not forward arguments: mc_token_ids and labels are.
    AcceleratorState._reset_state(reset_partial_state=True)
    trainer_args = finetune_options.parse_args([str(arg) for arg in [*args, "--output_dir", tmp_path / "again"]])
    trainer, *_ = finetuning_with_trainer.build_trainer(dataclasses.asdict(trainer_args), trainer_args)
    batch = next(iter(trainer.get_train_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "mc_token_ids", "labels"}
    assert batch["input_ids"].shape[:2] == (4, 3) and batch["mc_token_ids"].shape == (4, 3)


# ---------------------------------------------------------------------------------------------------------------------
# Hub datasets by name, through local stand-ins with the Hub's columns.


def glue_like(records, columns, label_feature, hidden_labels=False) -> Dataset:
    """A GLUE-style split: `columns` maps the Hub's column names to the fixture's fields; GLUE's test labels are -1."""
    data = {hub_name: [record[name] for record in records] for hub_name, name in columns.items()}
    if hidden_labels:
        data["label"] = [-1] * len(records)
    data["idx"] = list(range(len(records)))
    features = {name: Value("string") for name in columns if name != "label"}
    return Dataset.from_dict(data, features=Features({**features, "label": label_feature, "idx": Value("int32")}))


@pytest.fixture
def hub(monkeypatch):
    """`load_dataset(name, config)` answered by stand-ins with the Hub's columns, from the fixture rows."""
    names = ["negative", "positive"]
    polarity = [{**row, "label": names.index(row["label"])} for row in rows(TASK_FOLDERS["classification"])]
    pairs = rows(TASK_FOLDERS["similarity"])
    social = rows(TASK_FOLDERS["multiple_choice"])
    sst2 = {"sentence": "text", "label": "label"}
    sst2_label = ClassLabel(names=names)
    stsb = {"sentence1": "text_a", "sentence2": "text_b", "label": "score"}
    race = Dataset.from_dict(
        {
            "example_id": [f"high{i}.txt" for i in range(len(social))],
            "article": [row["context"].rsplit(".", 1)[0] + "." for row in social],
            "question": [row["context"].rsplit(".", 1)[1].strip() for row in social],
            "options": [[*row["choices"], "None of these"] for row in social],
            "answer": ["ABCD"[row["label"]] for row in social],
        }
    )
    mrpc = {"sentence1": "text_a", "sentence2": "text_b", "label": "label"}
    paraphrases = [{**row, "label": int(row["score"] >= 2)} for row in pairs]  # light revision or cut-and-paste
    mrpc_label = ClassLabel(names=["not_equivalent", "equivalent"])
    stand_ins = {
        ("nyu-mll/glue", "mrpc"): DatasetDict(
            train=glue_like(paraphrases[:16], mrpc, mrpc_label),
            validation=glue_like(paraphrases[16:20], mrpc, mrpc_label),
            test=glue_like(paraphrases[20:], mrpc, mrpc_label, hidden_labels=True),
        ),
        ("nyu-mll/glue", "sst2"): DatasetDict(
            train=glue_like(polarity[:16], sst2, sst2_label),
            validation=glue_like(polarity[16:20], sst2, sst2_label),
            test=glue_like(polarity[20:], sst2, sst2_label, hidden_labels=True),
        ),
        ("glue", "stsb"): DatasetDict(
            train=glue_like(pairs[:16], stsb, Value("float32")),
            validation=glue_like(pairs[16:], stsb, Value("float32")),
        ),
        ("ehovy/race", "all"): DatasetDict(
            train=race.select(range(16)), validation=race.select(range(16, 20)), test=race.select(range(20, 24))
        ),  # fmt: skip
    }
    calls = []

    def load_dataset(name, config=None, **kwargs):
        calls.append((name, config))
        if (name, config) not in stand_ins:
            raise FileNotFoundError(f"Couldn't find {name} on the Hugging Face Hub (no network here)")
        return stand_ins[(name, config)]

    monkeypatch.setattr(task_sources, "load_dataset", load_dataset)  # where the Hub splits are read
    return calls


def test_glue_sst2_stsb_and_race_map_to_the_layout(hub):
    sst2 = task_data.load_task_data("classification", dataset_name="nyu-mll/glue", dataset_config_name="sst2")
    assert hub[-1] == ("nyu-mll/glue", "sst2")
    assert set(sst2.dataset) == {"train", "validation"}  # the unlabelled test split is left out
    assert sst2.dataset["train"].column_names == ["text", "label"] and sst2.label_names == ("negative", "positive")
    assert sst2.dataset["validation"][0]["text"] == rows(TASK_FOLDERS["classification"])[16]["text"]

    stsb = task_data.load_task_data("similarity", dataset_name="glue", dataset_config_name="stsb")
    assert stsb.target == "score" and stsb.num_labels == 1 and stsb.main_metric == "pearson"
    assert stsb.dataset["train"].column_names == ["text_a", "text_b", "score"]
    assert stsb.dataset["validation"]["score"] == [row["score"] for row in rows(TASK_FOLDERS["similarity"])[16:]]

    race = task_data.load_task_data("multiple_choice", dataset_name="ehovy/race")  # config "all" by default
    assert hub[-1] == ("ehovy/race", "all") and race.num_choices == 4
    first = race.dataset["train"][0]
    social = rows(TASK_FOLDERS["multiple_choice"])[0]
    assert first["context"] == social["context"] and first["label"] == social["label"]
    assert first["choices"] == [*social["choices"], "None of these"]
    assert set(race.dataset) == {"train", "validation", "test"}


def test_a_hub_name_runs_end_to_end_mrpc_as_similarity_classes(hub, tokenizer_dir, tmp_path):
    """MRPC: pairs in both orders (the paper treats it as similarity), two classes, judged by F1; without the
    auxiliary LM loss (--lm_coef 0) the loss is the task loss."""
    results = run(*FAST, "--tokenizer", tokenizer_dir, "--task_type", "similarity", "--dataset_name", "nyu-mll/glue",
                  "--dataset_config_name", "mrpc", "--max_train_steps", "2", "--lm_coef", "0",
                  "--output_dir", tmp_path)  # fmt: skip
    assert all(r["loss"] == r["task_loss"] and r["lm_loss"] > 0 for r in results["validation"])
    assert results["task"]["source"] == "nyu-mll/glue (mrpc)" and results["task"]["target"] == "label"
    assert results["task"]["label_names"] == ["not_equivalent", "equivalent"] and "test" not in results
    assert results["best"]["metric"] == "f1" and results["validation"][-1]["step"] == 2
    assert results["majority_baseline"]["prediction"] in ("not_equivalent", "equivalent")
    prediction = finetune.predict(tmp_path, rows(TASK_FOLDERS["similarity"])[:2])
    assert set(prediction) <= {"not_equivalent", "equivalent"}


def test_hub_mapping_errors(hub):
    with pytest.raises(RecipeError, match=r"glue \(stsb\) is a similarity task; run it with --task_type similarity"):
        task_data.load_task_data("entailment", dataset_name="glue", dataset_config_name="stsb")
    with pytest.raises(RecipeError, match=r"'ax' is not one this recipe maps for 'nyu-mll/glue'"):
        task_data.load_task_data("entailment", dataset_name="nyu-mll/glue", dataset_config_name="ax")
    with pytest.raises(RecipeError, match="cannot be loaded: FileNotFoundError: Couldn't find stanfordnlp/snli"):
        task_data.load_task_data("entailment", dataset_name="stanfordnlp/snli")


# ---------------------------------------------------------------------------------------------------------------------
# Bad input: each stops with a one-line error naming the file, the row and the problem, before any encoding.


def load(family, tmp_path, train, validation=None, **kwargs):
    files = {"train_files": [write_jsonl(tmp_path / "train.jsonl", train)]}
    if validation is not None:
        files["validation_files"] = [write_jsonl(tmp_path / "validation.jsonl", validation)]
    return task_data.load_task_data(family, **files, **kwargs)


def test_missing_fields_name_the_row_or_the_file(tmp_path):
    good = rows(TASK_FOLDERS["entailment"])[:4]
    with pytest.raises(RecipeError, match=r"train.jsonl, line 3: the field 'label' is missing"):
        load("entailment", tmp_path, [*good[:2], {"premise": "a", "hypothesis": "b"}, good[3]])
    no_hypothesis = [{"premise": row["premise"], "label": row["label"]} for row in good]
    with pytest.raises(RecipeError, match=r"train.jsonl has no field 'hypothesis' \(its fields: premise, label\)"):
        load("entailment", tmp_path, no_hypothesis)


def test_labels_that_do_not_match_the_classes(tmp_path):
    good = rows(TASK_FOLDERS["classification"])[:6]
    with pytest.raises(RecipeError, match=r"validation.jsonl, line 2: label 'mixed' is not one of the class names "):
        load("classification", tmp_path, good, [good[0], {"text": "so so", "label": "mixed"}])
    ids = [{"text": row["text"], "label": i % 2} for i, row in enumerate(good)]
    with pytest.raises(RecipeError, match=r"train.jsonl, line 6: label 7 is out of range: class ids are in \[0, 2\)"):
        load("classification", tmp_path, [*ids[:5], {"text": "x", "label": 7}], num_labels=2)
    with pytest.raises(RecipeError, match=r"line 1: label 3 is out of range: class ids are in \[0, 3\) \(entailment"):
        load("entailment", tmp_path, [{"premise": "a", "hypothesis": "b", "label": 3}], label_names=ENTAILMENT)
    choices = rows(TASK_FOLDERS["multiple_choice"])[:3]
    with pytest.raises(RecipeError, match=r"line 2: label 3 must be the index of the right choice, an int in \[0, 3"):
        load("multiple_choice", tmp_path, [choices[0], {**choices[1], "label": 3}])


def test_rows_with_different_numbers_of_choices_load(tmp_path):
    """Real sets mix 4 and 5 choices: every row keeps its own (the collator pads and the model masks them)."""
    good = rows(TASK_FOLDERS["multiple_choice"])[:4]
    two = {**good[3], "choices": good[3]["choices"][:2], "label": 0}
    task = load("multiple_choice", tmp_path, good[:3], [two])
    assert task.num_choices == 3 and len(task.dataset["validation"][0]["choices"]) == 2


def test_an_empty_similarity_side(tmp_path):
    good = rows(TASK_FOLDERS["similarity"])[:3]
    with pytest.raises(RecipeError, match=r"train.jsonl, line 2: 'text_b' is empty \(only whitespace\)"):
        load("similarity", tmp_path, [good[0], {**good[1], "text_b": "  \n"}, good[2]])


def test_an_empty_file(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(RecipeError, match=r"--train_file .*empty.jsonl is empty"):
        task_data.load_task_data("classification", train_files=[tmp_path / "empty.jsonl"])


@pytest.fixture
def no_encoding(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the recipe started encoding data before rejecting its input")

    monkeypatch.setattr(finetuning, "encode_task", forbidden)


def fails_with(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run(*args)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_the_command_line_refuses_bad_input_before_any_work(splits, tokenizer_dir, tmp_path, capsys, no_encoding):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "fine", "label": "positive"}, {"text": None, "label": "x"}])
    err = fails_with(capsys, *FAST, "--tokenizer", tokenizer_dir, "--task_type", "classification", "--train_file", bad,
                     "--output_dir", tmp_path / "out")  # fmt: skip
    assert "error: --train_file" in err and "bad.jsonl, line 2: the field 'text' is missing" in err
    common = ["--task_type", "classification", *splits["classification"], "--output_dir", tmp_path / "out"]
    err = fails_with(capsys, *FAST, *common)
    assert "'tiny' is a preset with random weights and no tokenizer: give --tokenizer" in err
    err = fails_with(capsys, *FAST, "--tokenizer", tokenizer_dir, "--max_length", "129", *common)
    assert "--max_length 129 is more than the model's n_positions=128" in err
    err = fails_with(capsys, *FAST, "--tokenizer", tokenizer_dir, "--metric_for_best_model", "pearson", *common)
    assert "--metric_for_best_model 'pearson' is not reported for this task" in err
    err = fails_with(capsys, *FAST, "--tokenizer", tokenizer_dir, "--truncation_keep", "end", *common)
    assert "--truncation_keep must be one of head, tail, head_tail, got 'end'" in err


@pytest.mark.parametrize("script", [finetune, finetune_trainer], ids=["accelerate", "trainer"])
def test_multiple_choice_with_mixed_numbers_of_choices_trains_and_evaluates(script, tokenizer_dir, tmp_path):
    """Rows of 3 and 2 choices in one task: batches are padded to the task's most choices, so evaluation's logits
    concatenate (before: a torch.cat error at the first evaluation)."""
    records = rows(TASK_FOLDERS["multiple_choice"])
    mixed = [{**row, "choices": row["choices"][:2], "label": row["label"] % 2} if i % 3 == 0 else row
             for i, row in enumerate(records)]  # fmt: skip
    files = []
    for option, part in [
        ("--train_file", mixed[:16]),
        ("--validation_file", mixed[16:20]),
        ("--test_file", mixed[20:]),
    ]:
        files += [option, write_jsonl(tmp_path / f"{option[2:]}.jsonl", part)]
    results = run(*FAST, "--tokenizer", tokenizer_dir, "--task_type", "multiple_choice", *files,
                  "--output_dir", tmp_path / "out", script=script)  # fmt: skip
    assert 0 <= results["test"]["accuracy"] <= 1 and results["task"]["num_choices"] == 3
    for record in [*results["validation"], results["test"]]:
        assert all(math.isfinite(record[name]) for name in ("loss", "task_loss", "lm_loss")), record
    if script is finetune:  # the saved model never picks a padding choice of a 2-choice row
        two_choices = [row for row in mixed[16:] if len(row["choices"]) == 2]
        assert set(finetune.predict(tmp_path / "out", two_choices)) <= {0, 1}


def test_truncation_keep_reaches_the_encoder(tokenizer_dir, tmp_path):
    """--truncation_keep tail keeps a long text's end (a review's verdict), head its beginning."""
    from transformers import AutoTokenizer

    from recipes.training import task_setup

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    text = "the play opens slowly and the first act drags on " * 6 + "but in the end it is wonderful"
    train = write_jsonl(
        tmp_path / "train.jsonl", [{"text": text, "label": "positive"}, {"text": "bad", "label": "negative"}]
    )
    task = task_data.load_task_data("classification", train_files=[train], validation_files=[train])
    decoded = {}
    for keep in ("head", "tail"):
        encoded = task_setup.encode_task(task, tokenizer, max_length=16, keep=keep)["train"]
        decoded[keep] = max((tokenizer.decode(row["input_ids"]) for row in encoded), key=len)
    assert "wonderful" in decoded["tail"] and "wonderful" not in decoded["head"]
    assert decoded["head"].startswith("_start_the play")


def test_a_checkpoint_from_before_an_option_existed_resumes_with_its_default(tmp_path):
    """A checkpoint written before --truncation_keep and --positive_label existed records neither: it ran as their
    defaults do, so it resumes; another value is still a change that is refused."""
    from recipes.core import run_folder
    from recipes.core.checkpointing import MARKER

    options = {"learning_rate": 1e-3, "truncation_keep": "head", "positive_label": None}
    (tmp_path / MARKER).write_text(json.dumps({"step": 2, "options": {"learning_rate": 1e-3}}))
    assert run_folder.resume_changes(tmp_path, options, allowed=None) == []
    with pytest.raises(RecipeError, match=r"--truncation_keep: checkpoint 'head', this run 'tail'"):
        run_folder.resume_changes(tmp_path, {**options, "truncation_keep": "tail"}, allowed=None)
