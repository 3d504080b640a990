"""recipes/configs/*.yaml are valid `accelerate launch` configs of the kinds recipes/README.md says they are."""

from pathlib import Path

import pytest
import yaml
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType

CONFIGS = Path(__file__).parents[2] / "recipes" / "configs" / "launch"
EXPECTED = {
    "single_gpu.yaml": (DistributedType.NO, 1, 1),
    "multi_gpu.yaml": (DistributedType.MULTI_GPU, 8, 1),
    "fsdp.yaml": (DistributedType.FSDP, 8, 1),
    "deepspeed_zero2.yaml": (DistributedType.DEEPSPEED, 8, 1),
    "deepspeed_zero3.yaml": (DistributedType.DEEPSPEED, 8, 1),
    "multi_node.yaml": (DistributedType.MULTI_GPU, 16, 2),
}


def test_every_config_is_documented_and_tested():
    launch = [path.name for path in CONFIGS.glob("*.yaml")]
    assert all("distributed_type" in yaml.safe_load((CONFIGS / name).read_text()) for name in launch)
    assert sorted(launch) == sorted(EXPECTED)  # the other folders hold run configs (--config)
    readme = (CONFIGS.parents[1] / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_loads_with_accelerate(name):
    config = load_config_from_file(str(CONFIGS / name))
    distributed_type, num_processes, num_machines = EXPECTED[name]
    assert (config.distributed_type, config.num_processes, config.num_machines) == (
        distributed_type,
        num_processes,
        num_machines,
    )
    if distributed_type == DistributedType.DEEPSPEED:
        # Accumulation must come from the script (--gradient_accumulation_steps), never be fixed in the config.
        assert "gradient_accumulation_steps" not in config.deepspeed_config
    if distributed_type == DistributedType.FSDP:
        assert config.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"  # _no_split_modules blocks


@pytest.mark.parametrize("cpu_flag", [False, True])
def test_deepspeed_without_a_gpu_stops_instead_of_running_ddp(tmp_path, monkeypatch, cpu_flag):
    """`accelerate launch --config_file deepspeed_zero2.yaml` sets ACCELERATE_USE_DEEPSPEED; where there is no GPU
    (or with --cpu) Accelerate would ignore it and run plain DDP: the recipe stops, naming what to do instead."""
    from types import SimpleNamespace

    from recipes.core.accelerators import build_accelerator, has_accelerator
    from recipes.core.errors import RecipeError

    if has_accelerator() and not cpu_flag:
        pytest.skip("a GPU is present: DeepSpeed can run")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    options = SimpleNamespace(cpu=cpu_flag, mixed_precision="no", report_to="none", with_tracking=False,
                              gradient_accumulation_steps=1, seed=0)  # fmt: skip
    with pytest.raises(RecipeError, match=r"asks for DeepSpeed .* needs CUDA GPUs, but .*multi_gpu\.yaml"):
        build_accelerator(options, tmp_path, steps_cross_epochs=True)
