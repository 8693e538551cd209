"""Building blocks shared by the methods."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def pad_or_truncate(sequence: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad (at the end) or cut a batch-first sequence ``(B, T, ...)`` to exactly ``length`` steps.

    Methods with flattened fixed-length layers (DMD, DLF) need the padded length of the source data.
    """
    steps = sequence.size(1)
    if steps == length:
        return sequence
    if steps > length:
        return sequence[:, :length]
    padding = sequence.new_zeros(sequence.size(0), length - steps, *sequence.shape[2:])
    return torch.cat([sequence, padding], dim=1)


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` ``(B, T, d)`` over the positions where ``mask`` ``(B, T)`` is 1 ([CLS]/[SEP] included)."""
    mask = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


class StackedBiLSTMEncoder(nn.Module):
    """MISA's acoustic/visual encoder: biLSTM → LayerNorm → biLSTM over the true lengths.

    The utterance vector concatenates the final hidden states of both layers and both directions,
    so it is ``4 · hidden_size`` wide (the official code uses ``hidden_size = input_size``).
    """

    def __init__(self, input_size: int, hidden_size: int | None = None):
        super().__init__()
        hidden_size = hidden_size or input_size
        self.rnn1 = nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)
        self.layer_norm = nn.LayerNorm(2 * hidden_size)
        self.rnn2 = nn.LSTM(2 * hidden_size, hidden_size, bidirectional=True, batch_first=True)
        self.output_size = 4 * hidden_size

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch, steps, _ = features.shape
        lengths = lengths.clamp(1, steps).cpu()
        packed = pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
        packed_h1, (final_h1, _) = self.rnn1(packed)
        padded_h1, _ = pad_packed_sequence(packed_h1, batch_first=True, total_length=steps)
        normed = pack_padded_sequence(self.layer_norm(padded_h1), lengths, batch_first=True, enforce_sorted=False)
        _, (final_h2, _) = self.rnn2(normed)
        return torch.cat((final_h1, final_h2), dim=2).permute(1, 0, 2).reshape(batch, -1)
