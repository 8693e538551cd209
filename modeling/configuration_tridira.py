"""TriDiRA configuration (Zhou, Liang, Chen, Zhao, Chen, Yu, Information Fusion 2025). Loss-level spec from the
paper's slides (seed 000); no official code exists."""

from __future__ import annotations

from .configuration_base import MSAConfig

DUAL_ATTENTIONS = ("complementary", "independent")
DISCRIMINATOR_INPUTS = ("specific", "parts")
UCORR_MODES = ("signed", "abs", "squared")
UCORR_TRAININGS = ("joint", "adversarial")
HSIC_KERNELS = ("linear", "rbf")
FUSIONS = ("transformer", "concat")


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


class TriDiRAConfig(MSAConfig):
    """Configuration of :class:`TriDiRAModel`. ⚠ marks a choice of ours where the paper is silent.

    Encoders (⚠ MISA's, whose loss set TriDiRA extends): BERT masked mean and stacked bi-LSTMs over the true
    acoustic/visual lengths, each projected to ``hidden_size`` by ``Linear → ReLU → LayerNorm`` (the utterance
    vector ``x̂^m``); one shared encoder gives ``r*`` and one specific encoder per modality gives ``u^m``, each
    ``Linear + Sigmoid`` (sigmoid codes, as CMD expects bounded features).
        hidden_size: width ``d`` of every part (⚠ 128, MISA's).
        dropout: in the prediction heads and the discriminator (⚠ 0.5, MISA's).
        lstm_orthogonal_init: orthogonal ``weight_hh`` of the LSTMs (⚠ as MISA's official code).
        lstm_hidden_size: hidden size of the LSTMs (``None``: the input width, as MISA; set it for wide
            utterance-level features such as MELD's 1611-d openSMILE vectors).

    Triple split (the dual-output attention, drawn but not given as equations):
        dual_attention: ``"complementary"`` (⚠ default): one gate ``a = σ(W u + b)`` per modality,
            ``r∩u = a ⊙ u`` and ``u* = (1 − a) ⊙ u``; ``"independent"``: two gates, ``r∩u = a₁ ⊙ u``,
            ``u* = a₂ ⊙ u``.

    Fusion (only ``r*`` and ``r∩u`` are fused): ``fusion="transformer"`` (⚠ MISA's one-layer token transformer
    over the six vectors, then ``Linear(6d, 3d) → Dropout → ReLU → Linear``) or ``"concat"`` (the six vectors
    concatenated into the same head). fusion_num_heads / fusion_ffn_dim / fusion_dropout: that layer (2 / 2048 /
    0.1, MISA's).

    Losses (all weights 1 as printed: ``L = L_task + L_modality + L_ucorr + L_sim + L_inter + L_intra + L_recon``):
        modality_weight: ``L_modality``, cross-entropy of a modality discriminator
            (``Linear → ReLU → Dropout → Linear``, no gradient reversal), summed over the modalities (⚠).
        discriminator_input: ``"specific"`` (⚠ default: ``u^m`` as printed) or ``"parts"`` (each of ``r∩u`` and
            ``u*``, averaged).
        ucorr_weight: ``L_ucorr`` on a prediction ``ỹ`` from ``[u*_t, u*_a, u*_v]`` alone (⚠ ``Linear → ReLU →
            Linear``); :func:`~modeling.losses.label_agreement_loss`.
        ucorr_mode: ``"signed"`` (as printed: Pearson ``r``, minimised towards −1; classification
            ``mean y·log ỹ``), ``"abs"`` or ``"squared"`` (minimised at no agreement).
        ucorr_training: ``"joint"`` (⚠ default, as printed: the u*-head and the encoders both minimise
            ``L_ucorr``) or ``"adversarial"`` (the u*-head learns to predict the label from a detached ``u*``,
            term ``ucorr_head`` added with weight 1, while ``L_ucorr`` reaches the encoders through the head
            with frozen weights; pair it with ``"abs"``/``"squared"``).
        ucorr_eps: epsilon of the Pearson denominator and the probability floor (1e-8).
        sim_weight / cmd_moments: ``L_sim``, CMD between the ``r*`` of each modality pair, averaged (K ⚠ 5).
        inter_weight / intra_weight / hsic_kernel: ``L_inter``, HSIC between the ``r∩u`` of each modality pair
            (averaged), and ``L_intra``, HSIC between ``r*^m`` and ``u*^m`` (⚠ averaged over modalities);
            ``hsic_kernel`` ``"linear"`` (⚠ default, FDMER's) or ``"rbf"`` (median bandwidth).
        recon_weight: ``L_recon``, MSE between ``R_m([r*, r∩u, u*])`` (⚠ ``Linear(3d, d)`` per modality on the
            concatenation) and the utterance vector ``x̂^m`` (⚠ not detached, as MISA), averaged over modalities.
        task_loss: ``"mse"`` for regression; cross-entropy is used when ``num_labels > 1``.
    """

    model_type = "tridira"

    presets = {
        # seed 000 (methods.md §13 tridira_paper): the printed losses and unit weights; everything else ⚠
        "official": {
            "all": {
                "hidden_size": 128,
                "dual_attention": "complementary",
                "discriminator_input": "specific",
                "ucorr_mode": "signed",
                "ucorr_training": "joint",
                "hsic_kernel": "linear",
                "cmd_moments": 5,
                "modality_weight": 1.0,
                "ucorr_weight": 1.0,
                "sim_weight": 1.0,
                "inter_weight": 1.0,
                "intra_weight": 1.0,
                "recon_weight": 1.0,
            },
            "ur_funny": {"num_labels": 2},
            "meld": {"num_labels": 7},
        },
    }

    def __init__(
        self,
        hidden_size: int = 128,
        dropout: float = 0.5,
        lstm_orthogonal_init: bool = True,
        lstm_hidden_size: int | None = None,
        dual_attention: str = "complementary",
        fusion: str = "transformer",
        fusion_num_heads: int = 2,
        fusion_ffn_dim: int = 2048,
        fusion_dropout: float = 0.1,
        modality_weight: float = 1.0,
        discriminator_input: str = "specific",
        ucorr_weight: float = 1.0,
        ucorr_mode: str = "signed",
        ucorr_training: str = "joint",
        ucorr_eps: float = 1e-8,
        sim_weight: float = 1.0,
        cmd_moments: int = 5,
        inter_weight: float = 1.0,
        intra_weight: float = 1.0,
        hsic_kernel: str = "linear",
        recon_weight: float = 1.0,
        task_loss: str = "mse",
        **kwargs,
    ):
        _check_choice("dual_attention", dual_attention, DUAL_ATTENTIONS)
        _check_choice("fusion", fusion, FUSIONS)
        _check_choice("discriminator_input", discriminator_input, DISCRIMINATOR_INPUTS)
        _check_choice("ucorr_mode", ucorr_mode, UCORR_MODES)
        _check_choice("ucorr_training", ucorr_training, UCORR_TRAININGS)
        _check_choice("hsic_kernel", hsic_kernel, HSIC_KERNELS)
        _check_choice("task_loss", task_loss, ("mse", "l1"))
        if hidden_size % fusion_num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by fusion_num_heads {fusion_num_heads}")
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.lstm_orthogonal_init = lstm_orthogonal_init
        self.lstm_hidden_size = lstm_hidden_size
        self.dual_attention = dual_attention
        self.fusion = fusion
        self.fusion_num_heads = fusion_num_heads
        self.fusion_ffn_dim = fusion_ffn_dim
        self.fusion_dropout = fusion_dropout
        self.modality_weight = modality_weight
        self.discriminator_input = discriminator_input
        self.ucorr_weight = ucorr_weight
        self.ucorr_mode = ucorr_mode
        self.ucorr_training = ucorr_training
        self.ucorr_eps = ucorr_eps
        self.sim_weight = sim_weight
        self.cmd_moments = cmd_moments
        self.inter_weight = inter_weight
        self.intra_weight = intra_weight
        self.hsic_kernel = hsic_kernel
        self.recon_weight = recon_weight
        self.task_loss = task_loss
        super().__init__(**kwargs)
