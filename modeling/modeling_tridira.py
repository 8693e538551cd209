"""TriDiRA: Triple Disentangled Representation Learning for Multimodal Affective Analysis (Zhou et al., 2025).

Built from the loss formulas of the paper (seed 000; no official code exists). Each modality is split into the
modality-invariant ``r*`` (shared encoder), the effective specific ``r∩u`` and the ineffective specific ``u*``
(a dual-output attention over the specific code ``u``); only ``r*`` and ``r∩u`` are fused for the prediction.
Losses: task, modality discriminator on the specific code, ``L_ucorr`` on a u*-only prediction, CMD between
the ``r*``, HSIC between the modalities' ``r∩u`` (inter) and between ``r*`` and ``u*`` (intra), and the
reconstruction of each utterance vector from all three parts. The choices the paper leaves open are listed
in :class:`TriDiRAConfig`.
"""

from __future__ import annotations

from itertools import combinations

import torch
from torch import nn
from transformers import BertModel
from transformers import initialization as init

from .configuration_tridira import TriDiRAConfig
from .layers import StackedBiLSTMEncoder, masked_mean
from .losses import cmd, hsic, label_agreement_loss, task_loss
from .modeling_base import MODALITIES, MSAPreTrainedModel
from .outputs import MSAModelOutput

#: modality labels of the discriminator
MODALITY_LABELS = {m: index for index, m in enumerate(MODALITIES)}


def _projection(in_features: int, hidden_size: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, hidden_size), nn.ReLU(), nn.LayerNorm(hidden_size))


def _sigmoid_code(hidden_size: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.Sigmoid())


class DualOutputAttention(nn.Module):
    """Splits a specific code ``u`` ``(B, d)`` into ``(r∩u, u*)`` with feature gates computed from ``u``:
    ``(a ⊙ u, (1 − a) ⊙ u)`` with ``a = σ(W u + b)`` (``"complementary"``) or ``(a₁ ⊙ u, a₂ ⊙ u)`` with
    two gates (``"independent"``)."""

    def __init__(self, hidden_size: int, mode: str):
        super().__init__()
        self.complementary = mode == "complementary"
        self.gates = nn.Linear(hidden_size, hidden_size if self.complementary else 2 * hidden_size)

    def forward(self, specific: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gates = torch.sigmoid(self.gates(specific))
        if self.complementary:
            return gates * specific, (1 - gates) * specific
        effective, ineffective = gates.chunk(2, dim=-1)
        return effective * specific, ineffective * specific


class TriDiRAModel(MSAPreTrainedModel):
    """TriDiRA with the common forward signature; a modality passed as ``None`` is missing.

    A missing modality contributes no parts and no loss terms; its two fusion tokens are masked out of the
    token transformer and zeroed, and its ``u*`` enters the u*-only head as zeros.

    Output: ``shared`` = ``r*``, ``private`` = the effective specific part ``r∩u`` (what is fused),
    ``utterance`` = the utterance vector ``x̂^m`` (reconstruction target), ``fused`` = the ``6d`` vector the head
    reads, ``extra["ineffective_specific"]`` = ``u*``, ``extra["specific"]`` = ``u`` (before the split) per
    modality, and ``extra["ineffective_logits"]`` = the u*-only prediction ``ỹ``. :meth:`modality_logits` runs
    the modality discriminator.
    """

    config_class = TriDiRAConfig
    base_model_prefix = "tridira"

    def __init__(self, config: TriDiRAConfig, text_encoder: BertModel | None = None):
        super().__init__(config)
        d, labels = config.hidden_size, config.num_labels
        self.text_encoder = self._build_text_encoder(text_encoder)
        self.sequence_encoders = nn.ModuleDict(
            {
                "audio": StackedBiLSTMEncoder(config.audio_dim, config.lstm_hidden_size),
                "vision": StackedBiLSTMEncoder(config.vision_dim, config.lstm_hidden_size),
            }
        )
        widths = {m: encoder.output_size for m, encoder in self.sequence_encoders.items()}
        widths["text"] = config.text_config.hidden_size
        self.projections = nn.ModuleDict({m: _projection(widths[m], d) for m in MODALITIES})
        self.shared_encoder = _sigmoid_code(d)
        self.specific_encoders = nn.ModuleDict({m: _sigmoid_code(d) for m in MODALITIES})
        self.splitters = nn.ModuleDict({m: DualOutputAttention(d, config.dual_attention) for m in MODALITIES})
        self.reconstructors = nn.ModuleDict({m: nn.Linear(3 * d, d) for m in MODALITIES})
        self.discriminator = nn.Sequential(
            nn.Linear(d, d), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(d, len(MODALITY_LABELS))
        )
        if config.fusion == "transformer":
            self.fusion_transformer = nn.TransformerEncoderLayer(
                d, config.fusion_num_heads, config.fusion_ffn_dim, config.fusion_dropout, batch_first=True
            )
        self.head = nn.Sequential(
            nn.Linear(6 * d, 3 * d), nn.Dropout(config.dropout), nn.ReLU(), nn.Linear(3 * d, labels)
        )
        self.ineffective_head = nn.Sequential(nn.Linear(3 * d, d), nn.ReLU(), nn.Linear(d, labels))
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, nn.LSTM) and self.config.lstm_orthogonal_init:
            for name, param in module.named_parameters():
                if "weight_hh" in name:
                    init.orthogonal_(param)

    def modality_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The modality discriminator's logits ``(B, 3)`` (text, audio, vision) for codes ``hidden`` ``(B, d)``."""
        return self.discriminator(hidden)

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
        encoded: dict[str, torch.Tensor] = {}
        if input_ids is not None:
            hidden, attention_mask = self._encode_text(input_ids, attention_mask, token_type_ids)
            encoded["text"] = masked_mean(hidden, attention_mask)
        for name, features, lengths in (("audio", audio, audio_lengths), ("vision", vision, vision_lengths)):
            if features is not None:
                if lengths is None:
                    lengths = torch.full((features.size(0),), features.size(1), dtype=torch.long)
                encoded[name] = self.sequence_encoders[name](features, lengths)
        utterance = {m: self.projections[m](x) for m, x in encoded.items()}

        shared = {m: self.shared_encoder(u) for m, u in utterance.items()}
        specific = {m: self.specific_encoders[m](u) for m, u in utterance.items()}
        effective, ineffective = {}, {}
        for m, u in specific.items():
            effective[m], ineffective[m] = self.splitters[m](u)
        fused = self._fuse(shared, effective, batch)
        logits = self.head(fused)
        zeros = fused.new_zeros(batch, self.config.hidden_size)
        ineffective_input = torch.cat([ineffective.get(m, zeros) for m in MODALITIES], -1)
        ineffective_logits = self.ineffective_head(ineffective_input)

        loss = loss_terms = None
        if labels is not None:
            loss_terms = self._loss_terms(
                logits, labels, utterance, shared, specific, effective, ineffective, ineffective_input,
                ineffective_logits,
            )
            config = self.config
            loss = (
                loss_terms["task"]
                + config.modality_weight * loss_terms["modality"]
                + config.ucorr_weight * loss_terms["ucorr"]
                + config.sim_weight * loss_terms["sim"]
                + config.inter_weight * loss_terms["inter"]
                + config.intra_weight * loss_terms["intra"]
                + config.recon_weight * loss_terms["recon"]
            )
            if "ucorr_head" in loss_terms:
                loss = loss + loss_terms["ucorr_head"]
        return MSAModelOutput(
            loss=loss,
            logits=logits,
            loss_terms=loss_terms,
            shared=shared,
            private=effective,
            utterance=utterance,
            fused=fused,
            extra={"ineffective_specific": ineffective, "specific": specific, "ineffective_logits": ineffective_logits},
        )

    def _fuse(self, shared: dict, effective: dict, batch: int) -> torch.Tensor:
        """Tokens ``[r*_t, r*_a, r*_v, (r∩u)_t, (r∩u)_a, (r∩u)_v]`` through the fusion layer, concatenated."""
        reference = next(iter(shared.values()))
        zeros = reference.new_zeros(batch, self.config.hidden_size)
        parts = (shared, effective)
        tokens = torch.stack([part.get(m, zeros) for part in parts for m in MODALITIES], dim=1)
        if self.config.fusion == "transformer":
            present = torch.tensor([m in part for part in parts for m in MODALITIES], device=reference.device)
            if bool(present.all()):
                tokens = self.fusion_transformer(tokens)
            else:
                padding = (~present).unsqueeze(0).expand(batch, -1)
                tokens = self.fusion_transformer(tokens, src_key_padding_mask=padding)
                tokens = tokens * present.to(tokens.dtype).view(1, -1, 1)
        return tokens.reshape(batch, -1)

    def _loss_terms(
        self, logits, labels, utterance, shared, specific, effective, ineffective, ineffective_input,
        ineffective_logits,
    ) -> dict[str, torch.Tensor]:
        """Unweighted terms ``task``, ``modality``, ``ucorr``, ``sim``, ``inter``, ``intra``, ``recon`` (and
        ``ucorr_head``, the u*-head's own task loss, with ``ucorr_training="adversarial"``)."""
        config = self.config
        kind = config.task_loss if config.is_regression else "ce"
        present = [m for m in MODALITIES if m in utterance]
        pairs = list(combinations(present, 2))
        zero = logits.new_zeros(())
        terms = {"task": task_loss(logits, labels, kind)}

        # Σ_m of the per-modality mean cross-entropy (each modality contributes as many vectors)
        sources = (specific,) if config.discriminator_input == "specific" else (effective, ineffective)
        codes = torch.cat([source[m] for source in sources for m in present])
        targets = torch.cat(
            [
                torch.full((source[m].size(0),), MODALITY_LABELS[m], device=logits.device)
                for source in sources
                for m in present
            ]
        )
        terms["modality"] = nn.functional.cross_entropy(self.discriminator(codes), targets) * len(present)

        if config.ucorr_training == "joint":
            terms["ucorr"] = label_agreement_loss(ineffective_logits, labels, config.ucorr_mode, config.ucorr_eps)
        else:
            frozen = {name: p.detach() for name, p in self.ineffective_head.named_parameters()}
            frozen_logits = torch.func.functional_call(self.ineffective_head, frozen, (ineffective_input,))
            terms["ucorr"] = label_agreement_loss(frozen_logits, labels, config.ucorr_mode, config.ucorr_eps)
            terms["ucorr_head"] = task_loss(self.ineffective_head(ineffective_input.detach()), labels, kind)

        terms["sim"] = sum((cmd(shared[a], shared[b], config.cmd_moments) for a, b in pairs), zero) / max(len(pairs), 1)
        if pairs:
            first = torch.stack([effective[a] for a, _ in pairs])
            second = torch.stack([effective[b] for _, b in pairs])
            terms["inter"] = hsic(first, second, config.hsic_kernel).mean()
        else:
            terms["inter"] = zero
        invariant = torch.stack([shared[m] for m in present])
        terms["intra"] = hsic(invariant, torch.stack([ineffective[m] for m in present]), config.hsic_kernel).mean()
        terms["recon"] = sum(
            nn.functional.mse_loss(
                self.reconstructors[m](torch.cat([shared[m], effective[m], ineffective[m]], -1)), utterance[m]
            )
            for m in present
        ) / len(present)
        return terms
