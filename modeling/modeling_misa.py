"""MISA: Modality-Invariant and -Specific Representations (Hazarika et al., ACM MM 2020).

Follows declare-lab/MISA as implemented (``src/models.py``, ``src/solver.py``): BERT masked-mean text,
stacked bi-LSTM acoustic/visual encoders over true lengths, shared/private sigmoid projectors, CMD
similarity (or the adversarial option), the row-normalised difference loss, reconstruction of each
projected utterance vector from private + shared, and a one-layer token transformer over the six vectors.
"""

from __future__ import annotations

from itertools import combinations

import torch
from torch import nn
from transformers import BertModel
from transformers import initialization as init

from .configuration_misa import MISAConfig
from .layers import StackedBiLSTMEncoder, masked_mean
from .losses import cmd, difference_loss, grad_reverse, task_loss
from .modeling_base import MSAPreTrainedModel
from .outputs import MSAModelOutput

#: token order of the fusion transformer in the official code: [p_t, p_v, p_a, c_t, c_v, c_a]
FUSION_ORDER = ("text", "vision", "audio")
#: modality labels of the adversarial discriminator (official: t=0, v=1, a=2)
DOMAIN_LABELS = {"text": 0, "vision": 1, "audio": 2}


def _projection(in_features: int, hidden_size: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, hidden_size), nn.ReLU(), nn.LayerNorm(hidden_size))


class MISAModel(MSAPreTrainedModel):
    """MISA with the common forward signature; a modality passed as ``None`` is missing.

    Missing modalities contribute no representation and no loss term; their two fusion tokens are
    masked out of the token transformer and zeroed before the head.
    """

    config_class = MISAConfig
    base_model_prefix = "misa"

    def __init__(self, config: MISAConfig, text_encoder: BertModel | None = None):
        super().__init__(config)
        d = config.hidden_size
        self.text_encoder = self._build_text_encoder(text_encoder)
        self.sequence_encoders = nn.ModuleDict(
            {"audio": StackedBiLSTMEncoder(config.audio_dim), "vision": StackedBiLSTMEncoder(config.vision_dim)}
        )
        self.projections = nn.ModuleDict(
            {
                "text": _projection(config.text_config.hidden_size, d),
                "audio": _projection(self.sequence_encoders["audio"].output_size, d),
                "vision": _projection(self.sequence_encoders["vision"].output_size, d),
            }
        )
        self.private_encoders = nn.ModuleDict({m: nn.Sequential(nn.Linear(d, d), nn.Sigmoid()) for m in FUSION_ORDER})
        self.shared_encoder = nn.Sequential(nn.Linear(d, d), nn.Sigmoid())
        self.reconstructors = nn.ModuleDict({m: nn.Linear(d, d) for m in FUSION_ORDER})
        if config.similarity == "adversarial":
            self.discriminator = nn.Sequential(
                nn.Linear(d, d), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(d, len(DOMAIN_LABELS))
            )
        self.fusion_transformer = nn.TransformerEncoderLayer(
            d_model=d,
            nhead=config.fusion_num_heads,
            dim_feedforward=config.fusion_ffn_dim,
            dropout=config.fusion_dropout,
            batch_first=True,
        )
        self.head = nn.Sequential(
            nn.Linear(6 * d, 3 * d), nn.Dropout(config.dropout), nn.ReLU(), nn.Linear(3 * d, config.num_labels)
        )
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, nn.LSTM) and self.config.lstm_orthogonal_init:
            for name, param in module.named_parameters():
                if "weight_hh" in name:
                    init.orthogonal_(param)

    def _sequence_lengths(self, features, lengths, attention_mask):
        steps = features.size(1)
        if self.config.av_lengths_from_text and attention_mask is not None:
            lengths = attention_mask.sum(1)
        elif lengths is None:
            return torch.full((features.size(0),), steps, dtype=torch.long)
        return lengths.clamp(1, steps)

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
            utterance["text"] = self.projections["text"](masked_mean(hidden, attention_mask))
        for name, features, lengths in (("audio", audio, audio_lengths), ("vision", vision, vision_lengths)):
            if features is not None:
                lengths = self._sequence_lengths(features, lengths, attention_mask)
                utterance[name] = self.projections[name](self.sequence_encoders[name](features, lengths))

        private = {m: self.private_encoders[m](u) for m, u in utterance.items()}
        shared = {m: self.shared_encoder(u) for m, u in utterance.items()}
        fused = self._fuse(private, shared, batch)
        logits = self.head(fused)

        loss = loss_terms = None
        if labels is not None:
            loss_terms = self._loss_terms(logits, labels, utterance, private, shared)
            config = self.config
            loss = (
                loss_terms["task"]
                + config.diff_weight * loss_terms["diff"]
                + config.sim_weight * loss_terms["sim"]
                + config.recon_weight * loss_terms["recon"]
            )
        return MSAModelOutput(
            loss=loss,
            logits=logits,
            loss_terms=loss_terms,
            shared=shared,
            private=private,
            utterance=utterance,
            fused=fused,
        )

    def _fuse(self, private: dict, shared: dict, batch: int) -> torch.Tensor:
        reference = next(iter(private.values()))
        zeros = reference.new_zeros(batch, self.config.hidden_size)
        parts = [private, shared]
        tokens = torch.stack([part.get(m, zeros) for part in parts for m in FUSION_ORDER], dim=1)
        present = torch.tensor([m in part for part in parts for m in FUSION_ORDER], device=reference.device)
        if bool(present.all()):
            tokens = self.fusion_transformer(tokens)
        else:
            padding = (~present).unsqueeze(0).expand(batch, -1)
            tokens = self.fusion_transformer(tokens, src_key_padding_mask=padding)
            tokens = tokens * present.to(tokens.dtype).view(1, -1, 1)
        return tokens.reshape(batch, -1)

    def _loss_terms(self, logits, labels, utterance, private, shared) -> dict[str, torch.Tensor]:
        config = self.config
        kind = config.task_loss if config.is_regression else "ce"
        present = [m for m in FUSION_ORDER if m in utterance]
        zero = logits.new_zeros(())
        pairs = list(combinations(present, 2))

        diff = sum((difference_loss(private[m], shared[m]) for m in present), zero)
        diff = diff + sum((difference_loss(private[a], private[b]) for a, b in pairs), zero)

        if config.similarity == "cmd":
            sim = sum((cmd(shared[a], shared[b], config.cmd_moments) for a, b in pairs), zero) / max(len(pairs), 1)
        else:
            predictions = torch.cat(
                [self.discriminator(grad_reverse(shared[m], config.reverse_grad_weight)) for m in present]
            )
            domains = torch.cat(
                [torch.full((shared[m].size(0),), DOMAIN_LABELS[m], device=logits.device) for m in present]
            )
            sim = nn.functional.cross_entropy(predictions, domains)

        recon = sum(
            (
                nn.functional.mse_loss(self.reconstructors[m](private[m] + shared[m]), utterance[m])
                for m in present
            ),
            zero,
        ) / len(present)
        return {"task": task_loss(logits, labels, kind), "diff": diff, "sim": sim, "recon": recon}
