"""Zero-shot last-word accuracy on LAMBADA-style texts (Paperno et al. 2016), as GPT-2 scores it (section 3.3).

The context is each text up to its last word, the target is the last word with its leading space (" word", as GPT-2's
BPE writes words inside a sentence). Correct when greedy decoding reproduces every target token, that is when the
argmax at each target position, given the true prefix, is the target token. Reported: accuracy and the last-word
perplexity (exp of the mean NLL of the whole word, as lm-evaluation-harness does).
"""

import re

from datasets import Dataset

from ..core.errors import RecipeError
from .metrics import perplexity
from .scoring import continuation_request, encode, start_token_id
from .zero_shot_data import data_source, row_text


def lambada_examples(rows: Dataset, column: str, source: str) -> list[tuple[str, str]]:
    """(context, " last word") for every row: the target is the text's last whitespace-separated word."""
    examples = []
    for index, row in enumerate(rows):
        text = row_text(row, column, index, source).rstrip()
        match = re.fullmatch(r"(.*\S)\s+(\S+)", text, flags=re.DOTALL)
        if match is None:
            raise RecipeError(
                f"{source} row {index + 1} ({text[:40]!r}) is a single word: a LAMBADA text needs a context before "
                f"its last word."
            )
        examples.append((match.group(1), " " + match.group(2)))
    return examples


def prepare_lambada(args, examples, tokenizer, window):
    """Every (context, last word) as a request, and the function that turns their scores into metrics."""
    source = data_source(args)
    start = start_token_id(tokenizer, args.add_start_token)
    contexts = encode(tokenizer, [context for context, _ in examples])
    words = encode(tokenizer, [word for _, word in examples])
    requests = [
        continuation_request(start + context, word, window, f"{source} row {index + 1}")
        for index, (context, word) in enumerate(zip(contexts, words))
    ]

    def finish(scores):
        nll = sum(s[0] for s in scores)
        return {
            "accuracy": sum(s[2] for s in scores) / len(scores),
            "perplexity": perplexity(nll / len(scores)),
            "nll_per_word": nll / len(scores),
            "examples": len(scores),
            "target_tokens": sum(s[1] for s in scores),
        }

    return requests, finish
