"""recipes/configs/launch/fsdp.yaml on CPU processes (gloo): FSDP2 for real, not DDP under another name.

Two processes under `accelerate launch --config_file recipes/configs/launch/fsdp.yaml` shard the model (every
parameter a
DTensor, each process holding its half), train with the losses of one process with the same global batch, write
sharded checkpoints that a resumed run continues from exactly, and gather a final model that loads like any other.
What of an FSDP config cannot work on CPU processes stops with a message instead of running as something else.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

import modeling_gpt2  # noqa: F401 (registers its classes with the Auto classes)
from recipes.core.accelerators import build_accelerator, has_accelerator
from recipes.core.checkpointing import complete_checkpoints
from recipes.core.errors import RecipeError

REPO = Path(__file__).parents[2]
FIXTURE = Path(__file__).parents[1] / "fixtures" / "shakespeare_sample.txt"
FSDP_CONFIG = REPO / "recipes" / "configs" / "launch" / "fsdp.yaml"
# A tiny run without dropout (the masks differ per process): 8 steps of 2 x 2 x 2 blocks (4 x 2 in one process),
# a loss logged every step, an evaluation and a checkpoint every 4.
COMMON = [
    "--preset", "tiny", "--tokenizer", "train", "--vocab_size", "512", "--block_size", "32",
    "--gradient_accumulation_steps", "2", "--learning_rate", "3e-3", "--max_steps", "8", "--logging_steps", "1",
    "--eval_steps", "4", "--checkpointing_steps", "4", "--max_eval_samples", "16", "--num_samples", "1",
    "--sample_length", "8", "--no-with_tracking", "--config_overrides", "resid_pdrop=0,embd_pdrop=0,attn_pdrop=0",
]  # fmt: skip

# Records what `accelerator.prepare` made of the model, on every process, then runs the recipe.
PROBE = textwrap.dedent(
    """
    import json, os, sys
    import accelerate, torch
    from torch.distributed.tensor import DTensor

    original_prepare = accelerate.Accelerator.prepare

    def prepare(self, *args, **kwargs):
        prepared = original_prepare(self, *args, **kwargs)
        model = next(item for item in prepared if isinstance(item, torch.nn.Module))
        parameters = {}
        for name, parameter in model.named_parameters():
            sharded = isinstance(parameter, DTensor)
            parameters[name] = {
                "dtensor": sharded,
                "shard_dim_0": [placement.is_shard(0) for placement in parameter.placements] if sharded else [],
                "mesh": parameter.device_mesh.device_type if sharded else None,
                "local": (parameter.to_local() if sharded else parameter).numel(),
                "full": parameter.numel(),
            }
        record = {"distributed_type": str(self.distributed_type), "class": type(model).__name__,
                  "parameters": parameters}
        with open(os.path.join(os.environ["FSDP_PROBE"], f"rank{self.process_index}.json"), "w") as file:
            json.dump(record, file)
        return prepared

    accelerate.Accelerator.prepare = prepare
    from recipes import pretrain
    pretrain.main(sys.argv[1:])
    """
)

pytestmark = pytest.mark.skipif(
    has_accelerator() and not torch.cuda.is_available(), reason="an accelerator that CUDA_VISIBLE_DEVICES cannot hide"
)


def cpu_env() -> dict:
    # CPU processes even on a machine with GPUs; one thread each, the 2 processes share the cores.
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONPATH": os.fspath(REPO)}


def launch_fsdp(args, probe_dir: Path, timeout=300) -> subprocess.CompletedProcess:
    """The recipe under `accelerate launch --config_file recipes/configs/launch/fsdp.yaml` with 2 processes, fp32."""
    script = probe_dir / "probe.py"
    script.write_text(PROBE)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", os.fspath(FSDP_CONFIG)]
    command += ["--num_processes", "2", "--mixed_precision", "no", "--main_process_port", "0", os.fspath(script)]
    env = {**cpu_env(), "FSDP_PROBE": os.fspath(probe_dir)}
    return subprocess.run(
        [*command, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env
    )


def losses(run_dir: Path, kind: str) -> list[float]:
    return [record["loss"] for record in json.loads((run_dir / "history.json").read_text())[kind]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The 2-process FSDP run and one process with the same global batch, on the same corpus."""
    tmp_path = tmp_path_factory.mktemp("fsdp")
    corpus = tmp_path / "small.txt"
    corpus.write_text(FIXTURE.read_text()[:6000])  # about 90 blocks of 32 tokens
    common = [*COMMON, "--train_file", corpus]
    one = subprocess.run(
        [sys.executable, "-m", "recipes.pretrain", *map(str, common), "--per_device_train_batch_size", "4"]
        + ["--output_dir", str(tmp_path / "one")],
        capture_output=True, text=True, timeout=300, cwd=REPO, env=cpu_env(),
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    probe = tmp_path / "probe"
    probe.mkdir()
    fsdp_args = [*common, "--per_device_train_batch_size", "2"]
    two = launch_fsdp([*fsdp_args, "--output_dir", tmp_path / "two"], probe)
    assert two.returncode == 0, two.stderr[-3000:]
    return SimpleNamespace(
        tmp_path=tmp_path,
        one=tmp_path / "one",
        two=tmp_path / "two",
        probe=probe,
        fsdp_args=fsdp_args,
        stdout=two.stdout,
    )


def test_the_model_is_sharded_over_the_two_processes(runs):
    records = [json.loads((runs.probe / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert "2 process(es) x 2 x 2 accumulation" in runs.stdout
    for record in records:
        assert record["distributed_type"] == "DistributedType.FSDP"
        assert record["class"].startswith("FSDP")  # fully_shard's class, not DistributedDataParallel
        assert record["parameters"] and all(p["dtensor"] for p in record["parameters"].values())
        assert all(p["shard_dim_0"] == [True] and p["mesh"] == "cpu" for p in record["parameters"].values())
    for name, parameter in records[0]["parameters"].items():
        # Each process holds its half of every parameter (dim 0 split in two), nothing more.
        assert parameter["local"] == records[1]["parameters"][name]["local"] == parameter["full"] // 2, name


def test_losses_equal_one_process_with_the_same_global_batch(runs):
    torch.testing.assert_close(losses(runs.two, "train_history"), losses(runs.one, "train_history"), rtol=1e-4, atol=0)
    assert len(losses(runs.two, "train_history")) == 8
    torch.testing.assert_close(losses(runs.two, "eval_history"), losses(runs.one, "eval_history"), rtol=1e-4, atol=0)


def test_checkpoints_are_sharded_and_the_final_model_is_whole(runs):
    checkpoints = complete_checkpoints(runs.two / "checkpoints")
    assert [path.name for path in checkpoints] == ["step_00000004", "step_00000008"]
    for checkpoint in checkpoints:
        # torch.distributed.checkpoint: one file of model and one of optimizer state per process.
        assert sorted(p.name for p in (checkpoint / "pytorch_model_fsdp_0").glob("*.distcp")) == [
            "__0_0.distcp",
            "__1_0.distcp",
        ]
        assert len(list((checkpoint / "optimizer_0").glob("*.distcp"))) == 2
    # The final model: one safetensors file of full tensors, with the code of the model (not of FSDP).
    assert not list(runs.two.glob("_fsdp*.py"))
    config = json.loads((runs.two / "config.json").read_text())
    assert config["architectures"] == ["GPT2OriginsLMHeadModel"]
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_gpt2.GPT2OriginsLMHeadModel"
    two, one = load_file(runs.two / "model.safetensors"), load_file(runs.one / "model.safetensors")
    assert two.keys() == one.keys()
    for name in one:  # the same training, up to the rounding of reductions in another order (which Adam's steps,
        # normalised by the gradients' size, can grow to about 1e-5 where a gradient is near 0)
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-4, msg=name)
    for trust_remote_code in (False, True):  # the installed package's classes, and the code saved beside the weights
        model = AutoModelForCausalLM.from_pretrained(runs.two, trust_remote_code=trust_remote_code)
        assert model.lm_head.weight is model.transformer.wte.weight
        for name, tensor in model.state_dict().items():
            expected = two["transformer.wte.weight" if name == "lm_head.weight" else name]
            torch.testing.assert_close(tensor, expected, rtol=0, atol=0, msg=name)


def test_resumed_from_a_sharded_checkpoint_ends_like_the_uninterrupted_run(runs):
    resumed_dir = runs.tmp_path / "resumed"
    subprocess.run(["cp", "-r", str(runs.two), str(resumed_dir)], check=True)
    for path in [resumed_dir / "checkpoints" / "step_00000008", resumed_dir / "model.safetensors"]:
        subprocess.run(["rm", "-rf", str(path)], check=True)
    probe = runs.tmp_path / "probe-resumed"
    probe.mkdir()
    resumed = launch_fsdp([*runs.fsdp_args, "--output_dir", resumed_dir, "--resume_from_checkpoint", "latest"], probe)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 4" in resumed.stdout
    assert losses(resumed_dir, "train_history") == losses(runs.two, "train_history")
    assert losses(resumed_dir, "eval_history") == losses(runs.two, "eval_history")
    final, uninterrupted = load_file(resumed_dir / "model.safetensors"), load_file(runs.two / "model.safetensors")
    assert final.keys() == uninterrupted.keys()
    for name in final:
        torch.testing.assert_close(final[name], uninterrupted[name], rtol=0, atol=0, msg=name)


# ---------------------------------------------------------------------------------------------------------------------
# What an FSDP config cannot do on CPU processes stops before any work (in this process: no Accelerator is built).


def options(cpu=False) -> SimpleNamespace:
    return SimpleNamespace(cpu=cpu, mixed_precision="no", report_to="none", with_tracking=False,
                           gradient_accumulation_steps=1, seed=0)  # fmt: skip


@pytest.fixture
def fsdp_launch_env(monkeypatch):
    """The variables `accelerate launch --config_file recipes/configs/launch/fsdp.yaml` sets."""
    for name, value in {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_OFFLOAD_PARAMS": "false",
                        "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP",
                        "FSDP_STATE_DICT_TYPE": "SHARDED_STATE_DICT"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("recipes.core.accelerators.has_accelerator", lambda: False)
    return monkeypatch


def test_the_recipe_stops_with_the_message_before_any_work(tmp_path):
    """Through `accelerate launch`, as a user meets it: `error: ...` and a failed launch, no run folder made."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", os.fspath(FSDP_CONFIG)]
    command += ["--num_processes", "2", "--mixed_precision", "no", "--main_process_port", "0"]
    command += ["--fsdp_offload_params", "true", "-m", "recipes.pretrain", "--preset", "tiny", "--train_file", FIXTURE]
    command += ["--output_dir", tmp_path / "run"]
    result = subprocess.run(
        list(map(str, command)), capture_output=True, text=True, timeout=300, cwd=REPO, env=cpu_env()
    )
    assert result.returncode != 0
    assert "recipes.pretrain: error: The launch config offloads FSDP parameters to the CPU" in result.stderr
    assert not (tmp_path / "run").exists()


def test_fsdp1_on_cpu_stops(fsdp_launch_env, tmp_path):
    fsdp_launch_env.setenv("FSDP_VERSION", "1")
    with pytest.raises(RecipeError, match=r"FSDP version 1 .* GPUs only.*this machine has no GPU.*fsdp_version: 2"):
        build_accelerator(options(), tmp_path, steps_cross_epochs=True)


def test_parameter_offloading_on_cpu_stops(fsdp_launch_env, tmp_path):
    fsdp_launch_env.setenv("FSDP_OFFLOAD_PARAMS", "true")
    with pytest.raises(
        RecipeError, match=r"fsdp_offload_params: true.*on the CPU already.*fsdp_offload_params: false"
    ):
        build_accelerator(options(), tmp_path, steps_cross_epochs=True)


def test_cpu_flag_beside_a_gpu_stops(fsdp_launch_env, tmp_path):
    """torch's fully_shard would build its device mesh on the GPU: the run would not be on the CPU as --cpu says."""
    fsdp_launch_env.setattr("recipes.core.accelerators.has_accelerator", lambda: True)
    with pytest.raises(RecipeError, match=r"--cpu is set, but this machine has an accelerator.*CUDA_VISIBLE_DEVICES"):
        build_accelerator(options(cpu=True), tmp_path, steps_cross_epochs=True)


def test_on_a_gpu_machine_the_fsdp_config_goes_to_accelerate_as_before(fsdp_launch_env, tmp_path):
    built = []
    fsdp_launch_env.setattr("recipes.core.accelerators.has_accelerator", lambda: True)
    fsdp_launch_env.setattr(
        "recipes.core.accelerators.Accelerator", lambda **kwargs: built.append(kwargs) or "accelerator"
    )
    assert build_accelerator(options(), tmp_path, steps_cross_epochs=True) == "accelerator"
    assert built[0]["cpu"] is False and built[0]["fsdp_plugin"] is None  # Accelerate reads the FSDP_* variables
