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

Truncation is the tokenizer's own (`longest_first`: the longer text loses tokens first; texts lose their ends) to
`max_length` tokens, special tokens counted, so the extract token is never cut. `max_length` defaults to
`tokenizer.model_max_length` (512): give the model's `n_positions` when it is smaller. For similarity the text
budget is made even when truncation is needed, so that both orders keep the same tokens of each text. Texts far
longer than the budget are cut at a word end first, only to spare `tokenizers` a quadratic cost; the tokens kept
are those the tokenizer's truncation alone keeps (tested).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from .configuration_gpt1 import TASK_FAMILIES
from .tokenization_gpt1 import EXTRACT_TOKEN

FAMILIES = TASK_FAMILIES  # the former name, kept for existing imports
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

    Use it with `datasets`: `dataset.map(encoder, remove_columns=dataset.column_names)`.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        family: str,
        max_length: int | None = None,
        label_names: Sequence[str] | None = None,
        label_field: str | None = None,
    ):
        if family not in TASK_FAMILIES:
            raise ValueError(f"family={family!r} is not one of {TASK_FAMILIES}.")
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

    def __call__(self, example: Mapping[str, Any]) -> dict[str, Any]:
        first = self._text(example, TEXT_FIELDS[self.family][0])
        if self.family == "classification":
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
        max_length = self.max_length
        budget = max_length - self.num_special_tokens
        if sum(lengths) > budget and budget % 2 == 1:
            # `longest_first` gives an odd budget's last token to the longer text, so the two orders of two texts
            # of one length would differ; with an even budget each text keeps the same tokens in both.
            max_length -= 1
        return self.tokenizer(
            [text_a, text_b], [text_b, text_a], truncation="longest_first", max_length=max_length
        )  # input_ids: (2, T), same T for both orders

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
    longest sequence in the batch (or a multiple of `pad_to_multiple_of`). Handles (batch, T) and
    (batch, S, T) inputs; every example of a batch must have the same number of sequences S.
    """

    tokenizer: PreTrainedTokenizerBase
    pad_to_multiple_of: int | None = None

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if len(features) == 0:
            raise ValueError("features is empty: a batch needs at least one example.")
        # input_ids of an example: T ints, or S sequences (lists or, from a formatted dataset, tensors).
        multi_sequence = not isinstance(_as_list(features[0]["input_ids"][0]), int)
        if multi_sequence:
            num_sequences = [len(feature["input_ids"]) for feature in features]
            if len(set(num_sequences)) != 1:
                raise ValueError(
                    f"Every example of a batch needs the same number of sequences; got num_sequences={num_sequences}."
                )
            sequences = [
                {"input_ids": _as_list(ids), "attention_mask": _as_list(mask)}
                for feature in features
                for ids, mask in zip(feature["input_ids"], feature["attention_mask"])
            ]
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
            batch = {key: value.view(len(features), num_sequences[0], -1) for key, value in batch.items()}  # (B, S, T)

        batch["mc_token_ids"] = torch.tensor(
            [_as_list(feature["mc_token_ids"]) for feature in features], dtype=torch.long
        )  # (B,) or (B, S)
        with_labels = sum("labels" in feature for feature in features)
        if with_labels not in (0, len(features)):
            raise ValueError(f"Only {with_labels} of the {len(features)} examples have labels: all or none must.")
        if with_labels:
            labels = [_as_list(feature["labels"]) for feature in features]
            is_score = any(isinstance(label, float) for label in labels)
            batch["labels"] = torch.tensor(labels, dtype=torch.float32 if is_score else torch.long)  # (B,)
        return batch


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


__all__ = ["ENTAILMENT_LABELS", "FAMILIES", "TASK_FAMILIES", "TEXT_FIELDS", "GPT1TaskCollator", "GPT1TaskEncoder"]
