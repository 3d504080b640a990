"""One Accelerator factory for the training recipes: CPU, one GPU, DDP, FSDP and DeepSpeed from the same call."""

import os
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, GradientAccumulationPlugin, is_torch_xla_available

from .errors import RecipeError


def has_accelerator() -> bool:
    if is_torch_xla_available():
        return True
    if hasattr(torch, "accelerator"):  # torch >= 2.6: CUDA, XPU, MPS, ...
        return torch.accelerator.is_available()
    return torch.cuda.is_available()


def build_accelerator(options, output_dir: Path, steps_cross_epochs: bool, torch_compile: bool = False) -> Accelerator:
    """The run's Accelerator, from the shared `TrainingOptions`.

    `steps_cross_epochs`: the optimizer steps every `gradient_accumulation_steps` micro-batches also across epoch
    ends, so a step is always the same amount of data (pre-training); otherwise the last micro-batches of an epoch make
    a step of their own, and every epoch ends on a step (fine-tuning, which evaluates per epoch).
    A launch config for DeepSpeed (`accelerate launch --config_file recipes/configs/deepspeed_zero*.yaml`) on a run
    without a GPU is a RecipeError: Accelerate would quietly run plain data parallelism instead.
    """
    cpu = options.cpu or not has_accelerator()
    if cpu and os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        raise RecipeError(
            "The launch config asks for DeepSpeed (ACCELERATE_USE_DEEPSPEED=true), which needs CUDA GPUs, but "
            + ("--cpu is set" if options.cpu else "this machine has none")
            + ": Accelerate would run plain data parallelism instead, without ZeRO. Launch on a GPU machine, or use "
            "--config_file recipes/configs/multi_gpu.yaml for data parallelism over CPU processes (gloo)."
        )
    return Accelerator(
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
    )
