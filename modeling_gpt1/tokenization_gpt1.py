"""The GPT-1 tokenizer (Radford et al. 2018): lower-cased BPE with `</w>` word ends, built on `tokenizers`.

What GPT-1 did, and how it is rebuilt here:
- Text is cleaned and lower-cased, then split into words BERT-style (whitespace and punctuation). The released code
  used ftfy + spaCy for this; transformers' port of openai-gpt uses `BertNormalizer(lowercase=True)` and
  `BertPreTokenizer`, and so does this file.
- Words are split by BPE whose word-final symbols carry a `</w>` suffix ("hello" -> "hel", "lo</w>"). Decoding
  joins the words with one space each ("my lord!" -> "my lord !").
- Fine-tuning wraps every input in special tokens (paper section 3.3): start, delimiter and extract, named
  `_start_`, `_delimiter_` and `_classify_` in the released code. They are the tokenizer's own post-processor
  template, so `tok(text)` gives `_start_ text _classify_` and `tok(a, b)` gives `_start_ a _delimiter_ b _classify_`,
  and a folder saved with `save_pretrained` reloads with `AutoTokenizer.from_pretrained` doing the same. Text for
  language-model pre-training is encoded with `add_special_tokens=False`.
- transformers' names for them: `bos_token` = start, `sep_token` = delimiter, `cls_token` = extract; `pad_token` =
  `_pad_` (GPT-1 had none: the batch was masked), `unk_token` = `<unk>`.

Special tokens are matched in raw text as well, so a text that literally contains `_classify_` gets the extract token;
pass `split_special_tokens=True` to the tokenizer call where user text may contain these strings.

Two ways to get a tokenizer:
- `train_gpt1_tokenizer(texts, vocab_size)` / `train_gpt1_tokenizer_from_files(files, vocab_size)` learn a vocabulary
  from a corpus; the special tokens are its first ids (0-4, in the order of `SPECIAL_TOKENS`).
- `gpt1_tokenizer_from_released(encoder_json, merges_bpe)` reads OpenAI's released files (`encoder_bpe_40000.json`,
  40,478 entries, and `vocab_40000.bpe`, 40,000 merges after a version line). The special tokens follow the released
  entries, so `_start_`, `_delimiter_`, `_classify_` get ids 40478, 40479, 40480 as in the released `train.py`,
  then `_pad_` 40481 and `<unk>` 40482 (the released code sent unknown symbols to id 0): 40,483 tokens in all.
"""

import json
import os
from collections.abc import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

START_TOKEN = "_start_"
DELIMITER_TOKEN = "_delimiter_"
EXTRACT_TOKEN = "_classify_"
PAD_TOKEN = "_pad_"
UNK_TOKEN = "<unk>"
# Order matters: in the released layout the first three take ids 40478-40480, as in OpenAI's train.py.
SPECIAL_TOKENS = (START_TOKEN, DELIMITER_TOKEN, EXTRACT_TOKEN, PAD_TOKEN, UNK_TOKEN)
END_OF_WORD_SUFFIX = "</w>"
GPT1_N_POSITIONS = 512  # GPT-1's context; the default `model_max_length`


def _new_backend(bpe: models.BPE) -> Tokenizer:
    """A `tokenizers.Tokenizer` around `bpe` with GPT-1's normalisation, word splitting and decoding."""
    backend = Tokenizer(bpe)
    # clean_text, CJK characters split off, accents stripped, lower-cased: transformers' openai-gpt does the same.
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.BPEDecoder(suffix=END_OF_WORD_SUFFIX)
    return backend


def with_task_template(backend: Tokenizer, model_max_length: int) -> PreTrainedTokenizerFast:
    """Adds the special tokens and the paper's input template to `backend`, then wraps it for transformers."""
    if not isinstance(model_max_length, int) or model_max_length < 3:
        raise ValueError(
            f"model_max_length={model_max_length!r} must be an int of at least 3 (start, delimiter and extract)."
        )
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    backend.post_processor = processors.TemplateProcessing(
        single=f"{START_TOKEN} $A {EXTRACT_TOKEN}",
        pair=f"{START_TOKEN} $A {DELIMITER_TOKEN} $B {EXTRACT_TOKEN}",
        special_tokens=[
            (token, backend.token_to_id(token)) for token in (START_TOKEN, DELIMITER_TOKEN, EXTRACT_TOKEN)
        ],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=START_TOKEN,
        sep_token=DELIMITER_TOKEN,
        cls_token=EXTRACT_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        model_max_length=model_max_length,
        # GPT-1 has no segment embeddings: the delimiter alone separates the two texts.
        model_input_names=["input_ids", "attention_mask"],
    )


def _train(train_backend, vocab_size: int, min_frequency: int, model_max_length: int) -> PreTrainedTokenizerFast:
    if not isinstance(vocab_size, int) or vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(
            f"vocab_size={vocab_size!r} must be an int larger than the {len(SPECIAL_TOKENS)} special tokens "
            f"(GPT-1: 40,000 merges, 40,478 tokens)."
        )
    if not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"min_frequency={min_frequency!r} must be an int of at least 1.")
    backend = _new_backend(models.BPE(unk_token=UNK_TOKEN, end_of_word_suffix=END_OF_WORD_SUFFIX))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        end_of_word_suffix=END_OF_WORD_SUFFIX,
        show_progress=False,
    )
    train_backend(backend, trainer)
    if backend.get_vocab_size() <= len(SPECIAL_TOKENS):
        raise ValueError("The training corpus has no text: the vocabulary holds only the special tokens.")
    return with_task_template(backend, model_max_length)


def train_gpt1_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    min_frequency: int = 2,
    model_max_length: int = GPT1_N_POSITIONS,
) -> PreTrainedTokenizerFast:
    """Learns a GPT-1-style BPE vocabulary of `vocab_size` tokens (special tokens included) from `texts`.

    `texts` is any iterable of strings (lines, documents, a `datasets` column). Pairs seen fewer than `min_frequency`
    times are not merged; if the corpus has too few distinct pairs the vocabulary comes out smaller.
    """
    if isinstance(texts, str):
        raise ValueError(
            f"texts must be an iterable of strings, not one string ({texts[:40]!r}...): wrap it in a list, "
            f"or use train_gpt1_tokenizer_from_files for a path."
        )
    return _train(
        lambda backend, trainer: backend.train_from_iterator(texts, trainer=trainer),
        vocab_size,
        min_frequency,
        model_max_length,
    )


def train_gpt1_tokenizer_from_files(
    files: str | os.PathLike | Sequence[str | os.PathLike],
    vocab_size: int,
    min_frequency: int = 2,
    model_max_length: int = GPT1_N_POSITIONS,
) -> PreTrainedTokenizerFast:
    """`train_gpt1_tokenizer` on the UTF-8 text files `files` (one path or several), read by `tokenizers` itself."""
    paths = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    if not paths:
        raise ValueError("files is empty: give at least one text file to train on.")
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Training file {os.fspath(path)!r} does not exist.")
    return _train(
        lambda backend, trainer: backend.train([os.fspath(path) for path in paths], trainer=trainer),
        vocab_size,
        min_frequency,
        model_max_length,
    )


def gpt1_tokenizer_from_released(
    encoder_json: str | os.PathLike,
    merges_bpe: str | os.PathLike,
    model_max_length: int = GPT1_N_POSITIONS,
) -> PreTrainedTokenizerFast:
    """The GPT-1 tokenizer from OpenAI's released vocabulary files, in their own layout.

    `encoder_json` (`encoder_bpe_40000.json`): a JSON object token -> id, ids 0..n-1, word-final tokens ending in
    `</w>`. `merges_bpe` (`vocab_40000.bpe`): a `#version` line, then one merge per line, two symbols separated by a
    space, in merge order. The special tokens are appended after the n entries (see the module docstring).
    """
    with open(encoder_json, encoding="utf-8") as file:
        vocab = json.load(file)
    if not isinstance(vocab, dict) or not vocab:
        raise ValueError(f"{os.fspath(encoder_json)!r} must hold a non-empty JSON object token -> id.")
    bad_ids = [
        (token, index) for token, index in vocab.items() if not isinstance(index, int) or isinstance(index, bool)
    ]
    if bad_ids:
        raise ValueError(f"{os.fspath(encoder_json)!r}: ids must be ints; got {bad_ids[:3]}.")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise ValueError(
            f"{os.fspath(encoder_json)!r}: the ids must be 0..{len(vocab) - 1}, each once; "
            f"got {len(set(vocab.values()))} distinct ids from {min(vocab.values())} to {max(vocab.values())}."
        )
    clashes = [token for token in SPECIAL_TOKENS if token in vocab]
    if clashes:
        raise ValueError(f"{os.fspath(encoder_json)!r} already holds the special tokens {clashes}.")

    with open(merges_bpe, encoding="utf-8") as file:
        lines = file.read().split("\n")
    merges = []
    for line_number, line in enumerate(lines, start=1):
        if (line_number == 1 and line.startswith("#version")) or not line.strip():
            continue
        pair = line.split()
        if len(pair) != 2:
            raise ValueError(
                f"{os.fspath(merges_bpe)!r} line {line_number}: {line!r} is not a merge of two symbols 'a b'."
            )
        # Checked here: `tokenizers` panics (not a Python Exception) when a merge's result is not in the vocabulary.
        missing = [symbol for symbol in (*pair, "".join(pair)) if symbol not in vocab]
        if missing:
            raise ValueError(
                f"{os.fspath(merges_bpe)!r} line {line_number}: merge {line!r} uses {missing[0]!r}, "
                f"which {os.fspath(encoder_json)!r} does not hold."
            )
        merges.append(tuple(pair))

    first_special_id = len(vocab)
    vocab.update({token: first_special_id + offset for offset, token in enumerate(SPECIAL_TOKENS)})
    bpe = models.BPE(vocab=vocab, merges=merges, unk_token=UNK_TOKEN, end_of_word_suffix=END_OF_WORD_SUFFIX)
    return with_task_template(_new_backend(bpe), model_max_length)


__all__ = [
    "DELIMITER_TOKEN",
    "EXTRACT_TOKEN",
    "PAD_TOKEN",
    "SPECIAL_TOKENS",
    "START_TOKEN",
    "UNK_TOKEN",
    "gpt1_tokenizer_from_released",
    "with_task_template",
    "train_gpt1_tokenizer",
    "train_gpt1_tokenizer_from_files",
]
