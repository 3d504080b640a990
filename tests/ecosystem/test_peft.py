"""PEFT LoRA on gpt-origins, as a user fine-tunes with it: GPT-2's LM, GPT-1's double heads for multiple choice and
for classification.

What a user needs to know, and what these tests hold:
- Our attention and MLP layers are `nn.Linear` (`c_attn`, `c_proj`, `c_fc`): LoRA's defaults fit them, with no
  `fan_in_fan_out` and no warning (transformers' own GPT-2 is `Conv1D`, and PEFT warns "fan_in_fan_out is set to
  False but the target module is `Conv1D`" on it). `target_modules="all-linear"` also finds them (and leaves out the
  tied LM head).
- PEFT has no default target modules for the `gpt2-origins` / `gpt1-origins` model types (it has for `gpt2`):
  without `target_modules` it raises "Please specify `target_modules` ...".
- The task head is trained only where PEFT is told so: `task_type="SEQ_CLS"` adds `score` to `modules_to_save` by
  itself, but PEFT has no multiple-choice task type, so `multiple_choice_head` must be listed in `modules_to_save`
  or it stays frozen at its random initialisation.
"""

import copy
import warnings
from dataclasses import dataclass

import pytest
import torch
from peft import AutoPeftModelForCausalLM, LoraConfig, PeftModel, TaskType, get_peft_model
from peft.tuners.lora import Linear as LoraLinear
from peft.utils import ModulesToSaveWrapper
from safetensors.torch import load_file
from torch.testing import assert_close

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsDoubleHeadsModel
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel

VOCAB = 256
EXTRACT, PAD = 2, 3  # GPT-1's extract and pad token ids in these tiny vocabularies
TARGETS = ["c_attn", "c_proj", "c_fc"]  # c_proj: both the attention's output and the MLP's
NO_DROPOUT = dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)  # so that the training steps are deterministic
SIZES = dict(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=VOCAB)


@dataclass
class Setup:
    name: str
    model_cls: type
    config: object
    lora: dict  # LoraConfig arguments besides r, target_modules and fan_in_fan_out
    head: str | None  # the task head that must train, or None

    def base(self, seed=0):
        torch.manual_seed(seed)
        return self.model_cls(copy.deepcopy(self.config)).eval()

    def batch(self):
        generator = torch.Generator().manual_seed(1)
        if self.name == "gpt2_lm":
            ids = torch.randint(0, VOCAB, (4, 16), generator=generator)
            return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
        shape = (4, 3, 12) if self.name == "gpt1_multiple_choice" else (4, 12)
        ids = torch.randint(5, VOCAB, shape, generator=generator)
        ids[..., -1] = EXTRACT
        num_classes = 3 if self.name == "gpt1_multiple_choice" else 2
        labels = torch.tensor([0, 1, 2, 1]) % num_classes
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def gpt1_config(task_type, num_labels):
    return GPT1OriginsConfig.from_preset(
        "tiny",
        **SIZES,
        **NO_DROPOUT,
        classifier_dropout=0.0,
        task_type=task_type,
        num_labels=num_labels,
        extract_token_id=EXTRACT,
        pad_token_id=PAD,
    )


SETUPS = {
    "gpt2_lm": Setup(
        "gpt2_lm",
        GPT2OriginsLMHeadModel,
        GPT2OriginsConfig.from_preset("tiny", **SIZES, **NO_DROPOUT),
        {"task_type": TaskType.CAUSAL_LM},
        None,
    ),
    "gpt1_multiple_choice": Setup(
        "gpt1_multiple_choice",
        GPT1OriginsDoubleHeadsModel,
        gpt1_config("multiple_choice", 1),
        {"modules_to_save": ["multiple_choice_head"]},  # no PEFT task type for multiple choice
        "multiple_choice_head",
    ),
    "gpt1_classification": Setup(
        "gpt1_classification",
        GPT1OriginsDoubleHeadsModel,
        gpt1_config("classification", 2),
        {"task_type": TaskType.SEQ_CLS},  # adds `score` to modules_to_save
        "score",
    ),
}


def lora_config(setup, **overrides):
    fields = dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, **setup.lora)
    return LoraConfig(**{**fields, **overrides})


def lora_weights(model):
    return {name: p.detach().clone() for name, p in model.named_parameters() if "lora_" in name}


def forward(model, batch):
    """Task logits in eval mode, without labels."""
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    """train(name): a base model saved to a folder, wrapped in LoRA and trained for a few steps on one batch (once
    per module and setup)."""
    done = {}

    def run(name):
        if name in done:
            return done[name]
        setup = SETUPS[name]
        base_dir = tmp_path_factory.mktemp(f"{name}_base")
        setup.base().save_pretrained(base_dir)
        # As a user does: the base from its folder, whose path the adapter's config records (base_model_name_or_path).
        base = setup.model_cls.from_pretrained(base_dir).eval()
        base_state = {key: t.clone() for key, t in base.state_dict().items()}
        model = get_peft_model(base, lora_config(setup))
        before = lora_weights(model)
        batch = setup.batch()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        model.train()
        losses = []
        for _ in range(12):
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        model.eval()
        done[name] = dict(setup=setup, model=model, base_dir=base_dir, base_state=base_state, before=before)
        done[name].update(batch=batch, losses=losses)
        return done[name]

    return run


@pytest.fixture(params=list(SETUPS))
def trained(request, train):
    return train(request.param)


@pytest.mark.parametrize("name", list(SETUPS))
def test_lora_wraps_every_projection_with_its_defaults(name):
    setup = SETUPS[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = get_peft_model(setup.base(), lora_config(setup))
    assert not [w for w in caught if "fan_in_fan_out" in str(w.message)]
    wrapped = {n: m for n, m in model.named_modules() if isinstance(m, LoraLinear)}
    assert len(wrapped) == 4 * setup.config.n_layer  # attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj per block
    assert {n.rsplit(".", 2)[-2:][0] + "." + n.rsplit(".", 1)[-1] for n in wrapped} == {
        "attn.c_attn",
        "attn.c_proj",
        "mlp.c_fc",
        "mlp.c_proj",
    }
    for layer in wrapped.values():
        linear = layer.get_base_layer()
        assert type(linear) is torch.nn.Linear and not layer.fan_in_fan_out
        assert layer.lora_A["default"].weight.shape == (4, linear.in_features)
        assert layer.lora_B["default"].weight.shape == (linear.out_features, 4)
    # LoRA starts as the identity: B = 0, so the wrapped model gives the base model's outputs.
    batch = setup.batch()
    assert_close(forward(model, batch), forward(setup.base(), batch), atol=1e-6, rtol=0)


def test_fan_in_fan_out_from_a_conv1d_recipe_is_refused_by_peft():
    """A LoRA config written for transformers' Conv1D GPT-2 (`fan_in_fan_out=True`): PEFT warns and turns it off for
    nn.Linear, so the adapter is still right."""
    setup = SETUPS["gpt2_lm"]
    with pytest.warns(UserWarning, match="fan_in_fan_out is set to True but the target module is `torch.nn.Linear`"):
        model = get_peft_model(setup.base(), lora_config(setup, fan_in_fan_out=True))
    assert model.peft_config["default"].fan_in_fan_out is False


def test_target_modules_must_be_named_or_all_linear():
    setup = SETUPS["gpt2_lm"]
    with pytest.raises(ValueError, match="Please specify `target_modules`"):
        get_peft_model(setup.base(), LoraConfig(task_type=TaskType.CAUSAL_LM, r=4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fan_in_fan_out warning above: "all-linear" leaves it False
        model = get_peft_model(
            setup.base(), LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, target_modules="all-linear")
        )
    wrapped = [n for n, m in model.named_modules() if isinstance(m, LoraLinear)]
    assert len(wrapped) == 8 and not [n for n in wrapped if "lm_head" in n]  # the tied head is left out


@pytest.mark.parametrize("name", ["gpt1_multiple_choice", "gpt1_classification"])
def test_task_head_trains_through_modules_to_save(name):
    setup = SETUPS[name]
    model = get_peft_model(setup.base(), lora_config(setup))
    head = model.base_model.model.get_submodule(setup.head)
    assert isinstance(head, ModulesToSaveWrapper)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {n for n in trainable if "lora_" not in n} == {
        n for n, _ in head.modules_to_save.named_parameters(prefix=f"base_model.model.{setup.head}.modules_to_save")
    }
    assert len({n for n in trainable if "lora_" in n}) == 2 * 4 * setup.config.n_layer
    # The trap: without modules_to_save (and no SEQ_CLS task type) the freshly initialised head stays frozen.
    bare = get_peft_model(setup.base(), LoraConfig(r=4, target_modules=TARGETS, fan_in_fan_out=True))
    assert not [n for n, p in bare.named_parameters() if p.requires_grad and setup.head in n]


def test_training_steps_change_lora_weights_and_lower_the_loss(trained):
    losses = trained["losses"]
    assert losses[-1] < losses[0] - 0.1, losses
    after = lora_weights(trained["model"])
    changed = [name for name in after if not torch.equal(after[name], trained["before"][name])]
    assert len(changed) == len(after)  # every A and B moved (B started at zero)
    # The base weights are frozen: every parameter that is neither LoRA's nor a trained head copy is as it was.
    for name, param in trained["model"].named_parameters():
        if "lora_" in name or "modules_to_save" in name:
            continue
        original = name.removeprefix("base_model.model.").replace(".base_layer", "").replace(".original_module", "")
        assert not param.requires_grad and torch.equal(param, trained["base_state"][original]), name
    base = trained["model"].get_base_model()
    if trained["setup"].head:  # the trained copy of the head moved away from the original
        head = base.get_submodule(trained["setup"].head)
        trained_head = head.modules_to_save["default"].state_dict()
        original = head.original_module.state_dict()
        assert any(not torch.equal(trained_head[k], original[k]) for k in original)


def test_adapter_saves_and_reloads_onto_a_fresh_base(trained, tmp_path):
    setup, model, batch = trained["setup"], trained["model"], trained["batch"]
    model.save_pretrained(tmp_path)
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in tmp_path.iterdir()}
    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert len([k for k in saved if "lora_" in k]) == 2 * 4 * setup.config.n_layer
    if setup.head:
        assert [k for k in saved if f".{setup.head}." in k]  # the trained head travels with the adapter
    assert model.peft_config["default"].base_model_name_or_path == str(trained["base_dir"])

    fresh = setup.model_cls.from_pretrained(trained["base_dir"]).eval()
    reloaded = PeftModel.from_pretrained(fresh, tmp_path).eval()
    assert torch.equal(forward(reloaded, batch), forward(model, batch))
    if setup.name == "gpt2_lm":  # and in one call, the base found through the adapter's base_model_name_or_path
        auto = AutoPeftModelForCausalLM.from_pretrained(tmp_path).eval()
        assert isinstance(auto.get_base_model(), GPT2OriginsLMHeadModel)
        assert torch.equal(forward(auto, batch), forward(model, batch))


def test_merge_and_unload_gives_the_unmerged_logits(trained):
    setup, batch = trained["setup"], trained["batch"]
    unmerged = trained["model"]
    merged = copy.deepcopy(unmerged).merge_and_unload()
    assert type(merged) is setup.model_cls
    assert not [n for n, _ in merged.named_parameters() if "lora_" in n or "modules_to_save" in n]
    assert all(type(merged.get_submodule(f"transformer.h.0.{path}")) is torch.nn.Linear for path in ["attn.c_attn"])
    expected = forward(unmerged, batch)
    assert_close(forward(merged, batch), expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(forward(setup.base(), batch), expected, atol=1e-3)  # the adapter did change them


def test_generate_on_the_peft_model_and_on_the_merged_one(train):
    trained = train("gpt2_lm")
    wrapped = trained["model"]
    merged = copy.deepcopy(wrapped).merge_and_unload()
    ids = trained["batch"]["input_ids"][:2, :6]
    kwargs = dict(attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        from_wrapped = wrapped.generate(input_ids=ids, **kwargs)
        from_merged = merged.generate(input_ids=ids, **kwargs)
        from_base = trained["setup"].base().generate(input_ids=ids, **kwargs)
    assert from_wrapped.shape == (2, 12) and torch.equal(from_wrapped[:, :6], ids)
    assert torch.equal(from_wrapped, from_merged)
    assert not torch.equal(from_wrapped, from_base)
