"""Generate text with a GPT-2 of gpt-origins.

The model is a saved folder or Hub repository (`--model path/or/name`; transformers' own GPT-2 checkpoints such as
openai-community/gpt2 load too), or a preset of the paper's sizes with random weights (`--preset tiny`, the default
here, so this runs on a fresh machine without the Hub: expect noise until the model is trained). The tokenizer is
the model folder's, or OpenAI's GPT-2 vocabulary, which ships with gpt-origins and needs no network.

    python -m recipes.generate --prompt "It was a dark and stormy night"
    python -m recipes.generate --model openai-community/gpt2 --prompt "Hello" --do_sample --top_k 40
"""

import argparse
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import modeling_gpt2  # noqa: F401  (registers gpt2-origins with the Auto classes)
from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel, load_gpt2_tokenizer


def load_model_and_tokenizer(args):
    if args.model is None:
        torch.manual_seed(args.seed)
        model = GPT2OriginsLMHeadModel(GPT2OriginsConfig.from_preset(args.preset))
        return model, load_gpt2_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(args.model)
    has_tokenizer = not Path(args.model).is_dir() or any(
        (Path(args.model) / name).exists() for name in ("tokenizer.json", "vocab.json", "tokenizer_config.json")
    )
    tokenizer = AutoTokenizer.from_pretrained(args.model) if has_tokenizer else load_gpt2_tokenizer()
    return model, tokenizer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="saved folder or Hub name; default: a random --preset model")
    parser.add_argument("--preset", default="tiny", help="tiny, 124M, 355M, 774M or 1.5B (used without --model)")
    parser.add_argument("--prompt", action="append", help="prompt text; repeat for a batch")
    parser.add_argument("--max_new_tokens", type=int, default=40)
    parser.add_argument("--do_sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top_k", type=int, default=50)
    parser.add_argument("--num_beams", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.max_new_tokens < 1:
        parser.error(f"--max_new_tokens must be at least 1, got {args.max_new_tokens}")
    prompts = args.prompt or ["It was a dark and stormy night"]

    model, tokenizer = load_model_and_tokenizer(args)
    model.to(args.device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation continues at the right edge of every row
    batch = tokenizer(prompts, return_tensors="pt", padding=True).to(args.device)

    torch.manual_seed(args.seed)
    start = time.perf_counter()
    with torch.no_grad():
        output = model.generate(
            **batch,
            max_new_tokens=args.max_new_tokens,
            do_sample=args.do_sample,
            temperature=args.temperature if args.do_sample else None,
            top_k=args.top_k if args.do_sample else None,
            num_beams=args.num_beams,
            pad_token_id=tokenizer.pad_token_id,
        )
    seconds = time.perf_counter() - start
    new_tokens = output[:, batch["input_ids"].shape[1] :]
    for prompt, continuation in zip(prompts, tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
        print(f"--- {prompt!r}\n{prompt}{continuation}\n")
    print(
        f"{model.num_parameters():,} parameters, {new_tokens.numel()} new tokens in {seconds:.2f} s "
        f"({new_tokens.numel() / seconds:.1f} tokens/s) on {args.device}"
    )
    return output


if __name__ == "__main__":
    main()
