"""DMD: Decoupled Multimodal Distilling (Li, Wang, Cui, CVPR 2023).

Follows mdswyz/DMD as implemented (``trains/singleTask/model/dmd.py``, ``trains/singleTask/DMD.py``,
``run.py``): BERT's fixed-length sequence and the acoustic/visual frames go through temporal Conv1d
projections; 1×1 convolutions split each stream into a modality-exclusive part ``s_m`` (one encoder per
modality) and a modality-irrelevant part ``c_m`` (one shared encoder); decoders reconstruct the projection
from both. The homogeneous branch reads the flattened ``c_m`` (one flatten-residual head per modality, plus
self-attention over each ``c_m`` fused by a residual head), the heterogeneous branch runs MulT cross-modal
transformers over the ``s_m``; two graph-distillation kernels learn per-sample edge weights between the
modalities' heads. The final prediction reads sigmoid projections of the heterogeneous and common vectors.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import BertModel

from .configuration_dmd import DMDConfig
from .layers import DistillationKernel, MulTEncoder, ResidualHead, dropout, pad_or_truncate
from .losses import cosine_orthogonality, graph_distillation_losses, label_margin_loss, task_loss
from .modeling_base import MSAPreTrainedModel
from .outputs import MSAModelOutput

#: modality order of the official stacks (graph-distillation inputs, fusion concatenation): [l, v, a]
ORDER = ("text", "vision", "audio")
#: sources of each target's two cross-modal transformers, in the official concatenation order
CROSS_SOURCES = {"text": ("audio", "vision"), "audio": ("text", "vision"), "vision": ("text", "audio")}


class HomogeneousHead(nn.Module):
    """Residual head over a flattened ``c_m`` (``T'·d``) through a ``d``-wide bottleneck.

    ``repr = relu(proj1(h))`` is the graph-distillation representation: the official code applies the ReLU
    in place, so the representation it hands to the kernel is the post-ReLU one.
    """

    def __init__(self, flat_dim: int, dim: int, out_features: int, dropout: float):
        super().__init__()
        self.proj1 = nn.Linear(flat_dim, dim)
        self.proj2 = nn.Linear(dim, flat_dim)
        self.out = nn.Linear(flat_dim, out_features)
        self.dropout = dropout

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        representation = F.relu(self.proj1(hidden))
        hidden = self.proj2(dropout(representation, self.dropout, self.training)) + hidden
        return self.out(hidden), representation


class DMDModel(MSAPreTrainedModel):
    """DMD with the common forward signature; a modality passed as ``None`` is missing.

    A missing modality enters the network as zeros of its fixed length (zero BERT states for text), which is
    what an MMSA-style dropped modality looks like, so every layer keeps its shape. Its representations are
    left out of the output, and the loss terms that need it are zero: its homogeneous and heterogeneous head
    terms, its reconstruction, cycle and orthogonality terms, its vectors in the margin loss, and both
    graph-distillation units (the graph is over all three modalities).
    """

    config_class = DMDConfig
    base_model_prefix = "dmd"

    def __init__(self, config: DMDConfig, text_encoder: BertModel | None = None):
        super().__init__(config)
        d = config.hidden_size
        labels = config.num_labels
        dims = self._input_dims()
        flat = {m: config.reduced_length(m) * d for m in ORDER}
        attn_dropout = {
            "text": config.attn_dropout,
            "audio": config.attn_dropout_audio,
            "vision": config.attn_dropout_vision,
        }

        self.text_encoder = self._build_text_encoder(text_encoder)
        self.projections = nn.ModuleDict(
            {m: nn.Conv1d(dims[m], d, config.kernel_size(m), bias=False) for m in ORDER}
        )
        self.private_encoders = nn.ModuleDict({m: nn.Conv1d(d, d, 1, bias=False) for m in ORDER})
        self.shared_encoder = nn.Conv1d(d, d, 1, bias=False)
        self.decoders = nn.ModuleDict({m: nn.Conv1d(2 * d, d, 1, bias=False) for m in ORDER})
        self.align_shared = nn.ModuleDict({m: nn.Linear(flat[m], d) for m in ORDER})

        self.homo_heads = nn.ModuleDict(
            {m: HomogeneousHead(flat[m], d, labels, config.output_dropout) for m in ORDER}
        )
        self.self_attentions = nn.ModuleDict({m: self._transformer(d, attn_dropout[m]) for m in ORDER})
        self.common_head = ResidualHead(3 * d, labels, config.output_dropout)

        self.cross_attentions = nn.ModuleDict(
            {f"{t}_{s}": self._transformer(d, attn_dropout[s]) for t in ORDER for s in CROSS_SOURCES[t]}
        )
        self.memories = nn.ModuleDict(
            {m: self._transformer(2 * d, config.attn_dropout, max(config.nlevels, 3)) for m in ORDER}
        )
        self.hetero_heads = nn.ModuleDict({m: ResidualHead(2 * d, labels, config.output_dropout) for m in ORDER})

        self.fusion_weights = nn.ModuleDict({m: nn.Linear(2 * d, 2 * d) for m in ORDER})
        self.fusion_weights["common"] = nn.Linear(3 * d, 3 * d)
        self.fusion_head = ResidualHead(9 * d, labels, config.output_dropout)

        self.homo_kernel = DistillationKernel(
            num_modalities=3,
            logit_dim=labels,
            repr_dim=d,
            gd_size=config.homo_gd_size,
            prior_weights=config.homo_prior,
            prior_temperature=config.prior_temperature,
            alpha=config.edge_alpha,
        )
        self.hetero_kernel = DistillationKernel(
            num_modalities=3,
            logit_dim=labels,
            repr_dim=2 * d,
            gd_size=config.hetero_gd_size,
            prior_weights=config.hetero_prior,
            prior_temperature=config.prior_temperature,
            alpha=config.edge_alpha,
        )
        self.post_init()

    def _input_dims(self) -> dict[str, int]:
        config = self.config
        return {"text": config.text_config.hidden_size, "audio": config.audio_dim, "vision": config.vision_dim}

    def _transformer(self, dim: int, attn_dropout: float, layers: int | None = None) -> MulTEncoder:
        config = self.config
        return MulTEncoder(
            dim,
            config.num_heads,
            layers or config.nlevels,
            attn_dropout=attn_dropout,
            relu_dropout=config.relu_dropout,
            res_dropout=config.res_dropout,
            embed_dropout=config.embed_dropout,
            attn_mask=config.attn_mask,
        )

    def _inputs(self, input_ids, attention_mask, token_type_ids, audio, vision) -> dict[str, torch.Tensor]:
        """Channel-first fixed-length inputs ``(B, D_m, T_m)`` of the present modalities."""
        config = self.config
        inputs = {}
        if input_ids is not None:
            hidden = self._text_sequence(
                input_ids,
                attention_mask,
                token_type_ids,
                length=config.text_length,
                pad_before_encoder=config.text_padding == "before_encoder",
            )
            inputs["text"] = dropout(hidden, config.text_dropout, self.training).transpose(1, 2)
        for name, features in (("audio", audio), ("vision", vision)):
            if features is not None:
                inputs[name] = pad_or_truncate(features, getattr(config, f"{name}_length")).transpose(1, 2)
        return inputs

    def _features(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        audio: torch.FloatTensor | None = None,
        vision: torch.FloatTensor | None = None,
        with_losses: bool = True,
    ) -> dict:
        """Every intermediate the outputs and (with ``with_losses``) the losses need (official names in
        comments), keyed by modality.

        Sequences ``s``/``c`` are ``(T', B, d)`` as in the official code; ``proj``, ``recon``, ``s_cycle`` are
        channel-first ``(B, d, T')``. The loss-only intermediates are skipped when ``with_losses`` is false and
        ``config.skip_unused_computation`` is set.
        """
        config = self.config
        skip = config.skip_unused_computation
        losses = with_losses or not skip
        batch = self._batch_size(input_ids=input_ids, audio=audio, vision=vision)
        inputs = self._inputs(input_ids, attention_mask, token_type_ids, audio, vision)
        reference = next(iter(inputs.values()))
        dims = self._input_dims()
        f: dict = {key: {} for key in ("proj", "s", "c", "c_sim", "recon", "s_cycle", "homo_logits", "homo_repr",
                                        "c_att", "last_h", "hetero_logits", "hetero_repr")}
        f["present"] = [m for m in ORDER if m in inputs]
        for m in ORDER:
            x = inputs.get(m)
            if x is None:
                x = reference.new_zeros(batch, dims[m], getattr(config, f"{m}_length"))
            proj = self.projections[m](x)  # proj_x_m
            s = self.private_encoders[m](proj)  # s_m
            c = self.shared_encoder(proj)  # c_m
            f["proj"][m] = proj
            f["s"][m] = s.permute(2, 0, 1)
            f["c"][m] = c.permute(2, 0, 1)
            if losses:
                f["c_sim"][m] = self.align_shared[m](c.reshape(batch, -1))  # c_m_sim: (d, T') flatten
                f["recon"][m] = recon = self.decoders[m](torch.cat([s, c], dim=1))
                f["s_cycle"][m] = self.private_encoders[m](recon)  # s_m_r
                f["homo_logits"][m], f["homo_repr"][m] = self.homo_heads[m](c.transpose(1, 2).reshape(batch, -1))
            f["c_att"][m] = self.self_attentions[m].last_step(f["c"][m], skip)

        f["c_fusion"] = c_fusion = torch.cat([f["c_att"][m] for m in ORDER], dim=1)
        if losses:
            f["common_logits"], _ = self.common_head(c_fusion)
        s = f["s"]
        for target in ORDER:
            crossed = [self.cross_attentions[f"{target}_{src}"](s[target], s[src]) for src in CROSS_SOURCES[target]]
            f["last_h"][target] = last = self.memories[target].last_step(torch.cat(crossed, dim=2), skip)
            if losses:
                f["hetero_logits"][target], f["hetero_repr"][target] = self.hetero_heads[target](last)

        projected = [torch.sigmoid(self.fusion_weights[m](f["last_h"][m])) for m in ORDER]
        f["fused"] = torch.cat(projected + [torch.sigmoid(self.fusion_weights["common"](c_fusion))], dim=1)
        f["logits"], _ = self.fusion_head(f["fused"])
        return f

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
        """``audio_lengths``/``vision_lengths`` are accepted for the common signature and unused: DMD reads
        every step of the fixed-length inputs, padding included, as the official code does."""
        f = self._features(input_ids, attention_mask, token_type_ids, audio, vision, with_losses=labels is not None)
        present = f["present"]
        loss = loss_terms = None
        if labels is not None:
            loss_terms = self._loss_terms(f, labels)
            loss = self._total(loss_terms)
        return MSAModelOutput(
            loss=loss,
            logits=f["logits"],
            loss_terms=loss_terms,
            shared={m: f["c_att"][m] for m in present},
            private={m: f["s"][m].mean(0) for m in present},
            utterance={m: f["proj"][m].mean(2) for m in present},
            fused=f["fused"],
        )

    def _total(self, t: dict[str, torch.Tensor]) -> torch.Tensor:
        """The official weighting of the unweighted terms."""
        c = self.config
        homo_gd = t["homo_logit"] + t["homo_reg"] + (t["homo_repr"] if c.homo_repr_in_total else 0.0)
        return (
            c.fused_head_weight * t["task"]
            + c.common_head_weight * t["task_common"]
            + c.homo_head_weight * sum(t[f"task_homo_{m}"] for m in ORDER)
            + c.hetero_head_weight * sum(t[f"task_hetero_{m}"] for m in ORDER)
            + c.homo_gd_weight * homo_gd
            + c.hetero_gd_weight * (t["hetero_logit"] + t["hetero_repr"] + t["hetero_reg"])
            + c.cyc_weight * t["cyc"]
            + c.rec_weight * t["rec"]
            + c.margin_weight * t["margin"]
            + c.ort_weight * t["ort"]
        )

    def _loss_terms(self, f: dict, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        config = self.config
        kind = config.task_loss if config.is_regression else "ce"
        present = f["present"]
        zero = f["logits"].new_zeros(())
        terms = {
            "task": task_loss(f["logits"], labels, kind),
            "task_common": task_loss(f["common_logits"], labels, kind),
        }
        for branch in ("homo", "hetero"):
            for m in ORDER:
                logits = f[f"{branch}_logits"][m]
                terms[f"task_{branch}_{m}"] = task_loss(logits, labels, kind) if m in present else zero
        terms["rec"] = sum((F.mse_loss(f["recon"][m], f["proj"][m]) for m in present), zero)
        terms["cyc"] = sum((F.mse_loss(f["s_cycle"][m], f["s"][m].permute(1, 2, 0)) for m in present), zero)
        terms["ort"] = sum((cosine_orthogonality(f["s"][m], f["c"][m], mode=config.ort_mode) for m in present), zero)
        terms["margin"] = label_margin_loss(
            torch.stack([f["c_sim"][m] for m in present]), labels.view(-1).to(zero.dtype), scale=config.margin_scale
        )
        for branch, kernel, metric in (
            ("homo", self.homo_kernel, "l1"),
            ("hetero", self.hetero_kernel, config.hetero_repr_metric),
        ):
            if len(present) == len(ORDER):
                parts = graph_distillation_losses(
                    kernel,
                    [f[f"{branch}_logits"][m] for m in ORDER],
                    [f[f"{branch}_repr"][m] for m in ORDER],
                    repr_metric=metric,
                    reg_weight=config.gd_reg_weight,
                    repr_weight=config.gd_repr_weight,
                )
            else:
                parts = {"logit": zero, "repr": zero, "reg": zero}
            for part in ("logit", "repr", "reg"):
                terms[f"{branch}_{part}"] = parts[part]
        return terms
