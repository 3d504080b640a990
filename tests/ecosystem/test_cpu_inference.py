"""CPU inference forms of both models with the standard torch tools, each one line on a loaded model (README, "Fast CPU
decoding"; measured in docs/BENCHMARKS.md):

- int8: `torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)`, every projection and
  the LM head with int8 weights (one scale per tensor) and int8 activations quantised per call. Checked against
  transformers' own model with the same weights, its Conv1D layers turned into nn.Linear and quantised the same way
  (the same greedy tokens), and against our fp32 model (a bounded logit difference).
- oneDNN: `torch.utils.mkldnn.to_mkldnn(model)`, fp32 weights packed for oneDNN's matrix products: the fp32 model's
  tokens and logits.

Both tools act on `nn.Linear`, which is why the layers are nn.Linear (transformers' GPT-2 keeps Conv1D, which
`quantize_dynamic` leaves in fp32).
"""

import copy
import warnings

import pytest
import torch
from torch.testing import assert_close
from torch.utils import mkldnn as mkldnn_utils
from transformers import GPT2Config, GPT2LMHeadModel, OpenAIGPTConfig, OpenAIGPTLMHeadModel
from transformers.pytorch_utils import Conv1D

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsLMHeadModel
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel

SIZES = dict(n_layer=2, n_embd=64, n_head=4, n_positions=64, vocab_size=300)
FAMILIES = {
    "gpt2": (GPT2OriginsLMHeadModel, GPT2OriginsConfig, GPT2LMHeadModel, GPT2Config),
    "gpt1": (GPT1OriginsLMHeadModel, GPT1OriginsConfig, OpenAIGPTLMHeadModel, OpenAIGPTConfig),
}


def int8(model):
    with warnings.catch_warnings():  # torch's deprecation notice for its quantized tensors (see README)
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)


def conv1d_as_linear(model):
    """transformers' model with each Conv1D (weight (in, out)) replaced by the nn.Linear it computes."""
    for name, module in list(model.named_modules()):
        if isinstance(module, Conv1D):
            linear = torch.nn.Linear(*module.weight.shape)
            with torch.no_grad():
                linear.weight.copy_(module.weight.T)
                linear.bias.copy_(module.bias)
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, linear)
    return model


def pair(family):
    """Ours and transformers' with the same (trained-looking, not N(0, 0.02)) weights, eval mode."""
    ours_class, config_class, reference_class, reference_config_class = FAMILIES[family]
    torch.manual_seed(0)
    ours = ours_class(config_class(**SIZES)).eval()
    with torch.no_grad():
        for parameter in ours.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    folder_free = copy.deepcopy(ours)
    reference = reference_class(reference_config_class(**SIZES)).eval()
    state = {key: value.T if key.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")) else value
             for key, value in folder_free.state_dict().items()}  # fmt: skip
    reference.load_state_dict(state, strict=False)
    reference.tie_weights()
    return ours, reference


def greedy(model, ids, new_tokens=12, **kwargs):
    with torch.inference_mode():
        return model.generate(ids, max_new_tokens=new_tokens, do_sample=False, pad_token_id=0, **kwargs)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_int8_generates_what_transformers_int8_generates(family):
    ours, reference = pair(family)
    ids = torch.randint(1, SIZES["vocab_size"], (2, 7), generator=torch.Generator().manual_seed(1))
    quantised = int8(ours)
    assert type(quantised.lm_head) is torch.ao.nn.quantized.dynamic.Linear  # the tied head too (the embedding stays)
    assert sum(type(m) is torch.ao.nn.quantized.dynamic.Linear for m in quantised.modules()) == 4 * 2 + 1
    # transformers' GPT-1 has no KV cache: it recomputes the prefix at every step, and the activations' int8 scale
    # (one per call) follows what a call holds; ours is computed the same way without the cache.
    same_way = {"use_cache": False} if family == "gpt1" else {}
    assert torch.equal(greedy(quantised, ids, **same_way), greedy(int8(conv1d_as_linear(reference)), ids))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_int8_logits_stay_close_to_fp32(family):
    ours, _ = pair(family)
    ids = torch.randint(1, SIZES["vocab_size"], (3, 20), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        expected, actual = ours(ids).logits, int8(ours)(ids).logits
    scale = expected.abs().max()
    assert (actual - expected).abs().max() < 0.05 * scale  # int8 rounding of weights and activations
    assert (actual.argmax(-1) == expected.argmax(-1)).float().mean() > 0.9


@pytest.mark.parametrize("family", list(FAMILIES))
def test_onednn_packed_weights_give_the_fp32_model(family):
    ours, _ = pair(family)
    ids = torch.randint(1, SIZES["vocab_size"], (2, 9), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        packed = mkldnn_utils.to_mkldnn(copy.deepcopy(ours))
    assert type(packed.lm_head) is mkldnn_utils.MkldnnLinear
    with torch.inference_mode():
        assert_close(packed(ids).logits, ours(ids).logits, atol=1e-4, rtol=1e-4)
    assert torch.equal(greedy(packed, ids), greedy(ours, ids))


def test_a_saved_folder_loads_and_quantises_in_one_line(tmp_path):
    """The README's path, from_pretrained then the one line, gives the model quantised in memory. (The activations'
    scale is one per call, over the whole batch: a row's int8 logits depend a little on the rows beside it.)"""
    ours, _ = pair("gpt2")
    ours.save_pretrained(tmp_path)
    model = int8(GPT2OriginsLMHeadModel.from_pretrained(tmp_path).eval())
    ids = torch.randint(1, SIZES["vocab_size"], (2, 9), generator=torch.Generator().manual_seed(4))
    assert torch.equal(greedy(model, ids), greedy(int8(ours), ids))
