"""lm-evaluation-harness's `hf` model on a saved GPT-2 folder, with a local multiple-choice task.

The command a user runs (from the repository root; the folder holds `save_pretrained` of the model and of
`load_gpt2_tokenizer()`):

    lm_eval run --model hf --model_args pretrained=PATH/TO/FOLDER,trust_remote_code=True \
        --include_path tests/fixtures/lm_eval_task --tasks gpt_origins_tiny_mc --batch_size 8 --device cpu

What it needs: only `trust_remote_code=True`. The lm_eval process does not import gpt-origins, so the
`gpt2-origins` model type is known only through the folder's own code (`auto_map`); without it transformers stops
with "The repository ... contains custom code which must be executed to correctly load the model ... Please pass the
argument `trust_remote_code=True`". Neither `tokenizer=` (the folder's tokenizer loads with AutoTokenizer) nor
`backend=causal` (lm_eval falls back to AutoModelForCausalLM for a model type it does not know) is needed.

The task (tests/fixtures/lm_eval_task/) is 10 rows read by a `custom_dataset` function from beside its YAML, so it
runs offline from any working directory.
"""

import json
import subprocess
import sys
from pathlib import Path

import lm_eval
import pytest
import torch
from lm_eval.tasks import TaskManager

from modeling_gpt2 import GPT2OriginsConfig, GPT2OriginsLMHeadModel, load_gpt2_tokenizer

TASK_DIR = Path(__file__).parents[1] / "fixtures" / "lm_eval_task"
TASK = "gpt_origins_tiny_mc"
N_ROWS = 10
N_REQUESTS = 29  # one log-likelihood request per choice: the rows have 29 choices in all


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A tiny GPT-2 (the real 50,257-token vocabulary) saved with its tokenizer; the model is returned too."""
    torch.manual_seed(0)
    config = GPT2OriginsConfig.from_preset("tiny", n_embd=32, n_head=2, n_positions=64)
    model = GPT2OriginsLMHeadModel(config).eval()
    path = tmp_path_factory.mktemp("gpt2_lm_eval")
    model.save_pretrained(path)
    load_gpt2_tokenizer().save_pretrained(path)
    return model, path


@pytest.fixture(scope="module")
def task_manager():
    # include_defaults=False: not indexing lm_eval's thousands of built-in task files saves ~15 s.
    return TaskManager(include_path=str(TASK_DIR), include_defaults=False)


def evaluate(path, task_manager, batch_size):
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={path},trust_remote_code=True",
        tasks=[TASK],
        batch_size=batch_size,
        device="cpu",
        task_manager=task_manager,
        log_samples=True,
        bootstrap_iters=0,  # no stderr: the test compares the per-request numbers
    )
    return results


def loglikelihoods(samples):
    """{(doc_id, context, continuation): (log-likelihood, is_greedy)} of every request."""
    out = {}
    for sample in samples:
        arguments = sample["arguments"]
        if isinstance(arguments, dict):  # the CLI's samples file: {"gen_args_0": {"arg_0": ..., "arg_1": ...}}
            arguments = [(a["arg_0"], a["arg_1"]) for a in arguments.values()]
        for (context, continuation), response in zip(arguments, sample["filtered_resps"], strict=True):
            loglikelihood, greedy = response
            out[(sample["doc_id"], context, continuation)] = (float(loglikelihood), str(greedy) == "True")
    return out


@pytest.fixture(scope="module")
def batch_of_one(folder, task_manager):
    return evaluate(folder[1], task_manager, 1)


def test_batch_sizes_one_and_eight_give_the_same_loglikelihoods(folder, task_manager, batch_of_one):
    eight = evaluate(folder[1], task_manager, 8)
    one_ll, eight_ll = (loglikelihoods(r["samples"][TASK]) for r in (batch_of_one, eight))
    assert len(one_ll) == N_REQUESTS and one_ll.keys() == eight_ll.keys()
    for key, (value, greedy) in one_ll.items():
        assert eight_ll[key][0] == pytest.approx(value, abs=1e-4, rel=1e-5), key
        assert eight_ll[key][1] == greedy, key
    for metric in ("acc,none", "acc_norm,none"):
        assert eight["results"][TASK][metric] == batch_of_one["results"][TASK][metric]
    assert batch_of_one["results"][TASK]["sample_len"] == N_ROWS


def test_loglikelihoods_are_the_models_own(folder, batch_of_one):
    """Each request's number is log P(continuation | context) from a plain forward of the model, as lm_eval splits
    the tokens: the continuation is what encoding context + continuation adds after the context's tokens."""
    model, path = folder
    tokenizer = load_gpt2_tokenizer()
    for (_, context, continuation), (value, greedy) in loglikelihoods(batch_of_one["samples"][TASK]).items():
        context_ids = tokenizer(context).input_ids
        whole = tokenizer(context + continuation).input_ids
        target = whole[len(context_ids) :]
        with torch.no_grad():
            logprobs = model(torch.tensor([whole])).logits[0, :-1].log_softmax(-1)  # position t predicts t + 1
        picked = logprobs[len(context_ids) - 1 :]
        expected = picked.gather(-1, torch.tensor(target)[:, None]).sum()
        assert value == pytest.approx(float(expected), abs=1e-4), (context, continuation)
        assert greedy == bool((picked.argmax(-1) == torch.tensor(target)).all())
    # acc: the share of rows whose right choice has the highest log-likelihood.
    rows = [json.loads(line) for line in (TASK_DIR / "rows.jsonl").read_text().splitlines()]
    by_request = loglikelihoods(batch_of_one["samples"][TASK])
    right = 0
    for doc_id, row in enumerate(rows):
        scores = [by_request[(doc_id, row["context"], " " + choice)][0] for choice in row["choices"]]
        right += max(range(len(scores)), key=scores.__getitem__) == row["label"]
    assert batch_of_one["results"][TASK]["acc,none"] == pytest.approx(right / N_ROWS)


@pytest.mark.slow
def test_the_users_command_line(folder, batch_of_one, tmp_path):
    """The command of the module docstring, in a process that never imports gpt-origins (about 30 s)."""
    path = folder[1]
    command = [
        *(sys.executable, "-m", "lm_eval", "run", "--model", "hf"),
        *("--model_args", f"pretrained={path},trust_remote_code=True"),
        *("--include_path", str(TASK_DIR), "--tasks", TASK, "--batch_size", "8", "--device", "cpu"),
        *("--log_samples", "--output_path", str(tmp_path / "out")),
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert TASK in result.stdout and "acc" in result.stdout
    (samples_file,) = (tmp_path / "out").rglob(f"samples_{TASK}_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    cli, in_process = loglikelihoods(samples), loglikelihoods(batch_of_one["samples"][TASK])
    assert cli.keys() == in_process.keys()
    for key, (value, greedy) in in_process.items():
        assert cli[key][0] == pytest.approx(value, abs=1e-4, rel=1e-5) and cli[key][1] == greedy, key
    # Without trust_remote_code the folder does not load.
    command[command.index("--model_args") + 1] = f"pretrained={path}"
    refused = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert refused.returncode != 0 and "trust_remote_code=True" in refused.stderr
