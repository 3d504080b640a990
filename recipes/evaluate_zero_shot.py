"""Zero-shot evaluation of a GPT-2 (or GPT-1): perplexity, LAMBADA last-word accuracy, multiple choice, HellaSwag.

GPT-2's claim (Radford et al. 2019, section 3) is that a language model does tasks it was never trained for when
they are posed as text to continue. This recipe measures that four ways, chosen by `--task`, on a saved GPT-2 or
GPT-1 folder (a pre-training run's, a fine-tuned GPT-1's; its config.json names the family, recipes/models/families.py
loads it), a Hub model (`--model openai-community/gpt2`; transformers' own GPT-2 and GPT-1 checkpoints load as they
are), or a GPT-2 preset of the paper's sizes with random weights (`--model tiny`, for smoke runs without the Hub):

    python -m recipes.evaluate_zero_shot --task perplexity --model openai-community/gpt2 \\
        --dataset_name Salesforce/wikitext --dataset_config_name wikitext-2-raw-v1 --join_with '\\n'
    python -m recipes.evaluate_zero_shot --task lambada --model openai-community/gpt2 \\
        --dataset_name EleutherAI/lambada_openai --dataset_config_name en
    python -m recipes.evaluate_zero_shot --task multiple_choice --model runs/pretrain-gpt2 \\
        --data_file tests/fixtures/tasks/entailment-presuppositions.jsonl
    python -m recipes.evaluate_zero_shot --task hellaswag --model openai-community/gpt2 --no-add_start_token

Every scored sequence starts with the tokenizer's start token (GPT-2's `<|endoftext|>`, GPT-1's `_start_`), as the
model saw documents start in pre-training (`--no-add_start_token` leaves it out), and is cut to `--max_length`
tokens (default: the model's `n_positions`), keeping the end.

- `perplexity`: the texts (`--data_file`/`--text_file`: `.txt` = one document per file, `.jsonl`/`.csv`/`.parquet` =
  one per record, column `--text_column`; or a Hub dataset) are scored document by document: every document is its
  own token stream (`[start] + tokens`), so no document is conditioned on another; `--join_with TEXT` instead joins
  all documents with TEXT into one stream first (WikiText's rows are lines of one article file: `--join_with '\\n'`).
  A stream longer than the window is scored with a sliding window (the transformers guide "Perplexity of
  fixed-length models"): each window of `--max_length` tokens predicts the `--stride` tokens at its end, the tokens
  before them are context only (label -100), so every token is scored exactly once, with at least
  `max_length - stride` tokens of context. Unlike the guide's loop, a window here holds `max_length` inputs and
  its first scored token is predicted from the token before it, so `--stride` = `--max_length` leaves no token
  unscored. Reported: NLL per token (nats), perplexity, token count, and bits per byte (total NLL in bits over the
  UTF-8 bytes of the texts, which does not depend on the tokenizer).
- `lambada`: the context is each text up to its last word, the target is the last word with its leading space
  (" word", as GPT-2's BPE writes words inside a sentence). Correct when greedy decoding reproduces every target
  token, that is when the argmax at each target position, given the true prefix, is the target token. Reported:
  accuracy and the last-word perplexity (exp of the mean NLL of the whole word, as lm-evaluation-harness does).
- `multiple_choice`: rows `{context, choices, label}` (label = index of the right choice) or entailment rows
  `{premise, hypothesis, label}`, which become a multiple choice over the label names through `--template` and
  `--label_choices` ("premise / Question: hypothesis True, False or Neither? / Answer:" and " True", " Neither",
  " False" by default), or classification rows `{text, label}`, a choice among the class names ("text very" and
  " negative", " positive" for sentiment by default: GPT-1's zero-shot heuristic, section 5). Each choice is
  scored by its log-likelihood given the prompt, summed over its tokens (`none`), divided by its token count
  (`tokens`) or by its length in characters (`chars`); the highest scoring choice is the prediction, and an accuracy
  is reported for every `--normalize` given.
- `hellaswag`: HellaSwag's rows (Zellers et al. 2019; the Hub's `Rowan/hellaswag`, `validation` split, by default;
  `--dataset_name`/`--dataset_split` or a `--data_file` of rows with its columns instead) as lm-evaluation-harness
  poses them: the prompt is "activity_label: ctx_a Ctx_b" (ctx_b through `str.capitalize`), the choices are the four
  endings, each after a space, prompt and endings cleaned of WikiHow's tags (" [title]" becomes ". ", other
  "[...]" tags go, double spaces become one), the answer is int(label). Scored as `multiple_choice` is; reported:
  `acc` (summed log-likelihood) and `acc_norm` (per character of the cleaned ending), the harness's two figures
  (it adds no start token: `--no-add_start_token` for its numbers). Unlabelled rows (the test split) are refused.

All choices and windows of a task are scored in batches of `--per_device_eval_batch_size` sequences, sorted by
length, padded on `--padding_side` with an attention mask and position ids counted over the real tokens, under
`torch.inference_mode`, on the device Accelerate picks (`accelerate launch` splits the batches over processes).
The results go to `--output_file` (JSON, default runs/zero-shot/<task>-<model>.json) and are printed as a table.
Options can also come from a YAML run config (`--config FILE`, recipes/core/arguments.py); the command line overrides
it. A bad option, file, row or checkpoint stops the recipe with a one-line error (exit status 2) before any scoring.
"""

if __name__ == "__main__" and not __package__:  # a script path: `python recipes/evaluate_zero_shot.py`
    from script_path import PACKAGE as __package__  # noqa: F401  (recipes/script_path.py)


from .core.command import run_cli
from .evaluation.zero_shot import evaluation_function
from .evaluation.zero_shot_options import ZeroShotArguments

PROG = "python -m recipes.evaluate_zero_shot"


def main(argv=None):
    return run_cli(ZeroShotArguments, evaluation_function, argv, prog=PROG, description=__doc__)


__all__ = ["ZeroShotArguments", "main"]


if __name__ == "__main__":
    main()
