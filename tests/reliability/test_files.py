"""Bad files, for both models: truncated or corrupted safetensors, config.json that is not a config, checkpoints of the
other family or size, missing tokenizer files, and pickles offered as weights. Nothing a checkpoint holds may run code
on load, and a checkpoint of gpt-origins loads through the Auto classes without `trust_remote_code`."""

import ast
import json
import os
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState
from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMultipleChoice,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from modeling_gpt1 import (
    GPT1OriginsConfig,
    GPT1OriginsDoubleHeadsModel,
    GPT1OriginsLMHeadModel,
    gpt1_tokenizer_from_released,
    train_gpt1_tokenizer_from_files,
)
from modeling_gpt1.convert_openai_checkpoint import convert_openai_checkpoint
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel, load_gpt2_tokenizer, tokenization_gpt2
from recipes import pretrain
from recipes.core.checkpointing import check_pickles_hold_only_data
from recipes.core.errors import RecipeError
from recipes.data.tokenizer import load_tokenizer

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "shakespeare_sample.txt"
SIZES = {"vocab_size": 100, "n_positions": 16, "n_embd": 32, "n_head": 4, "n_layer": 1}
MODEL_CLASSES = {
    "gpt2": (GPT2OriginsConfig, GPT2OriginsLMHeadModel),
    "gpt1": (GPT1OriginsConfig, GPT1OriginsLMHeadModel),
}
OTHER = {"gpt2": "gpt1", "gpt1": "gpt2"}
WEIGHTS = "model.safetensors"


class RunsCode:
    """Unpickling this runs `touch <marker>`: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """A good saved folder of each family (and one of each at another width)."""
    folders = {}
    for family, (config_class, model_class) in MODEL_CLASSES.items():
        torch.manual_seed(0)
        folders[family] = tmp_path_factory.mktemp(family)
        model_class(config_class.from_preset("tiny", **SIZES)).save_pretrained(folders[family])
    return folders


def edit_bytes(change: Callable[[bytes], bytes]):
    return lambda folder, other: (folder / WEIGHTS).write_bytes(change((folder / WEIGHTS).read_bytes()))


def edit_config(change: Callable[[dict], object]):
    def edit(folder, other):
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps(change(config)))

    return edit


def corrupt_header(data: bytes) -> bytes:
    return data[:10] + b"\xff" * 50 + data[60:]


def take_weights_of(folder, other):
    shutil.copy(other / WEIGHTS, folder / WEIGHTS)


def take_config_of(folder, other):
    shutil.copy(other / "config.json", folder / "config.json")


@dataclass
class FileCase:
    id: str
    corrupt: Callable[[Path, Path], None]  # (this family's folder copy, the other family's folder)
    error: type[BaseException]
    match: str


FILE_CASES = [
    FileCase(
        "file-safetensors-truncated",
        edit_bytes(lambda data: data[: len(data) // 2]),
        OSError,
        r"The safetensors weights of '.*' cannot be read \(Error while deserializing header: incomplete metadata, "
        r"file not fully covered\): the file is truncated or corrupted",
    ),
    FileCase(
        "file-safetensors-header-cut",
        edit_bytes(lambda data: data[:100]),
        OSError,
        r"cannot be read \(Error while deserializing header: invalid header length\)",
    ),
    FileCase(
        "file-safetensors-empty",
        edit_bytes(lambda data: b""),
        OSError,
        r"cannot be read \(Error while deserializing header: header too small\)",
    ),
    FileCase(
        "file-safetensors-random-bytes",
        edit_bytes(lambda data: bytes(range(256)) * 4),
        OSError,
        r"cannot be read \(Error while deserializing header: header too large\)",
    ),
    FileCase(
        "file-safetensors-corrupted-header",
        edit_bytes(corrupt_header),
        OSError,
        r"cannot be read \(Error while deserializing header: invalid UTF-8 in header",
    ),
    FileCase(
        "file-weights-missing",
        lambda folder, other: (folder / WEIGHTS).unlink(),
        OSError,
        r"no file named model.safetensors, or pytorch_model.bin, found in directory",
    ),
    FileCase(
        "file-config-not-json",
        lambda folder, other: (folder / "config.json").write_text("{n_layer: 2,"),
        OSError,
        r"the config file at '.*config.json' is not a valid JSON file",
    ),
    FileCase(
        "file-config-empty-file",
        lambda folder, other: (folder / "config.json").write_text(""),
        OSError,
        r"config.json' is not a valid JSON file",
    ),
    FileCase(
        "file-config-json-list",
        lambda folder, other: (folder / "config.json").write_text("[1, 2]"),
        ValueError,
        r"config.json must hold a JSON object of fields, got a list: \[1, 2\]",
    ),
    FileCase(
        "file-config-missing",
        lambda folder, other: (folder / "config.json").unlink(),
        OSError,
        r"has no config.json \(or an empty one\): a GPT-\d folder needs the config its weights were saved with",
    ),
    FileCase(
        "file-config-wrong-type",
        edit_config(lambda config: {**config, "n_layer": "1"}),
        StrictDataclassFieldValidationError,
        r"Field 'n_layer' expected int, got str \(value: '1'\)",
    ),
    FileCase(
        "file-config-bad-value",
        edit_config(lambda config: {**config, "n_head": 5}),
        ValueError,
        r"`n_embd` \(32\) must be divisible by `n_head` \(5\)",
    ),
    FileCase(
        "file-config-other-size",
        edit_config(lambda config: {**config, "n_embd": 64}),
        ValueError,
        r"weights of '.*' do not fit the GPT\dOriginsLMHeadModel built from its config "
        r"\(transformer.h.0.attn.c_attn.bias: \(96,\) saved, \(192,\) here",
    ),
    FileCase(
        "file-other-family-checkpoint",
        take_config_of,
        ValueError,
        r"The config has model_type='gpt\d-origins', a checkpoint of GPT-\d \(modeling_gpt\d\), not GPT-\d",
    ),
    FileCase(
        "file-other-family-weights",
        take_weights_of,
        ValueError,
        r"lacks \d weights of GPT\dOriginsLMHeadModel \(e.g. transformer\..*\) and holds others instead .*: "
        r"it is not a checkpoint of this model family",
    ),
]


@pytest.mark.parametrize("family", list(MODEL_CLASSES))
@pytest.mark.parametrize("case", FILE_CASES, ids=lambda case: case.id)
def test_bad_file_fails_clearly(saved, tmp_path, family, case):
    folder = tmp_path / "checkpoint"
    shutil.copytree(saved[family], folder)
    case.corrupt(folder, saved[OTHER[family]])
    model_class = MODEL_CLASSES[family][1]
    with pytest.raises(case.error, match=case.match):
        model_class.from_pretrained(folder)


@pytest.mark.parametrize("family", list(MODEL_CLASSES))
def test_auto_classes_give_the_same_errors(saved, tmp_path, family):
    folder = tmp_path / "checkpoint"
    shutil.copytree(saved[family], folder)
    edit_bytes(lambda data: data[:-7])(folder, None)
    with pytest.raises(OSError, match=r"The safetensors weights of .* cannot be read"):
        AutoModelForCausalLM.from_pretrained(folder)
    take_weights_of(folder, saved[OTHER[family]])
    with pytest.raises(ValueError, match=r"it is not a checkpoint of this model family"):
        AutoModelForCausalLM.from_pretrained(folder)


def test_a_pretrained_body_still_loads_under_new_task_heads(saved):
    """The strict loading lets exactly the fine-tuning heads be new: an LM checkpoint is the start of fine-tuning."""
    model, info = GPT1OriginsDoubleHeadsModel.from_pretrained(
        saved["gpt1"], task_type="classification", num_labels=2, output_loading_info=True
    )
    assert sorted(info["missing_keys"]) == ["score.bias", "score.weight"]
    mismatched = GPT1OriginsDoubleHeadsModel.from_pretrained(
        saved["gpt1"], task_type="classification", n_embd=64, ignore_mismatched_sizes=True
    )  # asked for: transformers' own behaviour, new weights where the shapes differ
    assert mismatched.config.n_embd == 64


# ------------------------------------------------------------------------------------------- nothing runs on load


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # torch, on the plain pickle
@pytest.mark.parametrize("family", list(MODEL_CLASSES))
@pytest.mark.parametrize("container", ["torch.save", "plain pickle"])
def test_a_malicious_pickle_offered_as_weights_is_refused(saved, tmp_path, family, container):
    folder = tmp_path / "checkpoint"
    shutil.copytree(saved[family], folder)
    (folder / WEIGHTS).unlink()
    marker = tmp_path / "code-ran"
    payload = {"transformer.h.0.ln_1.weight": RunsCode(marker)}
    if container == "torch.save":
        torch.save(payload, folder / "pytorch_model.bin")
    else:
        (folder / "pytorch_model.bin").write_bytes(pickle.dumps(payload))
    model_class = MODEL_CLASSES[family][1]
    for load in (model_class.from_pretrained, AutoModelForCausalLM.from_pretrained):
        with pytest.raises(pickle.UnpicklingError, match=r"Weights only load failed"):
            load(folder)
    with pytest.raises(ValueError, match=r"weights_only=False is refused: weights are read from safetensors or with"):
        model_class.from_pretrained(folder, weights_only=False)
    assert not marker.exists()


@pytest.mark.parametrize("family", list(MODEL_CLASSES))
def test_a_plain_pytorch_checkpoint_loads_with_weights_only(saved, tmp_path, family):
    """The one non-safetensors format: a state dict of tensors, read by torch.load(weights_only=True)."""
    config_class, model_class = MODEL_CLASSES[family]
    folder = tmp_path / "checkpoint"
    shutil.copytree(saved[family], folder)
    reference = model_class.from_pretrained(folder)
    (folder / WEIGHTS).unlink()
    torch.save(reference.state_dict(), folder / "pytorch_model.bin")
    loaded = model_class.from_pretrained(folder)
    for name, tensor in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_a_malicious_training_state_in_a_checkpoint_is_refused(tmp_path):
    """accelerate unpickles the registered training progress in full; the recipes refuse one that is not plain data."""
    marker = tmp_path / "code-ran"
    checkpoint = tmp_path / "step_00000004"
    checkpoint.mkdir()
    torch.save({"step": 4, "eval_history": [{"loss": np.float64(2.5)}]}, checkpoint / "custom_checkpoint_0.pkl")
    check_pickles_hold_only_data(checkpoint)  # plain data, numpy scalars included: fine
    torch.save({"step": RunsCode(marker)}, checkpoint / "custom_checkpoint_0.pkl")
    with pytest.raises(RecipeError, match=r"custom_checkpoint_0.pkl is not plain data \(it names posix.system\)"):
        check_pickles_hold_only_data(checkpoint)
    assert not marker.exists()


def test_the_openai_converter_never_unpickles(tmp_path):
    """OpenAI's release is numpy arrays: read with allow_pickle=False, an object array (a pickle) is refused."""
    marker = tmp_path / "code-ran"
    (tmp_path / "params_shapes.json").write_text(json.dumps([[2, 4]]))
    np.save(tmp_path / "params_0.npy", np.array([RunsCode(marker), 1.0], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"Object arrays cannot be loaded when allow_pickle=False"):
        convert_openai_checkpoint(tmp_path, tmp_path / "out")
    assert not marker.exists()


def test_package_code_never_unpickles():
    """Every np.load in the packages passes allow_pickle=False; no pickle import, no weights_only=False anywhere."""
    for path in [*REPO.glob("modeling_gpt*/*.py"), *REPO.glob("recipes/*.py")]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(alias.name in ("pickle", "dill", "joblib") for alias in node.names), path.name
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            keywords = {keyword.arg: ast.unparse(keyword.value) for keyword in node.keywords}
            if name in ("np.load", "numpy.load"):
                assert keywords.get("allow_pickle") == "False", f"{path.name}:{node.lineno} {ast.unparse(node)}"
            if name == "torch.load":
                assert keywords.get("weights_only") == "True", f"{path.name}:{node.lineno} {ast.unparse(node)}"
            assert keywords.get("weights_only") != "False", f"{path.name}:{node.lineno}"
            assert keywords.get("trust_remote_code") != "True", f"{path.name}:{node.lineno}"


# ------------------------------------------------------------------------------------ Auto classes, no remote code


def test_auto_classes_load_without_trust_remote_code(tmp_path):
    """With gpt-origins installed, its folders load through the Auto classes as installed code: no
    `trust_remote_code`, no module from the folder (transformers_modules) imported, even though the folder carries
    its code for the Hub."""
    torch.manual_seed(0)
    GPT2OriginsLMHeadModel(GPT2OriginsConfig.from_preset("tiny", **SIZES)).save_pretrained(tmp_path / "gpt2")
    load_gpt2_tokenizer().save_pretrained(tmp_path / "gpt2")
    gpt1 = GPT1OriginsConfig.from_preset("tiny", **SIZES, task_type="entailment", num_labels=3)
    GPT1OriginsDoubleHeadsModel(gpt1).save_pretrained(tmp_path / "gpt1")
    train_gpt1_tokenizer_from_files(FIXTURE, vocab_size=100).save_pretrained(tmp_path / "gpt1")
    assert (tmp_path / "gpt2" / "modeling_gpt2.py").exists() and (tmp_path / "gpt1" / "modeling_gpt1.py").exists()

    loaded = [
        AutoModelForCausalLM.from_pretrained(tmp_path / "gpt2"),
        AutoModelForCausalLM.from_pretrained(tmp_path / "gpt1"),
        AutoModelForSequenceClassification.from_pretrained(tmp_path / "gpt1"),
        AutoModelForMultipleChoice.from_pretrained(tmp_path / "gpt1"),
        AutoConfig.from_pretrained(tmp_path / "gpt2"),
    ]
    for item in loaded:
        assert type(item).__module__.split(".")[0] in ("modeling_gpt1", "modeling_gpt2"), type(item).__module__
    assert len(AutoTokenizer.from_pretrained(tmp_path / "gpt2")) == 50257
    assert AutoTokenizer.from_pretrained(tmp_path / "gpt1").cls_token == "_classify_"


# ------------------------------------------------------------------------------------------------- tokenizer files


@pytest.fixture(scope="module")
def tokenizer_folders(tmp_path_factory) -> dict[str, Path]:
    folders = {"gpt2": tmp_path_factory.mktemp("tokenizer-gpt2"), "gpt1": tmp_path_factory.mktemp("tokenizer-gpt1")}
    load_gpt2_tokenizer().save_pretrained(folders["gpt2"])
    train_gpt1_tokenizer_from_files(FIXTURE, vocab_size=300).save_pretrained(folders["gpt1"])
    return folders


@pytest.mark.parametrize(
    "family, edit, match",
    [
        (
            "gpt2",
            "remove tokenizer.json",
            r"loads as a tokenizer of 1 token\(s\), its special tokens only \(it holds "
            r"tokenizer_config.json\): its vocabulary file \(tokenizer.json\) is missing or empty",
        ),
        (
            "gpt1",
            "remove tokenizer.json",
            r"is neither a tokenizer folder nor a Hub name that loads \(it holds "
            r"tokenizer_config.json\): Couldn't instantiate the backend tokenizer",
        ),
        ("gpt2", "break tokenizer.json", r"that loads \(it holds tokenizer.json, tokenizer_config.json\): Expecting"),
        ("gpt1", "break tokenizer.json", r"that loads \(it holds tokenizer.json, tokenizer_config.json\): Expecting"),
        ("gpt1", "empty folder", r"that loads \(it holds nothing\)"),
    ],
)
def test_missing_or_broken_tokenizer_files_stop_the_recipes(tokenizer_folders, tmp_path, family, edit, match):
    """`AutoTokenizer` itself lets a GPT-2 folder without tokenizer.json through as a one-token tokenizer (and names no
    file for the others); the recipes load tokenizers through `load_tokenizer`, which stops with the folder's
    contents."""
    folder = tmp_path / "tokenizer"
    shutil.copytree(tokenizer_folders[family], folder)
    if edit == "remove tokenizer.json":
        (folder / "tokenizer.json").unlink()
    elif edit == "break tokenizer.json":
        (folder / "tokenizer.json").write_text('{"model": ')
    else:
        for path in folder.iterdir():
            path.unlink()
    with pytest.raises(RecipeError, match=match):
        load_tokenizer(folder)
    assert len(load_tokenizer(tokenizer_folders[family])) > 100


def test_the_pretraining_recipe_reports_bad_files_in_one_line(saved, tokenizer_folders, tmp_path, capsys):
    """A config.json with a field of the wrong type, a tokenizer folder without its vocabulary: exit status 2 and one
    line, before any data is read."""
    (tmp_path / "config").mkdir()
    config = json.loads((saved["gpt2"] / "config.json").read_text())
    (tmp_path / "config" / "config.json").write_text(json.dumps({**config, "n_layer": "1"}))
    tokenizer = tmp_path / "tokenizer"
    shutil.copytree(tokenizer_folders["gpt2"], tokenizer)
    (tokenizer / "tokenizer.json").unlink()
    common = ["--train_file", str(FIXTURE), "--output_dir", str(tmp_path / "out"), "--no-with_tracking"]
    for options, message in [
        (["--config_name", str(tmp_path / "config")], "error: Bad model configuration: Validation error for field"),
        (["--preset", "tiny", "--tokenizer", str(tokenizer)], "its vocabulary file (tokenizer.json) is missing"),
    ]:
        AcceleratorState._reset_state(reset_partial_state=True)
        with pytest.raises(SystemExit) as exit_info:
            pretrain.main([*options, *common])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    AcceleratorState._reset_state(reset_partial_state=True)


def test_tokenizer_missing_without_config_still_loads(tokenizer_folders, tmp_path):
    """tokenizer.json alone is enough: the folder still tokenizes as before."""
    folder = tmp_path / "tokenizer"
    shutil.copytree(tokenizer_folders["gpt2"], folder)
    (folder / "tokenizer_config.json").unlink()
    assert load_tokenizer(folder)("Hello world").input_ids == [15496, 995]


def test_gpt2_vocabulary_files_missing_or_altered(monkeypatch):
    def missing(package):
        raise ModuleNotFoundError(package)

    monkeypatch.setattr(tokenization_gpt2.resources, "files", missing)
    with pytest.raises(FileNotFoundError, match=r"OpenAI's GPT-2 vocabulary file 'encoder.json' was not found"):
        load_gpt2_tokenizer()
    monkeypatch.undo()
    monkeypatch.setattr(tokenization_gpt2, "VOCAB_SHA256", "0" * 64)
    with pytest.raises(ValueError, match=r"'encoder.json' has sha256 [0-9a-f]{64}, expected 0{64}"):
        load_gpt2_tokenizer()


def test_gpt1_vocabulary_files_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No such file or directory: '.*encoder_bpe_40000.json'"):
        gpt1_tokenizer_from_released(tmp_path / "encoder_bpe_40000.json", tmp_path / "vocab_40000.bpe")
    with pytest.raises(FileNotFoundError, match=r"Training file '.*missing.txt' does not exist"):
        train_gpt1_tokenizer_from_files(tmp_path / "missing.txt", vocab_size=100)


def test_every_file_case_is_in_the_reliability_table(documented_cases):
    ids = {case.id for case in FILE_CASES} | {
        "file-pickle-as-weights",
        "file-pickle-weights-only-false",
        "file-pickle-training-state",
        "file-numpy-object-array",
        "file-tokenizer-json-missing",
        "file-tokenizer-json-broken",
        "file-tokenizer-folder-empty",
        "file-gpt2-vocabulary-missing",
        "file-gpt2-vocabulary-altered",
        "file-gpt1-vocabulary-missing",
    }
    assert not ids - documented_cases, f"docs/RELIABILITY.md has no row for {sorted(ids - documented_cases)}"
