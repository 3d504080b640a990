"""The data of a pre-training run: the corpus (documents or token shards), the tokenizer, and the blocks of
`--block_size` tokens in their loaders.

Documents are tokenised with `datasets.map`, separated by the tokenizer's start/end token and packed into blocks
(recipes/data/corpus.py); token shards (recipes/data/token_shards.py) are blocks of a memory-mapped stream already.
"""

from pathlib import Path

import torch
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, default_data_collator

from modeling_gpt2 import load_gpt2_tokenizer

from ..core.errors import RecipeError
from ..core.run_folder import fingerprint_tokenizer
from ..data.corpus import load_documents, pack_blocks, split_blocks
from ..data.token_shards import ShardIndex, TokenBlocks
from ..data.tokenizer import check_vocab_size, load_tokenizer, train_tokenizer


def read_corpus(args):
    """The `ShardIndex` of `--token_shards`, else the documents of the files or Hub dataset the options name
    (recipes/data/corpus.py `load_documents`)."""
    if args.token_shards:
        return ShardIndex.read(args.token_shards)
    return load_documents(
        train_files=args.train_file,
        validation_files=args.validation_file,
        dataset_name=args.dataset_name,
        dataset_config_name=args.dataset_config_name,
        train_split=args.dataset_split,
        validation_split=args.validation_split_name,
        text_column=args.text_column,
        document_boundary=args.document_boundary,
    )


def get_tokenizer(accelerator, args, documents, resume_dir):
    """`--tokenizer`: "gpt2" (OpenAI's vocabulary, offline), "train" (learned from the training documents), or a
    folder / Hub name. A resumed run takes the tokenizer saved in its checkpoint."""
    choice = args.tokenizer
    if resume_dir is not None and (Path(resume_dir) / "tokenizer_config.json").is_file():
        return load_tokenizer(resume_dir, "The checkpoint")
    if choice == "gpt2":
        return load_gpt2_tokenizer()
    if choice == "train":
        check_vocab_size(args.model_type, args.vocab_size)  # on every process, before the others wait for the main one
        # Learned once, by the main process, and read back by all: GPT-1 style BPE training is not reproducible from
        # run to run, so two processes could learn two different vocabularies.
        folder = Path(args.output_dir) / "tokenizer"
        if accelerator.is_main_process:
            train_tokenizer(args.model_type, documents["train"], args.vocab_size).save_pretrained(folder)
        accelerator.wait_for_everyone()
        return AutoTokenizer.from_pretrained(folder)
    return load_tokenizer(choice)  # a folder or a Hub name


def check_shard_tokenizer(index: ShardIndex, tokenizer, name: str):
    """The tokenizer is the one that wrote the token shards (the same vocabulary, merges and special tokens)."""
    if fingerprint_tokenizer(tokenizer) != index.content["tokenizer_fingerprint"]:
        raise RecipeError(
            f"The tokenizer ({name}) is not the one that wrote the token shards in {index.folder}: their ids would "
            f"mean other tokens. Leave out --tokenizer (the shards' own is used) or prepare the shards again with it."
        )


def document_separator(tokenizer) -> int:
    """The token before every document: GPT-2's `<|endoftext|>`, GPT-1's `_start_` (the bos token, else eos)."""
    separator = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if separator is None:
        raise RecipeError("The tokenizer has neither a bos nor an eos token to separate documents with.")
    return separator


def get_block_size(args, config) -> int:
    """`--block_size`, default the model's context; never longer than it."""
    if args.block_size is not None and args.block_size > config.n_positions:
        raise RecipeError(
            f"--block_size {args.block_size} is larger than the model's n_positions={config.n_positions}: "
            f"the position table has no row for the tokens past {config.n_positions}."
        )
    return args.block_size or config.n_positions


def get_blocks(accelerator, args, tokenizer, documents, block_size: int):
    """(training, validation) blocks of `block_size` tokens: of the token shards (read by memory map), else of the
    documents, tokenised and packed with `datasets`."""
    if isinstance(documents, ShardIndex):
        return documents.blocks("train", block_size), documents.blocks("validation", block_size)
    separator = document_separator(tokenizer)
    with accelerator.main_process_first():  # the main process tokenises; the others read the datasets cache
        packed = {
            split: pack_blocks(texts, tokenizer, block_size, separator, args.preprocessing_num_workers, split)
            for split, texts in documents.items()
        }
    if "validation" in packed:
        return packed["train"], packed["validation"]
    return split_blocks(packed["train"], args.validation_split_percentage / 100)


def get_dataloaders(accelerator, args, tokenizer, documents, block_size: int):
    """Blocks of `--block_size` tokens (`get_blocks`): a shuffled training loader and an ordered validation loader."""
    train_blocks, validation_blocks = get_blocks(accelerator, args, tokenizer, documents, block_size)
    for name, blocks in (("training", train_blocks), ("validation", validation_blocks)):
        if blocks.num_rows == 0:
            raise RecipeError(
                f"The {name} corpus does not fill one block of --block_size {block_size} tokens: give more "
                f"text or a smaller --block_size."
            )
    if args.max_eval_samples is not None and isinstance(validation_blocks, TokenBlocks):
        validation_blocks = validation_blocks.select_first(args.max_eval_samples)
    elif args.max_eval_samples is not None:
        validation_blocks = validation_blocks.select(range(min(args.max_eval_samples, validation_blocks.num_rows)))
    per_step = args.per_device_train_batch_size * accelerator.num_processes
    if train_blocks.num_rows < per_step:
        raise RecipeError(
            f"The training corpus fills {train_blocks.num_rows} blocks of {block_size} tokens, fewer than one "
            f"batch of {args.per_device_train_batch_size} x {accelerator.num_processes} process(es)."
        )
    if not isinstance(train_blocks, TokenBlocks):  # token shards' blocks are tensors already
        train_blocks, validation_blocks = train_blocks.with_format("torch"), validation_blocks.with_format("torch")
    train_dataloader = DataLoader(
        train_blocks,
        shuffle=True,
        batch_size=args.per_device_train_batch_size,
        collate_fn=default_data_collator,
        drop_last=True,  # every micro-batch is full, so accumulation and data parallelism equal one large batch
        # Its own generator: the loader must not draw from the global RNG, which a resumed run restores exactly.
        generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloader = DataLoader(
        validation_blocks, batch_size=args.per_device_eval_batch_size, collate_fn=default_data_collator
    )
    return train_dataloader, eval_dataloader


__all__ = [
    "check_shard_tokenizer",
    "document_separator",
    "get_block_size",
    "get_blocks",
    "get_dataloaders",
    "get_tokenizer",
    "read_corpus",
]
