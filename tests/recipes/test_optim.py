"""recipes/core/optim.py: the parameter groups of `build_optimizer` and what `apply_resume_changes` does to them."""

import pytest
import torch
from transformers import get_scheduler

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsLMHeadModel
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel
from recipes.core.optim import apply_resume_changes, build_optimizer
from recipes.core.options import TrainingOptions

CPU = torch.device("cpu")


@pytest.fixture(params=["gpt1", "gpt2"])
def model(request):
    torch.manual_seed(0)
    if request.param == "gpt1":
        return GPT1OriginsLMHeadModel(GPT1OriginsConfig.from_preset("tiny", vocab_size=96))
    return GPT2OriginsLMHeadModel(GPT2OriginsConfig.from_preset("tiny", vocab_size=96))


def by_id(groups):
    return {id(p): group for group in groups for p in group["params"]}


def test_at_scale_one_the_groups_are_matrices_and_the_rest(model):
    optimizer = build_optimizer(model, 1e-3, (0.9, 0.95), 0.1, CPU)
    decayed, rest = optimizer.param_groups
    assert (decayed["weight_decay"], rest["weight_decay"]) == (0.1, 0.0)
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() == 1 for p in rest["params"])
    assert model.get_input_embeddings().weight in decayed["params"]
    assert {group["lr"] for group in optimizer.param_groups} == {1e-3}


def test_the_embedding_gets_its_own_scaled_and_decayed_group_and_the_step_moves_it_accordingly(model):
    embedding = model.get_input_embeddings().weight
    optimizer = build_optimizer(model, 1e-3, (0.9, 0.95), 0.1, CPU, embedding_lr_scale=10)
    assert len(optimizer.param_groups) == 3
    group = by_id(optimizer.param_groups)[id(embedding)]
    assert group["params"] == [embedding] and group["lr"] == pytest.approx(1e-2) and group["weight_decay"] == 0.1
    assert model.lm_head.weight is embedding  # the tied head is the same tensor: scaled with it
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    # Adam's first step moves every element with a gradient by about its lr: 10x for the embedding.
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    ids = torch.randint(0, 96, (2, 16))
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    moved = {name: (p.detach() - before[name]).abs().max().item() for name, p in model.named_parameters()}
    embedding_name = next(name for name, p in model.named_parameters() if p is embedding)
    others = max(value for name, value in moved.items() if name != embedding_name)
    assert moved[embedding_name] == pytest.approx(1e-2, rel=0.05) and others == pytest.approx(1e-3, rel=0.05)


def test_a_frozen_embedding_keeps_its_no_decay_in_its_own_group(model):
    embedding = model.get_input_embeddings().weight
    optimizer = build_optimizer(model, 1e-3, (0.9, 0.95), 0.1, CPU, no_decay=[embedding], embedding_lr_scale=5)
    group = by_id(optimizer.param_groups)[id(embedding)]
    assert (group["weight_decay"], group["decayed"], group["lr_scale"]) == (0.0, False, 5)
    embedding.requires_grad_(False)
    optimizer = build_optimizer(model, 1e-3, (0.9, 0.95), 0.1, CPU, embedding_lr_scale=5)
    assert len(optimizer.param_groups) == 2 and id(embedding) not in by_id(optimizer.param_groups)


def test_resume_changes_keep_the_embedding_scale_and_its_decay(model):
    optimizer = build_optimizer(model, 1e-3, (0.9, 0.95), 0.1, CPU, embedding_lr_scale=10)
    scheduler = get_scheduler("cosine", optimizer=optimizer, num_warmup_steps=0, num_training_steps=100)
    options = TrainingOptions(learning_rate=2e-4, weight_decay=0.05, adam_beta1=0.8, adam_beta2=0.9)
    apply_resume_changes(optimizer, scheduler, options)
    decayed, rest, embedding = optimizer.param_groups
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([2e-4, 2e-4, 2e-3])
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.05, 0.0, 0.05]
    assert embedding["betas"] == (0.8, 0.9)


def test_resume_changes_on_a_checkpoint_from_before_the_groups_were_marked(model):
    optimizer = build_optimizer(model, 1e-3, (0.9, 0.95), 0.1, CPU)
    for group in optimizer.param_groups:
        del group["decayed"]
    scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=0, num_training_steps=100)
    apply_resume_changes(optimizer, scheduler, TrainingOptions(learning_rate=3e-4, weight_decay=0.2))
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.2, 0.0]
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([3e-4, 3e-4])
