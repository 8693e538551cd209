"""TSDA configuration: Temporal-Spatial Decouple before Act (Meng, Zhou, He, Du, Ouyang, Gan, "Temporal-Spatial
Decouple before Act: Disentangled Representation Learning for Multimodal Sentiment Analysis", arXiv 2601.13659,
ICASSP 2026)."""

from __future__ import annotations

from .configuration_base import MSAConfig

TEMPORAL_ENCODERS = ("conv", "gru")
SPATIAL_ENCODERS = ("attention", "statistics")
ALIGNMENT_MASKS = ("factor", "full")
GATE_FORMS = ("vector", "scalar")
GATE_INPUTS = ("reliability", "features")
HSIC_KERNELS = ("linear", "rbf")


class TSDAConfig(MSAConfig):
    """Configuration of :class:`TSDAModel` (arXiv 2601.13659).

    No code is public; the abstract and a secondary review (``methods.md`` §8) name the modules and the
    regularisers only, so every size, form and weight below is our choice, with a switch where the summaries
    leave a real design question open.

    Encoders (the paper: "a temporal encoder and a spatial encoder project signals into separate temporal
    and spatial body", before any cross-modal interaction):
        hidden_size / num_heads: width ``d`` of every token and the attention heads (64 / 4).
        temporal_encoder: the order-sensitive encoder per modality: ``"conv"`` (default: ``temporal_layers``
            residual Conv1d blocks of kernel ``temporal_kernel_size``) or ``"gru"`` (a bidirectional GRU over
            the true lengths).
        temporal_tokens: the temporal token sequence has this many tokens: the encoder output averaged over
            consecutive equal segments of each sample's true length, plus a learned segment-position
            embedding (8). This keeps the aligned and unaligned cost alike (375/500 frames become 8 tokens).
        spatial_encoder: the order-insensitive encoder ("time-invariant structural set"): ``"attention"``
            (default: ``spatial_tokens`` learned queries attend over the frames without positions, as Set
            Transformer's pooling) or ``"statistics"`` (mean and standard deviation over time through an MLP
            into ``spatial_tokens`` tokens).
        spatial_tokens: size of the spatial set (4).

    Factor-Consistent Cross-Modal Alignment (FCCA):
        alignment_mask: ``"factor"`` (default, the paper): block-diagonal masked attention over all six
            streams' tokens: temporal tokens attend to the temporal tokens of every modality, spatial to
            spatial; ``"full"`` lets every token attend to every token (the "w/o FCCA" ablation).
        alignment_layers: pre-LN attention + FFN layers (1).

    Gated Recouple:
        gate_inputs: ``"reliability"`` (default, per the review): the gate reads the factor summaries
            ``h^T``, ``h^S`` and the reliability signals: the disagreement ``|ŷ^T − ŷ^S|`` of the two factor
            heads (detached) and each factor's confidence (a learned sigmoid score); ``"features"``: only
            ``h^T`` and ``h^S``.
        gate_form: ``"vector"`` (one gate per feature, default) or ``"scalar"`` (one per sample); the recoupled
            vector is ``g ⊙ h^T + (1 − g) ⊙ h^S``.

    Losses: ``task + factor·(L^T + L^S) + purity·L_pur + cosine·L_cos + hsic·L_hsic + orth·L_orth``:
        factor_weight: task losses of the temporal-only and spatial-only heads (factor-specific supervision;
            0.3).
        purity_weight: token-level factor purity, cross-entropy of a temporal-vs-spatial discriminator on
            every aligned token (cooperative, no gradient reversal: factors should stay recognisable after
            alignment; 0.1).
        cosine_weight / hsic_weight / hsic_kernel: summary-level decorrelation between each modality's
            temporal and spatial summaries: mean squared cosine and HSIC (``"rbf"`` with the median
            heuristic, or ``"linear"``) (0.1 / 0.1).
        orth_weight: orthogonality of the two gated streams ``g ⊙ h^T`` and ``(1 − g) ⊙ h^S`` (MISA's
            batch-level soft orthogonality; 0.1).
        task_loss: ``"mse"`` or ``"l1"``; ``"ce"`` is used automatically when ``num_labels > 1``.
    Dropout: ``dropout`` in encoders and alignment (0.1), ``head_dropout`` in the prediction heads (0.3).
    """

    model_type = "tsda"

    def __init__(
        self,
        hidden_size: int = 64,
        num_heads: int = 4,
        temporal_encoder: str = "conv",
        temporal_layers: int = 2,
        temporal_kernel_size: int = 3,
        temporal_tokens: int = 8,
        spatial_encoder: str = "attention",
        spatial_tokens: int = 4,
        alignment_mask: str = "factor",
        alignment_layers: int = 1,
        gate_form: str = "vector",
        gate_inputs: str = "reliability",
        dropout: float = 0.1,
        head_dropout: float = 0.3,
        factor_weight: float = 0.3,
        purity_weight: float = 0.1,
        cosine_weight: float = 0.1,
        hsic_weight: float = 0.1,
        hsic_kernel: str = "rbf",
        orth_weight: float = 0.1,
        task_loss: str = "mse",
        **kwargs,
    ):
        for name, value, choices in (
            ("temporal_encoder", temporal_encoder, TEMPORAL_ENCODERS),
            ("spatial_encoder", spatial_encoder, SPATIAL_ENCODERS),
            ("alignment_mask", alignment_mask, ALIGNMENT_MASKS),
            ("gate_form", gate_form, GATE_FORMS),
            ("gate_inputs", gate_inputs, GATE_INPUTS),
            ("hsic_kernel", hsic_kernel, HSIC_KERNELS),
        ):
            if value not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {value!r}")
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})")
        if temporal_tokens < 1 or spatial_tokens < 1:
            raise ValueError("temporal_tokens and spatial_tokens must be at least 1")
        if temporal_kernel_size < 1 or temporal_kernel_size % 2 == 0:
            raise ValueError(f"temporal_kernel_size must be odd and positive, got {temporal_kernel_size}")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.temporal_encoder = temporal_encoder
        self.temporal_layers = temporal_layers
        self.temporal_kernel_size = temporal_kernel_size
        self.temporal_tokens = temporal_tokens
        self.spatial_encoder = spatial_encoder
        self.spatial_tokens = spatial_tokens
        self.alignment_mask = alignment_mask
        self.alignment_layers = alignment_layers
        self.gate_form = gate_form
        self.gate_inputs = gate_inputs
        self.dropout = dropout
        self.head_dropout = head_dropout
        self.factor_weight = factor_weight
        self.purity_weight = purity_weight
        self.cosine_weight = cosine_weight
        self.hsic_weight = hsic_weight
        self.hsic_kernel = hsic_kernel
        self.orth_weight = orth_weight
        self.task_loss = task_loss
        super().__init__(**kwargs)
