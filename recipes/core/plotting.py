"""The loss-curve figure a training recipe leaves next to its model (matplotlib, no display needed)."""

import os

import matplotlib
import matplotlib.ticker
import numpy as np

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def save_loss_curve(train_history, eval_history, path: str | os.PathLike, title: str = "") -> str:
    """Train loss (`[{"step", "loss"}, ...]`) and validation loss (`[{"step", "loss", "perplexity"}, ...]`) against
    the optimizer step, with perplexity on a second axis; written as a PNG to `path`."""
    figure, axis = plt.subplots(figsize=(8, 4.5), dpi=120)
    if train_history:
        axis.plot([r["step"] for r in train_history], [r["loss"] for r in train_history], label="train loss", lw=1)
    if eval_history:
        steps, losses = [r["step"] for r in eval_history], [r["loss"] for r in eval_history]
        axis.plot(steps, losses, "o-", label="validation loss", lw=2)
        perplexity_axis = axis.secondary_yaxis(
            "right", functions=(lambda loss: np.exp(np.minimum(loss, 700)), lambda ppl: np.log(np.maximum(ppl, 1e-9)))
        )
        # Perplexity is exp(loss): ticks at 1, 2 and 5 per decade, wherever the losses fall (the default linear
        # ticks leave the low end, where a run ends, without a label).
        perplexity_axis.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        perplexity_axis.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda ppl, _: f"{ppl:,.6g}"))
        perplexity_axis.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        perplexity_axis.set_ylabel("validation perplexity")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("cross-entropy (nats / token)")
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return os.fspath(path)


__all__ = ["save_loss_curve"]
