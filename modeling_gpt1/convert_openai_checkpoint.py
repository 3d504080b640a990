"""Convert OpenAI's released GPT-1 checkpoint (openai/finetune-transformer-lm, folder `model/`) into a model folder.

    python -m modeling_gpt1.convert_openai_checkpoint --openai_checkpoint_folder_path model/ --output_dir gpt1/

The release is numpy arrays without names: `params_shapes.json` lists the shapes, and `params_0.npy` ..
`params_9.npy` are one flat float32 array cut into 10 shards. Concatenated and split by the shapes, the arrays come in
the order the released `train.py` creates its variables:

- the learned position embedding (n_ctx, n_embd) = (512, 768), then the token embedding (n_vocab, n_embd) =
  (40478, 768). (train.py joins them, with the task tokens between, into one variable `model/we` of
  n_vocab + n_special + n_ctx rows; a checkpoint saved in that one-array layout converts too.)
- per block `model/h{i}/...`, the 12 arrays of `LAYER_KEY_MAP`, in its order. Conv1D weights are (1, in, out): the
  layout of transformers' Conv1D once the leading 1 is dropped, transposed to nn.Linear's (out, in) here.

With the vocabulary files of the release (`encoder_bpe_40000.json`, `vocab_40000.bpe`), the tokenizer of
`tokenization_gpt1.gpt1_tokenizer_from_released` is saved next to the model, and the token embedding gains one row per
special token (`_start_`, `_delimiter_`, `_classify_`, `_pad_`, `<unk>`), drawn from N(0, 0.02) as train.py drew its
task-token rows. The arrays are read with `numpy.load(..., allow_pickle=False)`: nothing is unpickled.
"""

import argparse
import json
import os

import numpy as np
import torch

from .configuration_gpt1 import GPT1OriginsConfig
from .modeling_gpt1 import GPT1OriginsLMHeadModel
from .tokenization_gpt1 import gpt1_tokenizer_from_released

SHAPES_FILE = "params_shapes.json"
ENCODER_FILE = "encoder_bpe_40000.json"
MERGES_FILE = "vocab_40000.bpe"

# The released arrays before the blocks (two-array layout) and the parameters they become.
EMBEDDING_KEY_MAP = {
    "model/positions": "transformer.positions_embed.weight",
    "model/tokens": "transformer.tokens_embed.weight",
}
# One block's arrays, in the release's order: the variable of train.py -> the parameter of GPT1OriginsLMHeadModel.
LAYER_KEY_MAP = {
    "model/h{i}/attn/c_attn/w:0": "transformer.h.{i}.attn.c_attn.weight",
    "model/h{i}/attn/c_attn/b:0": "transformer.h.{i}.attn.c_attn.bias",
    "model/h{i}/attn/c_proj/w:0": "transformer.h.{i}.attn.c_proj.weight",
    "model/h{i}/attn/c_proj/b:0": "transformer.h.{i}.attn.c_proj.bias",
    "model/h{i}/ln_1/g:0": "transformer.h.{i}.ln_1.weight",
    "model/h{i}/ln_1/b:0": "transformer.h.{i}.ln_1.bias",
    "model/h{i}/mlp/c_fc/w:0": "transformer.h.{i}.mlp.c_fc.weight",
    "model/h{i}/mlp/c_fc/b:0": "transformer.h.{i}.mlp.c_fc.bias",
    "model/h{i}/mlp/c_proj/w:0": "transformer.h.{i}.mlp.c_proj.weight",
    "model/h{i}/mlp/c_proj/b:0": "transformer.h.{i}.mlp.c_proj.bias",
    "model/h{i}/ln_2/g:0": "transformer.h.{i}.ln_2.weight",
    "model/h{i}/ln_2/b:0": "transformer.h.{i}.ln_2.bias",
}


def load_released_arrays(folder: str | os.PathLike) -> list[np.ndarray]:
    """The released arrays in order: the shards `params_{n}.npy` (n = 0, 1, ... while they exist) concatenated, then
    split and reshaped by `params_shapes.json`."""
    shapes_path = os.path.join(folder, SHAPES_FILE)
    if not os.path.isfile(shapes_path):
        raise FileNotFoundError(f"{shapes_path!r} does not exist: is {os.fspath(folder)!r} OpenAI's `model/` folder?")
    with open(shapes_path, encoding="utf-8") as file:
        shapes = [tuple(shape) for shape in json.load(file)]
    shards = []
    while os.path.isfile(path := os.path.join(folder, f"params_{len(shards)}.npy")):
        shards.append(np.load(path, allow_pickle=False).reshape(-1))
    if not shards:
        raise FileNotFoundError(f"No `params_0.npy` in {os.fspath(folder)!r}.")
    flat = np.concatenate(shards)
    sizes = [int(np.prod(shape)) for shape in shapes]
    if flat.size != sum(sizes):
        raise ValueError(
            f"The {len(shards)} shards hold {flat.size} numbers, but {SHAPES_FILE} describes {sum(sizes)}."
        )
    return [part.reshape(shape) for part, shape in zip(np.split(flat, np.cumsum(sizes)[:-1]), shapes)]


def released_to_state_dict(
    arrays: list[np.ndarray], n_vocab: int, n_ctx: int | None = None
) -> dict[str, torch.Tensor]:
    """Parameter name -> tensor, by `EMBEDDING_KEY_MAP` and `LAYER_KEY_MAP`.

    `n_vocab` is the number of BPE tokens (entries of `encoder_bpe_40000.json`). In the one-array layout (`model/we`
    = tokens, task tokens, positions) `n_ctx` says how many of its last rows are positions; the task-token rows stay
    after the vocabulary, at the ids train.py gave them.
    """
    per_layer = len(LAYER_KEY_MAP)
    if len(arrays) > 2 and arrays[0].ndim == 2 and arrays[1].ndim == 2:  # the release: positions, tokens, blocks
        positions, tokens, blocks = arrays[0], arrays[1], arrays[2:]
    elif len(arrays) > 1 and arrays[0].ndim == 2:  # train.py's one `model/we`, then blocks
        embedding, blocks = arrays[0], arrays[1:]
        if n_ctx is None or not 0 < n_ctx <= embedding.shape[0] - n_vocab:
            raise ValueError(
                f"The checkpoint stores one embedding `model/we` of {embedding.shape[0]} rows (tokens, task tokens, "
                f"positions); with n_vocab={n_vocab}, n_ctx={n_ctx} does not split it."
            )
        tokens, positions = embedding[:-n_ctx], embedding[-n_ctx:]
    else:
        raise ValueError(f"The checkpoint does not start with its embeddings: shapes {[a.shape for a in arrays[:2]]}.")
    if len(blocks) % per_layer != 0:
        raise ValueError(
            f"{len(blocks)} arrays follow the embeddings; the release has {per_layer} per block "
            f"({', '.join(LAYER_KEY_MAP)})."
        )
    if tokens.shape[0] < n_vocab:
        raise ValueError(f"The token embedding has {tokens.shape[0]} rows, but the vocabulary has {n_vocab} tokens.")

    state_dict = {
        EMBEDDING_KEY_MAP["model/positions"]: torch.from_numpy(np.ascontiguousarray(positions)),
        EMBEDDING_KEY_MAP["model/tokens"]: torch.from_numpy(np.ascontiguousarray(tokens)),
    }
    n_layer = len(blocks) // per_layer
    for i in range(n_layer):
        for offset, (source, target) in enumerate(LAYER_KEY_MAP.items()):
            array = blocks[i * per_layer + offset]
            if source.endswith("/w:0"):
                if array.ndim != 3 or array.shape[0] != 1:
                    raise ValueError(f"{source.format(i=i)} has shape {array.shape}, expected (1, in, out).")
                array = array[0].T  # (1, in, out) -> (out, in), nn.Linear's layout
            state_dict[target.format(i=i)] = torch.from_numpy(np.ascontiguousarray(array))
    return state_dict


def convert_openai_checkpoint(
    openai_checkpoint_folder_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    n_head: int = 12,
    n_ctx: int | None = None,
    seed: int = 0,
) -> GPT1OriginsLMHeadModel:
    """Converts the release in `openai_checkpoint_folder_path` and saves model and tokenizer to `output_dir`.

    Sizes are read from the arrays; the head count is not in them (12 in the paper). `n_ctx` is only needed for the
    one-array layout. `seed` fixes the N(0, 0.02) rows of the special tokens.
    """
    folder = os.fspath(openai_checkpoint_folder_path)
    arrays = load_released_arrays(folder)
    encoder_path, merges_path = os.path.join(folder, ENCODER_FILE), os.path.join(folder, MERGES_FILE)
    for path in (encoder_path, merges_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path!r} does not exist: the release ships its BPE vocabulary next to the arrays."
            )
    tokenizer = gpt1_tokenizer_from_released(encoder_path, merges_path)
    with open(encoder_path, encoding="utf-8") as file:
        n_vocab = len(json.load(file))  # 40,478 BPE tokens; the tokenizer appends its special tokens after them

    state_dict = released_to_state_dict(arrays, n_vocab=n_vocab, n_ctx=n_ctx)
    tokens = state_dict[EMBEDDING_KEY_MAP["model/tokens"]]
    positions = state_dict[EMBEDDING_KEY_MAP["model/positions"]]
    # Rows for the special tokens the checkpoint does not have (all five for the release), as train.py drew them:
    # `np.random.randn(n_special, n_embd) * 0.02`.
    missing = len(tokenizer) - tokens.shape[0]
    if missing < 0:
        raise ValueError(
            f"The token embedding has {tokens.shape[0]} rows, the tokenizer only {len(tokenizer)} tokens."
        )
    generator = torch.Generator().manual_seed(seed)
    new_rows = torch.randn(missing, tokens.shape[1], generator=generator, dtype=tokens.dtype) * 0.02
    state_dict[EMBEDDING_KEY_MAP["model/tokens"]] = torch.cat([tokens, new_rows])

    n_layer = sum(key.endswith(".ln_2.bias") for key in state_dict)
    config = GPT1OriginsConfig(
        vocab_size=len(tokenizer),
        n_positions=positions.shape[0],
        n_embd=positions.shape[1],
        n_layer=n_layer,
        n_head=n_head,
        start_token_id=tokenizer.bos_token_id,
        delimiter_token_id=tokenizer.sep_token_id,
        extract_token_id=tokenizer.cls_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT1OriginsLMHeadModel(config)
    missing_keys, unexpected_keys = model.load_state_dict(state_dict, strict=False)
    if unexpected_keys or set(missing_keys) != {"lm_head.weight"}:
        raise ValueError(f"Conversion left missing keys {missing_keys} and unexpected keys {unexpected_keys}.")
    model.tie_weights()
    tokenizer.model_max_length = config.n_positions

    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return model


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--openai_checkpoint_folder_path",
        required=True,
        help="OpenAI's `model/` folder: params_shapes.json, params_0.npy .. params_9.npy, encoder_bpe_40000.json, "
        "vocab_40000.bpe.",
    )
    parser.add_argument("--output_dir", required=True, help="Where to save the model and tokenizer.")
    parser.add_argument("--n_head", type=int, default=12, help="Attention heads (not stored in the arrays).")
    parser.add_argument("--n_ctx", type=int, default=None, help="Positions, for the one-array `model/we` layout only.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the special tokens' N(0, 0.02) rows.")
    args = parser.parse_args(argv)
    model = convert_openai_checkpoint(
        args.openai_checkpoint_folder_path, args.output_dir, n_head=args.n_head, n_ctx=args.n_ctx, seed=args.seed
    )
    config = model.config
    print(
        f"Saved GPT-1 ({config.n_layer} layers, {config.n_embd} wide, {config.n_head} heads, {config.n_positions} "
        f"positions, {config.vocab_size} tokens) and its tokenizer to {args.output_dir}"
    )


if __name__ == "__main__":
    main()
