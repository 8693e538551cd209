"""TSDA: Temporal-Spatial Decouple before Act (Meng, Zhou, He, Du, Ouyang, Gan, arXiv 2601.13659, ICASSP 2026).

No code is public; the abstract and a secondary review (``methods.md`` §8) name the modules, which are all
built here, with the unstated choices as switches of :class:`TSDAConfig`:

* per modality, before any interaction, a **temporal encoder** (order-sensitive; a fixed number of segment
  tokens) and a **spatial encoder** (order-insensitive set of tokens);
* **Factor-Consistent Cross-Modal Alignment**: self-attention over the six streams' tokens with a
  block-diagonal mask (temporal ↔ temporal, spatial ↔ spatial, across modalities);
* **factor-specific supervision** (a head per factor), token-level **factor purity** (a temporal-vs-spatial
  discriminator), summary-level **decorrelation** (squared cosine and HSIC);
* **Gated Recouple** of the two factor summaries, driven by their disagreement and confidences, with an
  orthogonality regulariser.

Aligned and unaligned inputs both work: every modality may have its own length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import BertModel

from .configuration_tsda import TSDAConfig
from .layers import masked_mean
from .losses import difference_loss, hsic, squared_cosine, task_loss
from .modeling_base import MSAPreTrainedModel
from .outputs import MSAModelOutput

MODALITIES = ("text", "audio", "vision")
FACTORS = ("temporal", "spatial")


def segment_pool(x: torch.Tensor, real: torch.Tensor, segments: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average ``x`` ``(B, T, d)`` over ``segments`` consecutive, equal parts of each sample's true length.

    Step ``t < L_b`` belongs to segment ``⌊t·K / L_b⌋``. Returns ``(B, K, d)`` and the ``(B, K)`` mask of
    non-empty segments (a sample shorter than ``K`` leaves some empty; they are zero).
    """
    lengths = real.sum(1, keepdim=True).clamp_min(1)
    position = torch.arange(x.size(1), device=x.device)[None, :]
    index = torch.div(position * segments, lengths, rounding_mode="floor")
    assign = (index.unsqueeze(-1) == torch.arange(segments, device=x.device)) & real.unsqueeze(-1)
    assign = assign.to(x.dtype)
    counts = assign.sum(1)
    pooled = torch.einsum("btk,btd->bkd", assign, x) / counts.clamp_min(1.0).unsqueeze(-1)
    return pooled, counts > 0


class TemporalEncoder(nn.Module):
    """Order-sensitive encoder: residual pre-LN Conv1d blocks (or a bidirectional GRU) over the true length,
    then :func:`segment_pool` into ``temporal_tokens`` tokens plus a learned segment-position embedding."""

    def __init__(self, config: TSDAConfig):
        super().__init__()
        d = config.hidden_size
        self.kind = config.temporal_encoder
        if self.kind == "conv":
            self.norms = nn.ModuleList([nn.LayerNorm(d) for _ in range(config.temporal_layers)])
            self.convs = nn.ModuleList(
                [nn.Conv1d(d, d, config.temporal_kernel_size, padding=config.temporal_kernel_size // 2)
                 for _ in range(config.temporal_layers)]
            )
        else:
            self.gru = nn.GRU(d, d // 2, num_layers=config.temporal_layers, batch_first=True, bidirectional=True)
        self.positions = nn.Embedding(config.temporal_tokens, d)
        self.segments = config.temporal_tokens
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = real.unsqueeze(-1).to(x.dtype)
        if self.kind == "conv":
            h = x * keep
            for norm, conv in zip(self.norms, self.convs):
                update = F.gelu(conv(norm(h).transpose(1, 2))).transpose(1, 2)
                h = (h + F.dropout(update, self.dropout, self.training)) * keep
        else:
            lengths = real.sum(1).clamp_min(1).cpu()
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            h, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=x.size(1))
        tokens, valid = segment_pool(h, real, self.segments)
        return tokens + self.positions.weight.unsqueeze(0), valid


class SpatialEncoder(nn.Module):
    """Order-insensitive encoder: ``spatial_tokens`` learned queries attending over the frames without any
    position information (Set Transformer pooling), or an MLP on the mean and standard deviation over time."""

    def __init__(self, config: TSDAConfig):
        super().__init__()
        d = config.hidden_size
        self.kind = config.spatial_encoder
        self.count = config.spatial_tokens
        if self.kind == "attention":
            self.queries = nn.Embedding(config.spatial_tokens, d)
            self.attention = nn.MultiheadAttention(d, config.num_heads, dropout=config.dropout, batch_first=True)
        else:
            self.statistics = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, config.spatial_tokens * d))
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        batch, _, d = x.shape
        if self.kind == "attention":
            queries = self.queries.weight.unsqueeze(0).expand(batch, -1, -1)
            tokens = self.attention(queries, x, x, key_padding_mask=~real, need_weights=False)[0]
        else:
            mean = masked_mean(x, real)
            variance = masked_mean((x - mean.unsqueeze(1)) ** 2, real)
            tokens = self.statistics(torch.cat([mean, variance.clamp_min(1e-6).sqrt()], -1)).view(batch, self.count, d)
        return self.norm(tokens)


class AlignmentLayer(nn.Module):
    """One pre-LN transformer layer (attention + GELU FFN of width ``2d``) with an attention mask."""

    def __init__(self, config: TSDAConfig):
        super().__init__()
        d = config.hidden_size
        self.norm1 = nn.LayerNorm(d)
        self.attention = nn.MultiheadAttention(d, config.num_heads, dropout=config.dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, blocked: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        h = self.attention(h, h, h, attn_mask=blocked, key_padding_mask=padding, need_weights=False)[0]
        x = x + F.dropout(h, self.dropout, self.training)
        return x + F.dropout(self.ffn(self.norm2(x)), self.dropout, self.training)


def _head(d: int, out_features: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Dropout(dropout), nn.Linear(d, out_features))


class TSDAModel(MSAPreTrainedModel):
    """TSDA with the common forward signature; a modality passed as ``None`` is missing (its tokens are left out
    of the alignment and its summaries out of the factor means and the regularisers).

    Output: ``fused`` = the recoupled vector the head reads; ``shared``/``private`` are ``None`` (TSDA splits
    time from structure, not shared from private). ``extra`` holds:

    * ``temporal`` / ``spatial``: per-modality factor summaries after alignment ``(B, d)`` (the decorrelated
      pair); ``temporal_tokens`` ``(B, K, d)`` / ``spatial_tokens`` ``(B, S, d)``: the encoders' outputs
      before any interaction; ``temporal_valid``: the non-empty temporal segments ``(B, K)``;
    * ``alignment_mask``: the ``(N, N)`` boolean mask of the alignment attention (True = may attend) over the
      tokens named in ``alignment_tokens`` (``"temporal:text"``, ...); ``aligned_tokens`` ``(B, N, d)``;
    * ``gate`` ``(B, d)`` or ``(B, 1)``; ``factor_logits`` per factor and, with ``gate_inputs="reliability"``,
      the learned ``confidence`` per factor ``(B, 1)`` (else ``None``).
    """

    config_class = TSDAConfig
    base_model_prefix = "tsda"

    def __init__(self, config: TSDAConfig, text_encoder: BertModel | None = None):
        super().__init__(config)
        d, labels = config.hidden_size, config.num_labels
        self.text_encoder = self._build_text_encoder(text_encoder)
        widths = {"text": config.text_config.hidden_size, "audio": config.audio_dim, "vision": config.vision_dim}
        self.projections = nn.ModuleDict(
            {m: nn.Sequential(nn.Linear(widths[m], d), nn.LayerNorm(d)) for m in MODALITIES}
        )
        self.temporal_encoders = nn.ModuleDict({m: TemporalEncoder(config) for m in MODALITIES})
        self.spatial_encoders = nn.ModuleDict({m: SpatialEncoder(config) for m in MODALITIES})
        self.modality_embeddings = nn.Embedding(len(MODALITIES), d)
        self.alignment = nn.ModuleList([AlignmentLayer(config) for _ in range(config.alignment_layers)])
        self.alignment_norm = nn.LayerNorm(d)
        self.factor_heads = nn.ModuleDict({f: _head(d, labels, config.head_dropout) for f in FACTORS})
        if config.gate_inputs == "reliability":
            self.confidence = nn.ModuleDict({f: nn.Linear(d, 1) for f in FACTORS})
        self.discriminator = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, len(FACTORS)))
        gate_in = 2 * d + (3 if config.gate_inputs == "reliability" else 0)
        self.gate = nn.Linear(gate_in, d if config.gate_form == "vector" else 1)
        self.head = _head(d, labels, config.head_dropout)
        self.post_init()

    def _sequences(self, input_ids, attention_mask, token_type_ids, audio, audio_lengths, vision, vision_lengths):
        """Projected ``(B, T, d)`` sequence and ``(B, T)`` real-position mask of every present modality."""
        out = {}
        if input_ids is not None:
            hidden, attention_mask = self._encode_text(input_ids, attention_mask, token_type_ids)
            out["text"] = (hidden, attention_mask.bool())
        for name, x, lengths in (("audio", audio, audio_lengths), ("vision", vision, vision_lengths)):
            if x is not None:
                steps = x.size(1)
                if lengths is None:
                    lengths = torch.full((x.size(0),), steps, device=x.device)
                out[name] = (x, torch.arange(steps, device=x.device)[None, :] < lengths.to(x.device)[:, None])
        sequences = {}
        for m, (x, real) in out.items():
            real = real.clone()
            real[:, 0] |= ~real.any(1)  # an empty sequence keeps its first (zero) step, so attention is defined
            sequences[m] = (self.projections[m](x), real)
        return sequences

    def _align(self, temporal, temporal_valid, spatial):
        """FCCA over the present modalities' tokens (temporal ones first); returns the aligned tokens ``(B, N, d)``,
        their validity ``(B, N)``, each token's factor index ``(N,)``, the ``(N, N)`` allowed-attention mask and
        the token names."""
        present = list(temporal)
        parts, valid, factor, names = [], [], [], []
        for f, tokens in (("temporal", temporal), ("spatial", spatial)):
            for m in present:
                x = tokens[m] + self.modality_embeddings.weight[MODALITIES.index(m)]
                parts.append(x)
                valid.append(temporal_valid[m] if f == "temporal" else x.new_ones(x.shape[:2], dtype=torch.bool))
                factor += [FACTORS.index(f)] * x.size(1)
                names += [f"{f}:{m}"] * x.size(1)
        x, valid = torch.cat(parts, 1), torch.cat(valid, 1)
        factor = torch.tensor(factor, device=x.device)
        if self.config.alignment_mask == "factor":
            allowed = factor[:, None] == factor[None, :]
        else:
            allowed = torch.ones(len(factor), len(factor), dtype=torch.bool, device=x.device)
        for layer in self.alignment:
            x = layer(x, ~allowed, ~valid)
        return self.alignment_norm(x), valid, factor, allowed, names

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        audio: torch.FloatTensor | None = None,
        audio_lengths: torch.LongTensor | None = None,
        vision: torch.FloatTensor | None = None,
        vision_lengths: torch.LongTensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> MSAModelOutput:
        config = self.config
        self._batch_size(input_ids=input_ids, audio=audio, vision=vision)
        sequences = self._sequences(input_ids, attention_mask, token_type_ids, audio, audio_lengths, vision,
                                    vision_lengths)
        temporal_tokens, temporal_valid, spatial_tokens = {}, {}, {}
        for m, (x, real) in sequences.items():
            temporal_tokens[m], temporal_valid[m] = self.temporal_encoders[m](x, real)
            spatial_tokens[m] = self.spatial_encoders[m](x, real)
        aligned, valid, factor, allowed, names = self._align(temporal_tokens, temporal_valid, spatial_tokens)

        summaries = {f: {} for f in FACTORS}
        offset = 0
        for f in FACTORS:
            for m in sequences:
                width = (temporal_tokens if f == "temporal" else spatial_tokens)[m].size(1)
                summaries[f][m] = masked_mean(aligned[:, offset:offset + width], valid[:, offset:offset + width])
                offset += width
        factor_vectors = {f: torch.stack(list(summaries[f].values())).mean(0) for f in FACTORS}
        factor_logits = {f: self.factor_heads[f](factor_vectors[f]) for f in FACTORS}
        h_t, h_s = factor_vectors["temporal"], factor_vectors["spatial"]
        gate_inputs = [h_t, h_s]
        confidence = None
        if config.gate_inputs == "reliability":
            confidence = {f: torch.sigmoid(self.confidence[f](factor_vectors[f])) for f in FACTORS}
            gate_inputs += [self._disagreement(factor_logits), confidence["temporal"], confidence["spatial"]]
        gate = torch.sigmoid(self.gate(torch.cat(gate_inputs, -1)))
        fused = gate * h_t + (1 - gate) * h_s
        logits = self.head(fused)

        loss = loss_terms = None
        if labels is not None:
            loss_terms = self._loss_terms(logits, factor_logits, labels, aligned, valid, factor, summaries,
                                          gate * h_t, (1 - gate) * h_s)
            loss = (
                loss_terms["task"]
                + config.factor_weight * loss_terms["factor"]
                + config.purity_weight * loss_terms["purity"]
                + config.cosine_weight * loss_terms["cosine"]
                + config.hsic_weight * loss_terms["hsic"]
                + config.orth_weight * loss_terms["orth"]
            )
        extra = {
            "temporal": summaries["temporal"],
            "spatial": summaries["spatial"],
            "temporal_tokens": temporal_tokens,
            "spatial_tokens": spatial_tokens,
            "temporal_valid": temporal_valid,
            "aligned_tokens": aligned,
            "alignment_mask": allowed,
            "alignment_tokens": names,
            "gate": gate,
            "factor_logits": factor_logits,
            "confidence": confidence,
        }
        return MSAModelOutput(loss=loss, logits=logits, loss_terms=loss_terms, fused=fused, extra=extra)

    def _disagreement(self, factor_logits: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, 1)`` detached disagreement of the factor heads: ``|ŷ^T − ŷ^S|`` (regression) or the total
        variation distance of their class distributions."""
        a, b = factor_logits["temporal"].detach(), factor_logits["spatial"].detach()
        if self.config.is_regression:
            return (a - b).abs()
        return 0.5 * (a.softmax(-1) - b.softmax(-1)).abs().sum(-1, keepdim=True)

    def _loss_terms(self, logits, factor_logits, labels, aligned, valid, factor, summaries, gated_t, gated_s):
        """Unweighted terms: ``task``, ``factor_temporal``/``factor_spatial`` and their sum ``factor``, ``purity``,
        ``cosine``, ``hsic`` (means over the present modalities) and ``orth``."""
        config = self.config
        kind = config.task_loss if config.is_regression else "ce"
        terms = {"task": task_loss(logits, labels, kind)}
        for f in FACTORS:
            terms[f"factor_{f}"] = task_loss(factor_logits[f], labels, kind)
        terms["factor"] = terms["factor_temporal"] + terms["factor_spatial"]
        predicted = self.discriminator(aligned)
        targets = factor.unsqueeze(0).expand(aligned.size(0), -1)
        purity = F.cross_entropy(predicted.reshape(-1, len(FACTORS)), targets.reshape(-1), reduction="none")
        weight = valid.reshape(-1).to(purity.dtype)
        terms["purity"] = (purity * weight).sum() / weight.sum()
        temporal = torch.stack(list(summaries["temporal"].values()))
        spatial = torch.stack(list(summaries["spatial"].values()))
        terms["cosine"] = squared_cosine(temporal, spatial)
        terms["hsic"] = hsic(temporal, spatial, config.hsic_kernel).mean()
        terms["orth"] = difference_loss(gated_t, gated_s)
        return terms
