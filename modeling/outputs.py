"""The output every method returns, so that trainers and analysis tools work for all of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers.utils import ModelOutput


@dataclass
class MSAModelOutput(ModelOutput):
    """Output of a disentangled MSA model.

    Args:
        loss: weighted total loss (only when ``labels`` are given).
        logits: ``(B, num_labels)``; a single column is the regression score.
        loss_terms: unweighted value of every loss term by name (``task``, ``diff``, ...), for logging.
        shared: modality-invariant representation per present modality (``text``/``audio``/``vision``).
        private: modality-specific representation per present modality.
        utterance: the encoded unimodal vector each part was projected from (the reconstruction target).
        fused: the vector the prediction head reads.
        extra: method-specific outputs by name, e.g. TriDiRA's ineffective specific part per modality
            (``extra["ineffective_specific"]["audio"]``) or FDMER's fusion weights ``(B, 4)``.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    loss_terms: dict[str, torch.Tensor] | None = None
    shared: dict[str, torch.Tensor] | None = None
    private: dict[str, torch.Tensor] | None = None
    utterance: dict[str, torch.Tensor] | None = None
    fused: torch.FloatTensor | None = None
    extra: dict[str, Any] | None = None
