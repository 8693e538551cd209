"""Straightforward loop versions of official-code losses, used as references by the vectorised tests."""

from __future__ import annotations

import torch


def official_hinge(ids: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """mdswyz/DMD ``trains/singleTask/HingeLoss.py`` (also used by DLF) as a per-anchor loop.

    ``feats`` are the interleaved (l, v, a) vectors of every sample, ``ids`` their labels repeated likewise.
    Positives: other vectors with exactly the same label; negatives: different labels; margin
    ``0.15·|y_i − y_n|``; anchors without positives or negatives are skipped; mean over the valid anchors.
    """
    ids = ids.reshape(-1)
    n = feats.size(0)
    norm = torch.sqrt(feats.pow(2).sum(1) + 1e-8).clamp_min(1e-8)
    cosine = torch.zeros(n, n, dtype=feats.dtype, device=feats.device)
    for i in range(n):
        for j in range(n):
            cosine[i, j] = (feats[i] * feats[j]).sum() / (norm[i] * norm[j])
    total, anchors = feats.new_zeros(()), 0
    for i in range(n):
        others = [j for j in range(n) if j != i]
        pos = [j for j in others if ids[j] == ids[i]]
        neg = [j for j in others if ids[j] != ids[i]]
        if not pos or not neg:
            continue
        terms = [torch.clamp(0.15 * (ids[i] - ids[q]).abs() - cosine[i, p] + cosine[i, q], min=0)
                 for p in pos for q in neg]
        total = total + torch.stack(terms).mean()
        anchors += 1
    return total / max(anchors, 1)
