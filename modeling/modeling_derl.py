"""DERL: Disentangled Expert Representation Learning for robust multimodal sentiment analysis (Li, Zhang, Miao,
Cheng, Li, Han, Li, "Mixture of Disentangled Experts with Missing Modalities for Robust Multimodal Sentiment
Analysis", arXiv 2602.01833). Not the 2024 "DERL: dual encoder representation learning" (Xian, Yang, Zhao),
an unrelated MSA model with the same acronym.

No code is public and only the abstract is known (``methods.md`` §7), so this is a reconstruction of the
modules it names, with every unstated choice a switch of :class:`DERLConfig`:

* per-modality encoders (BERT for text; a linear projection for audio/vision; then a residual temporal
  Conv1d), pooled over the observed positions;
* hybrid experts: a private mixture of experts per modality and one shared expert bank with a router per
  modality, giving orthogonal private ``p_m`` and shared ``s_m`` representations;
* multi-level reconstruction of the *clean* input from the corrupted one (token, utterance, representation);
* importance-aware fusion of the experts ``[p_text, p_audio, p_vision, s]``, whose weights are returned;
* missing-modality training: in training mode the model corrupts its own input (MMSA semantics), so the
  clean input is at hand as the reconstruction target.
"""

from __future__ import annotations

from itertools import combinations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertModel

from .configuration_derl import DERLConfig
from .layers import masked_mean
from .losses import cmd, cosine_orthogonality, difference_loss, expert_balance_loss, standardized_mse, task_loss
from .modeling_base import MSAPreTrainedModel
from .outputs import MSAModelOutput

MODALITIES = ("text", "audio", "vision")
#: the fusion experts, in the order of the fused vector
FUSION_EXPERTS = ("text", "audio", "vision", "shared")


class ConvEncoder(nn.Module):
    """Linear projection to ``d``, then ``LayerNorm(h + dropout(GELU(Conv1d(h))))`` over time.

    Positions outside ``keep`` are zeroed after the projection, so a missing frame contributes nothing and
    its output comes from its neighbours only.
    """

    def __init__(self, in_features: int, hidden_size: int, kernel_size: int, dropout: float):
        super().__init__()
        self.input = nn.Linear(in_features, hidden_size)
        self.conv = nn.Conv1d(hidden_size, hidden_size, kernel_size, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(hidden_size)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        h = self.input(x) * keep.unsqueeze(-1).to(x.dtype)
        context = F.gelu(self.conv(h.transpose(1, 2))).transpose(1, 2)
        return self.norm(h + F.dropout(context, self.dropout, self.training))


def _expert(hidden_size: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(hidden_size, hidden_size), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_size, hidden_size)
    )


class MixtureOfExperts(nn.Module):
    """A router over a list of experts: ``tanh(Σ_e g_e · expert_e(x))`` with ``g = softmax(router(x[, r]))``.

    The experts are passed in, so several routers can share one bank (the shared space). ``r`` (the observed
    fraction of the modality) is appended to the router input when ``aware``.
    """

    def __init__(self, hidden_size: int, num_experts: int, aware: bool, top_k: int | None):
        super().__init__()
        self.router = nn.Linear(hidden_size + int(aware), num_experts)
        self.aware = aware
        self.top_k = top_k

    def forward(self, x: torch.Tensor, observed: torch.Tensor, experts: nn.ModuleList):
        inputs = x
        if self.aware:
            inputs = torch.cat([x, observed.expand(*x.shape[:-1], 1).to(x.dtype)], -1)
        logits = self.router(inputs)
        if self.top_k is not None and self.top_k < logits.size(-1):
            threshold = logits.topk(self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < threshold, float("-inf"))
        gates = torch.softmax(logits, dim=-1)
        outputs = torch.stack([expert(x) for expert in experts], dim=-2)
        return torch.tanh((gates.unsqueeze(-1) * outputs).sum(-2)), gates


class DERLModel(MSAPreTrainedModel):
    """DERL (Disentangled Expert Representation Learning, arXiv 2602.01833) with the common forward signature.

    A modality passed as ``None`` is missing: it has no private expert, does not enter the shared vector and
    gets zero importance. So does a modality whose input is entirely missing (all frames zero / all content
    tokens ``[UNK]``) when ``missingness_aware``, so dropping a modality and zeroing it give the same fusion.

    In training mode with ``augment_missing_rate > 0`` or ``augment_drop_prob > 0`` the model first corrupts
    its input (:meth:`corrupt`) and reconstructs the clean one; in evaluation mode the input is used as given.

    Output: ``private``/``shared`` = ``p_m``/``s_m`` ``(B, d)``, ``utterance`` = the pooled encoder vectors,
    ``fused`` = the head's input, ``extra``: ``importance`` (fusion weight per expert, ``(B,)`` each),
    ``private_gates``/``shared_gates`` (router weights per modality, ``(B, E)``), ``observed_fraction`` per
    modality ``(B,)``.
    """

    config_class = DERLConfig
    base_model_prefix = "derl"

    def __init__(self, config: DERLConfig, text_encoder: BertModel | None = None):
        super().__init__(config)
        d = config.hidden_size
        aware = config.missingness_aware
        self.text_encoder = self._build_text_encoder(text_encoder)
        widths = {"text": config.text_config.hidden_size, "audio": config.audio_dim, "vision": config.vision_dim}
        self.encoders = nn.ModuleDict(
            {m: ConvEncoder(widths[m], d, config.encoder_kernel_size, config.dropout) for m in MODALITIES}
        )
        self.private_experts = nn.ModuleDict(
            {m: nn.ModuleList([_expert(d, config.dropout) for _ in range(config.num_private_experts)])
             for m in MODALITIES}
        )
        self.shared_experts = nn.ModuleList([_expert(d, config.dropout) for _ in range(config.num_shared_experts)])
        self.private_routers = nn.ModuleDict(
            {m: MixtureOfExperts(d, config.num_private_experts, aware, config.router_top_k) for m in MODALITIES}
        )
        self.shared_routers = nn.ModuleDict(
            {m: MixtureOfExperts(d, config.num_shared_experts, aware, config.router_top_k) for m in MODALITIES}
        )
        levels = config.reconstruction_levels
        if "token" in levels:
            self.token_decoders = nn.ModuleDict({m: nn.Linear(d, widths[m]) for m in MODALITIES})
        if "utterance" in levels:
            self.utterance_decoders = nn.ModuleDict(
                {m: nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, widths[m])) for m in MODALITIES}
            )
        if "representation" in levels:
            self.representation_decoders = nn.ModuleDict({m: nn.Linear(2 * d, d) for m in MODALITIES})
        self.importance = nn.ModuleDict(
            {k: nn.Sequential(nn.Linear(d + int(aware), d), nn.Tanh(), nn.Linear(d, 1)) for k in FUSION_EXPERTS}
        )
        fused_width = len(FUSION_EXPERTS) * d if config.fusion_combine == "concat" else d
        self.head = nn.Sequential(
            nn.Linear(fused_width, d), nn.GELU(), nn.Dropout(config.head_dropout), nn.Linear(d, config.num_labels)
        )
        self.post_init()

    # ------------------------------------------------------------------------------------- corruption

    @property
    def augments(self) -> bool:
        """Whether a training-mode forward corrupts its input."""
        return self.config.augment_missing_rate > 0 or self.config.augment_drop_prob > 0

    def corrupt(self, inputs: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor | None]:
        """MMSA-style random missingness on a copy of the inputs (torch's global RNG; used in training mode).

        Per sample and modality in ``augment_modalities``: a missing rate (``U(0, augment_missing_rate)`` or the
        rate itself) and, with probability ``augment_drop_prob``, the loss of the whole modality. Missing text
        tokens become ``unk_token_id`` ([CLS], the last real token ([SEP]) and padding are kept); missing
        frames are zeroed within the true length. A sample that would lose every present modality keeps them.
        """
        config = self.config
        out = dict(inputs)
        present = [m for m, key in zip(MODALITIES, ("input_ids", "audio", "vision")) if inputs[key] is not None]
        reference = next(inputs[k] for k in ("input_ids", "audio", "vision") if inputs[k] is not None)
        batch, device = reference.size(0), reference.device
        augmented = {m: m in config.augment_modalities for m in present}
        dropped = {m: (torch.rand(batch, device=device) < config.augment_drop_prob) & augmented[m] for m in present}
        lose_all = torch.stack(list(dropped.values())).all(0)
        for m in present:
            rate = torch.full((batch,), config.augment_missing_rate * augmented[m], device=device)
            if config.augment_rate_sampling == "uniform":
                rate = rate * torch.rand(batch, device=device)
            _, eligible = self._positions(m, inputs)
            draw = torch.rand(eligible.shape, device=device) < rate[:, None]
            missing = eligible & (draw | (dropped[m] & ~lose_all)[:, None])
            if m == "text":
                out["input_ids"] = inputs["input_ids"].masked_fill(missing, config.unk_token_id)
            else:
                out[m] = inputs[m].masked_fill(missing.unsqueeze(-1), 0.0)
        return out

    def _positions(self, modality: str, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(real, content)`` boolean ``(B, T)`` masks: true positions, and those that may go missing."""
        if modality == "text":
            ids = inputs["input_ids"]
            mask = inputs["attention_mask"]
            real = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
            position = torch.arange(ids.size(1), device=ids.device)[None, :]
            return real, real & (position >= 1) & (position < real.sum(1, keepdim=True) - 1)
        x, lengths = inputs[modality], inputs[f"{modality}_lengths"]
        steps = x.size(1)
        if lengths is None:
            lengths = torch.full((x.size(0),), steps, device=x.device)
        real = torch.arange(steps, device=x.device)[None, :] < lengths.to(x.device)[:, None]
        return real, real

    # ---------------------------------------------------------------------------------------- encoding

    def _encode(self, inputs: dict) -> dict[str, dict[str, torch.Tensor]]:
        """Per present modality: token outputs ``h`` (B, T, d), ``real`` positions, the pooling mask, the
        pooled vector ``u`` (B, d) and the observed fraction ``r`` (B, 1) of the positions that may go missing
        (1 for text with no content token, 0 for an empty audio/vision sequence)."""
        encoded = {}
        for m in MODALITIES:
            key = "input_ids" if m == "text" else m
            if inputs[key] is None:
                continue
            real, content = self._positions(m, inputs)
            if m == "text":
                ids = inputs["input_ids"]
                hidden = self.text_encoder(
                    input_ids=ids, attention_mask=real.long(), token_type_ids=inputs["token_type_ids"]
                ).last_hidden_state
                unobserved = content & ids.eq(self.config.unk_token_id)
                h = self.encoders[m](hidden, real)
            else:
                unobserved = real & inputs[m].eq(0).all(-1)
                h = self.encoders[m](inputs[m], real & ~unobserved)
            observed = (content & ~unobserved).sum(1).to(h.dtype)
            fraction = observed / content.sum(1).clamp_min(1).to(h.dtype)
            if m == "text":  # [CLS]/[SEP] only: nothing could go missing
                fraction = torch.where(content.any(1), fraction, torch.ones_like(fraction))
            pool = real & ~unobserved if self.config.pool_observed_only else real
            encoded[m] = {"h": h, "real": real, "pool": pool, "u": masked_mean(h, pool), "r": fraction.unsqueeze(-1)}
        return encoded

    def _disentangle(self, encoded: dict) -> tuple[dict, dict, dict, dict]:
        """Private and shared vectors and router gates of every present modality."""
        private, shared, private_gates, shared_gates = {}, {}, {}, {}
        for m, e in encoded.items():
            if self.config.router_input == "utterance":
                x, r = e["u"], e["r"]
            else:
                x, r = e["h"], e["r"].unsqueeze(1)
            p, gp = self.private_routers[m](x, r, self.private_experts[m])
            s, gs = self.shared_routers[m](x, r, self.shared_experts)
            if self.config.router_input == "token":
                p, s = masked_mean(p, e["pool"]), masked_mean(s, e["pool"])
                gp, gs = masked_mean(gp, e["pool"]), masked_mean(gs, e["pool"])
            private[m], shared[m], private_gates[m], shared_gates[m] = p, s, gp, gs
        return private, shared, private_gates, shared_gates

    def _fuse(self, private: dict, shared: dict, encoded: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Importance-weighted fusion of ``[p_text, p_audio, p_vision, s]``; returns the fused vector and the
        weight of every batch-present expert ``(B,)``."""
        config = self.config
        reference = next(iter(private.values()))
        batch, d = reference.shape
        present = list(private)
        fraction = torch.cat([encoded[m]["r"] for m in present], -1)  # (B, M)
        available = torch.ones_like(fraction, dtype=torch.bool)
        weights = torch.ones_like(fraction)
        if config.missingness_aware:  # a sample with nothing observed at all falls back to every modality
            observed = (fraction > 0).any(-1, keepdim=True)
            available = (fraction > 0) | ~observed
            weights = torch.where(observed, fraction, weights)
        weights = weights / weights.sum(-1, keepdim=True)
        features = dict(private)
        features["shared"] = (torch.stack([shared[m] for m in present], 1) * weights.unsqueeze(-1)).sum(1)
        reliability = {m: encoded[m]["r"] for m in present}
        reliability["shared"] = fraction.sum(-1, keepdim=True) / available.sum(-1, keepdim=True)
        usable = {m: available[:, i] for i, m in enumerate(present)}
        usable["shared"] = torch.ones(batch, dtype=torch.bool, device=reference.device)

        experts = [k for k in FUSION_EXPERTS if k in features]
        scores = []
        for k in experts:
            inputs = torch.cat([features[k], reliability[k]], -1) if config.missingness_aware else features[k]
            scores.append(self.importance[k](inputs).squeeze(-1))
        scores = torch.stack(scores, -1)
        mask = torch.stack([usable[k] for k in experts], -1)
        if config.fusion_gate == "softmax":
            alpha = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)
        else:
            alpha = torch.sigmoid(scores) * mask
        importance = dict(zip(experts, alpha.unbind(-1)))
        if config.fusion_combine == "concat":
            zeros = reference.new_zeros(batch, d)
            fused = torch.cat(
                [features[k] * importance[k].unsqueeze(-1) if k in importance else zeros for k in FUSION_EXPERTS], -1
            )
        else:
            fused = sum(features[k] * importance[k].unsqueeze(-1) for k in experts)
        return fused, importance

    # ----------------------------------------------------------------------------------------- forward

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
        self._batch_size(input_ids=input_ids, audio=audio, vision=vision)
        clean = {
            "input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
            "audio": audio, "audio_lengths": audio_lengths, "vision": vision, "vision_lengths": vision_lengths,
        }
        corrupted = self.training and self.augments
        inputs = self.corrupt(clean) if corrupted else clean
        encoded = self._encode(inputs)
        private, shared, private_gates, shared_gates = self._disentangle(encoded)
        fused, importance = self._fuse(private, shared, encoded)
        logits = self.head(fused)

        loss = loss_terms = None
        if labels is not None:
            loss_terms = self._loss_terms(logits, labels, clean, encoded, private, shared, private_gates, shared_gates,
                                          corrupted)
            config = self.config
            loss = (
                loss_terms["task"]
                + config.orth_weight * loss_terms["orth"]
                + config.sim_weight * loss_terms["sim"]
                + config.recon_weight * loss_terms["recon"]
                + config.balance_weight * loss_terms["balance"]
            )
        extra = {
            "importance": importance,
            "private_gates": private_gates,
            "shared_gates": shared_gates,
            "observed_fraction": {m: e["r"].squeeze(-1) for m, e in encoded.items()},
        }
        return MSAModelOutput(
            loss=loss,
            logits=logits,
            loss_terms=loss_terms,
            shared=shared,
            private=private,
            utterance={m: e["u"] for m, e in encoded.items()},
            fused=fused,
            extra=extra,
        )

    # ------------------------------------------------------------------------------------------ losses

    def _loss_terms(self, logits, labels, clean, encoded, private, shared, private_gates, shared_gates, corrupted):
        """Unweighted terms: ``task``, ``orth``, ``sim``, ``balance``, ``recon_<level>`` per configured level and
        ``recon`` (their sum); the per-modality terms are averaged over the present modalities."""
        config = self.config
        kind = config.task_loss if config.is_regression else "ce"
        present = list(encoded)
        zero = logits.new_zeros(())
        terms = {"task": task_loss(logits, labels, kind)}
        if config.orthogonality == "difference":
            orth = [difference_loss(private[m], shared[m]) for m in present]
        else:
            orth = [cosine_orthogonality(private[m][None], shared[m][None]) for m in present]
        terms["orth"] = torch.stack(orth).mean()
        pairs = list(combinations(present, 2))
        terms["sim"] = sum((cmd(shared[a], shared[b], config.cmd_moments) for a, b in pairs), zero) / max(len(pairs), 1)
        gates = list(private_gates.values()) + list(shared_gates.values())
        terms["balance"] = torch.stack([expert_balance_loss(g) for g in gates]).mean()

        targets = self._clean_targets(clean, encoded, corrupted)
        recon = zero
        for level in config.reconstruction_levels:
            values = []
            for m in present:
                codes = torch.cat([private[m], shared[m]], -1)
                if level == "token":
                    prediction = self.token_decoders[m](encoded[m]["h"])
                    values.append(standardized_mse(prediction, targets[m]["tokens"], encoded[m]["real"]))
                elif level == "utterance":
                    values.append(standardized_mse(self.utterance_decoders[m](codes), targets[m]["pooled"]))
                else:
                    prediction = self.representation_decoders[m](codes)
                    values.append(standardized_mse(prediction, targets[m]["representation"]))
            terms[f"recon_{level}"] = torch.stack(values).mean()
            recon = recon + terms[f"recon_{level}"]
        terms["recon"] = recon
        return terms

    def _clean_targets(self, clean: dict, encoded: dict, corrupted: bool) -> dict[str, dict[str, torch.Tensor]]:
        """Reconstruction targets from the clean input, without gradient: ``tokens`` (frames, or BERT word
        embeddings of the clean ids), ``pooled`` (their mean over real positions) and ``representation``
        (the encoder's pooled vector of the clean input; the same pass's vector when nothing was corrupted)."""
        levels = self.config.reconstruction_levels
        targets = {}
        with torch.no_grad():
            clean_encoded = self._encode(clean) if corrupted and "representation" in levels else encoded
            for m, e in encoded.items():
                if m == "text":
                    tokens = self.text_encoder.get_input_embeddings()(clean["input_ids"])
                else:
                    tokens = clean[m]
                targets[m] = {
                    "tokens": tokens.detach(),
                    "pooled": masked_mean(tokens, e["real"]).detach(),
                    "representation": clean_encoded[m]["u"].detach(),
                }
        return targets
