"""Two fine-tuning options of GPT-1's task inputs: which tokens of a long text are kept (`GPT1TaskEncoder(keep=...)`),
and multiple-choice examples with different numbers of choices (padding choices in the collator, masked by the
double-heads model), down from the recipe's data loading. Real rows are the committed task fixtures
(tests/fixtures/README.md)."""

import json

import pytest
import torch
from helpers.task_fixtures import FAMILY_ROWS, POLARITY, body, rows

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsDoubleHeadsModel
from modeling_gpt1.tasks import KEEP_MODES, GPT1TaskCollator, GPT1TaskEncoder

NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "classifier_dropout": 0.0}


def text_parts(ids: list[int], special_ids) -> list[list[int]]:
    """The text parts of `_start_ a [_delimiter_ b] _classify_`: one or two lists of ids."""
    start, delimiter, extract = special_ids
    assert ids[0] == start and ids[-1] == extract and ids.count(extract) == 1 and ids.count(delimiter) <= 1
    if delimiter not in ids:
        return [ids[1:-1]]
    cut = ids.index(delimiter)
    return [ids[1:cut], ids[cut + 1 : -1]]


def expected_kept(ids: list[int], length: int, keep: str) -> list[int]:
    """`length` of a text's tokens as each mode is specified: the first, the last, or the first quarter and the last
    three quarters (Sun et al. 2019's 128 + 382 of 510)."""
    head = {"head": length, "tail": 0, "head_tail": length // 4}[keep]
    return ids[:head] + ids[len(ids) - (length - head) :]


def sequences_of(features: dict, family: str) -> list[list[int]]:
    return [features["input_ids"]] if family in ("classification", "entailment") else features["input_ids"]


def texts_of(row: dict, family: str) -> list[list[str]]:
    """The texts of each sequence of a row, in the encoder's order."""
    if family == "classification":
        return [[row["text"]]]
    if family == "entailment":
        return [[row["premise"], row["hypothesis"]]]
    if family == "similarity":
        return [[row["text_a"], row["text_b"]], [row["text_b"], row["text_a"]]]
    return [[row["context"], choice] for choice in row["choices"]]


# ------------------------------------------------------------------------------------ which tokens a long text keeps


@pytest.mark.parametrize("keep", KEEP_MODES)
@pytest.mark.parametrize("family, name, kwargs", FAMILY_ROWS)
@pytest.mark.parametrize("max_length", [3, 9, 24, 41, 512])
def test_each_mode_keeps_its_tokens_of_each_text(tokenizer, special_ids, family, name, kwargs, max_length, keep):
    """Every mode keeps as many tokens of each text as the tokenizer's own `longest_first` truncation ("head", today's
    behaviour) keeps, and those it names: the text's first, last, or first quarter and last three quarters. The
    start, delimiter and extract tokens are always there."""
    head = GPT1TaskEncoder(tokenizer, family, max_length=max_length, **kwargs)
    encoder = GPT1TaskEncoder(tokenizer, family, max_length=max_length, keep=keep, **kwargs)
    cut = 0
    for row in rows(name)[:8]:
        features, reference = encoder(row), head(row)
        for key in ("attention_mask", "mc_token_ids", "labels"):
            assert features[key] == reference[key]
        sequences = zip(sequences_of(features, family), sequences_of(reference, family), texts_of(row, family))
        for ids, head_ids, texts in sequences:
            assert len(ids) == len(head_ids) <= max_length
            for part, head_part, text in zip(text_parts(ids, special_ids), text_parts(head_ids, special_ids), texts):
                full = body(tokenizer, text)
                assert head_part == full[: len(head_part)]  # "head" is the tokenizer's truncation: texts lose ends
                assert part == expected_kept(full, len(head_part), keep)
                cut += len(part) < len(full)
    assert cut > 0 or max_length == 512


@pytest.mark.parametrize("keep", KEEP_MODES)
@pytest.mark.parametrize("max_length", [4, 5, 18, 65])
def test_similarity_keeps_the_same_tokens_in_both_orders(tokenizer, special_ids, keep, max_length):
    encoder = GPT1TaskEncoder(tokenizer, "similarity", max_length=max_length, keep=keep)
    for row in rows("similarity-answer-vs-source")[:4]:
        first, second = encoder(row)["input_ids"]
        assert len(first) == len(second) <= max_length
        a_first, b_second = text_parts(first, special_ids)
        b_first, a_second = text_parts(second, special_ids)
        assert (a_first, b_first) == (a_second, b_second)


def test_a_reviews_verdict_at_its_end_survives_tail_and_head_tail(tokenizer, special_ids):
    """A long review whose verdict is its last sentence, in 24 tokens: "head" loses the verdict, "tail" and
    "head_tail" keep it; "head_tail" also keeps the review's opening words."""
    review = {
        "text": "the king and the queen sit in the hall of the castle , and the lords and ladies talk of war and love "
        "and the night , and of the sword and the crown . in the end : a poor play .",
        "label": "negative",
    }
    verdict = body(tokenizer, "in the end : a poor play .")
    opening = body(tokenizer, review["text"])[:5]
    kept = {}
    for keep in KEEP_MODES:
        encoder = GPT1TaskEncoder(tokenizer, "classification", max_length=24, label_names=POLARITY, keep=keep)
        [kept[keep]] = text_parts(encoder(review)["input_ids"], special_ids)
        assert len(kept[keep]) == 22
    assert kept["head"][-len(verdict) :] != verdict and kept["head"][:5] == opening
    assert kept["tail"][-len(verdict) :] == verdict
    assert kept["head_tail"][-len(verdict) :] == verdict and kept["head_tail"][:5] == opening


def test_head_is_the_default_and_todays_truncation(tokenizer):
    for family, name, kwargs in FAMILY_ROWS:
        default = GPT1TaskEncoder(tokenizer, family, max_length=20, **kwargs)
        head = GPT1TaskEncoder(tokenizer, family, max_length=20, keep="head", **kwargs)
        assert default.keep == "head"
        for row in rows(name)[:4]:
            assert head(row) == default(row)


@pytest.mark.parametrize("keep", ["end", "Tail", "", None, "start"])
def test_keep_must_be_a_known_mode(tokenizer, keep):
    with pytest.raises(ValueError, match=rf"keep={keep!r} is not one of \('head', 'tail', 'head_tail'\)"):
        GPT1TaskEncoder(tokenizer, "classification", keep=keep)


def test_tail_modes_work_with_datasets_map(tokenizer):
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_list(rows("multiple-choice-proverbs")[:6])
    encoder = GPT1TaskEncoder(tokenizer, "multiple_choice", max_length=32, keep="head_tail")
    encoded = dataset.map(encoder, remove_columns=dataset.column_names)
    assert encoded[0] == encoder(rows("multiple-choice-proverbs")[0])


# ------------------------------------------------------------------------- a variable number of choices per example

IQA, PROVERBS = "multiple-choice-social-iqa", "multiple-choice-proverbs"  # 3 and 5 choices a row


def mixed_features(tokenizer, max_length: int = 40) -> list[dict]:
    """Real rows with 3, 5, 2 and 4 choices."""
    encoder = GPT1TaskEncoder(tokenizer, "multiple_choice", max_length=max_length)
    iqa, proverbs = rows(IQA), rows(PROVERBS)
    two = {**iqa[1], "choices": iqa[1]["choices"][:2], "label": min(iqa[1]["label"], 1)}
    four = {**proverbs[1], "choices": proverbs[1]["choices"][:4], "label": min(proverbs[1]["label"], 3)}
    return [encoder(row) for row in (iqa[0], proverbs[0], two, four)]


def test_collator_pads_a_batch_to_its_most_choices(tokenizer):
    features = mixed_features(tokenizer)
    batch = GPT1TaskCollator(tokenizer)(features)
    longest = max(len(ids) for feature in features for ids in feature["input_ids"])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (4, 5, longest)
    assert batch["mc_token_ids"].shape == (4, 5)
    for i, feature in enumerate(features):
        k = len(feature["input_ids"])
        for j, ids in enumerate(feature["input_ids"]):
            assert batch["input_ids"][i, j, : len(ids)].tolist() == ids
            assert batch["attention_mask"][i, j].sum() == len(ids)
        assert batch["mc_token_ids"][i].tolist() == [*feature["mc_token_ids"], *[0] * (5 - k)]
        assert (batch["input_ids"][i, k:] == tokenizer.pad_token_id).all()  # padding choices: `_pad_` only,
        assert (batch["attention_mask"][i, k:] == 0).all()  # an all-zero mask
    assert batch["labels"].tolist() == [feature["labels"] for feature in features]


def test_collator_pads_to_pad_choices_to(tokenizer):
    features = mixed_features(tokenizer)
    batch = GPT1TaskCollator(tokenizer, pad_to_multiple_of=8, pad_choices_to=6)(features[2:])  # 2 and 4 choices
    assert batch["input_ids"].shape[:2] == (2, 6) and batch["input_ids"].shape[-1] % 8 == 0
    assert batch["attention_mask"].any(-1).sum(-1).tolist() == [2, 4]
    with pytest.raises(ValueError, match=r"Example 1 of the batch has 5 sequences, more than pad_choices_to=4"):
        GPT1TaskCollator(tokenizer, pad_choices_to=4)(features[:2])
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match=rf"pad_choices_to={bad!r} must be a positive int"):
            GPT1TaskCollator(tokenizer, pad_choices_to=bad)


def mc_model(tokenizer, attn_implementation: str = "sdpa", **overrides) -> GPT1OriginsDoubleHeadsModel:
    config = GPT1OriginsConfig.from_preset(
        "tiny",
        vocab_size=len(tokenizer),
        n_positions=48,
        task_type="multiple_choice",
        start_token_id=tokenizer.bos_token_id,
        delimiter_token_id=tokenizer.sep_token_id,
        extract_token_id=tokenizer.cls_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **{**NO_DROPOUT, **overrides},
    )
    torch.manual_seed(0)
    return GPT1OriginsDoubleHeadsModel._from_config(config, attn_implementation=attn_implementation)


def run(model, batch, backward: bool = False):
    model.zero_grad(set_to_none=True)
    outputs = model(**batch)
    grads = None
    if backward:
        outputs.loss.backward()
        grads = {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}
    return outputs, grads


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("training", [False, True])  # eval: the LM logits' loss; training: the chunked LM head
def test_a_batch_with_padding_choices_equals_its_examples_alone(tokenizer, attn_implementation, training):
    """Logits of the real choices, the three losses and every gradient of a batch of examples with 3, 5, 2 and 4
    choices equal those of each example alone (the batch's losses are the means of theirs); padding choices score the
    dtype's minimum, so softmax gives them 0 and argmax never picks them."""
    model = mc_model(tokenizer, attn_implementation).train(training)
    collator = GPT1TaskCollator(tokenizer)
    features = mixed_features(tokenizer)
    batch_outputs, batch_grads = run(model, collator(features), backward=True)
    assert (batch_outputs.lm_logits is None) == training
    alone = [run(model, collator([feature]), backward=True) for feature in features]

    for i, (feature, (outputs, _)) in enumerate(zip(features, alone)):
        k = len(feature["input_ids"])
        assert outputs.logits.shape == (1, k)
        torch.testing.assert_close(batch_outputs.logits[i, :k], outputs.logits[0], atol=1e-5, rtol=1e-5)
        assert (batch_outputs.logits[i, k:] == torch.finfo(torch.float32).min).all()
        assert (batch_outputs.logits[i].softmax(-1)[k:] == 0).all()
    assert (batch_outputs.logits.argmax(-1) < torch.tensor([3, 5, 2, 4])).all()
    for name in ("loss", "task_loss", "lm_loss"):
        mean_alone = torch.stack([getattr(outputs, name) for outputs, _ in alone]).mean()
        torch.testing.assert_close(getattr(batch_outputs, name), mean_alone, atol=1e-5, rtol=1e-5, msg=name)
    assert all(torch.isfinite(grad).all() for grad in batch_grads.values())
    for name, grad in batch_grads.items():
        mean_alone = torch.stack([grads[name] for _, grads in alone]).mean(0)
        torch.testing.assert_close(grad, mean_alone, atol=1e-5, rtol=1e-4, msg=name)


def test_padding_choices_need_no_extract_token_and_train(tokenizer):
    """Without `mc_token_ids` the extract positions come from the extract token, which padding choices lack; with
    dropout on, AdamW steps on a mixed batch drive the combined loss down with finite gradients."""
    model = mc_model(tokenizer, resid_pdrop=0.1, classifier_dropout=0.1).eval()
    batch = GPT1TaskCollator(tokenizer)(mixed_features(tokenizer))
    without_positions = {key: value for key, value in batch.items() if key != "mc_token_ids"}
    torch.testing.assert_close(model(**without_positions).logits, model(**batch).logits)

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        outputs = model(**without_positions)
        optimizer.zero_grad()
        outputs.loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        optimizer.step()
        losses.append(outputs.loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


def test_bad_padding_choices_name_the_example(tokenizer):
    model = mc_model(tokenizer).eval()
    batch = GPT1TaskCollator(tokenizer)(mixed_features(tokenizer))  # 3, 5, 2 and 4 choices, padded to 5
    with pytest.raises(ValueError, match=r"Label 3 of example 2 is a padding choice .*real choices are \[0, 1\]"):
        model(**{**batch, "labels": torch.tensor([0, 4, 3, 1])})
    with pytest.raises(ValueError, match=r"Label 4 of example 0 is a padding choice"):
        model(**{**batch, "mc_labels": torch.tensor([4, 4, 1, 1]), "labels": None})
    with pytest.raises(ValueError, match=r"Label 5 is outside \[0, 5\) \(choices=5\)"):
        model(**{**batch, "labels": torch.tensor([0, 5, 1, 1])})
    model(**{**batch, "labels": torch.tensor([-100, 4, -100, 3])})  # an ignored example may be padded anywhere
    empty = batch["attention_mask"].clone()
    empty[1] = 0
    with pytest.raises(ValueError, match=r"Example 1 has no real choice: the `attention_mask` rows of all its 5"):
        model(**{**batch, "attention_mask": empty})
    no_extract = batch["input_ids"].masked_fill(batch["input_ids"] == tokenizer.cls_token_id, tokenizer.pad_token_id)
    inputs = {"input_ids": no_extract, "attention_mask": batch["attention_mask"]}
    with pytest.raises(ValueError, match=r"example 0, sequence 0 has 0"):  # a real choice still needs its token
        model(**inputs)


def test_task_data_loads_rows_of_different_numbers_of_choices(tmp_path, tokenizer):
    """The recipe's data loading accepts rows of 3 and 4 choices (it refused them before), reports the most, and
    its rows batch and run through the model; a label is checked against its own row's choices."""
    from recipes.core.errors import RecipeError
    from recipes.data.tasks import load_task_data

    iqa, proverbs = rows(IQA), rows(PROVERBS)
    four = [{**row, "choices": row["choices"][:4], "label": min(row["label"], 3)} for row in proverbs[:6]]
    train, validation = [*iqa[:6], *four[:4]], [iqa[6], four[4], iqa[7], four[5]]
    for name, records in (("train", train), ("validation", validation)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    task = load_task_data(
        "multiple_choice", train_files=[tmp_path / "train.jsonl"], validation_files=[tmp_path / "validation.jsonl"]
    )
    assert task.num_choices == 4 and task.summary()["num_choices"] == 4
    assert [len(choices) for choices in task.dataset["validation"]["choices"]] == [3, 4, 3, 4]

    encoder = GPT1TaskEncoder(tokenizer, "multiple_choice", max_length=40)
    encoded = task.dataset["validation"].map(encoder, remove_columns=task.dataset["validation"].column_names)
    batch = GPT1TaskCollator(tokenizer, pad_choices_to=task.num_choices)(list(encoded.with_format("torch")))
    assert batch["input_ids"].shape[:2] == (4, 4)
    assert batch["attention_mask"].any(-1).sum(-1).tolist() == [3, 4, 3, 4]
    outputs = mc_model(tokenizer).eval()(**batch)
    assert outputs.logits.shape == (4, 4) and torch.isfinite(outputs.loss)

    bad = {**iqa[8], "label": 3}  # a 3-choice row may not take a 4-choice row's last index
    (tmp_path / "bad.jsonl").write_text("".join(json.dumps(record) + "\n" for record in [*train, bad]))
    with pytest.raises(RecipeError, match=r"bad.jsonl, line 11: label 3 must be .* choice, an int in \[0, 3\)"):
        load_task_data("multiple_choice", train_files=[tmp_path / "bad.jsonl"])
    one = {**iqa[8], "choices": iqa[8]["choices"][:1], "label": 0}
    (tmp_path / "one.jsonl").write_text("".join(json.dumps(record) + "\n" for record in [*train, one]))
    with pytest.raises(RecipeError, match=r"one.jsonl, line 11: 'choices' must be a list of at least 2 strings"):
        load_task_data("multiple_choice", train_files=[tmp_path / "one.jsonl"])
