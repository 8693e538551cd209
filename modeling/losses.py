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


def _rbf_gram(x: torch.Tensor, bandwidth: float | None) -> torch.Tensor:
    """Gaussian Gram matrices ``exp(−‖xᵢ − xⱼ‖² / (2σ²))`` of ``(..., n, d)``; σ² defaults to half the median
    off-diagonal squared distance of each batch, computed without gradient (a constant of the batch)."""
    distances = torch.cdist(x, x).pow(2)
    if bandwidth is None:
        with torch.no_grad():
            off_diagonal = ~torch.eye(x.size(-2), dtype=torch.bool, device=x.device)
            median = distances[..., off_diagonal].median(-1).values
            sigma2 = (median / 2).clamp_min(1e-6)[..., None, None]
    else:
        sigma2 = distances.new_tensor(float(bandwidth) ** 2)
    return torch.exp(-distances / (2 * sigma2))


def hsic(x: torch.Tensor, y: torch.Tensor, kernel: str = "linear", bandwidth: float | None = None) -> torch.Tensor:
    """Biased HSIC estimator ``(n−1)⁻² Tr(U K_x U K_y)`` between two batches ``(..., n, d)`` (FDMER Eq. 6).

    ``kernel="linear"`` uses ``K = X Xᵀ`` and is computed as ``‖(UX)ᵀ(UY)‖²_F / (n−1)²`` without forming the
    ``n × n`` Gram matrices; ``kernel="rbf"`` uses a Gaussian kernel (median-heuristic bandwidth unless given).
    Leading dimensions are batched, so several pairs can be scored in one call.
    """
    n = x.size(-2)
    if y.size(-2) != n:
        raise ValueError(f"hsic needs the same number of samples, got {n} and {y.size(-2)}")
    if n < 2:
        return x.new_zeros(x.shape[:-2])
    x = x.reshape(*x.shape[:-2], n, -1)
    y = y.reshape(*y.shape[:-2], n, -1)
    if kernel == "linear":
        x_c = x - x.mean(-2, keepdim=True)
        y_c = y - y.mean(-2, keepdim=True)
        return (x_c.transpose(-1, -2) @ y_c).pow(2).sum((-1, -2)) / (n - 1) ** 2
    if kernel == "rbf":
        k_x, k_y = _rbf_gram(x, bandwidth), _rbf_gram(y, bandwidth)
        k_x = k_x - k_x.mean(-1, keepdim=True) - k_x.mean(-2, keepdim=True) + k_x.mean((-1, -2), keepdim=True)
        return (k_x * k_y).sum((-1, -2)) / (n - 1) ** 2
    raise ValueError(f"unknown HSIC kernel {kernel!r}; expected 'linear' or 'rbf'")


def angular_margin_loss(features: torch.Tensor, class_weight: torch.Tensor, labels: torch.Tensor,
                        scale: float = 72.0, margin: float = 0.5) -> torch.Tensor:
    """Additive angular margin softmax (ArcFace; FDMER Eq. 9), mean over the batch.

    ``features`` ``(B, d)`` and the columns of ``class_weight`` ``(d, C)`` are L2-normalised; the true class
    logit becomes ``scale·cos(θ_y + margin)`` and the others ``scale·cos θ_j``. With ``margin=0`` and
    ``scale=1`` it is the softmax cross-entropy over cosine logits.
    """
    cosine = F.normalize(features, dim=-1) @ F.normalize(class_weight, dim=0)
    labels = labels.long().view(-1)
    true_cos = cosine.gather(1, labels[:, None]).clamp(-1 + 1e-7, 1 - 1e-7)
    true_logit = torch.cos(torch.acos(true_cos) + margin)
    logits = cosine.scatter(1, labels[:, None], true_logit) * scale
    return F.cross_entropy(logits, labels)


def similarity_consistency(codes: torch.Tensor, normalise: str = "both") -> torch.Tensor:
    """FDMER's consistency loss (Eq. 4–5) between the batch similarity matrices of ``M`` modalities.

    ``codes`` ``(M, n, d)``: ``S_m = C_m · Ĉ_mᵀ`` (``n × n``) with ``Ĉ_m`` the row-L2-normalised codes.
    ``normalise="both"`` also normalises the left factor (cosine similarity, as in AM-GCN, where the loss comes
    from); ``"as_printed"`` keeps it raw as Eq. 4 is printed. Returns the mean over the ``M(M−1)/2`` modality
    pairs of ``‖S_i − S_j‖²_F`` (Eq. 5's ``1/3 Σ`` for three modalities); 0 for fewer than two modalities.
    """
    if codes.dim() != 3:
        raise ValueError(f"similarity_consistency needs codes of shape (M, n, d), got {tuple(codes.shape)}")
    if normalise not in ("both", "as_printed"):
        raise ValueError(f"unknown normalise {normalise!r}; expected 'both' or 'as_printed'")
    num_modalities = codes.size(0)
    if num_modalities < 2:
        return codes.new_zeros(())
    unit = F.normalize(codes, dim=-1)
    similarity = (unit if normalise == "both" else codes) @ unit.transpose(-1, -2)
    first, second = torch.triu_indices(num_modalities, num_modalities, offset=1, device=codes.device)
    return (similarity[first] - similarity[second]).pow(2).sum((-1, -2)).mean()


def pearson_correlation(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Signed Pearson correlation of two batches of scalars (flattened): ``Σ x̃ỹ / (‖x̃‖ ‖ỹ‖ + eps)``.

    ``x̃``, ``ỹ`` are centred over the batch. ``eps`` keeps it finite (0, with a finite gradient) when either
    side is constant; otherwise it is ``cov(x, y) / (σ_x σ_y)`` up to ``eps``.
    """
    x = x.reshape(-1)
    y = y.reshape(-1).to(x.dtype)
    if x.numel() != y.numel():
        raise ValueError(f"pearson_correlation needs as many values on both sides, got {x.numel()} and {y.numel()}")
    x, y = x - x.mean(), y - y.mean()
    return (x * y).sum() / (torch.linalg.vector_norm(x) * torch.linalg.vector_norm(y) + eps)


def label_agreement_loss(logits: torch.Tensor, labels: torch.Tensor, mode: str = "signed", eps: float = 1e-8
                         ) -> torch.Tensor:
    """TriDiRA's ``L_ucorr``: agreement with the label of a prediction made from the ineffective part ``u*`` only.

    Regression (``logits`` ``(B, 1)``): ``"signed"`` is the Pearson correlation ``r(ỹ, y)`` as printed
    (minimising it drives ``r`` towards −1, an *anti*-correlated prediction), ``"abs"`` ``|r|`` and
    ``"squared"`` ``r²`` (both minimised at ``r = 0``: uncorrelated). Classification (``(B, C)``): ``"signed"``
    is the printed ``(1/B) Σ yᵢ·log ỹᵢ`` (the negative cross-entropy; probabilities floored at ``eps`` so it
    is bounded below); ``"abs"``/``"squared"`` are ``|δ|``/``δ²`` of ``δ = mean_i ỹᵢ[yᵢ] − 1/C``, the mean
    true-class probability above chance.
    """
    if mode not in ("signed", "abs", "squared"):
        raise ValueError(f"unknown mode {mode!r}; expected 'signed', 'abs' or 'squared'")
    if logits.size(-1) == 1:
        agreement = pearson_correlation(logits, labels, eps)
    else:
        probabilities = logits.softmax(-1).gather(1, labels.long().view(-1, 1)).squeeze(1)
        if mode == "signed":
            return probabilities.clamp_min(eps).log().mean()
        agreement = probabilities.mean() - 1.0 / logits.size(-1)
    if mode == "signed":
        return agreement
    return agreement.abs() if mode == "abs" else agreement.pow(2)


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


def _hinge_cosine(features: torch.Tensor) -> torch.Tensor:
    """Pairwise cosine of DMD's HingeLoss: ``x·y / (√(‖x‖² + 1e-8) · √(‖y‖² + 1e-8))`` (norms floored at 1e-8)."""
    norms = torch.sqrt(features.pow(2).sum(1) + 1e-8).clamp_min(1e-8)
    return (features @ features.t()) / (norms[:, None] * norms[None, :])


def label_margin_loss(features: torch.Tensor, labels: torch.Tensor, scale: float = 0.15) -> torch.Tensor:
    """DMD's ``HingeLoss`` (DLF's "triplet" L_m) on the ``M·B`` vectors of ``features`` ``(M, B, d)``.

    Every vector is an anchor; positives are the other vectors whose label is exactly equal, negatives those
    with a different label (any modality). Per anchor ``i``: mean over positives ``p`` and negatives ``n`` of
    ``max(0, scale·|y_i − y_n| − cos(i, p) + cos(i, n))``; anchors without positives or negatives are skipped
    and the loss is the mean over the others (0 if none). Vectorised without the ``P × N`` grid: with the
    negatives' thresholds ``a_n = scale·|y_i − y_n| + cos(i, n)`` sorted per anchor, each positive adds
    ``Σ_{a_n > cos(i,p)} a_n − #{a_n > cos(i,p)} · cos(i, p)`` (suffix sums), so memory is ``O((M·B)²)``.
    """
    num_modalities, batch, dim = features.shape
    vectors = features.transpose(0, 1).reshape(num_modalities * batch, dim)
    raw_ids = labels.reshape(-1).repeat_interleave(num_modalities)
    ids = raw_ids.to(vectors.dtype)
    count = ids.numel()
    cosine = _hinge_cosine(vectors)
    different = raw_ids[:, None] != raw_ids[None, :]
    positive = ~different & ~torch.eye(count, dtype=torch.bool, device=vectors.device)
    thresholds = scale * (ids[:, None] - ids[None, :]).abs() + cosine
    keys, order = thresholds.masked_fill(~different, float("-inf")).sort(dim=1)
    values = thresholds.gather(1, order).masked_fill(keys == float("-inf"), 0.0)
    suffix = torch.cat([values.flip(1).cumsum(1).flip(1), values.new_zeros(count, 1)], dim=1)
    first_above = torch.searchsorted(keys.detach().contiguous(), cosine.detach().contiguous(), right=True)
    above = (count - first_above).to(vectors.dtype)
    hinge = suffix.gather(1, first_above) - above * cosine
    num_pos, num_neg = positive.sum(1), different.sum(1)
    valid = (num_pos > 0) & (num_neg > 0)
    per_anchor = (hinge * positive).sum(1) / (num_pos * num_neg).clamp_min(1).to(vectors.dtype)
    return (per_anchor * valid).sum() / valid.sum().clamp_min(1)


def cosine_orthogonality(s: torch.Tensor, c: torch.Tensor, mode: str = "per_token", chunk: int | None = None
                         ) -> torch.Tensor:
    """``CosineEmbeddingLoss(s, c, target=−1, margin=0)`` = mean of ``max(0, cos)`` between ``(T', B, d)`` tensors.

    ``mode`` says which vectors the cosine compares: ``"per_token"`` each ``d``-vector (DLF MOSI; the fixed
    DMD default), ``"chunks"`` consecutive ``chunk``-wide pieces of them (DLF MOSEI, ``reshape(−1, 10)``),
    ``"per_sample_flat"`` each sample's flattened ``T'·d`` sequence, ``"legacy_batch_axis"`` the length-``B``
    vectors along the batch axis, one per (step, channel), as older PyTorch computed DMD's 3-D call.
    """
    if mode == "per_token":
        s, c = s.reshape(-1, s.size(-1)), c.reshape(-1, c.size(-1))
    elif mode == "chunks":
        if not chunk:
            raise ValueError("mode='chunks' needs a chunk width")
        s, c = s.reshape(-1, chunk), c.reshape(-1, chunk)
    elif mode == "per_sample_flat":
        s, c = s.transpose(0, 1).reshape(s.size(1), -1), c.transpose(0, 1).reshape(c.size(1), -1)
    elif mode == "legacy_batch_axis":
        s, c = s.movedim(1, -1).reshape(-1, s.size(1)), c.movedim(1, -1).reshape(-1, c.size(1))
    else:
        raise ValueError(f"unknown orthogonality mode {mode!r}")
    return F.cosine_embedding_loss(s, c, s.new_full((s.size(0),), -1.0), margin=0.0)


def graph_distillation_losses(kernel, logits, reprs, repr_metric: str = "l1", reg_weight: float = 10.0,
                              repr_weight: float = 10.0) -> dict[str, torch.Tensor]:
    """DMD's graph distillation (``distillation_loss`` of the homo/hetero kernels) for one ``DistillationKernel``.

    Per edge ``k`` (student ``j`` ← teacher ``i``) and sample ``b``: weight ``w = E + π`` (edges keep their
    gradient; the teacher side of every distance is detached). ``logit`` = ``Σ_k mean_b w·‖logit_j − logit_i‖₁``;
    ``repr``: ``"l1"`` (homo) ``repr_weight · Σ_k mean_b w·‖repr_j − repr_i‖₁`` (sum over features),
    ``"min_cosine"`` (hetero) ``repr_weight · Σ_k mean_b(w) · mean_b max(0, cos(repr_j, repr_i))``, which
    pushes the student away from the teacher as the official code does; ``reg`` =
    ``reg_weight · Σ_k (mean_b E_k − π_k)²``.
    """
    edges = kernel(logits, reprs)
    prior = kernel.prior.to(device=edges.device, dtype=edges.dtype)
    logits, reprs = torch.stack(list(logits)), torch.stack(list(reprs))
    student, teacher = kernel.edge_index(edges.device)
    weights = edges + prior[:, None]
    logit_distance = (logits[student] - logits[teacher].detach()).abs().sum(-1)
    losses = {"logit": (weights * logit_distance).mean(1).sum()}
    if repr_metric == "l1":
        repr_distance = (reprs[student] - reprs[teacher].detach()).abs().sum(-1)
        losses["repr"] = repr_weight * (weights * repr_distance).mean(1).sum()
    elif repr_metric == "min_cosine":
        s, t = reprs[student], reprs[teacher].detach()
        flat_s, flat_t = s.reshape(-1, s.size(-1)), t.reshape(-1, t.size(-1))
        cosine = F.cosine_embedding_loss(flat_s, flat_t, flat_s.new_full((flat_s.size(0),), -1.0), reduction="none")
        losses["repr"] = repr_weight * (weights.mean(1) * cosine.view_as(weights).mean(1)).sum()
    else:
        raise ValueError(f"unknown representation metric {repr_metric!r}; expected 'l1' or 'min_cosine'")
    losses["reg"] = reg_weight * (edges.mean(1) - prior).pow(2).sum()
    return losses


def standardized_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                     eps: float = 1e-6) -> torch.Tensor:
    """MSE between ``prediction`` and the per-feature z-scored ``target`` over the entries where ``mask`` is set
    (DERL's reconstruction error).

    ``prediction``/``target`` ``(..., F)``, ``mask`` ``(...)``. Each of the ``F`` target features is centred and
    divided by its standard deviation over the selected entries (statistics detached; ``eps`` guards constant
    features), so the decoder predicts a unit-scale target whatever the feature scale of the modality or
    dataset: 0 for a perfect reconstruction, 1 for predicting the feature means (zeros).
    """
    if prediction.shape != target.shape:
        raise ValueError(
            f"standardized_mse needs equal shapes, got {tuple(prediction.shape)} and {tuple(target.shape)}"
        )
    features = target.size(-1)
    if mask is None:
        mask = torch.ones(target.shape[:-1], dtype=torch.bool, device=target.device)
    weight = mask.reshape(-1, 1).to(target.dtype)
    target = target.reshape(-1, features)
    count = weight.sum().clamp_min(1.0)
    with torch.no_grad():
        mean = (target * weight).sum(0) / count
        std = (((target - mean) ** 2 * weight).sum(0) / count).sqrt()
    standardized = (target - mean) / (std + eps)
    error = (prediction.reshape(-1, features) - standardized).pow(2) * weight
    return error.sum() / (count * features)


def expert_balance_loss(gates: torch.Tensor) -> torch.Tensor:
    """Load balance of a soft router over ``E`` experts: ``E · Σ_e ḡ_e² − 1``, ``ḡ`` the batch-mean gate.

    ``gates`` ``(..., B, E)`` → ``(...)``. 0 when every expert gets the same mean weight, ``E − 1`` when one expert takes everything (the dense
    counterpart of the Switch Transformer's ``E · Σ f_e P_e``).
    """
    mean_gate = gates.mean(-2)
    return gates.size(-1) * mean_gate.pow(2).sum(-1) - 1


def squared_cosine(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean squared cosine similarity of paired vectors ``(..., d)`` (TSDA's cosine decorrelation).

    0 when each pair is orthogonal, 1 when parallel or anti-parallel; smooth at 0, unlike ``max(0, cos)``.
    """
    return F.cosine_similarity(x, y, dim=-1, eps=eps).pow(2).mean()
