"""Checks that every causal LM of gpt-origins must pass, shared by tests/gpt1 and tests/gpt2.

Each function takes a model class and a tiny config and asserts one equivalence (sdpa == eager, cached == uncached,
padded == alone, checkpointed == plain, saved == loaded, remote code == installed code, accumulated == one batch), and
the save / push API both packages share (`hub.py`), with the upload captured instead of sent. transformers' own test
mixins are not shipped in its wheel, hence this module.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest
import torch
from huggingface_hub.errors import EntryNotFoundError
from torch.testing import assert_close
from transformers.dynamic_module_utils import get_relative_import_files

from modeling_gpt2.compat import cache_of, enable_activation_checkpointing
from modeling_gpt2.loading import CONV1D_PROJECTIONS
from utils.check_copies import SHARED_FILES  # the infrastructure files both packages share; remote code needs them


def in_transformers_layout(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """Our parameter (or its gradient) `name` as transformers' model holds it: the projections are its Conv1D
    (in, out), ours nn.Linear (out, in)."""
    return tensor.T if name.endswith(tuple(f"{p}.weight" for p in CONV1D_PROJECTIONS)) else tensor


def build(model_cls, config, attn_implementation="eager", seed=0):
    """A model in eval mode with the given attention backend, deterministic weights."""
    torch.manual_seed(seed)
    config._attn_implementation = attn_implementation
    return model_cls(config).eval()


def random_ids(config, batch_size, seq_len, seed=1, low=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(low, config.vocab_size, (batch_size, seq_len), generator=generator)


def left_pad(prompts: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad 1D prompts into (B, T) ids and mask."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = prompt
        mask[row, width - len(prompt) :] = 1
    return ids, mask


def check_eager_equals_sdpa(model_cls, config):
    eager = build(model_cls, config, "eager")
    sdpa = build(model_cls, config, "sdpa")
    sdpa.load_state_dict(eager.state_dict())
    ids = random_ids(config, 3, 12)
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # one left-padded row
    mask[1, -3:] = 0  # one right-padded row
    with torch.no_grad():
        out_eager = eager(ids, attention_mask=mask).logits
        out_sdpa = sdpa(ids, attention_mask=mask).logits
    real = mask.bool()
    assert_close(out_sdpa[real], out_eager[real], atol=1e-5, rtol=1e-5)


def check_cached_generation_equals_uncached(model_cls, config):
    model = build(model_cls, config, "sdpa")
    ids = random_ids(config, 2, 6)
    kwargs = dict(max_new_tokens=8, do_sample=False, pad_token_id=0, attention_mask=torch.ones_like(ids))
    with torch.no_grad():
        cached = model.generate(ids, use_cache=True, **kwargs)
        uncached = model.generate(ids, use_cache=False, **kwargs)
    assert cached.shape == (2, 14)
    assert torch.equal(cached, uncached)
    # And step by step: logits of a cached forward equal those of the full forward.
    with torch.no_grad():
        full = model(cached).logits
        first = model(cached[:, :10], use_cache=True)
        rest = model(cached[:, 10:], cache=cache_of(first), use_cache=True).logits
    assert_close(rest, full[:, 10:], atol=1e-5, rtol=1e-5)


def check_left_padding_equals_alone(model_cls, config, pad_id=0):
    model = build(model_cls, config, "sdpa")
    prompts = [random_ids(config, 1, n, seed=n)[0] for n in (3, 7, 5)]
    ids, mask = left_pad(prompts, pad_id)
    with torch.no_grad():
        # forward itself: positions follow the mask, so the last-token logits equal each prompt alone
        batch_logits = model(ids, attention_mask=mask).logits[:, -1]
        batch_gen = model.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=pad_id)
        for row, prompt in enumerate(prompts):
            alone = model(prompt[None]).logits[0, -1]
            assert_close(batch_logits[row], alone, atol=1e-5, rtol=1e-5)
            alone_gen = model.generate(prompt[None], max_new_tokens=6, do_sample=False, pad_token_id=pad_id)
            assert torch.equal(batch_gen[row, -6:], alone_gen[0, -6:])


def check_gradient_checkpointing_equivalence(model_cls, config):
    config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = 0.0
    plain = build(model_cls, config).train()
    checkpointed = build(model_cls, config).train()
    enable_activation_checkpointing(checkpointed, use_reentrant=False)
    assert getattr(checkpointed, "is_activation_checkpointing", getattr(checkpointed, "is_gradient_checkpointing", 0))
    ids = random_ids(config, 2, 10)
    losses = []
    for model in (plain, checkpointed):
        loss = model(ids, labels=ids).loss
        loss.backward()
        losses.append(loss.detach())
    assert_close(losses[0], losses[1])
    grads = dict(checkpointed.named_parameters())
    for name, param in plain.named_parameters():
        assert_close(param.grad, grads[name].grad, atol=1e-6, rtol=1e-5, msg=name)


def check_save_load_round_trip(model_cls, config, tmp_path: Path):
    model = build(model_cls, config)
    model.save_pretrained(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert "model.safetensors" in files and not any(f.endswith(".bin") for f in files)
    saved_config = json.loads((tmp_path / "config.json").read_text())
    assert saved_config["model_type"] == config.model_type
    assert "auto_map" in saved_config
    loaded = model_cls.from_pretrained(tmp_path, attn_implementation=config._attn_implementation).eval()
    ids = random_ids(config, 2, 9)
    with torch.no_grad():
        assert_close(loaded(ids).logits, model(ids).logits, atol=0, rtol=0)
    return saved_config


REMOTE_CODE_SCRIPT = """
import sys
# gpt-origins may be installed in this environment: make its packages unimportable for this process.
for name in ("modeling_gpt1", "modeling_gpt2", "recipes"):
    sys.modules[name] = None
try:
    import {package}  # noqa
except ImportError:
    pass
else:
    raise SystemExit("{package} is importable: the test would not prove anything")
import torch
from transformers import {auto_class}
model = {auto_class}.from_pretrained(sys.argv[1], trust_remote_code=True, attn_implementation=sys.argv[4]).eval()
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
ids = torch.load(sys.argv[2], weights_only=True)
with torch.no_grad():
    out = model(ids)
torch.save(out.logits, sys.argv[3])
"""


def check_remote_code_load(model, package: str, auto_class: str, ids: torch.Tensor, tmp_path: Path):
    """Save `model`, load it in a fresh interpreter where `package` cannot be imported, compare the logits."""
    folder = tmp_path / "saved"
    model.save_pretrained(folder)
    torch.save(ids, tmp_path / "ids.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), TRANSFORMERS_VERBOSITY="error")
    script = textwrap.dedent(REMOTE_CODE_SCRIPT).format(package=package, auto_class=auto_class)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(folder),
            str(tmp_path / "ids.pt"),
            str(tmp_path / "out.pt"),
            model.config._attn_implementation,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with torch.no_grad():
        expected = model(ids).logits
    assert_close(torch.load(tmp_path / "out.pt", weights_only=True), expected, atol=0, rtol=0)


def check_saved_folder_carries_its_code(model, package: str, tmp_path: Path) -> set[str]:
    """A saved folder holds the model and configuration files and every file they import relatively, recursively,
    as transformers' remote-code loader resolves them (`get_relative_import_files`); returns the file names."""
    model.save_pretrained(tmp_path)
    files = {path.name for path in tmp_path.iterdir()}
    stem = package.removeprefix("modeling_")
    code = {f"modeling_{stem}.py", f"configuration_{stem}.py"}
    assert code <= files
    for name in code:
        needed = {Path(path).name for path in get_relative_import_files(tmp_path / name)}
        assert needed <= files, f"{name} imports {sorted(needed - files)}, which the saved folder lacks"
    assert set(SHARED_FILES) <= files
    return files


class CapturingApi:
    """Stands in for huggingface_hub.HfApi: records what would be uploaded, keeps a copy of the files."""

    def __init__(self, store: Path):
        self.store = store

    def create_repo(self, repo_id, **kwargs):
        return mock.Mock(repo_id=repo_id)

    def upload_folder(self, repo_id, folder_path, **kwargs):
        shutil.copytree(folder_path, self.store, dirs_exist_ok=True)
        self.kwargs = dict(kwargs, repo_id=repo_id)
        return "https://huggingface.co/" + repo_id


def push_without_network(model, package: str, tmp_path: Path, repo_id: str, has_card: bool = False, **kwargs):
    """`model.push_to_hub(repo_id, **kwargs)` with `hub.py`'s HfApi captured (the repository has a model card when
    `has_card`); returns the folder that would have been uploaded and the captured call."""
    api = CapturingApi(tmp_path / "uploaded")
    card = mock.Mock() if has_card else mock.Mock(side_effect=EntryNotFoundError("no README.md"))
    with (
        mock.patch(f"{package}.hub.HfApi", return_value=api),
        mock.patch(f"{package}.hub.ModelCard.load", card),
    ):
        url = model.push_to_hub(repo_id, **kwargs)
    assert url == "https://huggingface.co/" + repo_id
    return api.store, api


def check_push_keeps_an_existing_model_card(model, package: str, tmp_path: Path):
    store, _ = push_without_network(model, package, tmp_path, "someone/tiny", has_card=True)
    assert (store / "config.json").exists() and not (store / "README.md").exists()


def check_push_to_hub(model, tokenizer, package: str, auto_class: str, tmp_path: Path, inputs: dict) -> str:
    """push_to_hub uploads config (every Auto class in `auto_map`), code, safetensors weights, the tokenizer and a
    model card that loads the model with `auto_class`, in one commit; what was uploaded loads back with the Auto
    class and gives the same logits. Returns the card's text."""
    import transformers

    repo_id = f"someone/tiny-{package.removeprefix('modeling_')}"
    store, api = push_without_network(model, package, tmp_path, repo_id, tokenizer=tokenizer, commit_message="first")
    assert api.kwargs["commit_message"] == "first"
    files = {path.name for path in store.iterdir()}
    stem = package.removeprefix("modeling_")
    assert {"config.json", "model.safetensors", f"modeling_{stem}.py", f"configuration_{stem}.py"} <= files
    assert {*SHARED_FILES, "README.md", "tokenizer.json", "tokenizer_config.json"} <= files
    auto_map = json.loads((store / "config.json").read_text())["auto_map"]
    assert {"AutoConfig", "AutoModel", auto_class} <= set(auto_map)
    assert auto_map[auto_class] == f"modeling_{stem}.{type(model).__name__}"
    card = (store / "README.md").read_text()
    assert f'{auto_class}.from_pretrained("{repo_id}", trust_remote_code=True)' in card
    assert "- gpt-origins" in card and f"- {stem}" in card and f"import {package}" in card
    reloaded = getattr(transformers, auto_class).from_pretrained(store, attn_implementation="eager").eval()
    assert type(reloaded) is type(model)
    with torch.no_grad():
        assert_close(reloaded(**inputs).logits, model(**inputs).logits)
    return card


def check_trainer_gradient_accumulation(model_cls, config, tmp_path: Path, pad_id=0):
    """Trainer with 4 micro-batches of 2 gives the same update as one batch of 8, with uneven real lengths."""
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = 0.0
    lengths = [12, 3, 9, 5, 12, 2, 7, 11]  # uneven: a per-micro-batch mean would weight tokens wrongly
    generator = torch.Generator().manual_seed(3)
    rows = []
    for n in lengths:
        ids = torch.full((12,), pad_id)
        ids[:n] = torch.randint(1, config.vocab_size, (n,), generator=generator)
        labels = ids.clone()
        labels[n:] = -100
        rows.append({"input_ids": ids.tolist(), "attention_mask": [1] * n + [0] * (12 - n), "labels": labels.tolist()})
    dataset = Dataset.from_list(rows)

    def train(batch_size, accumulation):
        model = build(model_cls, config).train()
        args = TrainingArguments(
            output_dir=str(tmp_path / f"run{batch_size}"),
            per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=accumulation,
            max_steps=1,
            learning_rate=0.5,
            optim="sgd",
            lr_scheduler_type="constant",
            max_grad_norm=0.0,
            logging_steps=1,
            report_to=[],
            use_cpu=True,
            save_strategy="no",
            seed=0,
            dataloader_num_workers=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=dataset)
        trainer.train()
        loss = next(entry["loss"] for entry in trainer.state.log_history if "loss" in entry)
        return model, loss

    one_batch, loss_one = train(8, 1)
    accumulated, loss_acc = train(2, 4)
    assert abs(loss_one - loss_acc) < 1e-4, (loss_one, loss_acc)
    params = dict(accumulated.named_parameters())
    for name, param in one_batch.named_parameters():
        assert_close(params[name], param, atol=1e-6, rtol=1e-5, msg=name)
    # and the reference: the mean loss over all 8 rows' real tokens, computed directly
    model = build(model_cls, config)
    batch = dataset[:]
    with torch.no_grad():
        direct = model(
            torch.tensor(batch["input_ids"]),
            attention_mask=torch.tensor(batch["attention_mask"]),
            labels=torch.tensor(batch["labels"]),
        ).loss
    assert abs(direct.item() - loss_one) < 1e-4


def check_compile_fullgraph_training_step(model_cls, config):
    """forward + backward under torch.compile(fullgraph=True): no graph break, same loss and grads as eager."""
    import torch._dynamo

    config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = 0.0
    torch._dynamo.reset()
    plain = build(model_cls, config, "sdpa").train()
    compiled_model = build(model_cls, config, "sdpa").train()
    compiled = torch.compile(compiled_model, fullgraph=True, backend="aot_eager")
    ids = random_ids(config, 2, 16)
    loss_plain = plain(ids, labels=ids).loss
    loss_plain.backward()
    loss_compiled = compiled(ids, labels=ids).loss
    loss_compiled.backward()
    assert_close(loss_compiled, loss_plain, atol=1e-5, rtol=1e-5)
    grads = dict(compiled_model.named_parameters())
    for name, param in plain.named_parameters():
        assert_close(grads[name].grad, param.grad, atol=1e-5, rtol=1e-4, msg=name)


def check_chunked_loss_equals_plain(model_cls, config):
    """The fused chunked LM loss (training mode) against the plain logits + cross-entropy path: the same loss and
    gradients with chunks that do not divide the tokens, ignored targets, `num_items_in_batch`, `shift_labels`, a
    frozen body, no_grad, bf16 autocast and torch.compile(fullgraph=True); and no logits are returned."""
    import torch._dynamo

    config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = 0.0
    model = build(model_cls, config, "sdpa").train()
    ids = random_ids(config, 3, 11)
    labels = ids.clone()
    labels[0, :4] = -100  # ignored targets, a whole ignored chunk with chunk size 3
    labels[2, -2:] = -100

    def loss_and_grads(chunk_size, call=model, **kwargs):
        model.config.loss_chunk_size = chunk_size
        model.zero_grad(set_to_none=True)
        output = call(ids, labels=labels, **kwargs)
        output.loss.backward()
        grads = {name: param.grad for name, param in model.named_parameters() if param.grad is not None}
        return output, grads

    for kwargs in ({}, {"num_items_in_batch": torch.tensor(17)}, {"shift_labels": labels.roll(-1, 1)}):
        plain, plain_grads = loss_and_grads(None, **kwargs)
        assert plain.logits is not None
        for chunk_size in (3, 7, 33, 1024):
            chunked, grads = loss_and_grads(chunk_size, **kwargs)
            assert chunked.logits is None
            assert_close(chunked.loss, plain.loss, atol=1e-6, rtol=1e-6)
            assert grads.keys() == plain_grads.keys()
            for name, grad in plain_grads.items():
                assert_close(grads[name], grad, atol=1e-6, rtol=1e-5, msg=f"{name}, chunk {chunk_size}, {kwargs}")

    # bf16 autocast: the matmuls in bf16, the softmax in fp32, as in the plain path (rounding differs slightly).
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain, plain_grads = loss_and_grads(None)
        chunked, grads = loss_and_grads(5)
    assert_close(chunked.loss, plain.loss, atol=1e-3, rtol=1e-3)
    for name, grad in plain_grads.items():
        assert_close(grads[name], grad, atol=2e-2 * grad.abs().max().item(), rtol=0, msg=f"bf16 {name}")

    # A frozen body: gradients only where they are wanted, the others stay None.
    last_block = f".h.{config.n_layer - 1}."
    embedding = model.get_input_embeddings().weight
    for name, param in model.named_parameters():
        param.requires_grad_(param is embedding or last_block in name)
    plain, plain_grads = loss_and_grads(None)
    chunked, grads = loss_and_grads(4)
    assert grads.keys() == plain_grads.keys() and len(grads) >= 1
    for name, grad in plain_grads.items():
        assert_close(grads[name], grad, atol=1e-6, rtol=1e-5, msg=f"frozen {name}")
    for param in model.parameters():
        param.requires_grad_(True)

    # no_grad in training mode (an evaluation that forgot model.eval()): the loss, no gradient work.
    with torch.no_grad():
        model.config.loss_chunk_size = None
        plain_loss = model(ids, labels=labels).loss
        model.config.loss_chunk_size = 4
        assert_close(model(ids, labels=labels).loss, plain_loss, atol=1e-6, rtol=1e-6)

    # eval mode always gives the logits
    model.eval()
    assert model(ids, labels=labels).logits is not None
    model.train()

    # The gradients are handed out once: a second backward through the same graph is a clear error, never wrong.
    model.config.loss_chunk_size = 4
    loss = model(ids, labels=labels).loss
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()

    # compiled, several chunks, no graph break
    torch._dynamo.reset()
    plain, plain_grads = loss_and_grads(None)
    chunked, grads = loss_and_grads(4, call=torch.compile(model, fullgraph=True, backend="aot_eager"))
    assert_close(chunked.loss, plain.loss, atol=1e-6, rtol=1e-6)
    for name, grad in plain_grads.items():
        assert_close(grads[name], grad, atol=1e-6, rtol=1e-5, msg=f"compiled {name}")


def check_tied_embedding_gradient(model_cls, config):
    """In a chunked training step the LM head hands its weight gradient to the tied token embedding's backward, which
    adds its rows in place (`TiedWeightGrad`): the same gradients as the plain path whenever the embedding's backward
    runs, and whenever it does not (autograd.grad for other inputs, a detach between), with or without an existing
    .grad, for untied weights and for inputs_embeds; and no (V, C) dense embedding gradient is built."""
    config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = 0.0
    model = build(model_cls, config, "sdpa").train()
    ids = random_ids(config, 2, 9)
    ids[0, :4] = ids[1, -1]  # repeated ids: their rows add up
    embedding = model.get_input_embeddings().weight
    assert model.lm_head.weight is embedding
    block = model.transformer.h[config.n_layer - 1].mlp.c_fc.weight
    module = sys.modules[model_cls.__module__.rsplit(".", 1)[0] + ".chunked_loss"]  # where TiedWeightGrad lives

    def run(chunk_size, step, **kwargs):
        model.config.loss_chunk_size = chunk_size
        return step(model(**kwargs, labels=ids).loss)

    def backward(loss):
        model.zero_grad(set_to_none=True)
        loss.backward()
        return {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}

    def same(ours: dict, plain: dict, what: str):
        assert ours.keys() == plain.keys(), what
        for name, grad in plain.items():
            assert_close(ours[name], grad, atol=1e-6, rtol=1e-5, msg=f"{what}: {name}")

    # The hand-over happens, and the step builds no dense (V, C) token-embedding gradient (the positions' remains).
    def dense_embedding_backwards(chunk_size):
        with torch.profiler.profile() as profile:
            grads = run(chunk_size, backward, input_ids=ids)
        return grads, sum(event.name == "aten::embedding_dense_backward" for event in profile.events())

    handed = []
    original = module.TiedWeightGrad.hand_over
    module.TiedWeightGrad.hand_over = lambda self, grad: handed.append(original(self, grad)) or handed[-1]
    try:
        (tied, tied_count), (plain, plain_count) = dense_embedding_backwards(4), dense_embedding_backwards(None)
    finally:
        module.TiedWeightGrad.hand_over = original
    assert handed == [True]
    assert (tied_count, plain_count) == (1, 2)
    same(tied, plain, "tied")

    # Accumulating into existing gradients (two micro-batches without zero_grad).
    def twice(chunk_size):
        model.config.loss_chunk_size = chunk_size
        model.zero_grad(set_to_none=True)
        for _ in range(2):
            model(input_ids=ids, labels=ids).loss.backward()
        return {name: param.grad.clone() for name, param in model.named_parameters()}

    same(twice(4), twice(None), "accumulated")

    # autograd.grad for the shared weight, and for a block's weight only (the embedding's backward does not run).
    def grad_of(*inputs):
        return lambda loss: torch.autograd.grad(loss, inputs)

    for inputs in ((embedding,), (block,), (block, embedding)):
        model.zero_grad(set_to_none=True)
        ours, plain = run(4, grad_of(*inputs), input_ids=ids), run(None, grad_of(*inputs), input_ids=ids)
        for mine, theirs in zip(ours, plain, strict=True):
            assert_close(mine, theirs, atol=1e-6, rtol=1e-5)
        assert embedding.grad is None  # autograd.grad leaves .grad alone

    # The embedding's output detached before the blocks: only the head's part reaches the shared weight.
    hook = model.transformer.h[0].register_forward_pre_hook(lambda _, args: (args[0].detach(),))
    try:
        detached = run(4, backward, input_ids=ids)
        same(detached, run(None, backward, input_ids=ids), "detached")
    finally:
        hook.remove()
    assert (
        len(detached) == len(list(model.parameters())) - 1
    )  # all but the position embedding; the tied one: the head's

    # inputs_embeds: no hand-over (the embedding is the caller's), same gradients.
    embeds = lambda: model.get_input_embeddings()(ids)  # noqa: E731
    model.zero_grad(set_to_none=True)
    same(run(4, backward, inputs_embeds=embeds()), run(None, backward, inputs_embeds=embeds()), "inputs_embeds")

    # Untied weights: each keeps its own gradient.
    config.tie_word_embeddings = False
    untied = build(model_cls, config, "sdpa").train()
    assert untied.lm_head.weight is not untied.get_input_embeddings().weight
    model = untied
    same(run(4, backward, input_ids=ids), run(None, backward, input_ids=ids), "untied")


def check_static_cache_decode(model_cls, config, pad_id=0):
    """The compile-friendly decode path: `generate(cache_implementation="static")` (transformers' StaticCache,
    preallocated, written in place) gives the tokens the dynamic cache gives, on a left-padded batch; and a decode
    step on a StaticCache compiles with fullgraph=True (no graph break) and gives the eager step's logits."""
    import torch._dynamo
    from transformers import StaticCache

    model = build(model_cls, config, "sdpa")
    prompts = [random_ids(config, 1, n, seed=n)[0] for n in (3, 7, 5)]
    ids, mask = left_pad(prompts, pad_id)
    kwargs = dict(attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=pad_id)
    with torch.no_grad():
        dynamic = model.generate(ids, **kwargs)
        static = model.generate(ids, cache_implementation="static", **kwargs)
    assert torch.equal(static, dynamic)

    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    results = []
    for forward in (model, compiled):
        cache = StaticCache(config=model.config, max_cache_len=16)
        with torch.no_grad():
            prefill = forward(ids, attention_mask=mask, cache=cache, use_cache=True)
            next_ids = prefill.logits[:, -1:].argmax(-1)  # (B, 1)
            step_mask = torch.cat([mask, torch.ones_like(next_ids)], dim=1)
            step = forward(next_ids, attention_mask=step_mask, cache=cache, use_cache=True)
        results.append(step.logits)
    assert_close(results[1], results[0], atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # and the eager step equals a forward over the whole sequence
        full = model(torch.cat([ids, next_ids], 1), attention_mask=step_mask).logits[:, -1:]
    assert_close(results[0], full, atol=1e-5, rtol=1e-5)
