"""DLF: Disentangled-Language-Focused multimodal sentiment analysis (Wang et al., AAAI 2025).

Follows pwang322/DLF as implemented (``trains/singleTask/model/DLF.py``, ``trains/singleTask/DLF.py``):
BERT sequence → temporal Conv1d projections → per-modality specific MulT encoders and one shared MulT
encoder → Conv1d reconstruction and the specific-encoder cycle → shared path (self-attention per modality,
last steps, residual head) and the Language-Focused Attractor on the specific features (L→L, A→L, V→L,
all queried by language) → sigmoid projections, concatenation and the final residual head.

Not built, because the official code never trains them: the cross-modal transformers A←L, A←V, V←L and
V←A, the flattened "low" heads on the shared features, the ``proj_cosine_*`` layers and the graph
distillation kernels (``run.py`` builds them but neither the model nor the optimiser uses them).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertModel

from .configuration_dlf import DLFConfig
from .layers import MulTEncoder, ResidualHead, dropout, pad_or_truncate
from .losses import cosine_orthogonality, label_margin_loss, task_loss
from .modeling_base import MSAPreTrainedModel
from .outputs import MSAModelOutput

#: stream order of the official concatenations ([l, v, a]) and of the stacked margin-loss features
ORDER = ("text", "vision", "audio")


class LanguageFocusedAttractor(nn.Module):
    """The LFA: every path is queried by the language-specific sequence.

    L→L: self-attention memory on ``s_text``. A→L and V→L: a cross-modal transformer with queries
    ``s_text`` and keys/values ``s_audio`` (``s_vision``), then a deeper self-attention memory. Each path
    returns its last time step ``(B, d)``.
    """

    def __init__(self, config: DLFConfig):
        super().__init__()
        self.text_memory = _transformer(config, config.attn_dropout, config.num_layers)
        self.audio_cross = _transformer(config, config.attn_dropout_audio, config.num_layers)
        self.vision_cross = _transformer(config, config.attn_dropout_vision, config.num_layers)
        self.audio_memory = _transformer(config, config.attn_dropout, config.lfa_memory_layers)
        self.vision_memory = _transformer(config, config.attn_dropout, config.lfa_memory_layers)

    def forward(self, query: torch.Tensor, specific: dict[str, torch.Tensor], paths,
                last_only: bool = True) -> dict[str, torch.Tensor]:
        """``last_only``: compute the memories' last layer at the last step only (same values, less work)."""
        out = {}
        if "text" in paths:
            out["text"] = self.text_memory.last_step(query, last_only)
        for name in ("audio", "vision"):
            if name in paths:
                source = specific[name]
                attracted = getattr(self, f"{name}_cross")(query, source, source)
                out[name] = getattr(self, f"{name}_memory").last_step(attracted, last_only)
        return out


def _transformer(config: DLFConfig, attn_dropout: float, layers: int) -> MulTEncoder:
    return MulTEncoder(
        config.hidden_size,
        config.num_heads,
        layers,
        attn_dropout=attn_dropout,
        relu_dropout=config.relu_dropout,
        res_dropout=config.res_dropout,
        embed_dropout=config.embed_dropout,
        attn_mask=config.attn_mask,
    )


class DLFModel(MSAPreTrainedModel):
    """DLF with the common forward signature; a modality passed as ``None`` is missing.

    A missing modality runs through no encoder: its shared vector enters the shared concatenation as
    zeros, its slot of the fused vector is zero, and its head and disentanglement losses are dropped
    (the margin loss uses the modalities present). Missing text: the attractor's queries come from the
    text-specific encoder applied to an all-zero (all-padding) text sequence, a learned constant, so the
    A→L and V→L paths still gather audio and vision evidence; only the L→L path and the text head go.

    Initialisation: as the official code, PyTorch's defaults, except the MulT layers, which use MulT's own
    (Xavier-uniform weights, zero biases; ``MSAPreTrainedModel._init_weights``).

    Output: ``shared`` = last step of the shared self-attention per modality, ``private`` = the LFA output
    per modality (last step), ``fused`` = the 6d vector the final head reads.
    """

    config_class = DLFConfig
    base_model_prefix = "dlf"

    def __init__(self, config: DLFConfig, text_encoder: BertModel | None = None):
        super().__init__(config)
        d, labels = config.hidden_size, config.num_labels
        self.text_encoder = self._build_text_encoder(text_encoder)
        widths = {"text": config.text_config.hidden_size, "audio": config.audio_dim, "vision": config.vision_dim}
        attn = {"text": config.attn_dropout, "audio": config.attn_dropout_audio, "vision": config.attn_dropout_vision}
        kernels = {m: getattr(config, f"{m}_kernel_size") for m in ORDER}
        self.projections = nn.ModuleDict({m: nn.Conv1d(widths[m], d, kernels[m], bias=False) for m in ORDER})
        self.specific_encoders = nn.ModuleDict({m: _transformer(config, attn[m], config.num_layers) for m in ORDER})
        self.shared_encoder = _transformer(config, config.attn_dropout, config.num_layers)
        self.decoders = nn.ModuleDict({m: nn.Conv1d(2 * d, d, 1, bias=False) for m in ORDER})
        self.align = nn.ModuleDict({m: nn.Linear(config.reduced_length(m) * d, d) for m in ORDER})
        self.shared_attentions = nn.ModuleDict({m: _transformer(config, attn[m], config.num_layers) for m in ORDER})
        self.shared_head = ResidualHead(3 * d, labels, config.output_dropout)
        self.attractor = LanguageFocusedAttractor(config)
        self.specific_heads = nn.ModuleDict({m: ResidualHead(d, labels, config.output_dropout) for m in ORDER})
        self.fusion_projections = nn.ModuleDict({m: nn.Linear(d, d) for m in ORDER})
        self.shared_projection = nn.Linear(3 * d, 3 * d)
        self.head = ResidualHead(6 * d, labels, config.output_dropout)
        self.post_init()

    def _project(self, name: str, features: torch.Tensor) -> torch.Tensor:
        """``(B, T, D)`` → padded/cut to the configured length → Conv1d → sequence-first ``(T', B, d)``."""
        features = pad_or_truncate(features, getattr(self.config, f"{name}_length"))
        return self.projections[name](features.transpose(1, 2)).permute(2, 0, 1)

    def _shared_sequences(self, projected: dict[str, torch.Tensor], batch: int) -> dict[str, torch.Tensor]:
        """The shared encoder on every modality; one call over the modalities stacked along the batch axis
        when their lengths agree (aligned data), which is the same computation with fewer, larger ops."""
        if len({x.size(0) for x in projected.values()}) > 1:
            return {m: self.shared_encoder(x) for m, x in projected.items()}
        joint = self.shared_encoder(torch.cat(list(projected.values()), 1))
        return dict(zip(projected, joint.split(batch, 1)))

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
        batch = self._batch_size(input_ids=input_ids, audio=audio, vision=vision)
        projected: dict[str, torch.Tensor] = {}
        if input_ids is not None:
            hidden = self._text_sequence(
                input_ids,
                attention_mask,
                token_type_ids,
                length=config.text_length,
                pad_before_encoder=config.text_padding == "before_encoder",
            )
            projected["text"] = self._project("text", dropout(hidden, config.text_dropout, self.training))
        for name, features in (("audio", audio), ("vision", vision)):
            if features is not None:
                projected[name] = self._project(name, features)
        reference = next(iter(projected.values()))

        specific = {m: self.specific_encoders[m](x) for m, x in projected.items()}
        shared_seq = self._shared_sequences(projected, batch)
        skip = config.skip_unused_computation
        zeros = reference.new_zeros(batch, config.hidden_size)
        shared = {m: self.shared_attentions[m].last_step(c, skip) for m, c in shared_seq.items()}
        shared_concat = torch.cat([shared.get(m, zeros) for m in ORDER], -1)
        with_losses = labels is not None or not skip
        if with_losses:
            recon = {
                m: self.decoders[m](torch.cat([specific[m], shared_seq[m]], -1).permute(1, 2, 0)).permute(2, 0, 1)
                for m in projected
            }
            cycle = {m: self.specific_encoders[m](r) for m, r in recon.items()}
            aligned = {m: self.align[m](c.permute(1, 2, 0).reshape(batch, -1)) for m, c in shared_seq.items()}
            shared_logits, _ = self.shared_head(shared_concat)

        query = specific.get("text")
        if query is None:
            text_steps = config.reduced_length("text")
            query = self.specific_encoders["text"](reference.new_zeros(text_steps, batch, config.hidden_size))
        private = self.attractor(query, specific, projected, last_only=skip)
        head_logits, streams = {}, {}
        for m, vector in private.items():
            head_logits[m], enhanced = self.specific_heads[m](vector)
            streams[m] = torch.sigmoid(self.fusion_projections[m](enhanced))
        fused = torch.cat(
            [streams.get(m, zeros) for m in ORDER] + [torch.sigmoid(self.shared_projection(shared_concat))], -1
        )
        logits, _ = self.head(fused)

        loss = loss_terms = None
        if labels is not None:
            loss_terms = self._loss_terms(
                logits, shared_logits, head_logits, labels, projected, specific, shared_seq, recon, cycle, aligned
            )
            loss = (
                loss_terms["task"]
                + config.recon_weight * loss_terms["recon"]
                + config.specific_weight * loss_terms["specific"]
                + config.margin_weight * loss_terms["margin"]
                + config.ort_weight * loss_terms["ort"]
            )
        return MSAModelOutput(
            loss=loss, logits=logits, loss_terms=loss_terms, shared=shared, private=private, fused=fused
        )

    def _loss_terms(
        self, logits, shared_logits, head_logits, labels, projected, specific, shared_seq, recon, cycle, aligned
    ) -> dict[str, torch.Tensor]:
        """Unweighted terms: one task term per head (``task_final``, ``task_shared``, ``task_<modality>``),
        ``task`` (their β-weighted sum, L_MSA), ``recon`` (L_r), ``specific`` (L_s), ``ort`` (L_o) and
        ``margin`` (L_m); the disentanglement terms sum over the present modalities, as the official code."""
        config = self.config
        kind = config.task_loss if config.is_regression else "ce"
        present = [m for m in ORDER if m in projected]
        mse = nn.functional.mse_loss
        heads = {"final": logits, "shared": shared_logits, **head_logits}
        terms = {f"task_{name}": task_loss(head, labels, kind) for name, head in heads.items()}
        terms["task"] = sum(getattr(config, f"{name}_head_weight") * terms[f"task_{name}"] for name in heads)
        terms["recon"] = sum(mse(recon[m], projected[m]) for m in present)
        terms["specific"] = sum(mse(specific[m], cycle[m]) for m in present)
        mode = "per_token" if config.ort_chunk is None else "chunks"
        terms["ort"] = sum(cosine_orthogonality(specific[m], shared_seq[m], mode, config.ort_chunk) for m in present)
        features = torch.stack([aligned[m] for m in present])
        terms["margin"] = label_margin_loss(features, labels.reshape(-1).to(features.dtype), config.margin_scale)
        return terms
