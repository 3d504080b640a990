"""Zero-shot perplexity: every token of the documents scored once, long ones through a sliding window.

Each document is its own token stream (`[start] + tokens`), unless `--join_with` joins them all into one; a stream
longer than the window is scored in windows of `--max_length` tokens, each predicting the `--stride` tokens at its end
(`scoring.sliding_window_requests`). Reported: NLL per token (nats), perplexity, token count and bits per byte (total
NLL in bits over the UTF-8 bytes of the texts, which does not depend on the tokenizer).
"""

import math

from ..core.errors import RecipeError
from .metrics import perplexity
from .scoring import encode, sliding_window_requests, start_token_id
from .zero_shot_data import data_source


def prepare_perplexity(args, texts, tokenizer, window):
    """The windows over the texts' token streams, and the function that turns their scores into metrics."""
    start = start_token_id(tokenizer, args.add_start_token)
    stride = args.stride or window
    requests = []
    for ids in encode(tokenizer, texts):
        requests.extend(sliding_window_requests(start + ids, window, stride))
    if not requests:
        raise RecipeError(f"{data_source(args)}: no document has a token to score (each needs 2 with its start).")
    data = {"documents": len(texts), "bytes": sum(len(text.encode("utf-8")) for text in texts)}

    def finish(scores):
        nll, count = sum(s[0] for s in scores), sum(s[1] for s in scores)
        return {
            "perplexity": perplexity(nll / count),
            "nll_per_token": nll / count,
            "bits_per_byte": nll / math.log(2) / data["bytes"],
            "tokens": count,
            "bytes": data["bytes"],
            "documents": data["documents"],
            "windows": len(requests),
        }

    return requests, finish
