"""The fine-tuning side of GPT-1's double-heads model (Radford et al. 2018, sections 3.2 and 3.3): the shape rules
of each task family's inputs and labels, as ValueErrors that name the value and the limit, and the two losses of
the objective L3 = L2 + lambda * L1, the task loss L2 and the auxiliary language-modelling loss L1 on the task input.

`modeling_gpt1.GPT1OriginsDoubleHeadsModel` combines them; this file holds the reductions (per example, per
sequence, over Trainer's `num_items_in_batch`) so that the model file reads as the architecture.

Padding choices: multiple-choice examples of a batch may have different numbers of choices, k at most. An example
with fewer is padded with choices whose `attention_mask` row is all zeros (`modeling_gpt1.tasks.GPT1TaskCollator`
does this): `real_choices` finds them, the model scores them the dtype's minimum, they need no extract token, a label
may not point at one, and an example's auxiliary LM loss is the mean over its real choices only.
"""

import torch
from torch import nn
from transformers import PreTrainedConfig

from .chunked_loss import ChunkedLMHeadLoss, TiedWeightGrad


def real_choices(task_type: str, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Multiple choice: (B, k), True for a real choice, False for a padding choice (an all-zero `attention_mask` row).
    None for the other families and without a (B, k, T) mask: every sequence is real."""
    if task_type != "multiple_choice" or attention_mask is None or attention_mask.ndim != 3:
        return None
    return attention_mask.ne(0).any(-1)  # (B, k, T) -> (B, k)


def check_task_inputs(
    config: PreTrainedConfig,
    task_type: str,
    input_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    mc_token_ids: torch.Tensor | None,
    token_type_ids: torch.Tensor | None = None,
    choice_mask: torch.Tensor | None = None,
) -> tuple[int, ...]:
    """The task-specific shape rules, as ValueErrors naming value and limit; returns the input's shape without the
    embedding dimension, (B, T) or (B, N, T). The base model then checks each of the B * N sequences (vocabulary,
    length). `choice_mask` (B, k) is `real_choices`: every example needs a real choice, and padding choices need no
    extract token. Value checks are skipped while compiling."""
    tokens, name = _task_input_tokens(input_ids, inputs_embeds)  # (B, [N,] T)
    _check_task_family_shape(task_type, tokens)
    for extra_name, extra in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
        if extra is not None and extra.shape != tokens.shape:
            raise ValueError(
                f"`{extra_name}` has shape {tuple(extra.shape)}, expected the shape of `{name}` without the "
                f"embedding dimension, {tuple(tokens.shape)}."
            )
    _check_mc_token_ids_shape(mc_token_ids, tokens)
    if torch.compiler.is_compiling():
        return tuple(tokens.shape)
    _check_extract_positions(config, input_ids, mc_token_ids, choice_mask, tokens)
    return tuple(tokens.shape)


def _task_input_tokens(input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None) -> tuple[torch.Tensor, str]:
    """Exactly one of `input_ids` and `inputs_embeds`, of shape (B, T) or (B, N, T) (embeddings with n_embd last),
    none of them 0; returns the ids, or the embeddings' first feature, (B, [N,] T), and the name of the one given."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of `input_ids` and `inputs_embeds`.")
    given = input_ids if input_ids is not None else inputs_embeds
    tokens = input_ids if input_ids is not None else inputs_embeds[..., 0]  # (B, [N,] T)
    name = "input_ids" if input_ids is not None else "inputs_embeds"
    if tokens.ndim not in (2, 3):
        raise ValueError(
            f"`{name}` must have shape (batch_size, sequence_length) or (batch_size, num_sequences, sequence_length)"
            f"{', n_embd' if input_ids is None else ''}, got shape {tuple(given.shape)}."
        )
    batch_size = tokens.shape[0]
    num_sequences = tokens.shape[1] if tokens.ndim == 3 else 1
    seq_len = tokens.shape[-1]
    if batch_size == 0 or num_sequences == 0 or seq_len == 0:
        raise ValueError(
            f"The batch is empty: batch_size={batch_size}, num_sequences={num_sequences}, sequence_length={seq_len} "
            f"(`{name}` of shape {tuple(given.shape)})."
        )
    return tokens, name


def _check_task_family_shape(task_type: str, tokens: torch.Tensor) -> None:
    """The sequences per example that each task family reads (section 3.3): one for classification and entailment,
    both orderings of the pair for similarity, one per answer for multiple choice. `tokens`: (B, [N,] T)."""
    num_sequences = tokens.shape[1] if tokens.ndim == 3 else 1
    if task_type in ("classification", "entailment") and num_sequences != 1:
        raise ValueError(
            f"task_type={task_type!r} reads one sequence per example ([start] text [extract]), got "
            f"{num_sequences} sequences per example (shape {tuple(tokens.shape)})."
        )
    if task_type == "similarity" and (tokens.ndim != 3 or num_sequences != 2):
        raise ValueError(
            "task_type='similarity' needs both orderings of each pair, shape (batch_size, 2, sequence_length) "
            f"([start] A [delim] B [extract] and [start] B [delim] A [extract]), got shape {tuple(tokens.shape)}."
        )
    if task_type == "multiple_choice" and tokens.ndim != 3:
        raise ValueError(
            "task_type='multiple_choice' needs one sequence per answer, shape (batch_size, num_choices, "
            f"sequence_length), got shape {tuple(tokens.shape)}."
        )


def _check_mc_token_ids_shape(mc_token_ids: torch.Tensor | None, tokens: torch.Tensor) -> None:
    """One integer extract position per sequence of `tokens` (B, [N,] T)."""
    if mc_token_ids is None:
        return
    batch_size = tokens.shape[0]
    num_sequences = tokens.shape[1] if tokens.ndim == 3 else 1
    expected = [(batch_size, num_sequences)] + ([(batch_size,)] if tokens.ndim == 2 else [])
    if tuple(mc_token_ids.shape) not in expected:
        raise ValueError(
            f"`mc_token_ids` has shape {tuple(mc_token_ids.shape)}, expected one extract position per sequence: "
            f"{' or '.join(str(shape) for shape in expected)}."
        )
    if mc_token_ids.is_floating_point() or mc_token_ids.dtype == torch.bool:
        raise ValueError(f"`mc_token_ids` must be an integer tensor, got dtype {mc_token_ids.dtype}.")


def _check_extract_positions(
    config: PreTrainedConfig,
    input_ids: torch.Tensor | None,
    mc_token_ids: torch.Tensor | None,
    choice_mask: torch.Tensor | None,
    tokens: torch.Tensor,
) -> None:
    """The checks that read values: every example has a real choice, and every real sequence of `tokens`
    (B, [N,] T) has its extract position, `mc_token_ids` inside the sequence or else exactly one extract token."""
    batch_size, seq_len = tokens.shape[0], tokens.shape[-1]
    num_sequences = tokens.shape[1] if tokens.ndim == 3 else 1
    if choice_mask is not None and not choice_mask.any(-1).all():
        example = int((~choice_mask.any(-1)).nonzero()[0, 0])
        raise ValueError(
            f"Example {example} has no real choice: the `attention_mask` rows of all its {num_sequences} choices are "
            f"all zeros, the mark of a padding choice. Every example needs at least one real choice."
        )
    if mc_token_ids is not None:
        low, high = int(mc_token_ids.min()), int(mc_token_ids.max())
        if low < 0 or high >= seq_len:
            raise ValueError(
                f"`mc_token_ids` must lie in [0, sequence_length={seq_len}), got values in [{low}, {high}]."
            )
    elif config.extract_token_id is not None and input_ids is not None:
        counts = (input_ids == config.extract_token_id).sum(-1).reshape(batch_size, num_sequences)  # (B, N)
        wrong = counts != 1 if choice_mask is None else (counts != 1) & choice_mask  # padding choices have none
        if wrong.any():
            example, sequence = wrong.nonzero()[0].tolist()
            raise ValueError(
                f"Each sequence needs exactly one extract token (extract_token_id={config.extract_token_id}); "
                f"example {example}, sequence {sequence} has {int(counts[example, sequence])}. Pass `mc_token_ids` "
                f"to give the positions explicitly."
            )


def resolve_task_labels(
    labels: torch.Tensor | None, mc_labels: torch.Tensor | None, input_shape: tuple[int, ...]
) -> torch.Tensor | None:
    """The task targets from `labels` (ours) or `mc_labels` (transformers' OpenAIGPTDoubleHeadsModel's name for the
    index of the right answer, the same meaning). transformers' `labels` are language-model targets of the input's
    shape; here the auxiliary LM loss is computed from `input_ids` over the attention mask, so such labels are a
    ValueError that says what to pass instead, never read as task targets."""
    lm_shaped = (
        labels is not None
        and len(input_shape) >= 2
        and tuple(labels.shape) == tuple(input_shape)
        and not labels.is_floating_point()
    )
    if lm_shaped or (labels is not None and mc_labels is not None):
        raise ValueError(
            f"`labels` of shape {tuple(labels.shape)}"
            + (" with `mc_labels`" if mc_labels is not None else " (the input's shape)")
            + " is transformers' OpenAIGPTDoubleHeadsModel convention, where `labels` are language-model targets. "
            "Here `labels` are the task targets, one per example (the index of the right answer, or the class), and "
            "the auxiliary LM loss (weight config.lm_coef, 0 to leave it out) is computed from `input_ids` over "
            "the attention mask: pass the task targets alone, as `labels=` or `mc_labels=`."
        )
    return mc_labels if mc_labels is not None else labels


def check_task_labels(
    problem_type: str,
    labels: torch.Tensor,
    batch_size: int,
    num_sequences: int,
    num_labels: int,
    choice_mask: torch.Tensor | None = None,
) -> None:
    """Label shapes, dtypes and ranges for each task family, as ValueErrors naming value and limit; a multiple-choice
    label must not point at a padding choice (`choice_mask`, (B, k), from `real_choices`)."""
    if problem_type in ("multiple_choice", "single_label_classification"):
        if tuple(labels.shape) != (batch_size,):
            raise ValueError(
                f"`labels` has shape {tuple(labels.shape)}, expected one class per example: ({batch_size},)."
            )
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise ValueError(f"`labels` must be integer class ids for {problem_type}, got dtype {labels.dtype}.")
        limit = num_sequences if problem_type == "multiple_choice" else num_labels
        what = "choices" if problem_type == "multiple_choice" else "num_labels"
        if not torch.compiler.is_compiling():
            real = labels[labels != -100]
            if real.numel() and (int(real.min()) < 0 or int(real.max()) >= limit):
                bad = int(real.min()) if int(real.min()) < 0 else int(real.max())
                raise ValueError(
                    f"Label {bad} is outside [0, {limit}) ({what}={limit}); -100 marks an ignored example."
                )
            if choice_mask is not None:
                labelled = labels != -100
                chosen = choice_mask.to(labels.device).gather(1, labels.clamp(min=0).long().unsqueeze(1)).squeeze(1)
                if (labelled & ~chosen).any():
                    example = int((labelled & ~chosen).nonzero()[0, 0])
                    raise ValueError(
                        f"Label {int(labels[example])} of example {example} is a padding choice (its "
                        f"`attention_mask` row is all zeros); the example's real choices are "
                        f"{choice_mask[example].nonzero().flatten().tolist()}."
                    )
    elif problem_type == "regression":
        if tuple(labels.shape) not in ((batch_size,), (batch_size, num_labels)):
            raise ValueError(
                f"`labels` has shape {tuple(labels.shape)}, expected ({batch_size},) or ({batch_size}, {num_labels}) "
                "for regression."
            )
        if labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f"`labels` must be real-valued scores for regression, got dtype {labels.dtype}.")
    else:  # multi_label_classification
        if tuple(labels.shape) != (batch_size, num_labels):
            raise ValueError(
                f"`labels` has shape {tuple(labels.shape)}, expected ({batch_size}, {num_labels}) for multi-label "
                "classification (float labels mean multi-label; give int64 class ids for one class per example)."
            )
    if not torch.compiler.is_compiling() and labels.is_floating_point() and not torch.isfinite(labels).all():
        bad = labels[~torch.isfinite(labels)][0].item()
        raise ValueError(f"`labels` for {problem_type} must be finite numbers, got {bad}.")


def task_problem_type(task_type: str, config: PreTrainedConfig, labels: torch.Tensor) -> str:
    """The loss L2 is chosen by: multiple choice, else `config.problem_type`, else regression for one label, else
    multi-label for float labels, else single-label classification (as transformers' sequence classifiers choose)."""
    if task_type == "multiple_choice":
        return "multiple_choice"
    if config.problem_type is not None:
        return config.problem_type
    if config.num_labels == 1:
        return "regression"  # e.g. STS-B similarity scores
    if labels.is_floating_point():
        return "multi_label_classification"
    return "single_label_classification"


def task_loss_per_example(
    problem_type: str, logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2 for each example (B,) and its weight (B,): 0 for an example whose class label is -100."""
    logits = logits.float()
    if problem_type in ("multiple_choice", "single_label_classification"):
        per_example = nn.functional.cross_entropy(logits, labels.long(), reduction="none", ignore_index=-100)
        return per_example, (labels != -100).to(logits.dtype)
    if problem_type == "regression":
        per_example = (logits.reshape(labels.shape[0], -1) - labels.float().reshape(labels.shape[0], -1)) ** 2
        return per_example.mean(-1), torch.ones_like(per_example[:, 0])
    per_example = nn.functional.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none")
    return per_example.mean(-1), torch.ones_like(per_example[:, 0])


def sequence_weights(
    choice_mask: torch.Tensor | None, batch_size: int, num_sequences: int, device: torch.device
) -> torch.Tensor:
    """The weight of each sequence in its example's LM loss, (B, N), each row summing to 1: 1 / N, or 1 / (its real
    choices) for a real choice and 0 for a padding one (`choice_mask`, from `real_choices`), so that an example padded
    with choices has the LM loss it has alone."""
    if choice_mask is None:
        return torch.full((batch_size, num_sequences), 1 / num_sequences, device=device)
    real = choice_mask.to(device).float()  # (B, k)
    return real / real.sum(-1, keepdim=True).clamp(min=1)


def lm_loss_per_sequence(
    lm_logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
) -> torch.Tensor:
    """Next-token cross-entropy of each sequence, averaged over its real tokens (train.py: `reduce_sum(lm_losses *
    M[:, 1:], 1) / reduce_sum(M[:, 1:], 1)`). lm_logits: (S, T, V); input_ids, attention_mask: (S, T). Returns (S,).

    A target counts when it and the position predicting it are real tokens, so padding on either side is ignored."""
    num_sequences, seq_len, vocab_size = lm_logits.shape
    losses = nn.functional.cross_entropy(
        lm_logits[:, :-1].float().reshape(-1, vocab_size), input_ids[:, 1:].reshape(-1), reduction="none"
    ).view(num_sequences, seq_len - 1)  # (S, T-1)
    if attention_mask is None:
        valid = torch.ones_like(losses)
    else:
        valid = (attention_mask[:, 1:].bool() & attention_mask[:, :-1].bool()).to(losses.dtype)  # (S, T-1)
    return (losses * valid).sum(-1) / valid.sum(-1).clamp(min=1)  # (S,)


def lm_loss_chunked(
    hidden_states: torch.Tensor,
    lm_weight: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    example_weights: torch.Tensor,
    sequence_weights: torch.Tensor,
    chunk_size: int,
    tied_grad: TiedWeightGrad | None = None,
) -> torch.Tensor:
    """`sum_e example_weights[e] * sum_n sequence_weights[e, n] * lm_loss_per_sequence[e, n]` (the mean over its
    real sequences), through `ChunkedLMHeadLoss`: each target weighs its example's weight * its sequence's weight / its
    sequence's number of real targets. hidden_states: (S, T, C) with S = B * N; lm_weight: (V, C); input_ids,
    attention_mask: (S, T); example_weights: (B,); sequence_weights: (B, N); tied_grad: the embedding's
    `TiedWeightGrad` when lm_weight is the token embedding's. Returns a scalar."""
    num_rows, seq_len, width = hidden_states.shape
    if attention_mask is None:
        valid = torch.ones(num_rows, seq_len - 1, device=hidden_states.device)  # (S, T-1)
    else:
        valid = (attention_mask[:, 1:].bool() & attention_mask[:, :-1].bool()).float()  # (S, T-1)
    per_sequence_mean = valid / valid.sum(-1, keepdim=True).clamp(min=1)  # (S, T-1)
    weights = example_weights.float().unsqueeze(1) * sequence_weights.to(example_weights.device)  # (B, N)
    row_weights = weights.reshape(-1)  # (S,)
    target_weights = (per_sequence_mean * row_weights.unsqueeze(1)).reshape(-1)  # (S*(T-1),)
    hidden = hidden_states[:, :-1].reshape(-1, width)  # (S*(T-1), C)
    targets = input_ids[:, 1:].reshape(-1).to(hidden.device)  # (S*(T-1),)
    return ChunkedLMHeadLoss.apply(hidden, lm_weight, targets, target_weights, chunk_size, tied_grad)


__all__ = [
    "check_task_inputs",
    "check_task_labels",
    "lm_loss_chunked",
    "lm_loss_per_sequence",
    "real_choices",
    "sequence_weights",
    "task_loss_per_example",
    "task_problem_type",
]
