"""Loss functions shared by the methods: vectorised, device-agnostic, one small function each."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cmd(x: torch.Tensor, y: torch.Tensor, n_moments: int = 5) -> torch.Tensor:
    """Central Moment Discrepancy between two batches of features ``(B, d)`` as in MISA's code.

    ``‖E[x] − E[y]‖₂ + Σ_{k=2..K} ‖E[(x − E x)^k] − E[(y − E y)^k]‖₂`` with per-feature moments over the
    batch and no ``1/|b − a|^k`` factors (MISA's features are sigmoid outputs in [0, 1], so the factor is 1).
    ``vector_norm`` has a zero (not NaN) gradient when the two moments are identical.
    """
    mean_x, mean_y = x.mean(0), y.mean(0)
    centred_x, centred_y = x - mean_x, y - mean_y
    loss = torch.linalg.vector_norm(mean_x - mean_y)
    for k in range(2, n_moments + 1):
        loss = loss + torch.linalg.vector_norm(centred_x.pow(k).mean(0) - centred_y.pow(k).mean(0))
    return loss


def difference_loss(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """MISA's soft orthogonality ("DiffLoss") between two batches ``(B, d)`` as implemented.

    Each input is centred over the batch and every row divided by its (detached) L2 norm; the loss is the
    mean of the squared entries of ``x̂ᵀ ŷ`` (``‖x̂ᵀŷ‖²_F / d²``), not the paper's raw Frobenius norm.
    """
    x = x.reshape(x.size(0), -1)
    y = y.reshape(y.size(0), -1)
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    x = x / (torch.linalg.vector_norm(x, dim=1, keepdim=True).detach() + eps)
    y = y / (torch.linalg.vector_norm(y, dim=1, keepdim=True).detach() + eps)
    return (x.t() @ y).pow(2).mean()


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output.neg() * ctx.scale, None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``−scale`` in the backward pass (GRL)."""
    return _GradientReversal.apply(x, scale)


def task_loss(logits: torch.Tensor, labels: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Regression (``mse``/``l1`` on the single logit column) or classification (``ce``) loss."""
    if kind == "ce":
        return F.cross_entropy(logits, labels.long().view(-1))
    prediction = logits.view(-1)
    target = labels.to(prediction.dtype).view(-1)
    if kind == "mse":
        return F.mse_loss(prediction, target)
    if kind == "l1":
        return F.l1_loss(prediction, target)
    raise ValueError(f"unknown task loss {kind!r}; expected 'mse', 'l1' or 'ce'")
