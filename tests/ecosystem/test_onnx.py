"""ONNX export of the LM forward (input_ids, attention_mask -> logits) of GPT-2 and GPT-1, run in onnxruntime, against
PyTorch's logits, with dynamic batch and sequence axes.

Both exporters work with torch 2.13 on these models:
- `torch.onnx.export(..., dynamo=True, dynamic_shapes=...)` (torch.export, then onnxscript): the recommended one,
  about 15 s for a 2-layer model on 2 CPU cores. The model's input checks skip themselves under torch.export
  (`torch.compiler.is_compiling()`), so the graph has no data-dependent branch; it also holds no validation:
  out-of-vocabulary ids are onnxruntime's Gather error, not our ValueError.
- the legacy TorchScript exporter (`dynamo=False, dynamic_axes=...`): about 2 s; it prints TracerWarnings for the
  input checks (they are traced once, as constants) and for transformers' masking code, and the graph still
  generalises to other batch and sequence sizes, left padding included.

Only real positions (attention_mask == 1) are compared: the logits of a left-padded row's padding positions (queries
that may attend to nothing) are meaningless, and the exported sdpa graph gives other values there than PyTorch.
"""

import warnings

import onnx
import onnxruntime as ort
import onnxscript  # noqa: F401  (the dynamo exporter's translator: fail here, not inside export)
import pytest
import torch
from torch.testing import assert_close

from modeling_gpt1 import GPT1OriginsConfig, GPT1OriginsLMHeadModel
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel

VOCAB = 256
SIZES = dict(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=VOCAB)
EXPORT_SHAPE = (2, 7)
# (batch, seq, left padding of row 0): other sizes than the export's, on both dynamic axes.
CHECK_SHAPES = [(2, 7, 0), (3, 11, 4), (1, 5, 0)]
MODELS = {
    "gpt2": (GPT2OriginsLMHeadModel, GPT2OriginsConfig.from_preset("tiny", **SIZES)),
    "gpt1": (GPT1OriginsLMHeadModel, GPT1OriginsConfig.from_preset("tiny", **SIZES)),
}


class LogitsOnly(torch.nn.Module):
    """The LM forward as a graph of tensors: logits from ids and mask, no cache."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


def inputs(batch, seq, pad, seed):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (batch, seq), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, :pad] = 0
    return ids, mask


def export(name, dynamo, path):
    model_cls, config = MODELS[name]
    torch.manual_seed(0)
    module = LogitsOnly(model_cls(config).eval()).eval()
    example = inputs(*EXPORT_SHAPE, pad=0, seed=0)
    names = dict(input_names=["input_ids", "attention_mask"], output_names=["logits"])
    if dynamo:
        batch, seq = torch.export.Dim("batch", max=16), torch.export.Dim("seq", max=config.n_positions)
        dims = {0: batch, 1: seq}
        torch.onnx.export(
            module, example, path, dynamo=True, dynamic_shapes={"input_ids": dims, "attention_mask": dims}, **names
        )
    else:
        axes = {0: "batch", 1: "seq"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings: the input checks are traced as constants
            torch.onnx.export(
                module,
                example,
                path,
                dynamo=False,
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": axes},
                opset_version=17,
                **names,
            )
    return module


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
def test_onnx_logits_equal_pytorch(name, dynamo, tmp_path):
    path = tmp_path / f"{name}.onnx"
    module = export(name, dynamo, path)
    onnx.checker.check_model(str(path))
    graph_inputs = onnx.load(str(path)).graph.input
    assert [i.name for i in graph_inputs] == ["input_ids", "attention_mask"]
    for graph_input in graph_inputs:  # both axes symbolic, not the export's sizes
        assert all(dim.dim_param and not dim.dim_value for dim in graph_input.type.tensor_type.shape.dim)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for seed, (batch, seq, pad) in enumerate(CHECK_SHAPES, start=1):
        ids, mask = inputs(batch, seq, pad, seed)
        (logits,) = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
        with torch.no_grad():
            expected = module(ids, mask)
        assert logits.shape == (batch, seq, VOCAB)
        real = mask.bool()
        assert_close(torch.from_numpy(logits)[real], expected[real], atol=1e-4, rtol=1e-4)
