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


from dataclasses import MISSING, dataclass, field, fields

from .core.arguments import at_least
from .core.command import run_cli
from .core.options import option
from .data.corpus import builder_for
from .evaluation.hellaswag import HELLASWAG_DATASET, HELLASWAG_SPLIT
from .evaluation.multiple_choice import (
    ENTAILMENT_CHOICES,
    ENTAILMENT_TEMPLATE,
    MULTIPLE_CHOICE_TEMPLATE,
    NORMALIZATIONS,
    check_template,
    label_answers,
)
from .evaluation.scoring import PADDING_SIDES
from .evaluation.zero_shot import MIXED_PRECISION, TASK_OPTIONS, TASKS, evaluation_function
from .evaluation.zero_shot_data import DEFAULT_SPLIT, HUB_OPTIONS

PROG = "python -m recipes.evaluate_zero_shot"


@dataclass
class ZeroShotArguments:
    task: str = field(metadata={"help": f"one of {', '.join(TASKS)}"})
    model: str = field(
        metadata={"help": "a model folder (GPT-2 or GPT-1), a Hub name, or a GPT-2 preset (tiny, 124M, ...)"}
    )
    # data
    data_file: list[str] | None = option(None, ".txt, .jsonl, .json, .csv, .parquet", aliases=["--text_file"])
    dataset_name: str | None = option(
        None, f"a Hub dataset (instead of files; --task hellaswag: default {HELLASWAG_DATASET})"
    )
    dataset_config_name: str | None = option(None, "the Hub dataset's config")
    dataset_split: str | None = option(
        None,
        f'default {DEFAULT_SPLIT} ({HELLASWAG_SPLIT} for --task hellaswag), or e.g. "validation" or "test[:500]"',
    )
    text_column: str = option("text", "perplexity and lambada")
    max_samples: int | None = option(None, "the first N documents / rows only (lm-evaluation-harness's --limit)")
    join_with: str | None = option(
        None,
        "perplexity: join all documents with this text (escapes like \\n allowed) into one stream, instead of "
        "scoring each document on its own",
    )
    # multiple choice
    template: str | None = option(
        None,
        f"the prompt, fields of a row in braces (default {MULTIPLE_CHOICE_TEMPLATE!r}, entailment rows "
        f"{ENTAILMENT_TEMPLATE!r})",
    )
    label_choices: str | None = option(
        None,
        f"entailment and classification rows: JSON object of label name -> answer, in the order of integer labels "
        f"(default: entailment {ENTAILMENT_CHOICES}; classification: each class name its own answer)",
    )
    choices_column: str = option("choices", "multiple choice rows: the column of the choices")
    label_column: str = option("label", "the column of the right choice's index (or label name)")
    normalize: list[str] = option(
        list(NORMALIZATIONS),
        f"score = choice log-likelihood summed (none), per token (tokens) or per character (chars): {NORMALIZATIONS}",
    )
    # scoring
    max_length: int | None = option(None, "tokens per window (default: n_positions)")
    stride: int | None = option(None, "perplexity: new tokens per window (default: window)")
    add_start_token: bool = option(
        True, "start every sequence with the tokenizer's bos/eos token (<|endoftext|> for GPT-2, _start_ for GPT-1)"
    )
    per_device_eval_batch_size: int = option(8, "sequences per device and batch")
    padding_side: str = option("right", f"one of {PADDING_SIDES}")
    mixed_precision: str | None = option(None, f"one of {MIXED_PRECISION} (default: Accelerate's config)")
    cpu: bool = option(False, "stay on the CPU even where there is an accelerator")
    seed: int = option(0, "of a preset's random weights")
    output_file: str | None = option(None, "JSON results (default runs/zero-shot/<task>-<model>.json)")

    def __post_init__(self):
        """The checks that need no file, model or tokenizer."""
        for name, choices in (("task", TASKS), ("padding_side", PADDING_SIDES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"--{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if self.mixed_precision is not None and self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"--mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        unknown = [name for name in self.normalize if name not in NORMALIZATIONS]
        if unknown:
            raise ValueError(f"--normalize takes {', '.join(NORMALIZATIONS)}, got {', '.join(map(repr, unknown))}")
        for name in ("per_device_eval_batch_size", "max_samples", "stride", "max_length"):
            at_least(name, getattr(self, name), 1)
        if self.task == "hellaswag" and not self.data_file and not self.dataset_name:
            self.dataset_name = HELLASWAG_DATASET
        if bool(self.data_file) == bool(self.dataset_name):
            raise ValueError("Give the data with either --data_file (--text_file) or --dataset_name.")
        for path in self.data_file or []:
            if builder_for(path) == "text" and self.task in ("multiple_choice", "hellaswag"):
                rows = {"multiple_choice": "multiple-choice", "hellaswag": "HellaSwag"}[self.task]
                raise ValueError(f"--data_file {path!r}: {rows} rows need .jsonl/.json/.csv/.parquet.")
        defaults = {
            f.name: f.default if f.default_factory is MISSING else f.default_factory()
            for f in fields(self)
            if f.name in TASK_OPTIONS or f.name in HUB_OPTIONS
        }
        for name, tasks in TASK_OPTIONS.items():
            if self.task not in tasks and getattr(self, name) != defaults[name]:
                raise ValueError(
                    f"--{name} is read for --task {' and '.join(tasks)} only, not --task {self.task}: leave it out"
                )
        for name in HUB_OPTIONS if self.data_file else ():
            if getattr(self, name) != defaults[name]:
                raise ValueError(
                    f"--{name} picks from a Hub dataset (--dataset_name); --data_file is read whole (--max_samples "
                    f"takes its first rows): leave --{name} out"
                )
        if self.dataset_name and self.dataset_split is None:
            self.dataset_split = HELLASWAG_SPLIT if self.task == "hellaswag" else DEFAULT_SPLIT
        if not self.normalize:
            raise ValueError(f"--normalize needs at least one of {', '.join(NORMALIZATIONS)}")
        if not 0 <= self.seed < 2**64:
            raise ValueError(f"--seed must be in [0, 2**64), got {self.seed}")
        if self.template is not None:
            check_template(self.template)
        if self.label_choices is not None:
            label_answers(self.label_choices)  # read here too, so that bad JSON stops the run before any work


def main(argv=None):
    return run_cli(ZeroShotArguments, evaluation_function, argv, prog=PROG, description=__doc__)


if __name__ == "__main__":
    main()
