"""FDMER configuration (Yang, Huang, Kuang, Du, Zhang, ACM MM 2022). Paper-level: no official code exists."""

from __future__ import annotations

from .configuration_base import MSAConfig

POOLINGS = ("mean", "last")
DISCRIMINATOR_LOSSES = ("arcface", "ce")
CONSISTENCY_NORMALISATIONS = ("both", "as_printed")
FUSIONS = ("cmaf", "concat", "add", "multiply")
POSITIONAL_ENCODINGS = ("sinusoidal", "none")

#: §4.2 training settings per dataset (Adam); the ``configs/fdmer_*.yaml`` runs use them
PAPER_TRAINING = {
    "mosi": {"batch_size": 64, "epochs": 120, "lr": 1e-3},
    "mosei": {"batch_size": 16, "epochs": 100, "lr": 1e-3},
    "ur_funny": {"batch_size": 32, "epochs": 60, "lr": 2e-3},
}


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


class FDMERConfig(MSAConfig):
    """Configuration of :class:`FDMERModel`. Values the paper gives are its defaults; ⚠ marks our choices.

    Feature extraction (§3.2, Eq. 1):
        text_layers / audio_layers / vision_layers: post-LN Transformer encoder layers per modality (5 / 4 / 4).
        transformer_size / transformer_heads / transformer_ffn_size: width, heads and FFN width of those
            encoders (⚠ 128 / 4 / 512). Each input (BERT states, acoustic, visual frames) is first projected
            linearly to ``transformer_size``: the paper keeps the input width, which 74-d or 35-d features
            cannot split into heads.
        positional_encoding: ``"sinusoidal"`` (⚠, Vaswani et al., whom the paper cites) or ``"none"``.
        pooling: how the sequence becomes one vector before the fully connected layer (⚠ ``"mean"`` over
            the valid steps; ``"last"`` valid step).
        hidden_size: ``d_k``, width of ``Z_m``, the common and private codes and the fusion (256). ``Z_m`` is
            ``GeLU(Linear(pooled))`` (⚠ one layer).
        dropout: in the encoders, the fusion FFN and the prediction head (⚠ 0.1).

    Representations (§3.3, Eq. 2–3): one common encoder shared by the modalities and one private encoder per
    modality, each ``Linear(d_k, d_k) → GeLU → Linear(d_k, d_k)`` (⚠ hidden width ``d_k``, no activation after
    the second layer).

    Losses (Eq. 18: ``L = L_task + β(L_ami + L_ams) + γ(L_con + L_dis)``):
        adversarial_weight: β (MOSI 0.02, MOSEI 0.03, UR-FUNNY 0.02).
        consistency_weight / disparity_weight: γ for L_con and L_dis (MOSI 0.02, MOSEI 0.04, UR-FUNNY 0.03;
            one γ in the paper, two weights here so that Table 4's "w/o L_con" / "w/o L_dis" are a 0).
        consistency_normalise: ``"both"`` (⚠ default; cosine similarity matrices as in AM-GCN, whence the
            loss) or ``"as_printed"`` (Eq. 4: un-normalised left factor).
        discriminator_size: ``d``, output of the discriminator's linear map ``F`` (128).
        discriminator_loss: ``"arcface"`` (Eq. 9) or ``"ce"`` (Table 4's "Cross-Entropy Loss" row: softmax
            cross-entropy on ``W_Dᵀ F(h)``).
        angular_scale / angular_margin: α and τ of Eq. 9 (72 / 0.5).
        reverse_grad_weight: gradient-reversal factor on the common branch (Eq. 10: 1).

    Fusion (§3.4, Eq. 12–17) and Table 4's fusion ablations:
        fusion: ``"cmaf"``, ``"concat"`` ("w/o CMAF": the four vectors concatenated), ``"add"`` ("Addition":
            their sum) or ``"multiply"`` ("Multiplication": ⚠ their element-wise product; the cited
            multiplicative fusion of Mittal et al. is a loss-level scheme the paper does not detail).
        cmaf_phase1 / cmaf_phase2: keep the cross-modal interaction and adaptive attention phases (Table 4's
            "w/o Phase 1" passes the four vectors to phase 2 unchanged; "w/o Phase 2" ⚠ averages them with
            equal weights).
        cmaf_attention_scale: divide phase 1's scores by ``√d_k`` (⚠ default ``True``, as in the cited
            Transformer; Eq. 12 prints no scaling).
        cmaf_target_projections: phase 2 uses one ``W_ta, b_ta`` per target as Eq. 15 prints (``True``) or one
            shared by the four targets (``False``, as HAN-style attention usually does).

    task_loss: ``"mse"`` for regression (§3.5); cross-entropy is used when ``num_labels > 1``.

    Phase 1's shapes as printed do not compose; we read ``Q_so``/``U_so`` (``4d_k``) as four source tokens of
    ``d_k``, so each target attends over ``[C, P_t, P_a, P_v]`` with one head; ``W_Qso``, ``W_Uso`` and the
    feed-forward block ``f_δ`` (⚠ ``Linear–GeLU–Linear`` of width ``d_k``) are shared by the four targets,
    ``W_Gta`` and the target LayerNorms are per target. BERT: the paper does not say whether it is fine-tuned;
    the ``official`` preset freezes it (⚠: its 1e-3 / 2e-3 learning rates would wreck a fine-tuned BERT).
    """

    model_type = "fdmer"

    presets = {
        # seed 002 §4.2 (methods.md §13 fdmer_paper); batch sizes, epochs and learning rates: PAPER_TRAINING
        "official": {
            "all": {
                "hidden_size": 256,
                "discriminator_size": 128,
                "text_layers": 5,
                "audio_layers": 4,
                "vision_layers": 4,
                "discriminator_loss": "arcface",
                "angular_scale": 72.0,
                "angular_margin": 0.5,
                "reverse_grad_weight": 1.0,
                "consistency_normalise": "both",
                "fusion": "cmaf",
                "cmaf_phase1": True,
                "cmaf_phase2": True,
                "freeze_text_encoder": True,
            },
            "mosi": {"adversarial_weight": 0.02, "consistency_weight": 0.02, "disparity_weight": 0.02},
            "mosei": {"adversarial_weight": 0.03, "consistency_weight": 0.04, "disparity_weight": 0.04},
            "ur_funny": {
                "adversarial_weight": 0.02, "consistency_weight": 0.03, "disparity_weight": 0.03, "num_labels": 2
            },
        },
    }

    def __init__(
        self,
        hidden_size: int = 256,
        text_layers: int = 5,
        audio_layers: int = 4,
        vision_layers: int = 4,
        transformer_size: int = 128,
        transformer_heads: int = 4,
        transformer_ffn_size: int = 512,
        positional_encoding: str = "sinusoidal",
        pooling: str = "mean",
        dropout: float = 0.1,
        adversarial_weight: float = 0.02,
        consistency_weight: float = 0.02,
        disparity_weight: float = 0.02,
        consistency_normalise: str = "both",
        discriminator_size: int = 128,
        discriminator_loss: str = "arcface",
        angular_scale: float = 72.0,
        angular_margin: float = 0.5,
        reverse_grad_weight: float = 1.0,
        fusion: str = "cmaf",
        cmaf_phase1: bool = True,
        cmaf_phase2: bool = True,
        cmaf_attention_scale: bool = True,
        cmaf_target_projections: bool = True,
        task_loss: str = "mse",
        **kwargs,
    ):
        _check_choice("positional_encoding", positional_encoding, POSITIONAL_ENCODINGS)
        _check_choice("pooling", pooling, POOLINGS)
        _check_choice("consistency_normalise", consistency_normalise, CONSISTENCY_NORMALISATIONS)
        _check_choice("discriminator_loss", discriminator_loss, DISCRIMINATOR_LOSSES)
        _check_choice("fusion", fusion, FUSIONS)
        _check_choice("task_loss", task_loss, ("mse", "l1"))
        if transformer_size % transformer_heads:
            raise ValueError(
                f"transformer_size {transformer_size} is not divisible by transformer_heads {transformer_heads}"
            )
        if min(text_layers, audio_layers, vision_layers) < 1:
            raise ValueError("every modality needs at least one transformer layer")
        self.hidden_size = hidden_size
        self.text_layers = text_layers
        self.audio_layers = audio_layers
        self.vision_layers = vision_layers
        self.transformer_size = transformer_size
        self.transformer_heads = transformer_heads
        self.transformer_ffn_size = transformer_ffn_size
        self.positional_encoding = positional_encoding
        self.pooling = pooling
        self.dropout = dropout
        self.adversarial_weight = adversarial_weight
        self.consistency_weight = consistency_weight
        self.disparity_weight = disparity_weight
        self.consistency_normalise = consistency_normalise
        self.discriminator_size = discriminator_size
        self.discriminator_loss = discriminator_loss
        self.angular_scale = angular_scale
        self.angular_margin = angular_margin
        self.reverse_grad_weight = reverse_grad_weight
        self.fusion = fusion
        self.cmaf_phase1 = cmaf_phase1
        self.cmaf_phase2 = cmaf_phase2
        self.cmaf_attention_scale = cmaf_attention_scale
        self.cmaf_target_projections = cmaf_target_projections
        self.task_loss = task_loss
        super().__init__(**kwargs)
