"""DERL configuration: Disentangled Expert Representation Learning (Li, Zhang, Miao, Cheng, Li, Han, Li,
"Mixture of Disentangled Experts with Missing Modalities for Robust Multimodal Sentiment Analysis",
arXiv 2602.01833). Not "DERL: dual encoder representation learning" (Xian, Yang, Zhao, 2024), a different
MSA model with the same acronym."""

from __future__ import annotations

from .configuration_base import MSAConfig

ROUTER_INPUTS = ("utterance", "token")
RECONSTRUCTION_LEVELS = ("token", "utterance", "representation")
FUSION_GATES = ("softmax", "sigmoid")
FUSION_COMBINES = ("concat", "sum")
ORTHOGONALITY = ("difference", "cosine")
RATE_SAMPLING = ("uniform", "fixed")


class DERLConfig(MSAConfig):
    """Configuration of :class:`DERLModel` (Disentangled Expert Representation Learning, arXiv 2602.01833).

    No code is public and only the abstract is known (``methods.md`` §7), so every value below is our
    choice unless it names the paper. Each choice the paper is silent on is a switch.

    Encoders:
        hidden_size: width ``d`` of every token, expert and fusion vector (128).
        encoder_kernel_size: kernel of the residual temporal Conv1d applied to every modality's projected
            tokens (3), so a missing frame or token can be filled in from its neighbours.
        dropout: dropout in the encoders and experts (0.1); head_dropout: in the prediction head (0.3).
        pool_observed_only: pool each modality over its *observed* positions only (frames that are not
            all-zero, tokens that are not ``[UNK]``), the MMSA convention for missing data, so a mean over
            the remaining frames is not diluted by the zeros (True). False pools every real position.

    Hybrid experts (the paper: "hybrid experts adaptively disentangle ... into orthogonal private and
    shared representation spaces"):
        num_private_experts: experts per modality for the private space (2).
        num_shared_experts: experts of the one bank every modality shares for the shared space (4); each
            modality has its own router over it.
        router_input: ``"utterance"`` (default: gates from the pooled vector, experts on it; cheap) or
            ``"token"`` (gates and experts per token, pooled afterwards).
        router_top_k: keep only the ``k`` largest gates before the softmax (``None``: dense soft mixture).
        missingness_aware: routers and the fusion scorer also read each modality's observed fraction,
            estimated from the input itself (True).

    Multi-level reconstruction (the paper: "multi-level reconstruction ... collaborative supervision"):
        reconstruction_levels: any of ``"token"`` (each corrupted position's encoder output decodes the
            clean input at that position: frames for audio/vision, BERT word embeddings of the clean ids for
            text), ``"utterance"`` (``[p_m; s_m]`` decodes the clean pooled input) and ``"representation"``
            (``[p_m; s_m]`` predicts the encoder's pooled vector of the clean input, computed without
            gradient). Each error is the MSE to the per-feature standardised target
            (``losses.standardized_mse``), so feature scales of modalities and datasets do not change the
            balance. Default: all three.

    Importance-aware fusion (the paper: "the disentangled features act as modality experts with distinct
    roles to generate importance-aware fusion results"):
        fusion experts are ``[p_text, p_audio, p_vision, s]`` with ``s`` the observed-fraction-weighted mean
        of the shared vectors; each gets a score from its own scorer.
        fusion_gate: ``"softmax"`` over the present experts (default) or an independent ``"sigmoid"`` each.
        fusion_combine: ``"concat"`` the weighted experts (default; the head knows which is which) or
            ``"sum"`` them.

    Losses: ``task + orth·L_orth + sim·L_sim + recon·Σ_levels L_rec + balance·L_bal``:
        orthogonality: ``"difference"`` (MISA's batch-level soft orthogonality between ``p_m`` and ``s_m``,
            default) or ``"cosine"`` (per-sample ``max(0, cos)``).
        orth_weight / sim_weight / recon_weight / balance_weight: 0.1 / 0.1 / 0.5 / 0.01. ``sim`` is the CMD
            (``cmd_moments`` 3) between the shared vectors of every pair of present modalities; ``balance``
            is ``E·Σ_e mean_b(g_e)² − 1`` per router (0 when experts are used equally).
        task_loss: ``"mse"`` (regression) or ``"l1"``; ``"ce"`` is used automatically when ``num_labels > 1``.

    Missing-modality training (the clean input is the reconstruction target, so the model corrupts its own
    input, in training mode only; evaluation never corrupts and ``train.py`` stays generic):
        augment_missing_rate: intra-modal missing rate (MMSA semantics: text tokens other than [CLS]/[SEP]
            become ``unk_token_id``, audio/vision frames are zeroed) (0.5; 0 turns the augmentation off).
        augment_rate_sampling: ``"uniform"`` draws each sample's rate per modality from
            ``U(0, augment_missing_rate)`` (default: trains for every rate up to it); ``"fixed"`` uses it as is.
        augment_drop_prob: probability that a sample loses a whole modality (zeroed; never all three) (0.15).
        augment_modalities: modalities the augmentation may corrupt (all three).
    """

    model_type = "derl"

    def __init__(
        self,
        hidden_size: int = 128,
        encoder_kernel_size: int = 3,
        dropout: float = 0.1,
        head_dropout: float = 0.3,
        pool_observed_only: bool = True,
        num_private_experts: int = 2,
        num_shared_experts: int = 4,
        router_input: str = "utterance",
        router_top_k: int | None = None,
        missingness_aware: bool = True,
        reconstruction_levels: list[str] | tuple[str, ...] = RECONSTRUCTION_LEVELS,
        fusion_gate: str = "softmax",
        fusion_combine: str = "concat",
        orthogonality: str = "difference",
        orth_weight: float = 0.1,
        sim_weight: float = 0.1,
        cmd_moments: int = 3,
        recon_weight: float = 0.5,
        balance_weight: float = 0.01,
        task_loss: str = "mse",
        augment_missing_rate: float = 0.5,
        augment_rate_sampling: str = "uniform",
        augment_drop_prob: float = 0.15,
        augment_modalities: list[str] | tuple[str, ...] = ("text", "audio", "vision"),
        unk_token_id: int = 100,
        **kwargs,
    ):
        _check_choice("router_input", router_input, ROUTER_INPUTS)
        _check_choice("fusion_gate", fusion_gate, FUSION_GATES)
        _check_choice("fusion_combine", fusion_combine, FUSION_COMBINES)
        _check_choice("orthogonality", orthogonality, ORTHOGONALITY)
        _check_choice("augment_rate_sampling", augment_rate_sampling, RATE_SAMPLING)
        unknown = set(reconstruction_levels) - set(RECONSTRUCTION_LEVELS)
        if unknown:
            raise ValueError(f"unknown reconstruction_levels {sorted(unknown)}; choose from {RECONSTRUCTION_LEVELS}")
        unknown = set(augment_modalities) - {"text", "audio", "vision"}
        if unknown:
            raise ValueError(f"unknown augment_modalities {sorted(unknown)}")
        if num_private_experts < 1 or num_shared_experts < 1:
            raise ValueError("num_private_experts and num_shared_experts must be at least 1")
        if router_top_k is not None and not 1 <= router_top_k <= min(num_private_experts, num_shared_experts):
            raise ValueError(
                f"router_top_k ({router_top_k}) must be between 1 and the smaller expert count "
                f"({min(num_private_experts, num_shared_experts)}), or None"
            )
        for name, value in (("augment_missing_rate", augment_missing_rate), ("augment_drop_prob", augment_drop_prob)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if encoder_kernel_size < 1 or encoder_kernel_size % 2 == 0:
            raise ValueError(f"encoder_kernel_size must be odd and positive, got {encoder_kernel_size}")
        self.hidden_size = hidden_size
        self.encoder_kernel_size = encoder_kernel_size
        self.dropout = dropout
        self.head_dropout = head_dropout
        self.pool_observed_only = pool_observed_only
        self.num_private_experts = num_private_experts
        self.num_shared_experts = num_shared_experts
        self.router_input = router_input
        self.router_top_k = router_top_k
        self.missingness_aware = missingness_aware
        self.reconstruction_levels = [level for level in RECONSTRUCTION_LEVELS if level in reconstruction_levels]
        self.fusion_gate = fusion_gate
        self.fusion_combine = fusion_combine
        self.orthogonality = orthogonality
        self.orth_weight = orth_weight
        self.sim_weight = sim_weight
        self.cmd_moments = cmd_moments
        self.recon_weight = recon_weight
        self.balance_weight = balance_weight
        self.task_loss = task_loss
        self.augment_missing_rate = augment_missing_rate
        self.augment_rate_sampling = augment_rate_sampling
        self.augment_drop_prob = augment_drop_prob
        self.augment_modalities = [m for m in ("text", "audio", "vision") if m in augment_modalities]
        self.unk_token_id = unk_token_id
        super().__init__(**kwargs)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
