"""GPT-1's task-specific input transformations (Radford et al. 2018, section 3.3 and figure 1), and their batching.

`GPT1TaskEncoder(tokenizer, family)` turns one example (a dict, e.g. a `datasets` row) into model inputs;
`GPT1TaskCollator(tokenizer)` pads a list of them into a batch of tensors. The four families and the fields each
reads (those of the task files in gpt-origins' docs/DATA.md; rename a Hub dataset's columns to these):

| family            | fields                          | sequences per example                                    |
|-------------------|---------------------------------|----------------------------------------------------------|
| `classification`  | text, label                     | 1: `_start_ text _classify_`                             |
| `entailment`      | premise, hypothesis, label      | 1: `_start_ premise _delimiter_ hypothesis _classify_`   |
| `similarity`      | text_a, text_b, score           | 2: `_start_ a _delimiter_ b _classify_`, then b before a |
| `multiple_choice` | context, choices, label (index) | k: `_start_ context _delimiter_ choice_k _classify_`     |

Output keys (encoder: one example, Python lists; collator: a batch, tensors). S = num_sequences, T = length:
- `input_ids`: (T,) -> (batch, T) for classification and entailment; (S, T) -> (batch, S, T) for similarity (S = 2,
  the two orders) and multiple choice (S = k choices). Start, delimiter and extract tokens are in them.
- `attention_mask`: same shape; 1 on tokens, 0 on padding. Padding is on the right, with the `_pad_` token.
- `mc_token_ids`: () -> (batch,), or (S,) -> (batch, S): the index of the extract token `_classify_` in each
  sequence, whose hidden state feeds the task head (transformers' OpenAIGPTDoubleHeadsModel calls it
  `mc_token_ids`). It is always the last token before padding.
- `labels`: only when the example has a label. int64 class id (classification, entailment; string labels are
  mapped by `label_names`), float32 score (similarity, regression), int64 index of the right choice (multiple
  choice). Shape () -> (batch,).

Truncation fits each sequence in `max_length` tokens, special tokens counted, so the start, delimiter and extract
tokens are never cut. `max_length` defaults to `tokenizer.model_max_length` (512): give the model's `n_positions` when
it is smaller. How many tokens each text of a pair keeps is the tokenizer's `longest_first` rule (the longer text
loses tokens first; when both are over half the budget each keeps half, an odd budget's last token going to the
longer, on a tie the second). Which of its tokens a text keeps is the encoder's `keep`:
- "head" (the default): its first tokens, the tokenizer's own truncation (texts lose their ends).
- "tail": its last tokens (a review's verdict, a question after its passage).
- "head_tail": its first quarter and its last three quarters (of n kept tokens, the first n // 4 and the last
  n - n // 4): Sun et al. 2019, "How to Fine-Tune BERT for Text Classification?", section 5.3.1, best with the first
  128 and the last 382 of 510 tokens.
For similarity the text budget is made even when truncation is needed, so that both orders keep the same tokens of
each text. With "head", texts far longer than the budget are cut at a word end first, only to spare `tokenizers` a
quadratic cost; the tokens kept are those the tokenizer's truncation alone keeps (tested).

Multiple-choice examples may have different numbers of choices. The collator pads a batch to its largest number of
choices (or to `pad_choices_to`) with padding choices: `_pad_` tokens only, an all-zero `attention_mask` row and
`mc_token_ids` 0, which is how `GPT1OriginsDoubleHeadsModel` tells a padding choice from a real one (it scores it the
dtype's minimum and leaves it out of both losses).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from .configuration_gpt1 import TASK_FAMILIES
from .tokenization_gpt1 import EXTRACT_TOKEN

# The text fields of an example of each family (the table above), in the order they are encoded.
TEXT_FIELDS = {
    "classification": ("text",),
    "entailment": ("premise", "hypothesis"),
    "similarity": ("text_a", "text_b"),
    "multiple_choice": ("context", "choices"),
}
DEFAULT_LABEL_FIELDS = {
    "classification": "label",
    "entailment": "label",
    "similarity": "score",
    "multiple_choice": "label",
}
# GLUE's order for MNLI / SNLI / RTE-style data; the entailment task files use these names.
ENTAILMENT_LABELS = ("entailment", "neutral", "contradiction")
# Which tokens of a text over its budget are kept (the module docstring); "head" is the tokenizer's own truncation.
KEEP_MODES = ("head", "tail", "head_tail")


class GPT1TaskEncoder:
    """Encodes one example of a task `family` as GPT-1's fine-tuning inputs (keys: see the module docstring).

    Args:
        tokenizer: a GPT-1 tokenizer from `tokenization_gpt1` (its template adds start / delimiter / extract).
        family: one of `TASK_FAMILIES`.
        max_length: the most tokens in a sequence, special tokens included; at most the model's `n_positions`
            (`tokenizer.model_max_length`, 512 for GPT-1), which is the default.
        label_names: for classification and entailment, the class names in id order; string labels are mapped
            through it and int labels checked against it. Entailment defaults to `ENTAILMENT_LABELS`. For similarity,
            label_names makes the labels classes of pairs (MRPC, QQP: "not_equivalent", "equivalent"); without it
            they are scores (STS-B), regressed.
        label_field: where the label is read from; defaults to `score` for similarity and `label` otherwise.
        keep: which tokens of a text over its budget are kept, one of `KEEP_MODES`: "head" (its first tokens, the
            default and the tokenizer's own truncation), "tail" (its last) or "head_tail" (its first quarter and last
            three quarters, Sun et al. 2019). Every text of the family is cut this way: the text, premise and
            hypothesis, both texts of a similarity pair (alike in both orders), the context and each choice.

    Use it with `datasets`: `dataset.map(encoder, remove_columns=dataset.column_names)`.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        family: str,
        max_length: int | None = None,
        label_names: Sequence[str] | None = None,
        label_field: str | None = None,
        keep: str = "head",
    ):
        if family not in TASK_FAMILIES:
            raise ValueError(f"family={family!r} is not one of {TASK_FAMILIES}.")
        if keep not in KEEP_MODES:
            raise ValueError(f"keep={keep!r} is not one of {KEEP_MODES}: the tokens of a long text to keep.")
        self.keep = keep
        self.tokenizer = tokenizer
        self.family = family
        self.extract_token_id = tokenizer.convert_tokens_to_ids(EXTRACT_TOKEN)
        if self.extract_token_id is None or self.extract_token_id == tokenizer.unk_token_id:
            raise ValueError(
                f"The tokenizer has no {EXTRACT_TOKEN!r} token: build it with train_gpt1_tokenizer or "
                f"gpt1_tokenizer_from_released from modeling_gpt1.tokenization_gpt1."
            )

        n_positions = tokenizer.model_max_length
        max_length = n_positions if max_length is None else max_length
        self.num_special_tokens = tokenizer.num_special_tokens_to_add(pair=family != "classification")
        if not isinstance(max_length, int) or isinstance(max_length, bool):
            raise ValueError(f"max_length={max_length!r} must be an int.")
        if max_length > n_positions:
            raise ValueError(
                f"max_length={max_length} is more than the tokenizer's model_max_length={n_positions} "
                f"(the model's n_positions)."
            )
        if max_length < self.num_special_tokens:
            raise ValueError(
                f"max_length={max_length} cannot hold even empty {family} texts: its special tokens alone take "
                f"{self.num_special_tokens}."
            )
        self.max_length = max_length

        if label_names is None and family == "entailment":
            label_names = ENTAILMENT_LABELS
        if label_names is not None:
            label_names = tuple(label_names)
            if family == "multiple_choice":
                raise ValueError(f"label_names={label_names!r} is for classes; multiple choice labels are indices.")
            if len(set(label_names)) != len(label_names) or not label_names:
                raise ValueError(f"label_names={label_names!r} must be non-empty and without repeats.")
        self.label_names = label_names
        self.label_field = DEFAULT_LABEL_FIELDS[family] if label_field is None else label_field
        # "tail" and "head_tail" cut the texts' token ids and wrap them in the tokenizer's template themselves.
        self.template = _template(tokenizer, pair=family != "classification") if keep != "head" else None

    def __call__(self, example: Mapping[str, Any]) -> dict[str, Any]:
        first = self._text(example, TEXT_FIELDS[self.family][0])
        if self.keep != "head":
            encoded = self._encode_kept(first, example)
        elif self.family == "classification":
            encoded = self.tokenizer(first, truncation=True, max_length=self.max_length)
        elif self.family == "entailment":
            [(premise, hypothesis)], _ = self._cap([(first, self._text(example, "hypothesis"))])
            # As a batch of one pair: transformers reads a lone pair with an empty second text as no pair at all, and
            # would drop the delimiter (`_start_ premise _classify_`).
            batch = self.tokenizer([premise], [hypothesis], truncation="longest_first", max_length=self.max_length)
            encoded = {key: values[0] for key, values in batch.items()}
        elif self.family == "similarity":
            encoded = self._encode_similarity(first, self._text(example, "text_b"))
        else:
            pairs, _ = self._cap([(first, choice) for choice in self._choices(example)])
            contexts, choices = zip(*pairs)
            encoded = self.tokenizer(
                list(contexts), list(choices), truncation="longest_first", max_length=self.max_length
            )

        single = self.family in ("classification", "entailment")
        sequences = [encoded["input_ids"]] if single else encoded["input_ids"]  # S x (T,), ragged
        for ids in sequences:
            if ids[-1] != self.extract_token_id:
                raise ValueError(
                    f"The tokenizer ended a {self.family} sequence with id {ids[-1]}, not {EXTRACT_TOKEN!r} "
                    f"(id {self.extract_token_id}): its post-processor is not GPT-1's template."
                )
        mc_token_ids = [len(ids) - 1 for ids in sequences]
        features = {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "mc_token_ids": mc_token_ids[0] if single else mc_token_ids,
        }
        label = example.get(self.label_field)
        if label is not None:
            features["labels"] = self._label(label, num_choices=len(sequences))
        return features

    def _text(self, example: Mapping[str, Any], field: str) -> str:
        if field not in example:
            raise ValueError(
                f"A {self.family} example needs the fields {TEXT_FIELDS[self.family]}; {field!r} is missing from "
                f"one with fields {sorted(example)}."
            )
        text = example[field]
        if not isinstance(text, str):
            raise ValueError(f"Field {field!r} must be a string, got {type(text).__name__}: {text!r:.80}.")
        if self.family == "similarity" and not text.strip():
            raise ValueError(f"Similarity field {field!r} is empty ({text!r}): both texts are needed for both orders.")
        return _valid_unicode(text, f"Field {field!r}")

    def _choices(self, example: Mapping[str, Any]) -> list[str]:
        if "choices" not in example:
            raise ValueError(f"A multiple_choice example needs the field 'choices'; fields are {sorted(example)}.")
        choices = example["choices"]
        if isinstance(choices, str) or not isinstance(choices, Sequence) or len(choices) == 0:
            raise ValueError(f"choices={choices!r:.80} must be a non-empty list of strings.")
        bad = [choice for choice in choices if not isinstance(choice, str)]
        if bad:
            raise ValueError(f"choices must all be strings; got {bad[0]!r:.80} ({type(bad[0]).__name__}).")
        return [_valid_unicode(choice, f"Choice {index}") for index, choice in enumerate(choices)]

    def _cap(self, pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[tuple[int, int]]]:
        """Shortens texts far longer than the text budget before the tokenizer truncates them; returns the pairs and
        their full lengths in tokens.

        Only for speed: while truncating a pair, `tokenizers` builds every combination of the two texts' overflowing
        pieces, seconds for long texts and a small `max_length` (huggingface/tokenizers#2035). A text over the budget
        is cut after a word that ends at least one token past it: the BPE of the words before the cut is unchanged,
        no token after it could be kept, and `longest_first` (which reads only the shorter text's length and which
        text is longer) keeps the same tokens.
        """
        budget = self.max_length - self.num_special_tokens
        unique = list(dict.fromkeys(text for pair in pairs for text in pair))
        encoded = self.tokenizer(unique, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        words = {text: (encoded.word_ids(i), encoded["offset_mapping"][i]) for i, text in enumerate(unique)}

        def cut(text: str, keep: int) -> tuple[str, int]:
            """`text` up to the end of the word that holds token `keep - 1`, and its length in tokens."""
            word_ids, offsets = words[text]
            if keep >= len(word_ids):
                return text, len(word_ids)
            last = max(i for i, word in enumerate(word_ids) if word == word_ids[keep - 1])
            return text[: offsets[last][1]], last + 1

        capped, lengths = [], []
        for a, b in pairs:
            len_a, len_b = len(words[a][0]), len(words[b][0])
            lengths.append((len_a, len_b))
            a_cut, a_kept = cut(a, budget + 1) if len_a > budget else (a, len_a)
            b_cut, b_kept = cut(b, budget + 1) if len_b > budget else (b, len_b)
            if len_a > budget and len_b > budget:
                # Both are halved; an odd budget's last token goes to the longer (on a tie the second): keep it longer.
                if len_b >= len_a:
                    b_cut, b_kept = cut(b, a_kept + 1)
                else:
                    a_cut, a_kept = cut(a, b_kept + 1)
            capped.append((a_cut, b_cut))
        return capped, lengths

    def _encode_similarity(self, text_a: str, text_b: str):
        """Both orders, truncated alike (paper: "no inherent ordering of the two sentences being compared")."""
        [(text_a, text_b)], [lengths] = self._cap([(text_a, text_b)])
        return self.tokenizer(
            [text_a, text_b], [text_b, text_a], truncation="longest_first", max_length=self._similarity_length(lengths)
        )  # input_ids: (2, T), same T for both orders

    def _similarity_length(self, lengths: tuple[int, int]) -> int:
        """`max_length`, less one when truncation is needed and the text budget is odd: `longest_first` gives an odd
        budget's last token to the longer text, so the two orders of two texts of one length would differ; with an
        even budget each text keeps the same tokens in both."""
        budget = self.max_length - self.num_special_tokens
        return self.max_length - 1 if sum(lengths) > budget and budget % 2 == 1 else self.max_length

    def _encode_kept(self, first: str, example: Mapping[str, Any]) -> dict[str, list]:
        """The sequences of one example with `keep` "tail" or "head_tail": each text's token ids, as many kept as
        `longest_first` keeps (`_kept_lengths`) and chosen by `keep`, wrapped in the tokenizer's template. Returns
        input_ids and attention_mask as the tokenizer would: one sequence for classification and entailment, else
        a list of them."""
        if self.family == "classification":
            pairs = [(first, None)]
        elif self.family == "entailment":
            pairs = [(first, self._text(example, "hypothesis"))]
        elif self.family == "similarity":
            second = self._text(example, "text_b")
            pairs = [(first, second), (second, first)]
        else:
            pairs = [(first, choice) for choice in self._choices(example)]
        unique = list(dict.fromkeys(text for pair in pairs for text in pair if text is not None))
        encoded = self.tokenizer(unique, add_special_tokens=False, verbose=False)["input_ids"]
        ids = dict(zip(unique, encoded))
        max_length = self.max_length
        if self.family == "similarity":
            max_length = self._similarity_length((len(ids[pairs[0][0]]), len(ids[pairs[0][1]])))
        budget = max_length - self.num_special_tokens

        sequences = []
        for a, b in pairs:
            if b is None:
                before, after = self.template
                sequences.append([*before, *self._kept(ids[a], min(len(ids[a]), budget)), *after])
                continue
            keep_a, keep_b = _kept_lengths(len(ids[a]), len(ids[b]), budget)
            before, between, after = self.template
            sequences.append([*before, *self._kept(ids[a], keep_a), *between, *self._kept(ids[b], keep_b), *after])
        masks = [[1] * len(ids) for ids in sequences]
        if self.family in ("classification", "entailment"):
            return {"input_ids": sequences[0], "attention_mask": masks[0]}
        return {"input_ids": sequences, "attention_mask": masks}

    def _kept(self, ids: list[int], length: int) -> list[int]:
        """`length` of a text's token ids, chosen by `keep`."""
        if length >= len(ids):
            return ids
        if self.keep == "head":
            return ids[:length]
        # Sun et al. 2019 (section 5.3.1): head+tail keeps the first 128 and the last 382 of 510 tokens, a quarter.
        head = length // 4 if self.keep == "head_tail" else 0
        return ids[:head] + ids[len(ids) - (length - head) :]

    def _label(self, label: Any, num_choices: int) -> int | float:
        if self.family == "similarity" and self.label_names is None:  # a score; with label_names, classes of pairs
            if isinstance(label, bool) or not isinstance(label, (int, float)) or not math.isfinite(label):
                raise ValueError(f"Similarity {self.label_field}={label!r} must be a finite number.")
            return float(label)
        if isinstance(label, str):
            if self.label_names is None:
                raise ValueError(
                    f"{self.label_field}={label!r} is a string: give label_names (the class names in id order)."
                )
            if label not in self.label_names:
                raise ValueError(f"{self.label_field}={label!r} is not one of label_names={self.label_names}.")
            return self.label_names.index(label)
        if isinstance(label, bool) or not isinstance(label, int):
            raise ValueError(f"{self.label_field}={label!r} must be an int (or a class name).")
        if self.family == "multiple_choice":
            limit, what = num_choices, f"the {num_choices} choices"
        else:
            limit, what = (
                (len(self.label_names), f"label_names={self.label_names}") if self.label_names else (None, "")
            )
        if label < 0 or (limit is not None and label >= limit):
            raise ValueError(f"{self.label_field}={label} is out of range for {what or 'a class id'}.")
        return label


@dataclass
class GPT1TaskCollator:
    """Pads `GPT1TaskEncoder` outputs into a batch of tensors: right padding with the tokenizer's pad token to the
    longest sequence in the batch (or a multiple of `pad_to_multiple_of`). Handles (batch, T) and (batch, S, T) inputs.

    Examples with fewer sequences than the batch's most (multiple choice with 4 and 5 choices) get padding choices
    at their end: `_pad_` tokens, an all-zero `attention_mask` row (the double-heads model's mark of a padding choice,
    which it scores the dtype's minimum and leaves out of the losses) and `mc_token_ids` 0. `pad_choices_to` pads
    every multi-sequence batch to that many (the task's largest number of choices), so that the logits of every
    batch have one width and concatenate, across batches and processes.
    """

    tokenizer: PreTrainedTokenizerBase
    pad_to_multiple_of: int | None = None
    pad_choices_to: int | None = None

    def __post_init__(self):
        count = self.pad_choices_to
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError(f"pad_choices_to={count!r} must be a positive int (the most choices of an example).")

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if len(features) == 0:
            raise ValueError("features is empty: a batch needs at least one example.")
        # input_ids of an example: T ints, or S sequences (lists or, from a formatted dataset, tensors).
        multi_sequence = not isinstance(_as_list(features[0]["input_ids"][0]), int)
        if multi_sequence:
            num_sequences = [len(feature["input_ids"]) for feature in features]
            width = max(num_sequences) if self.pad_choices_to is None else self.pad_choices_to
            if max(num_sequences) > width:
                example = num_sequences.index(max(num_sequences))
                raise ValueError(
                    f"Example {example} of the batch has {max(num_sequences)} sequences, more than "
                    f"pad_choices_to={width}."
                )
            sequences = []
            for feature, count in zip(features, num_sequences):
                for ids, mask in zip(feature["input_ids"], feature["attention_mask"]):
                    sequences.append({"input_ids": _as_list(ids), "attention_mask": _as_list(mask)})
                # Padding choices: empty, so padded to `_pad_` tokens only with an all-zero attention mask.
                sequences += [{"input_ids": [], "attention_mask": []}] * (width - count)
        else:
            sequences = [
                {"input_ids": _as_list(feature["input_ids"]), "attention_mask": _as_list(feature["attention_mask"])}
                for feature in features
            ]
        # Right padding whatever the tokenizer's padding_side: mc_token_ids index the unpadded sequences.
        batch = dict(
            self.tokenizer.pad(
                sequences,
                padding=True,
                pad_to_multiple_of=self.pad_to_multiple_of,
                padding_side="right",
                return_tensors="pt",
            )
        )
        if multi_sequence:
            batch = {key: value.view(len(features), width, -1) for key, value in batch.items()}  # (B, S, T)
            mc_token_ids = [
                [*_as_list(feature["mc_token_ids"]), *[0] * (width - count)]
                for feature, count in zip(features, num_sequences)
            ]
        else:
            mc_token_ids = [_as_list(feature["mc_token_ids"]) for feature in features]
        batch["mc_token_ids"] = torch.tensor(mc_token_ids, dtype=torch.long)  # (B,) or (B, S)
        with_labels = sum("labels" in feature for feature in features)
        if with_labels not in (0, len(features)):
            raise ValueError(f"Only {with_labels} of the {len(features)} examples have labels: all or none must.")
        if with_labels:
            labels = [_as_list(feature["labels"]) for feature in features]
            is_score = any(isinstance(label, float) for label in labels)
            batch["labels"] = torch.tensor(labels, dtype=torch.float32 if is_score else torch.long)  # (B,)
        return batch


def _kept_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """How many tokens each text of a pair keeps in `budget`: the rule of `tokenizers`' `longest_first` truncation
    (tokenizers/src/utils/truncation.rs). The shorter keeps all and the longer the rest; when both are over half the
    budget each keeps half, an odd budget's last token going to the longer (on a tie, the second)."""
    if len_a + len_b <= budget:
        return len_a, len_b
    short, long = sorted((len_a, len_b))
    long = short if short > budget else max(short, budget - short)
    if short + long > budget:
        short, long = budget // 2, budget // 2 + budget % 2
    return (long, short) if len_a > len_b else (short, long)


def _template(tokenizer: PreTrainedTokenizerBase, pair: bool) -> tuple[list[int], ...]:
    """The special-token ids the tokenizer's template puts around one text (before, after) or two (before, between,
    after), read off the encoding of a probe: for GPT-1, ([start], [extract]) and ([start], [delimiter], [extract])."""
    probe = tokenizer(["a"], ["b"]) if pair else tokenizer(["a"])
    pieces = [[]]
    for token, sequence in zip(probe["input_ids"][0], probe.sequence_ids(0)):
        if sequence is None:
            pieces[-1].append(token)
        elif len(pieces) == sequence + 1:  # the first token of text `sequence`: the special tokens after it follow
            pieces.append([])
    return tuple(pieces)


def _valid_unicode(text: str, what: str) -> str:
    """`text` if it encodes as UTF-8; a lone surrogate (from bytes decoded with errors="surrogateescape", or a broken
    JSON escape) is a ValueError naming it, where `tokenizers` would raise a TypeError that does not."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{what} is not valid Unicode: {text[error.start : error.end]!r} at index {error.start} is a lone "
            f"surrogate, which no tokenizer can encode (decode the source bytes with errors='replace')."
        ) from None
    return text


def _as_list(value: Any) -> Any:
    """Tensors and arrays (a `datasets` torch / numpy format) as plain Python values."""
    return value.tolist() if hasattr(value, "tolist") else value


__all__ = [
    "ENTAILMENT_LABELS",
    "KEEP_MODES",
    "TASK_FAMILIES",
    "TEXT_FIELDS",
    "GPT1TaskCollator",
    "GPT1TaskEncoder",
]
