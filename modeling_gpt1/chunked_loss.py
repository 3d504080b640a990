"""The LM head's cross-entropy a chunk of tokens at a time, and one gradient for a head tied to the token embedding.

- `chunked_lm_head_loss` (through `ChunkedLMHeadLoss`) is transformers' causal-LM loss of `lm_head(hidden_states)`
  without the (B, T, vocab_size) logits: the gradients are computed chunk by chunk in the forward pass.
- `loss_divisor` / `lm_loss_divisor`: what a summed loss is divided by, for both paths, so that a batch without
  targets has loss 0 and zero gradients, never NaN.
- `TiedWeightGrad` and `tied_embedding` (through `TiedEmbedding`) let the token embedding's backward add its rows to
  the head's weight gradient in place, where autograd would build a second (vocab_size, n_embd) gradient and add.

Shared by GPT-1 and GPT-2: GPT-2's copy is the original, and GPT-1's is generated from it, byte for byte, by
`make fix-copies` (utils/check_copies.py).
"""

import weakref

import torch
from torch import nn

from .input_checks import check_num_items_in_batch


class ChunkedLMHeadLoss(torch.autograd.Function):
    """The LM head and its cross-entropy fused, a chunk of rows at a time: never more than (chunk_size, vocab_size)
    logits exist, and the gradients are computed in the same pass (the loss is a scalar, so backward only scales them).

    A training batch of 8 x 1024 tokens with a 50,000-token vocabulary would otherwise hold 1.6 GB of fp32
    logits, and as much again for their softmax and for the gradient. The matmuls are the plain path's (forward, two
    backward), so nothing is recomputed. Under autocast they run in the autocast dtype and the softmax in fp32, as in
    transformers' loss, which upcasts the logits.
    """

    @staticmethod
    def forward(ctx, hidden_states, weight, targets, target_weights, chunk_size: int, tied_grad=None):
        # hidden_states: (N, C); weight: (V, C); targets: (N,) token ids (any negative id: no target); target_weights:
        # (N,) float, the weight of each target's cross-entropy in the loss (0 for no target); tied_grad: a
        # `TiedWeightGrad` when the weight is also the token embedding's, else None. Returns a scalar.
        device_type = hidden_states.device.type
        dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else weight.dtype
        needs_hidden_grad, needs_weight_grad = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        ctx.weight_dtype = weight.dtype
        with torch.autocast(device_type, enabled=False):
            weight_c = weight.to(dtype)  # (V, C)
            loss = torch.zeros((), device=hidden_states.device, dtype=torch.float32)
            grad_hidden = torch.empty_like(hidden_states) if needs_hidden_grad else None  # (N, C), every row written
            grad_weight = None  # (V, C) fp32, the first chunk's product, then accumulated
            for start in range(0, hidden_states.shape[0], chunk_size):
                hidden = hidden_states[start : start + chunk_size].to(dtype)  # (n, C)
                safe_target = targets[start : start + chunk_size].clamp(min=0).unsqueeze(1)  # (n, 1)
                target_weight = target_weights[start : start + chunk_size].float()  # (n,)
                log_probs = torch.log_softmax((hidden @ weight_c.t()).float(), dim=-1)  # (n, V)
                target_log_prob = log_probs.gather(1, safe_target).squeeze(1)  # (n,)
                loss = loss - (target_log_prob * target_weight).sum()
                if not (needs_hidden_grad or needs_weight_grad):
                    continue
                # d(loss)/d(logits) = (softmax - one_hot(target)) * the target's weight.
                grad_logits = log_probs.exp_()  # (n, V), the softmax, in place
                grad_logits.scatter_add_(1, safe_target, torch.full_like(safe_target, -1.0, dtype=torch.float32))
                grad_logits.mul_(target_weight.unsqueeze(1))
                grad_logits = grad_logits.to(dtype)
                if needs_hidden_grad:
                    grad_hidden[start : start + chunk_size] = (grad_logits @ weight_c).to(grad_hidden.dtype)  # (n, C)
                if not needs_weight_grad:
                    continue
                if grad_weight is None:
                    grad_weight = (grad_logits.t() @ hidden).float()  # (V, C)
                elif dtype == torch.float32:
                    grad_weight.addmm_(grad_logits.t(), hidden)  # (V, C), accumulated in place
                else:
                    grad_weight += (grad_logits.t() @ hidden).float()  # (V, C), the sum kept in fp32
        # Kept on ctx, not saved tensors: backward scales them in place (a second (V, C) copy would double the
        # memory this saves), so they serve one backward.
        ctx.grads, ctx.used, ctx.tied_grad = (grad_hidden, grad_weight), False, tied_grad
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        if ctx.used:
            raise RuntimeError(
                "The chunked LM loss computes its gradients during forward and hands them out once: backward through "
                "it twice (retain_graph=True) is not supported. Set `config.loss_chunk_size = None` for that."
            )
        ctx.used = True
        grad_hidden, grad_weight = ctx.grads
        ctx.grads = None
        grad_hidden = grad_hidden.mul_(grad_output) if grad_hidden is not None else None
        grad_weight = grad_weight.mul_(grad_output).to(ctx.weight_dtype) if grad_weight is not None else None
        if grad_weight is not None and ctx.tied_grad is not None and ctx.tied_grad.hand_over(grad_weight):
            grad_weight = None  # the token embedding's backward adds its rows to it and returns the sum
        return grad_hidden, grad_weight, None, None, None, None


def chunked_lm_head_loss(
    hidden_states: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    chunk_size: int,
    num_items_in_batch: torch.Tensor | int | None = None,
    ignore_index: int = -100,
    shift_labels: torch.Tensor | None = None,
    tied_grad: "TiedWeightGrad | None" = None,
    **kwargs,
) -> torch.Tensor:
    """transformers' `ForCausalLMLoss(lm_head(hidden_states), labels, ...)` without the logits: the same shift
    (position t predicts labels[t + 1]), the same mean over targets or sum / `num_items_in_batch`.

    hidden_states: (B, T, C); weight: the LM head's (V, C); labels: (B, T); tied_grad: the `TiedWeightGrad` the token
    embedding was looked up with, when the weight is shared. Returns a scalar.
    """
    if shift_labels is None:
        shift_labels = nn.functional.pad(labels, (0, 1), value=ignore_index)[..., 1:]  # (B, T)
    targets = shift_labels.reshape(-1).to(hidden_states.device)  # (B*T,)
    hidden_states = hidden_states.reshape(-1, hidden_states.shape[-1])  # (B*T, C)
    valid = (targets != ignore_index).float()  # (B*T,)
    divisor = loss_divisor(valid.sum(), num_items_in_batch)
    return ChunkedLMHeadLoss.apply(hidden_states, weight, targets, valid / divisor, chunk_size, tied_grad)


def loss_divisor(num_targets: torch.Tensor, num_items_in_batch: torch.Tensor | float | None) -> torch.Tensor:
    """What a loss summed over a batch's `num_targets` targets is divided by: their number (the mean), or Trainer's
    `num_items_in_batch`, the targets of the whole accumulated batch (gradient accumulation then equals one large
    batch), after `check_num_items_in_batch`.

    A batch without targets (every label -100) divides by 1: its loss is 0 and its gradients are zero. A mean over no
    target would be 0 / 0 = NaN; transformers' loss gives NaN with zero gradients, and the chunked loss, whose
    gradients scale with 1 / divisor, would give NaN gradients, which one optimizer step spreads to every parameter.
    """
    check_num_items_in_batch(num_items_in_batch, num_targets)
    divisor = num_targets if num_items_in_batch is None else torch.as_tensor(num_items_in_batch)
    divisor = divisor.to(num_targets.device, torch.float32)
    return torch.where(divisor > 0, divisor, 1.0)


def lm_loss_divisor(
    labels: torch.Tensor,
    num_items_in_batch: torch.Tensor | float | None = None,
    ignore_index: int = -100,
    shift_labels: torch.Tensor | None = None,
    **kwargs,
) -> torch.Tensor:
    """`loss_divisor` of the causal-LM loss of `labels` (B, T): its targets are `labels[..., 1:]` (or `shift_labels`),
    as in transformers' `ForCausalLMLoss`. The plain path passes it to that loss as `num_items_in_batch`."""
    targets = shift_labels if shift_labels is not None else labels[..., 1:]
    return loss_divisor((targets != ignore_index).sum(), num_items_in_batch)


class TiedWeightGrad:
    """The gradient of the weight the LM head shares with the token embedding, on its way from the head's backward to
    the embedding's.

    With tied weights autograd adds two (V, C) gradients: the head's, and the embedding's, a fresh (V, C) zero tensor
    into which the batch's rows are added. Here the head's backward (`ChunkedLMHeadLoss`) leaves its gradient with this
    object and the embedding's backward (`TiedEmbedding`), which runs after it, adds the batch's rows to it in place:
    one (V, C) tensor instead of two, and no zero-filling of the second (a 50,257 x 768 fp32 tensor is 154 MB). When
    the embedding's backward will not run in this backward pass (`torch.autograd.grad` for other inputs, a detach in
    between), the head returns its gradient as usual.
    """

    def __init__(self):
        self.embedding_node = None  # weak reference to the embedding's backward node, set by `tied_embedding`
        self.grad = None  # the head's weight gradient, (V, C), between the two backwards

    @classmethod
    def for_training_step(cls, head_weight: torch.Tensor, embedding_weight: torch.Tensor) -> "TiedWeightGrad | None":
        """One for a training step whose LM head weight is the token embedding's, else None (untied weights, no
        gradient wanted, torch.compile tracing, a tensor subclass such as a sharded DTensor, or a torch without the
        engine query this relies on)."""
        usable = (
            hasattr(torch._C, "_will_engine_execute_node")
            and head_weight is embedding_weight
            and head_weight.requires_grad
            and torch.is_grad_enabled()
            and type(head_weight.data) is torch.Tensor
            and not torch.compiler.is_compiling()
        )
        return cls() if usable else None

    def hand_over(self, grad_weight: torch.Tensor) -> bool:
        """In the head's backward: give the weight gradient to the embedding's backward if that will run."""
        node = self.embedding_node() if self.embedding_node is not None else None
        if node is None or not torch._C._will_engine_execute_node(node):
            return False
        self.grad = grad_weight
        return True


class TiedEmbedding(torch.autograd.Function):
    """`nn.functional.embedding` whose backward adds its rows to the LM head's weight gradient (see `TiedWeightGrad`).
    Same forward; the same gradient as the plain embedding plus the head, to float rounding."""

    @staticmethod
    def forward(ctx, input_ids, weight, tied_grad: TiedWeightGrad):
        # input_ids: (B, T); weight: (V, C). Returns (B, T, C).
        ctx.save_for_backward(input_ids)
        ctx.weight_shape, ctx.weight_dtype, ctx.tied_grad = weight.shape, weight.dtype, tied_grad
        return nn.functional.embedding(input_ids, weight)

    @staticmethod
    def backward(ctx, grad_output):  # grad_output: (B, T, C)
        if not ctx.needs_input_grad[1]:
            return None, None, None
        (input_ids,) = ctx.saved_tensors
        grad_weight, ctx.tied_grad.grad = ctx.tied_grad.grad, None  # (V, C), or None if the head's did not come here
        if grad_weight is None:
            grad_weight = grad_output.new_zeros(ctx.weight_shape, dtype=ctx.weight_dtype)  # (V, C)
        rows = grad_output.reshape(-1, grad_output.shape[-1]).to(grad_weight.dtype)  # (B*T, C)
        grad_weight.index_put_((input_ids.reshape(-1),), rows, accumulate=True)  # repeated ids add up
        return None, grad_weight, None


def tied_embedding(input_ids: torch.Tensor, weight: torch.Tensor, tied_grad: TiedWeightGrad) -> torch.Tensor:
    """The token embeddings (B, T, C) of input_ids (B, T), through `TiedEmbedding`."""
    embeddings = TiedEmbedding.apply(input_ids, weight, tied_grad)
    if embeddings.grad_fn is not None:
        tied_grad.embedding_node = weakref.ref(embeddings.grad_fn)  # weak: the graph, not this object, owns it
    return embeddings


__all__ = [
    "ChunkedLMHeadLoss",
    "TiedEmbedding",
    "TiedWeightGrad",
    "chunked_lm_head_loss",
    "lm_loss_divisor",
    "loss_divisor",
    "tied_embedding",
]
