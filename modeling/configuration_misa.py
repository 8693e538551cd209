"""MISA configuration (Hazarika et al., ACM MM 2020; declare-lab/MISA)."""

from __future__ import annotations

from .configuration_base import MSAConfig


class MISAConfig(MSAConfig):
    """Configuration of :class:`MISAModel`.

    Args:
        hidden_size: width ``d`` of the utterance, shared and private vectors (128).
        dropout: dropout of the fusion head and the discriminator (official 0.5; MMSA MOSI 0.2).
        diff_weight / sim_weight / recon_weight: loss weights (official 0.3 / 1.0 / 1.0).
        similarity: ``"cmd"`` (central moment discrepancy, the official default) or ``"adversarial"``
            (gradient-reversed shared codes classified by a modality discriminator; official option that
            crashes in the MMSA port and works here).
        cmd_moments: order ``K`` of the CMD (5).
        reverse_grad_weight: gradient reversal scale of the adversarial option (1.0).
        fusion_num_heads / fusion_ffn_dim / fusion_dropout: the one-layer token transformer over the six
            shared/private vectors (PyTorch's ``TransformerEncoderLayer`` defaults used by the official code:
            2 heads, FFN 2048, dropout 0.1, post-LN).
        lstm_orthogonal_init: orthogonal ``weight_hh`` of the acoustic/visual LSTMs (official solver does it,
            MMSA does not).
        av_lengths_from_text: MMSA quirk. ``False`` (default, fixed): each LSTM reads its modality's true
            length. ``True``: the audio/visual LSTMs read only as many frames as there are text tokens, as the
            MMSA port does even for unaligned 375/500-frame inputs (faithful to MMSA, not to the paper).
        task_loss: ``"mse"`` for regression (MISA), ``"ce"`` is used automatically when ``num_labels > 1``.
    """

    model_type = "misa"

    presets = {
        # declare-lab/MISA src/config.py + solver.py
        "official": {
            "all": {
                "hidden_size": 128,
                "dropout": 0.5,
                "diff_weight": 0.3,
                "sim_weight": 1.0,
                "recon_weight": 1.0,
                "similarity": "cmd",
                "cmd_moments": 5,
                "lstm_orthogonal_init": True,
                "av_lengths_from_text": False,
            },
            "mosei": {"text_frozen_layers": 9},
            "ur_funny": {"freeze_text_encoder": True, "num_labels": 2},
        },
        # thuiar/MMSA config_regression.json["misa"]; its A/V text-length behaviour stays off unless asked.
        "mmsa": {
            "all": {
                "hidden_size": 128,
                "similarity": "cmd",
                "cmd_moments": 5,
                "lstm_orthogonal_init": False,
                "av_lengths_from_text": False,
            },
            "mosi": {"dropout": 0.2, "diff_weight": 0.1, "sim_weight": 0.3, "recon_weight": 1.0},
            "mosei": {"dropout": 0.5, "diff_weight": 0.3, "sim_weight": 0.8, "recon_weight": 1.0},
        },
    }

    def __init__(
        self,
        hidden_size: int = 128,
        dropout: float = 0.5,
        diff_weight: float = 0.3,
        sim_weight: float = 1.0,
        recon_weight: float = 1.0,
        similarity: str = "cmd",
        cmd_moments: int = 5,
        reverse_grad_weight: float = 1.0,
        fusion_num_heads: int = 2,
        fusion_ffn_dim: int = 2048,
        fusion_dropout: float = 0.1,
        lstm_orthogonal_init: bool = True,
        av_lengths_from_text: bool = False,
        task_loss: str = "mse",
        **kwargs,
    ):
        if similarity not in ("cmd", "adversarial"):
            raise ValueError(f"similarity must be 'cmd' or 'adversarial', got {similarity!r}")
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.diff_weight = diff_weight
        self.sim_weight = sim_weight
        self.recon_weight = recon_weight
        self.similarity = similarity
        self.cmd_moments = cmd_moments
        self.reverse_grad_weight = reverse_grad_weight
        self.fusion_num_heads = fusion_num_heads
        self.fusion_ffn_dim = fusion_ffn_dim
        self.fusion_dropout = fusion_dropout
        self.lstm_orthogonal_init = lstm_orthogonal_init
        self.av_lengths_from_text = av_lengths_from_text
        self.task_loss = task_loss
        super().__init__(**kwargs)
