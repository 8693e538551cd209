"""DMD configuration (Li, Wang, Cui, "Decoupled Multimodal Distilling for Emotion Recognition", CVPR 2023;
mdswyz/DMD)."""

from __future__ import annotations

from .configuration_base import MSAConfig

ORT_MODES = ("per_token", "per_sample_flat", "legacy_batch_axis")
HETERO_REPR_METRICS = ("min_cosine", "l1")
MARGIN_POSITIVES = ("equal_labels",)
TEXT_PADDINGS = ("after_encoder", "before_encoder")


class DMDConfig(MSAConfig):
    """Configuration of :class:`DMDModel`. Defaults are the official MOSI values except the quirk switches.

    Architecture (``config/config.json`` "dmd"):
        hidden_size / num_heads: width ``d`` of every stream and the attention heads (MOSI 50/10, MOSEI 30/6).
        nlevels: layers of the self- and cross-modal MulT transformers (4); the three memory transformers have
            ``max(nlevels, 3)`` layers, as in the official code.
        conv_kernel_text / conv_kernel_audio / conv_kernel_vision: temporal Conv1d kernels (MOSI 5/5/5, MOSEI
            5/1/3). With ``T' = length - kernel + 1`` the flattened layers (``align_c``, homogeneous heads) are
            ``T'·d`` wide, so ``text_length``/``audio_length``/``vision_length`` (filled from the data) are
            architecture parameters; shorter or longer inputs are zero-padded or cut to them.
        text_dropout: dropout on BERT's sequence output (MOSI 0.5, MOSEI 0.3).
        embed_dropout / attn_dropout / attn_dropout_audio / attn_dropout_vision / relu_dropout / res_dropout:
            MulT dropouts; a cross-modal transformer uses the dropout of its source (key/value) modality, the
            memory transformers use ``attn_dropout``.
        output_dropout: dropout inside the residual heads (0.5).
        attn_mask: causal attention mask in every MulT transformer (official ``true``).

    Graph distillation (``run.py``; kernels in ``trains/singleTask/distillnets``):
        homo_gd_size / hetero_gd_size: kernel widths (64 / 32).
        homo_prior / hetero_prior: prior edge weights over the six edges (l←v, l←a, v←l, v←a, a←l, a←v),
            turned into ``softmax(w / prior_temperature)`` (homo: L→V, L→A; hetero: also V→A).
        prior_temperature / edge_alpha: 0.25 and 1/8 (edge logits are scaled by ``alpha`` before the softmax).
        gd_reg_weight / gd_repr_weight: the kernels' internal weights of the prior regulariser and of the
            representation term (10 and 10; the logit term has weight 1).

    Loss weights (``trains/singleTask/DMD.py``; the total is
    ``Σ heads + homo_gd·(logit + reg) + hetero_gd·(logit + repr + reg) + rec·L_rec + cyc·L_cyc + margin·L_mar
    + ort·L_ort``):
        fused_head_weight / common_head_weight / homo_head_weight / hetero_head_weight: the eight task terms
            (final, common-fusion, 3 homogeneous, 3 heterogeneous heads), all 1.
        homo_gd_weight / hetero_gd_weight: 0.05 each.
        rec_weight / cyc_weight / margin_weight / ort_weight: 0.1 / 0.1 / 0.01 / 0.01 (the code's
            ``0.1·(cyc + rec + 0.1·(margin + ort))``).
        margin_scale: label-distance margin factor of the margin loss (0.15; the official ``margin=0.1``
            argument is unused).
        task_loss: ``"l1"`` (the official criterion, also the validation criterion); ``"ce"`` is used
            automatically when ``num_labels > 1``.

    Switches for the official code's quirks (paper vs code vs our default):
        ort_mode: how ``CosineEmbeddingLoss(s_m, c_m, -1)`` treats the ``(T', B, d)`` tensors. The paper gives
            no shape; the official call only ran on PyTorch < 1.10, where the cosine was taken over dim 1, the
            batch axis (``"legacy_batch_axis"``, the official preset); it crashes on current PyTorch. Default
            ``"per_token"``: one cosine per (time step, sample) over the ``d`` features, which is what
            "s_m orthogonal to c_m" means and what the DLF fork adopted. ``"per_sample_flat"`` (one cosine per
            sample over ``T'·d``, the author's suggestion in mdswyz/DMD#2) is also available.
        homo_repr_in_total: add the homogeneous representation-distillation term to the total. The code
            computes it and never adds it; the paper has no representation term at all. Default ``False``
            (both agree that it does not train); the term is still reported in ``loss_terms``.
        hetero_repr_metric: distance of the heterogeneous representation term. Official ``"min_cosine"``:
            ``CosineEmbeddingLoss`` with target −1, which penalises similarity, i.e. pushes each student's
            cross-modal representation away from its teachers', with the per-sample edge weights collapsed
            to their mean. Default: kept, because it is what produced the published numbers, it is bounded
            (≤ 1 per edge) and it acts as a diversity regulariser on the heterogeneous features, whose purpose
            is to carry modality-specific, complementary information. ``"l1"`` is real distillation (the
            homogeneous term's distance); the paper itself has no representation term.
        margin_positives: which pairs the margin loss treats as positives. ``"equal_labels"`` (the code, the
            only option implemented): exactly equal float labels, i.e. the same sample's other modalities plus
            samples with identical scores; the slides do not define the paper's positives precisely enough
            to implement an alternative.
        text_padding: ``"before_encoder"`` (official): BERT reads the ids padded to ``text_length``, so padded
            positions carry BERT outputs into the convolution. Default ``"after_encoder"``: BERT reads only the
            batch's longest sequence and its outputs are zero-padded to ``text_length`` (faster; predictions do
            not depend on how much padding the batch has).
    """

    model_type = "dmd"

    presets = {
        # mdswyz/DMD config/config.json "dmd" + run.py + trains/singleTask/DMD.py; aligned and unaligned differ
        # only in the padded lengths, which the trainer fills from the data.
        "official": {
            "all": {
                "skip_unused_computation": False,
                "nlevels": 4,
                "attn_mask": True,
                "relu_dropout": 0.0,
                "res_dropout": 0.0,
                "output_dropout": 0.5,
                "attn_dropout_vision": 0.0,
                "homo_gd_size": 64,
                "hetero_gd_size": 32,
                "homo_prior": [0.0, 0.0, 1.0, 0.0, 1.0, 0.0],
                "hetero_prior": [0.0, 0.0, 1.0, 0.0, 1.0, 1.0],
                "prior_temperature": 0.25,
                "edge_alpha": 0.125,
                "gd_reg_weight": 10.0,
                "gd_repr_weight": 10.0,
                "fused_head_weight": 1.0,
                "common_head_weight": 1.0,
                "homo_head_weight": 1.0,
                "hetero_head_weight": 1.0,
                "homo_gd_weight": 0.05,
                "hetero_gd_weight": 0.05,
                "rec_weight": 0.1,
                "cyc_weight": 0.1,
                "margin_weight": 0.01,
                "ort_weight": 0.01,
                "margin_scale": 0.15,
                "task_loss": "l1",
                "ort_mode": "legacy_batch_axis",
                "homo_repr_in_total": False,
                "hetero_repr_metric": "min_cosine",
                "margin_positives": "equal_labels",
                "text_padding": "before_encoder",
            },
            "mosi": {
                "hidden_size": 50,
                "num_heads": 10,
                "conv_kernel_text": 5,
                "conv_kernel_audio": 5,
                "conv_kernel_vision": 5,
                "text_dropout": 0.5,
                "embed_dropout": 0.2,
                "attn_dropout": 0.3,
                "attn_dropout_audio": 0.2,
            },
            "mosei": {
                "hidden_size": 30,
                "num_heads": 6,
                "conv_kernel_text": 5,
                "conv_kernel_audio": 1,
                "conv_kernel_vision": 3,
                "text_dropout": 0.3,
                "embed_dropout": 0.0,
                "attn_dropout": 0.4,
                "attn_dropout_audio": 0.0,
            },
        },
    }

    def __init__(
        self,
        hidden_size: int = 50,
        num_heads: int = 10,
        nlevels: int = 4,
        conv_kernel_text: int = 5,
        conv_kernel_audio: int = 5,
        conv_kernel_vision: int = 5,
        text_dropout: float = 0.5,
        embed_dropout: float = 0.2,
        attn_dropout: float = 0.3,
        attn_dropout_audio: float = 0.2,
        attn_dropout_vision: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
        output_dropout: float = 0.5,
        attn_mask: bool = True,
        homo_gd_size: int = 64,
        hetero_gd_size: int = 32,
        homo_prior: list[float] | tuple[float, ...] = (0.0, 0.0, 1.0, 0.0, 1.0, 0.0),
        hetero_prior: list[float] | tuple[float, ...] = (0.0, 0.0, 1.0, 0.0, 1.0, 1.0),
        prior_temperature: float = 0.25,
        edge_alpha: float = 0.125,
        gd_reg_weight: float = 10.0,
        gd_repr_weight: float = 10.0,
        fused_head_weight: float = 1.0,
        common_head_weight: float = 1.0,
        homo_head_weight: float = 1.0,
        hetero_head_weight: float = 1.0,
        homo_gd_weight: float = 0.05,
        hetero_gd_weight: float = 0.05,
        rec_weight: float = 0.1,
        cyc_weight: float = 0.1,
        margin_weight: float = 0.01,
        ort_weight: float = 0.01,
        margin_scale: float = 0.15,
        task_loss: str = "l1",
        ort_mode: str = "per_token",
        homo_repr_in_total: bool = False,
        hetero_repr_metric: str = "min_cosine",
        margin_positives: str = "equal_labels",
        text_padding: str = "after_encoder",
        **kwargs,
    ):
        for name, value, allowed in (
            ("ort_mode", ort_mode, ORT_MODES),
            ("hetero_repr_metric", hetero_repr_metric, HETERO_REPR_METRICS),
            ("margin_positives", margin_positives, MARGIN_POSITIVES),
            ("text_padding", text_padding, TEXT_PADDINGS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if hidden_size % num_heads or (2 * hidden_size) % num_heads:
            raise ValueError(f"hidden_size {hidden_size} must be divisible by num_heads {num_heads}")
        if len(homo_prior) != 6 or len(hetero_prior) != 6:
            raise ValueError("homo_prior and hetero_prior need one weight per directed edge (6)")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.nlevels = nlevels
        self.conv_kernel_text = conv_kernel_text
        self.conv_kernel_audio = conv_kernel_audio
        self.conv_kernel_vision = conv_kernel_vision
        self.text_dropout = text_dropout
        self.embed_dropout = embed_dropout
        self.attn_dropout = attn_dropout
        self.attn_dropout_audio = attn_dropout_audio
        self.attn_dropout_vision = attn_dropout_vision
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout
        self.output_dropout = output_dropout
        self.attn_mask = attn_mask
        self.homo_gd_size = homo_gd_size
        self.hetero_gd_size = hetero_gd_size
        self.homo_prior = [float(w) for w in homo_prior]
        self.hetero_prior = [float(w) for w in hetero_prior]
        self.prior_temperature = prior_temperature
        self.edge_alpha = edge_alpha
        self.gd_reg_weight = gd_reg_weight
        self.gd_repr_weight = gd_repr_weight
        self.fused_head_weight = fused_head_weight
        self.common_head_weight = common_head_weight
        self.homo_head_weight = homo_head_weight
        self.hetero_head_weight = hetero_head_weight
        self.homo_gd_weight = homo_gd_weight
        self.hetero_gd_weight = hetero_gd_weight
        self.rec_weight = rec_weight
        self.cyc_weight = cyc_weight
        self.margin_weight = margin_weight
        self.ort_weight = ort_weight
        self.margin_scale = margin_scale
        self.task_loss = task_loss
        self.ort_mode = ort_mode
        self.homo_repr_in_total = homo_repr_in_total
        self.hetero_repr_metric = hetero_repr_metric
        self.margin_positives = margin_positives
        self.text_padding = text_padding
        super().__init__(**kwargs)

    def kernel_size(self, modality: str) -> int:
        return getattr(self, f"conv_kernel_{modality}")

    def reduced_length(self, modality: str) -> int:
        """``T'`` of a modality after its temporal convolution (no padding)."""
        steps = getattr(self, f"{modality}_length") - self.kernel_size(modality) + 1
        if steps < 1:
            raise ValueError(f"{modality}_length must be at least conv_kernel_{modality}")
        return steps
