"""GPT-1's input transformations per task family, truncation, and the collator, on the committed task fixtures.

The fixtures are the first 24 training rows of five real task files (tests/fixtures/README.md).
"""

import pytest
import torch
from helpers.task_fixtures import FAMILY_ROWS, POLARITY, body, rows
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

from modeling_gpt1.tasks import ENTAILMENT_LABELS, GPT1TaskCollator, GPT1TaskEncoder
from modeling_gpt1.tokenization_gpt1 import (
    EXTRACT_TOKEN,
)


def split_pair(ids: list[int], special_ids) -> tuple[list[int], list[int]]:
    """The two text parts of `_start_ a _delimiter_ b _classify_`."""
    start, delimiter, extract = special_ids
    assert ids[0] == start and ids[-1] == extract and ids.count(delimiter) == 1
    cut = ids.index(delimiter)
    return ids[1:cut], ids[cut + 1 : -1]


def test_classification_is_start_text_extract(tokenizer, special_ids):
    encoder = GPT1TaskEncoder(tokenizer, "classification", label_names=POLARITY)
    start, _, extract = special_ids
    for row in rows("classification-movie-sentence-polarity"):
        features = encoder(row)
        assert features["input_ids"] == [start, *body(tokenizer, row["text"]), extract]
        assert features["attention_mask"] == [1] * len(features["input_ids"])
        assert features["mc_token_ids"] == len(features["input_ids"]) - 1
        assert features["labels"] == POLARITY.index(row["label"])


def test_entailment_is_start_premise_delimiter_hypothesis_extract(tokenizer, special_ids):
    encoder = GPT1TaskEncoder(tokenizer, "entailment")  # label names default to GLUE's order
    for row in rows("entailment-presuppositions"):
        features = encoder(row)
        premise, hypothesis = split_pair(features["input_ids"], special_ids)
        assert premise == body(tokenizer, row["premise"])
        assert hypothesis == body(tokenizer, row["hypothesis"])
        assert features["mc_token_ids"] == len(features["input_ids"]) - 1
        assert features["labels"] == ENTAILMENT_LABELS.index(row["label"])


def test_similarity_encodes_both_orders(tokenizer, special_ids):
    encoder = GPT1TaskEncoder(tokenizer, "similarity")  # max_length 512
    full_rows = rows("similarity-answer-vs-source")[:4]  # 900-2000 tokens a row with this small vocabulary
    short_rows = [{**row, "text_a": row["text_a"][:300], "text_b": row["text_b"][:300]} for row in full_rows]
    untruncated = 0
    for row in full_rows + short_rows:
        features = encoder(row)
        assert len(features["input_ids"]) == 2
        a_first, b_second = split_pair(features["input_ids"][0], special_ids)
        b_first, a_second = split_pair(features["input_ids"][1], special_ids)
        assert (a_first, b_first) == (a_second, b_second)
        a, b = body(tokenizer, row["text_a"]), body(tokenizer, row["text_b"])
        assert (a_first, b_first) == (a[: len(a_first)], b[: len(b_first)])  # longer rows lose their ends
        untruncated += (a_first, b_first) == (a, b)
        assert features["mc_token_ids"] == [len(ids) - 1 for ids in features["input_ids"]]
        assert features["labels"] == float(row["score"]) and isinstance(features["labels"], float)
    assert untruncated == len(short_rows)


@pytest.mark.parametrize("max_length", [3, 4, 5, 6, 17, 18, 64, 65])
def test_similarity_truncation_keeps_the_same_tokens_in_both_orders(tokenizer, special_ids, max_length):
    encoder = GPT1TaskEncoder(tokenizer, "similarity", max_length=max_length)
    for row in rows("similarity-answer-vs-source")[:4]:
        first, second = encoder(row)["input_ids"]
        assert len(first) == len(second) <= max_length
        a_first, b_second = split_pair(first, special_ids)
        b_first, a_second = split_pair(second, special_ids)
        assert (a_first, b_first) == (a_second, b_second)
        assert a_first == body(tokenizer, row["text_a"])[: len(a_first)]  # truncated at the end


@pytest.mark.parametrize("name, num_choices", [("multiple-choice-social-iqa", 3), ("multiple-choice-proverbs", 5)])
def test_multiple_choice_is_one_sequence_per_choice(tokenizer, special_ids, name, num_choices):
    encoder = GPT1TaskEncoder(tokenizer, "multiple_choice")
    for row in rows(name):
        features = encoder(row)
        assert len(features["input_ids"]) == len(features["attention_mask"]) == num_choices
        for ids, choice in zip(features["input_ids"], row["choices"]):
            context, answer = split_pair(ids, special_ids)
            assert context == body(tokenizer, row["context"]) and answer == body(tokenizer, choice)
        assert features["mc_token_ids"] == [len(ids) - 1 for ids in features["input_ids"]]
        assert features["labels"] == row["label"]


@pytest.mark.parametrize("family, name, kwargs", FAMILY_ROWS)
@pytest.mark.parametrize("max_length", [3, 4, 9, 24])
def test_truncation_cuts_text_never_the_extract_token(tokenizer, special_ids, family, name, kwargs, max_length):
    start, delimiter, extract = special_ids
    min_length = 2 if family == "classification" else 3
    encoder = GPT1TaskEncoder(tokenizer, family, max_length=max(max_length, min_length), **kwargs)
    for row in rows(name):
        features = encoder(row)
        sequences = [features["input_ids"]] if family in ("classification", "entailment") else features["input_ids"]
        for ids in sequences:
            assert len(ids) <= max(max_length, min_length)
            assert ids[0] == start and ids[-1] == extract and ids.count(extract) == 1
            assert ids.count(delimiter) == (0 if family == "classification" else 1)


@pytest.mark.parametrize("family, name, kwargs", FAMILY_ROWS[1:])
@pytest.mark.parametrize("max_length", [40, 41, 97])
def test_pair_truncation_is_the_tokenizers_own(tokenizer, family, name, kwargs, max_length):
    """The encoder cuts long texts short before the tokenizer truncates (for speed); the result must not change."""
    encoder = GPT1TaskEncoder(tokenizer, family, max_length=max_length, **kwargs)
    for row in rows(name)[:6]:
        features = encoder(row)
        if family == "entailment":
            expected = tokenizer(row["premise"], row["hypothesis"], truncation=True, max_length=max_length)
            assert features["input_ids"] == expected["input_ids"]
        elif family == "multiple_choice":
            contexts = [row["context"]] * len(row["choices"])
            expected = tokenizer(contexts, row["choices"], truncation=True, max_length=max_length)
            assert features["input_ids"] == expected["input_ids"]
        else:  # similarity: the tokenizer's truncation of A, B; an odd text budget is made even (see tasks.py)
            even_length = max_length - (max_length - 3) % 2
            expected = tokenizer(row["text_a"], row["text_b"], truncation=True, max_length=even_length)
            assert features["input_ids"][0] == expected["input_ids"]


def test_max_length_that_fits_only_the_special_tokens_gives_empty_texts(tokenizer, special_ids):
    features = GPT1TaskEncoder(tokenizer, "entailment", max_length=3)(rows("entailment-presuppositions")[0])
    assert features["input_ids"] == special_ids


def encode_all(tokenizer, family, name, **kwargs):
    encoder = GPT1TaskEncoder(tokenizer, family, **kwargs)
    return [encoder(row) for row in rows(name)]


def test_collator_pads_single_sequences_on_the_right(tokenizer):
    features = encode_all(tokenizer, "classification", "classification-movie-sentence-polarity", label_names=POLARITY)
    batch = GPT1TaskCollator(tokenizer)(features[:8])
    lengths = [len(feature["input_ids"]) for feature in features[:8]]
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (8, max(lengths))
    assert batch["attention_mask"].sum(-1).tolist() == lengths
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tokenizer.pad_token_id).all()
    assert batch["mc_token_ids"].tolist() == [length - 1 for length in lengths]
    extract_tokens = batch["input_ids"].gather(1, batch["mc_token_ids"][:, None])  # (B, 1)
    assert (extract_tokens == tokenizer.cls_token_id).all()
    assert batch["labels"].dtype == torch.long and batch["labels"].shape == (8,)


@pytest.mark.parametrize(
    "family, name, num_sequences, label_dtype",
    [
        ("similarity", "similarity-answer-vs-source", 2, torch.float32),
        ("multiple_choice", "multiple-choice-social-iqa", 3, torch.long),
        ("multiple_choice", "multiple-choice-proverbs", 5, torch.long),
    ],
)
def test_collator_pads_multi_sequence_examples(tokenizer, family, name, num_sequences, label_dtype):
    features = encode_all(tokenizer, family, name, max_length=128)[:4]
    batch = GPT1TaskCollator(tokenizer)(features)
    longest = max(len(ids) for feature in features for ids in feature["input_ids"])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (4, num_sequences, longest)
    assert batch["mc_token_ids"].shape == (4, num_sequences)
    for i, feature in enumerate(features):
        for j, ids in enumerate(feature["input_ids"]):
            assert batch["input_ids"][i, j, : len(ids)].tolist() == ids
            assert batch["attention_mask"][i, j].sum() == len(ids)
    extract_tokens = batch["input_ids"].gather(2, batch["mc_token_ids"][..., None])  # (B, S, 1)
    assert (extract_tokens == tokenizer.cls_token_id).all()
    assert batch["labels"].dtype == label_dtype
    assert batch["labels"].tolist() == [feature["labels"] for feature in features]


def test_collator_pads_right_whatever_the_tokenizer_side_and_to_a_multiple(tokenizer):
    features = encode_all(tokenizer, "multiple_choice", "multiple-choice-social-iqa")[:3]
    tokenizer.padding_side = "left"
    try:
        batch = GPT1TaskCollator(tokenizer, pad_to_multiple_of=8)(features)
    finally:
        tokenizer.padding_side = "right"
    assert batch["input_ids"].shape[-1] % 8 == 0
    assert (batch["attention_mask"][..., 0] == 1).all()  # every sequence starts with a real token


def test_collator_without_labels(tokenizer):
    features = encode_all(tokenizer, "entailment", "entailment-presuppositions")[:3]
    for feature in features:
        del feature["labels"]
    assert "labels" not in GPT1TaskCollator(tokenizer)(features)
    unlabelled = GPT1TaskEncoder(tokenizer, "classification")({"text": "a test row"})
    assert set(unlabelled) == {"input_ids", "attention_mask", "mc_token_ids"}


def test_works_with_datasets_map(tokenizer):
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_list(rows("similarity-answer-vs-source"))
    encoded = dataset.map(GPT1TaskEncoder(tokenizer, "similarity", max_length=64), remove_columns=dataset.column_names)
    assert encoded.column_names == ["input_ids", "attention_mask", "mc_token_ids", "labels"]
    batch = GPT1TaskCollator(tokenizer)([encoded[i] for i in range(4)])
    assert batch["input_ids"].shape[:2] == (4, 2) and batch["labels"].dtype == torch.float32
    batch = GPT1TaskCollator(tokenizer)(list(encoded.with_format("torch").select(range(4))))
    assert batch["input_ids"].shape[:2] == (4, 2) and batch["labels"].dtype == torch.float32


SOCIAL_IQA_ROW = {"context": "Riley began to hurt.", "choices": ["Sad", "Fine", "Sensitive"], "label": 1}


@pytest.mark.parametrize(
    "family, kwargs, example, match",
    [
        ("regression", {}, {}, "family='regression'"),
        ("entailment", {"max_length": 2}, {}, "max_length=2"),
        ("classification", {"max_length": 1}, {}, "max_length=1"),
        ("classification", {"max_length": 513}, {}, "max_length=513 .* model_max_length=512"),
        ("classification", {"max_length": "64"}, {}, "max_length='64'"),
        ("multiple_choice", {"label_names": ["a", "b"]}, {}, r"label_names=\('a', 'b'\)"),
        ("classification", {"label_names": ["a", "a"]}, {}, r"label_names=\('a', 'a'\)"),
        ("similarity", {}, {"text_a": "some text", "text_b": "  ", "score": 1}, "'text_b' is empty"),
        ("similarity", {}, {"text_a": "a", "text_b": "b", "score": "high"}, "score='high'"),
        ("similarity", {}, {"text_a": "a", "text_b": "b", "score": float("nan")}, "score=nan"),
        ("multiple_choice", {}, {"context": "c", "choices": [], "label": 0}, r"choices=\[\]"),
        ("multiple_choice", {}, {"context": "c", "choices": "abc", "label": 0}, "choices='abc'"),
        ("multiple_choice", {}, {"context": "c", "choices": ["a", 3], "label": 0}, "3 \\(int\\)"),
        ("multiple_choice", {}, {"context": "c", "label": 0}, "'choices'"),
        ("multiple_choice", {}, {**SOCIAL_IQA_ROW, "label": 3}, "label=3 is out of range for the 3 choices"),
        ("entailment", {}, {"premise": "p", "label": "entailment"}, "'hypothesis' is missing"),
        ("entailment", {}, {"premise": "p", "hypothesis": "h", "label": "maybe"}, "label='maybe'"),
        ("entailment", {}, {"premise": "p", "hypothesis": "h", "label": 3}, "label=3 is out of range"),
        ("classification", {}, {"text": "t", "label": "positive"}, "label='positive' is a string"),
        ("classification", {}, {"text": "t", "label": -1}, "label=-1"),
        ("classification", {}, {"text": "t", "label": 1.5}, "label=1.5"),
        ("classification", {}, {"text": None, "label": 0}, "'text' must be a string, got NoneType"),
    ],
)
def test_encoder_errors_name_the_bad_value(tokenizer, family, kwargs, example, match):
    with pytest.raises(ValueError, match=match):
        GPT1TaskEncoder(tokenizer, family, **kwargs)(example)


def test_encoder_rejects_a_tokenizer_without_the_extract_token():
    backend = Tokenizer(models.BPE(vocab={"<unk>": 0, "a": 1}, merges=[], unk_token="<unk>"))
    plain = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    with pytest.raises(ValueError, match=f"no {EXTRACT_TOKEN!r} token"):
        GPT1TaskEncoder(plain, "classification")


def test_collator_errors_name_the_bad_value(tokenizer):
    collator = GPT1TaskCollator(tokenizer)
    with pytest.raises(ValueError, match="features is empty"):
        collator([])
    iqa = encode_all(tokenizer, "multiple_choice", "multiple-choice-social-iqa")[:1]
    proverbs = encode_all(tokenizer, "multiple_choice", "multiple-choice-proverbs")[:1]
    assert collator(iqa + proverbs)["input_ids"].shape[:2] == (2, 5)  # 3 and 5 choices: padded with padding choices
    with pytest.raises(ValueError, match=r"Example 1 of the batch has 5 sequences, more than pad_choices_to=3"):
        GPT1TaskCollator(tokenizer, pad_choices_to=3)(iqa + proverbs)
    features = encode_all(tokenizer, "entailment", "entailment-presuppositions")[:3]
    del features[1]["labels"]
    with pytest.raises(ValueError, match="Only 2 of the 3 examples have labels"):
        collator(features)


# ------------------------------------------------------------------------ the model on real examples of each family

REAL_FAMILIES = [
    ("classification", "classification-movie-sentence-polarity", 2, {"label_names": POLARITY}),
    ("entailment", "entailment-presuppositions", 3, {}),
    ("similarity", "similarity-answer-vs-source", 1, {}),  # the 0..3 score, regressed
    ("multiple_choice", "multiple-choice-social-iqa", 1, {}),
]


@pytest.mark.parametrize("family, name, num_labels, kwargs", REAL_FAMILIES)
def test_real_examples_train_the_double_heads_model(tokenizer, family, name, num_labels, kwargs):
    """Forward and backward on 8 real rows of each family, then AdamW steps on that batch drive the combined loss
    (task loss + 0.5 * LM loss) down."""
    from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsDoubleHeadsModel

    encoder = GPT1TaskEncoder(tokenizer, family, max_length=48, **kwargs)
    batch = GPT1TaskCollator(tokenizer)([encoder(row) for row in rows(name)[:8]])
    config = GPT1OriginsConfig.from_preset(
        "tiny",
        vocab_size=len(tokenizer),
        n_positions=48,
        task_type=family,
        num_labels=num_labels,
        start_token_id=tokenizer.bos_token_id,
        delimiter_token_id=tokenizer.sep_token_id,
        extract_token_id=tokenizer.cls_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = GPT1OriginsDoubleHeadsModel(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        outputs = model(**batch)
        torch.testing.assert_close(outputs.loss, outputs.task_loss + 0.5 * outputs.lm_loss)
        optimizer.zero_grad()
        outputs.loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        optimizer.step()
        losses.append(outputs.loss.item())
    expected_logits = (8, 3) if family == "multiple_choice" else (8, num_labels)
    assert outputs.logits.shape == expected_logits
    assert losses[-1] < 0.9 * losses[0], losses


def test_similarity_with_label_names_gives_classes_of_pairs(tokenizer):
    """MRPC / QQP: similarity of two texts as classes (int64 labels, both orders), where STS-B's scores are floats."""
    encoder = GPT1TaskEncoder(tokenizer, "similarity", label_field="label", label_names=("different", "same"))
    examples = [
        {"text_a": "a king", "text_b": "a queen", "label": 0},
        {"text_a": "thou", "text_b": "you", "label": "same"},
    ]
    batch = GPT1TaskCollator(tokenizer)([encoder(example) for example in examples])
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [0, 1]
    assert batch["input_ids"].shape[:2] == (2, 2)
    with pytest.raises(ValueError, match="label=2 is out of range"):
        encoder({"text_a": "a", "text_b": "b", "label": 2})
