"""`--learning_rate auto`: a short learning-rate range test before fine-tuning.

The test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks", section 3.3; the `lr_find` of fastai)
trains a copy of the run's starting point for `STEPS` optimizer steps, the learning rate rising geometrically from
`MIN_LR` to `MAX_LR`, and records the training loss, smoothed. The loss falls once the rate is large enough to
learn, then rises or diverges once it is too large; the rate chosen is the one at the lowest smoothed loss, divided
by `SAFETY` (at the minimum the rate is already at the edge of what the model takes). The model's weights, the
random state and so the run that follows are exactly what they would have been without the test: only the rate
differs.

Why a test rather than a fixed default: the paper's 6.25e-5 is for its 12 x 768 model; a 4 x 256 model hardly moves
at that rate (docs/RESULTS.md measures it), and the best rate depends on the size, the task and how far the model was
pre-trained.
"""

import copy
import math
from dataclasses import asdict, dataclass, field

import torch

AUTO = "auto"  # the --learning_rate that asks for the test
MIN_LR = 1e-6
MAX_LR = 1e-1
STEPS = 100
SAFETY = 10.0
SMOOTHING = 0.9  # the exponential moving average of the loss (debiased)
DIVERGED = 4.0  # stop once the smoothed loss exceeds this multiple of its lowest value


@dataclass
class RangeTest:
    """The test's outcome: the rate chosen and the curve it was read from (recorded in results.json)."""

    learning_rate: float
    lowest_loss_at: float
    steps: int
    min_lr: float = MIN_LR
    max_lr: float = MAX_LR
    safety: float = SAFETY
    curve: list = field(default_factory=list)  # [lr, loss, smoothed loss] per step

    def as_dict(self) -> dict:
        return asdict(self)


def _batches(dataloader):
    while True:
        yielded = False
        for batch in dataloader:
            yielded = True
            yield batch
        if not yielded:
            raise ValueError("The learning-rate range test got an empty training loader.")


def range_test(model, dataloader, make_optimizer, device, max_grad_norm: float = 1.0, steps: int = STEPS) -> RangeTest:
    """Runs the test on `model` (left exactly as it was): `make_optimizer(lr)` builds the run's optimizer at a base
    rate (its groups' `lr_scale` kept), `dataloader` gives training batches (cycled when shorter than the test)."""
    weights = copy.deepcopy(model.state_dict())
    rng = torch.random.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    was_training = model.training
    optimizer = make_optimizer(MIN_LR)
    scales = [group.get("lr_scale", 1.0) for group in optimizer.param_groups]
    curve, smoothed, lowest = [], 0.0, math.inf
    model.train()
    try:
        for step, batch in zip(range(steps), _batches(dataloader)):
            lr = MIN_LR * (MAX_LR / MIN_LR) ** (step / max(steps - 1, 1))
            for group, scale in zip(optimizer.param_groups, scales):
                group["lr"] = lr * scale
            batch = {key: value.to(device) if torch.is_tensor(value) else value for key, value in batch.items()}
            loss = model(**batch).loss
            loss.backward()
            if max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            value = loss.item()
            if not math.isfinite(value):
                break
            smoothed = SMOOTHING * smoothed + (1 - SMOOTHING) * value
            debiased = smoothed / (1 - SMOOTHING ** (step + 1))
            curve.append([lr, value, debiased])
            lowest = min(lowest, debiased)
            if step > 10 and debiased > DIVERGED * lowest:
                break
    finally:
        model.load_state_dict(weights)
        torch.random.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        model.train(was_training)
    if not curve:
        raise ValueError("The learning-rate range test's first loss was not finite: check the model and the data.")
    at = min(curve, key=lambda point: point[2])[0]
    return RangeTest(learning_rate=at / SAFETY, lowest_loss_at=at, steps=len(curve), curve=curve)


__all__ = ["AUTO", "MAX_LR", "MIN_LR", "RangeTest", "SAFETY", "STEPS", "range_test"]
