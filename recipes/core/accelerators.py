"""One Accelerator factory for the training recipes: CPU, one GPU, DDP, FSDP and DeepSpeed from the same call."""

import os
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import (
    DataLoaderConfiguration,
    DistributedType,
    FullyShardedDataParallelPlugin,
    GradientAccumulationPlugin,
    is_torch_xla_available,
)

from .errors import RecipeError


def has_accelerator() -> bool:
    if is_torch_xla_available():
        return True
    if hasattr(torch, "accelerator"):  # torch >= 2.6: CUDA, XPU, MPS, ...
        return torch.accelerator.is_available()
    return torch.cuda.is_available()


def _flag(name: str) -> bool:
    return os.environ.get(name, "false").lower() == "true"


def build_accelerator(options, output_dir: Path, steps_cross_epochs: bool, torch_compile: bool = False) -> Accelerator:
    """The run's Accelerator, from the shared `TrainingOptions`.

    `steps_cross_epochs`: the optimizer steps every `gradient_accumulation_steps` micro-batches also across epoch
    ends, so a step is always the same amount of data (pre-training); otherwise the last micro-batches of an epoch make
    a step of their own, and every epoch ends on a step (fine-tuning, which evaluates per epoch).

    A launch config for DeepSpeed (`accelerate launch --config_file recipes/configs/launch/deepspeed_zero*.yaml`) on a
    run without a GPU is a RecipeError: Accelerate would quietly run plain data parallelism instead. The FSDP config
    (`fsdp.yaml`, FSDP2) on CPU processes shards for real over gloo (`shard_over_cpu_processes`); what of it cannot
    work there (FSDP1, parameter offloading, --cpu beside GPUs) is a RecipeError.
    """
    cpu = options.cpu or not has_accelerator()
    if cpu and _flag("ACCELERATE_USE_DEEPSPEED"):
        raise RecipeError(
            "The launch config asks for DeepSpeed (ACCELERATE_USE_DEEPSPEED=true), which needs CUDA GPUs, but "
            + ("--cpu is set" if options.cpu else "this machine has none")
            + ": Accelerate would run plain data parallelism instead, without ZeRO. Launch on a GPU machine, or use "
            "--config_file recipes/configs/launch/multi_gpu.yaml for data parallelism over CPU processes (gloo)."
        )
    fsdp_on_cpu = cpu and _flag("ACCELERATE_USE_FSDP")
    fsdp_plugin = cpu_fsdp_plugin(options.cpu) if fsdp_on_cpu else None
    accelerator = Accelerator(
        mixed_precision=options.mixed_precision,
        # A machine without an accelerator trains on its CPU; under torchrun or `accelerate launch --multi_gpu` its
        # processes then form a gloo group (Accelerate only does that with cpu=True).
        cpu=cpu,
        log_with=options.report_to if options.with_tracking else None,
        project_dir=os.fspath(output_dir / "logs"),
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=options.gradient_accumulation_steps, sync_with_dataloader=not steps_cross_epochs
        ),
        # The sampler's order depends on the seed and the epoch only, so a resumed run draws the same batches.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=options.seed),
        step_scheduler_with_optimizer=False,  # stepped by hand, once per optimizer step whatever the process count
        dynamo_backend="inductor" if torch_compile else None,
        # None on GPUs: Accelerate builds the plugin from the FSDP_* variables itself. On CPU processes it keeps none.
        fsdp_plugin=fsdp_plugin,
    )
    if fsdp_plugin is not None:
        shard_over_cpu_processes(accelerator, fsdp_plugin)
    return accelerator


def cpu_fsdp_plugin(cpu_flag: bool) -> FullyShardedDataParallelPlugin:
    """The launch config's FSDP settings (the FSDP_* variables `accelerate launch` sets), checked for what a run on
    CPU processes can do: FSDP2's `fully_shard` over a gloo group, on a CPU device mesh. Anything else is a
    RecipeError naming what to change."""
    if cpu_flag and has_accelerator():
        # torch's fully_shard builds its default device mesh on the machine's accelerator, not on the CPU.
        raise RecipeError(
            "The launch config asks for FSDP (ACCELERATE_USE_FSDP=true) and --cpu is set, but this machine has an "
            "accelerator, which FSDP would shard over instead of the CPU processes. Leave out --cpu to shard over the "
            "GPUs, or hide them (CUDA_VISIBLE_DEVICES=) to shard over CPU processes."
        )
    from torch.distributed.fsdp import CPUOffloadPolicy

    plugin = FullyShardedDataParallelPlugin()  # from the FSDP_* environment, as Accelerate would build it
    if plugin.fsdp_version != 2:
        raise RecipeError(
            f"The launch config asks for FSDP version {plugin.fsdp_version} (fsdp_version), which Accelerate runs on "
            f"GPUs only, and this run is on the CPU ({'--cpu is set' if cpu_flag else 'this machine has no GPU'}). "
            "Set fsdp_version: 2 (recipes/configs/launch/fsdp.yaml does): FSDP2 shards over CPU processes too (gloo)."
        )
    if isinstance(plugin.cpu_offload, CPUOffloadPolicy):
        raise RecipeError(
            "The launch config offloads FSDP parameters to the CPU (fsdp_offload_params: true), but this run is on "
            "the CPU already: there is no accelerator memory to save, and torch's offloading needs one (pinned "
            "memory). Set fsdp_offload_params: false."
        )
    return plugin


def shard_over_cpu_processes(accelerator: Accelerator, fsdp_plugin: FullyShardedDataParallelPlugin):
    """Makes a CPU run under an FSDP launch config use FSDP2 for real.

    Accelerate builds the gloo group of CPU processes only with `cpu=True`, and then sets the distributed type to
    MULTI_CPU and drops the FSDP plugin (AcceleratorState turns FSDP on for GPU-like types only): `prepare` would wrap
    the model in DDP, unsharded. Everything FSDP2 needs beyond that type works on CPU tensors over gloo: `fully_shard`
    builds a CPU device mesh when there is no accelerator, `prepare` shards the model (DTensor parameters) and moves
    the optimizer onto the shards, `clip_grad_norm_` reduces over the mesh, `save_state` / `load_state` write and read
    torch.distributed.checkpoint shards, `get_state_dict` gathers the full model. So the state, shared by every
    Accelerator object of the process, is switched to FSDP with the plugin, as AcceleratorState does on GPUs. A single
    process without a launcher (distributed type NO) is left alone, as Accelerate leaves it on GPUs.
    """
    state = accelerator.state
    if state.distributed_type != DistributedType.MULTI_CPU:
        return
    if state.mixed_precision != "no":
        fsdp_plugin.set_mixed_precision(state.mixed_precision)
    state.fsdp_plugin = fsdp_plugin
    state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
