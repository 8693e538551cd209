"""FDMER: Feature-Disentangled Multimodal Emotion Recognition (Yang et al., ACM MM 2022).

Built from the paper (seed 002; no official code exists): a Transformer encoder per modality (Eq. 1), one
common encoder shared by the modalities and a private encoder per modality (Eq. 2–3), the consistency
(Eq. 4–5) and HSIC disparity (Eq. 6–7) constraints, one modality discriminator trained with the additive
angular margin loss on both branches, through a gradient reversal layer on the common one (Eq. 8–11), the
two-phase Cross-Modal Attention Fusion (Eq. 12–17) and the objective of Eq. 18. The choices the paper
leaves open are listed in :class:`FDMERConfig`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertModel

from .configuration_fdmer import FDMERConfig
from .layers import masked_mean, sinusoidal_table
from .losses import angular_margin_loss, grad_reverse, hsic, similarity_consistency, task_loss
from .modeling_base import MODALITIES, MSAPreTrainedModel
from .outputs import MSAModelOutput

#: modality labels of the discriminator (y ∈ {t, a, v})
MODALITY_LABELS = {m: index for index, m in enumerate(MODALITIES)}
#: the four CMAF tokens: the summed common code, then the private codes
FUSION_TOKENS = ("common", *MODALITIES)


def _mlp(size: int) -> nn.Sequential:
    """The two-layer GeLU perceptron of the common and private encoders (§3.3)."""
    return nn.Sequential(nn.Linear(size, size), nn.GELU(), nn.Linear(size, size))


class SequenceEncoder(nn.Module):
    """Eq. 1 and the fully connected layer after it: linear input projection, positions, a post-LN Transformer
    encoder over the valid steps, pooling to one vector, then ``Z_m = GeLU(Linear(pooled))`` of width ``d_k``."""

    def __init__(self, input_size: int, num_layers: int, config: FDMERConfig):
        super().__init__()
        size = config.transformer_size
        self.input_projection = nn.Linear(input_size, size)
        layer = nn.TransformerEncoderLayer(
            size, config.transformer_heads, config.transformer_ffn_size, config.dropout, batch_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.output = nn.Sequential(nn.Linear(size, config.hidden_size), nn.GELU())
        self.positional = config.positional_encoding == "sinusoidal"
        self.pooling = config.pooling

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``features`` ``(B, T, D)``, ``mask`` ``(B, T)`` true on valid steps (at least one per row)."""
        hidden = self.input_projection(features)
        if self.positional:
            table = sinusoidal_table(hidden.size(1), hidden.size(2), padding_idx=None, device=hidden.device)
            hidden = hidden + table.to(hidden.dtype)
        hidden = self.transformer(hidden, src_key_padding_mask=~mask)
        if self.pooling == "mean":
            pooled = masked_mean(hidden, mask)
        else:
            last = mask.long().sum(1) - 1
            pooled = hidden[torch.arange(hidden.size(0), device=hidden.device), last]
        return self.output(pooled)


class ModalityDiscriminator(nn.Module):
    """Eq. 8: ``D(h) = softmax(W_Dᵀ F(h))`` with ``F(h) = W_F h + b_F`` (``d_k → d``) and ``W_D`` (``d × 3``, no
    bias; stored as ``classifier.weight = W_Dᵀ``). One discriminator serves the common and the private branch."""

    def __init__(self, config: FDMERConfig):
        super().__init__()
        self.projection = nn.Linear(config.hidden_size, config.discriminator_size)
        self.classifier = nn.Linear(config.discriminator_size, len(MODALITY_LABELS), bias=False)
        self.kind = config.discriminator_loss
        self.scale = config.angular_scale
        self.margin = config.angular_margin

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Modality logits: ``α·cos θ_j`` for the angular-margin discriminator (what Eq. 9 trains; the margin only
        enters the loss), ``W_Dᵀ F(h)`` for the cross-entropy one."""
        projected = self.projection(hidden)
        if self.kind == "arcface":
            return self.scale * F.normalize(projected, dim=-1) @ F.normalize(self.classifier.weight, dim=-1).t()
        return self.classifier(projected)

    def loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        projected = self.projection(hidden)
        if self.kind == "arcface":
            return angular_margin_loss(projected, self.classifier.weight.t(), labels, self.scale, self.margin)
        return F.cross_entropy(self.classifier(projected), labels)


class CrossModalAttentionFusion(nn.Module):
    """§3.4 over the four tokens ``[C, P_t, P_a, P_v]`` ``(B, 4, d_k)``; returns ``Y_fin`` ``(B, d_k)`` and the
    phase-2 weights ``ψ`` ``(B, 4)``. Tokens of missing modalities are masked out of both softmaxes.

    Phase 1 (Eq. 12–14), per target ``ta``: ``G_ta = LN_ta(F_ta) W_Gta``; the source ``LN(F_so)`` (the four
    tokens concatenated, ``4d_k``) times ``W_Qso`` / ``W_Uso`` read as four tokens ``Q``, ``U``;
    ``Y_ta = LN_ta(F_ta) + softmax(G_ta Qᵀ) U``, then ``Y_ta = f_δ(LN(Y_ta)) + Y_ta``. Phase 2 (Eq. 15–17):
    ``μ_ta = qᵀ tanh(W_ta Y_ta + b_ta)``, ``ψ = softmax(μ)``, ``Y_fin = Σ ψ_ta Y_ta``.
    """

    def __init__(self, config: FDMERConfig):
        super().__init__()
        d, tokens = config.hidden_size, len(FUSION_TOKENS)
        self.phase1, self.phase2 = config.cmaf_phase1, config.cmaf_phase2
        self.attention_scale = 1.0 / math.sqrt(d) if config.cmaf_attention_scale else 1.0
        if self.phase1:
            self.target_norms = nn.ModuleList([nn.LayerNorm(d) for _ in range(tokens)])
            self.target_projections = nn.ModuleList([nn.Linear(d, d, bias=False) for _ in range(tokens)])
            self.source_norm = nn.LayerNorm(tokens * d)
            self.source_query = nn.Linear(tokens * d, tokens * d, bias=False)
            self.source_value = nn.Linear(tokens * d, tokens * d, bias=False)
            self.feed_forward_norm = nn.LayerNorm(d)
            self.feed_forward = nn.Sequential(
                nn.Linear(d, d), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(d, d)
            )
        if self.phase2:
            count = tokens if config.cmaf_target_projections else 1
            self.weight_projections = nn.ModuleList([nn.Linear(d, d) for _ in range(count)])
            self.attention_vector = nn.Linear(d, 1, bias=False)

    def _interact(self, tokens: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        batch, count, d = tokens.shape
        normed = torch.stack([norm(tokens[:, i]) for i, norm in enumerate(self.target_norms)], 1)
        queries = torch.stack([proj(normed[:, i]) for i, proj in enumerate(self.target_projections)], 1)
        source = self.source_norm(tokens.reshape(batch, count * d))
        keys = self.source_query(source).view(batch, count, d)
        values = self.source_value(source).view(batch, count, d)
        scores = (queries @ keys.transpose(1, 2)) * self.attention_scale
        scores = scores.masked_fill(~present.view(1, 1, count), float("-inf"))
        hidden = normed + scores.softmax(-1) @ values
        return hidden + self.feed_forward(self.feed_forward_norm(hidden))

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.phase1:
            tokens = self._interact(tokens, present)
        count = tokens.size(1)
        if self.phase2:
            projections = self.weight_projections
            if len(projections) == 1:
                hidden = torch.tanh(projections[0](tokens))
            else:
                hidden = torch.stack([torch.tanh(p(tokens[:, i])) for i, p in enumerate(projections)], 1)
            scores = self.attention_vector(hidden).squeeze(-1)
        else:
            scores = tokens.new_zeros(tokens.shape[:2])
        weights = scores.masked_fill(~present.view(1, count), float("-inf")).softmax(-1)
        return (weights.unsqueeze(-1) * tokens).sum(1), weights


class FDMERModel(MSAPreTrainedModel):
    """FDMER with the common forward signature; a modality passed as ``None`` is missing.

    A missing modality has no codes and no loss terms (the consistency, disparity and adversarial sums run
    over the modalities present); its private token is masked out of the fusion (zero in ``"concat"``, left
    out of the sum or product). ``C`` sums the common codes present.

    Output: ``shared`` = the common codes ``C_m``, ``private`` = ``P_m``, ``utterance`` = ``Z_m``, ``fused`` =
    ``Y_fin`` (``4·d_k`` concatenation for ``fusion="concat"``), ``extra["fusion_weights"]`` = phase-2 weights
    over ``[C, P_t, P_a, P_v]`` (CMAF with phase 2 only). :meth:`modality_logits` runs the discriminator.
    """

    config_class = FDMERConfig
    base_model_prefix = "fdmer"

    def __init__(self, config: FDMERConfig, text_encoder: BertModel | None = None):
        super().__init__(config)
        d = config.hidden_size
        self.text_encoder = self._build_text_encoder(text_encoder)
        widths = {"text": config.text_config.hidden_size, "audio": config.audio_dim, "vision": config.vision_dim}
        self.sequence_encoders = nn.ModuleDict(
            {m: SequenceEncoder(widths[m], getattr(config, f"{m}_layers"), config) for m in MODALITIES}
        )
        self.common_encoder = _mlp(d)
        self.private_encoders = nn.ModuleDict({m: _mlp(d) for m in MODALITIES})
        self.discriminator = ModalityDiscriminator(config)
        if config.fusion == "cmaf":
            self.fusion = CrossModalAttentionFusion(config)
        head_in = len(FUSION_TOKENS) * d if config.fusion == "concat" else d
        self.head = nn.Sequential(
            nn.Linear(head_in, d), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(d, config.num_labels)
        )
        self.post_init()

    def modality_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The modality discriminator's logits ``(B, 3)`` (text, audio, vision) for codes ``hidden`` ``(B, d_k)``."""
        return self.discriminator.logits(hidden)

    @staticmethod
    def _steps_mask(features: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        steps = features.size(1)
        if lengths is None:
            return torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        lengths = lengths.to(features.device).clamp(1, steps)
        return torch.arange(steps, device=features.device)[None, :] < lengths[:, None]

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
        batch = self._batch_size(input_ids=input_ids, audio=audio, vision=vision)
        utterance: dict[str, torch.Tensor] = {}
        if input_ids is not None:
            hidden, attention_mask = self._encode_text(input_ids, attention_mask, token_type_ids)
            mask = attention_mask.bool()
            mask[:, 0] = True  # [CLS] always counts, so a row is never fully masked
            utterance["text"] = self.sequence_encoders["text"](hidden, mask)
        for name, features, lengths in (("audio", audio, audio_lengths), ("vision", vision, vision_lengths)):
            if features is not None:
                utterance[name] = self.sequence_encoders[name](features, self._steps_mask(features, lengths))

        common = {m: self.common_encoder(z) for m, z in utterance.items()}
        private = {m: self.private_encoders[m](z) for m, z in utterance.items()}
        fused, weights = self._fuse(common, private, batch)
        logits = self.head(fused)

        loss = loss_terms = None
        if labels is not None:
            loss_terms = self._loss_terms(logits, labels, common, private)
            config = self.config
            loss = (
                loss_terms["task"]
                + config.adversarial_weight * (loss_terms["ami"] + loss_terms["ams"])
                + config.consistency_weight * loss_terms["con"]
                + config.disparity_weight * loss_terms["dis"]
            )
        return MSAModelOutput(
            loss=loss,
            logits=logits,
            loss_terms=loss_terms,
            shared=common,
            private=private,
            utterance=utterance,
            fused=fused,
            extra=None if weights is None else {"fusion_weights": weights},
        )

    def _fuse(self, common: dict, private: dict, batch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        reference = next(iter(common.values()))
        zeros = reference.new_zeros(batch, self.config.hidden_size)
        tokens = torch.stack([sum(common.values())] + [private.get(m, zeros) for m in MODALITIES], 1)
        present = torch.tensor([True] + [m in private for m in MODALITIES], device=reference.device)
        kind = self.config.fusion
        if kind == "cmaf":
            return self.fusion(tokens, present)
        if kind == "concat":
            return tokens.reshape(batch, -1), None
        kept = tokens[:, present]
        return (kept.sum(1) if kind == "add" else kept.prod(1)), None

    def _loss_terms(self, logits, labels, common, private) -> dict[str, torch.Tensor]:
        """Unweighted terms: ``task``, ``ami`` (Eq. 10, through the reversal layer), ``ams`` (Eq. 11), ``con``
        (Eq. 5) and ``dis`` (Eq. 7; linear-kernel HSIC averaged over the private pairs)."""
        config = self.config
        kind = config.task_loss if config.is_regression else "ce"
        present = [m for m in MODALITIES if m in common]
        modality = torch.cat(
            [torch.full((common[m].size(0),), MODALITY_LABELS[m], device=logits.device) for m in present]
        )
        # L_am averaged over n·M vectors, times M: Σ_m (1/n) Σ_i as in Eq. 10–11
        reversed_common = grad_reverse(torch.cat([common[m] for m in present]), config.reverse_grad_weight)
        ami = self.discriminator.loss(reversed_common, modality) * len(present)
        ams = self.discriminator.loss(torch.cat([private[m] for m in present]), modality) * len(present)
        con = similarity_consistency(torch.stack([common[m] for m in present]), config.consistency_normalise)
        if len(present) > 1:
            first, second = torch.triu_indices(len(present), len(present), offset=1).tolist()
            codes = torch.stack([private[m] for m in present])
            dis = hsic(codes[first], codes[second]).mean()
        else:
            dis = logits.new_zeros(())
        return {"task": task_loss(logits, labels, kind), "ami": ami, "ams": ams, "con": con, "dis": dis}
