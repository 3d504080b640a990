"""`--learning_rate auto`: a short learning-rate range test before fine-tuning.

The test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks", section 3.3; the `lr_find` of fastai)
trains a copy of the run's starting point for `STEPS` optimizer steps, the learning rate rising geometrically from
`MIN_LR` to `MAX_LR`, and records the training loss, smoothed. The loss falls once the rate is large enough to
learn, then rises or diverges once it is too large. `choose_rate` reads the curve, after its first `SKIP` steps
(where the moving average holds only a few noisy losses):

- a valley (the lowest smoothed loss at least `MIN_DROP` below the loss at the start): the rate at the lowest loss,
  divided by `SAFETY` (at the minimum the rate is already at the edge of what the model takes);
- a flat curve (no such drop within the test: a task loss that 100 steps cannot move, as the pure task loss of a
  small model often is): the rate where the loss first rises `RISE` above its start, the largest one that does no
  harm yet, divided by `SAFETY`; a flat curve that never rises leaves the test unable to tell: `FALLBACK_LR`.
  Taking the lowest point of a flat curve would take noise: measured on sentence polarity with `--lm_coef 0`, it
  picked 1.4e-7 and 1.1e-7 for two seeds, rates at which nothing trains.

The model's weights, the random state and so the run that follows are exactly what they would have been without
the test: only the rate differs.

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
SKIP = 10  # steps of the curve not read: the moving average of fewer losses is mostly noise
MIN_DROP = 0.02  # a valley: the lowest smoothed loss at least 2% below the start
RISE = 0.05  # a flat curve's edge: the smoothed loss 5% above the start
FALLBACK_LR = 1e-4  # a flat curve without an edge: the test cannot tell


@dataclass
class RangeTest:
    """The test's outcome: the rate chosen and the curve it was read from (recorded in results.json)."""

    learning_rate: float
    lowest_loss_at: float
    steps: int
    rule: str  # "valley", "flat" or "undecided" (`choose_rate`)
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
    learning_rate, lowest_at, rule = choose_rate(curve)
    return RangeTest(learning_rate=learning_rate, lowest_loss_at=lowest_at, steps=len(curve), rule=rule, curve=curve)


def choose_rate(curve: list) -> tuple[float, float, str]:
    """(the rate to train at, the rate at the lowest smoothed loss, "valley", "flat" or "undecided") from a test's
    curve of [lr, loss, smoothed loss] points (module docstring)."""
    read = curve[SKIP:] if len(curve) > SKIP + 1 else curve
    start = read[0][2]
    lowest_lr, _, lowest = min(read, key=lambda point: point[2])
    if lowest <= (1 - MIN_DROP) * start:
        return lowest_lr / SAFETY, lowest_lr, "valley"
    edge = next((lr for lr, _, smoothed in read if smoothed > (1 + RISE) * start), None)
    if edge is None:
        return FALLBACK_LR, lowest_lr, "undecided"
    return edge / SAFETY, lowest_lr, "flat"


__all__ = ["AUTO", "FALLBACK_LR", "MAX_LR", "MIN_LR", "RangeTest", "SAFETY", "STEPS", "choose_rate", "range_test"]
