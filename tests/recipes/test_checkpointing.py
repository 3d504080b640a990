"""recipes/core/checkpointing.py in-process: atomic saves, the completeness marker, rotation, resolving what to
resume."""

import json

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from modeling_gpt2 import GPT2OriginsConfig
from recipes.core import checkpointing
from recipes.core.checkpointing import (
    MARKER,
    check_same_model,
    complete_checkpoints,
    latest_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from recipes.core.errors import RecipeError


class Interrupted(BaseException):
    """Stands for SIGKILL: nothing after it runs (a BaseException, so no `except Exception` catches it)."""


@pytest.fixture
def accelerator_and_model():
    AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(4, 4)
    optimizer = torch.optim.AdamW(model.parameters())
    model, optimizer = accelerator.prepare(model, optimizer)
    yield accelerator, model
    AcceleratorState._reset_state(reset_partial_state=True)


def names(root):
    return sorted(path.name for path in root.iterdir())


def test_saves_are_marked_renamed_and_rotated(tmp_path, accelerator_and_model):
    accelerator, model = accelerator_and_model
    for step in (10, 20, 30):
        with torch.no_grad():
            model.weight.fill_(step)
        path = save_checkpoint(accelerator, tmp_path, step, total_limit=2, info={"note": step})
        assert path.name == f"step_{step:08d}"
    assert names(tmp_path) == ["step_00000020", "step_00000030"]  # no temporaries left, the oldest rotated out
    assert json.loads((tmp_path / "step_00000030" / MARKER).read_text())["note"] == 30
    assert latest_checkpoint(tmp_path) == tmp_path / "step_00000030"
    with torch.no_grad():
        model.weight.zero_()
    accelerator.load_state(str(latest_checkpoint(tmp_path)))
    assert torch.all(model.weight == 30)


def test_a_save_killed_midway_leaves_the_previous_checkpoint(tmp_path, accelerator_and_model, monkeypatch):
    accelerator, model = accelerator_and_model
    save_checkpoint(accelerator, tmp_path, 10, total_limit=1)

    def die_after_writing(folder):  # the state is on disk, but the save dies before marking it complete
        raise Interrupted

    with pytest.raises(Interrupted):
        save_checkpoint(accelerator, tmp_path, 20, write_extra=die_after_writing, total_limit=1)
    assert names(tmp_path) == [".step_00000020.tmp", "step_00000010"]
    assert latest_checkpoint(tmp_path) == tmp_path / "step_00000010"
    assert resolve_checkpoint("latest", tmp_path) == tmp_path / "step_00000010"

    # Dying inside fsync (after the writes, before the marker) is the same story.
    monkeypatch.setattr(checkpointing, "_fsync_tree", lambda folder: (_ for _ in ()).throw(Interrupted()))
    with pytest.raises(Interrupted):
        save_checkpoint(accelerator, tmp_path, 20, total_limit=1)
    assert latest_checkpoint(tmp_path) == tmp_path / "step_00000010"
    monkeypatch.undo()

    # The next save clears the stale temporary and rotates only after its own rename.
    save_checkpoint(accelerator, tmp_path, 30, total_limit=1)
    assert names(tmp_path) == ["step_00000030"]


def test_rotation_cut_short_never_leaves_a_complete_half_checkpoint(tmp_path, accelerator_and_model, monkeypatch):
    accelerator, _ = accelerator_and_model
    save_checkpoint(accelerator, tmp_path, 1)
    monkeypatch.setattr(checkpointing, "_remove", lambda path: (_ for _ in ()).throw(Interrupted()))
    with pytest.raises(Interrupted):
        save_checkpoint(accelerator, tmp_path, 2, total_limit=1)
    # The old folder was unmarked before its deletion began: it no longer counts, the new one does.
    assert [path.name for path in complete_checkpoints(tmp_path)] == ["step_00000002"]


def test_resolve_checkpoint_names_what_is_wrong(tmp_path, accelerator_and_model):
    accelerator, _ = accelerator_and_model
    with pytest.raises(RecipeError, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "nowhere"), tmp_path)
    with pytest.raises(RecipeError, match="holds no complete checkpoint"):
        resolve_checkpoint("latest", tmp_path)
    save_checkpoint(accelerator, tmp_path, 5)
    broken = tmp_path / "step_00000009"
    broken.mkdir()
    assert resolve_checkpoint(str(tmp_path), tmp_path) == tmp_path / "step_00000005"
    with pytest.raises(
        RecipeError, match=r"step_00000009' is incomplete .*newest complete one there is .*step_00000005"
    ):
        resolve_checkpoint(str(broken), tmp_path)


def test_check_same_model_names_the_differing_fields(tmp_path):
    GPT2OriginsConfig.from_preset("tiny").to_json_file(tmp_path / "config.json")
    check_same_model(tmp_path, GPT2OriginsConfig.from_preset("tiny", resid_pdrop=0.0))  # dropout is no architecture
    with pytest.raises(
        RecipeError, match=r"another model \(n_embd: checkpoint 64, this run 128; n_head: .* 4, .* 8\)"
    ):
        check_same_model(tmp_path, GPT2OriginsConfig.from_preset("tiny", n_embd=128, n_head=8))
    with pytest.raises(RecipeError, match="not a checkpoint of this recipe: it has no config.json"):
        check_same_model(tmp_path / "elsewhere", GPT2OriginsConfig.from_preset("tiny"))


@pytest.mark.parametrize("tied", [True, False])
def test_a_tied_head_is_saved_once_without_accelerates_warning_and_reloads_tied(tmp_path, tied, caplog):
    """accelerate would drop the tied copy itself and warn "Removed shared tensor {'lm_head.weight'}"; the save hook
    drops it first, an untied head is kept, and `load_state` gives back the same weights (and the tie)."""
    from safetensors import safe_open

    from modeling_gpt2 import GPT2OriginsLMHeadModel

    AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(cpu=True)
    config = GPT2OriginsConfig(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=8, tie_word_embeddings=tied)
    model = accelerator.prepare(GPT2OriginsLMHeadModel(config))
    with caplog.at_level("WARNING"):
        folder = save_checkpoint(accelerator, tmp_path, step=1)
    assert "Removed shared tensor" not in caplog.text
    with safe_open(folder / "model.safetensors", "pt") as saved:
        assert ("lm_head.weight" in saved.keys()) == (not tied)  # noqa: SIM118  (safe_open has no __contains__)
    expected = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
    accelerator.load_state(str(folder))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    assert (model.lm_head.weight is model.transformer.wte.weight) == tied
    AcceleratorState._reset_state(reset_partial_state=True)
