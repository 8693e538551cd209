"""DLF configuration (Wang, Zhou, Wu, Chen, Hu, AAAI 2025; pwang322/DLF)."""

from __future__ import annotations

from .configuration_base import MSAConfig

TEXT_PADDING = ("before_encoder", "after_encoder")


class DLFConfig(MSAConfig):
    """Configuration of :class:`DLFModel`.

    Architecture (``config/config.json`` "DLF"; the same for MOSI and MOSEI unless noted):
        hidden_size / num_heads: width ``d`` of every stream and the attention heads (50 / 10).
        num_layers: layers of the specific and shared encoders, the shared self-attention, the cross-modal
            A→L and V→L transformers and the L→L memory (official ``nlevels`` 2).
        lfa_memory_layers: layers of the A and V memories after their cross-modal transformer (3; the
            official code asks for ``max(nlevels, 3)``, which is 3 at ``nlevels`` 2).
        text_kernel_size / audio_kernel_size / vision_kernel_size: temporal Conv1d projection kernels
            (MOSI 5/5/5, MOSEI 3/3/3). Together with the padded lengths they size the flattened ``align``
            layers: ``T' = length − kernel + 1``.
        attn_mask: causal mask in every transformer (official ``True``).

    Dropouts (MOSI / MOSEI official values):
        text_dropout: on the BERT sequence before the projection (0.5 / 0.1).
        embed_dropout: on the scaled, position-embedded transformer inputs (0.2 / 0.0).
        attn_dropout: attention weights of the language-typed transformers: the text-specific and shared
            encoders, the text self-attention of the shared path and the three LFA memories (0.3 / 0.5).
        attn_dropout_audio / attn_dropout_vision: the audio/vision-specific encoders, their shared-path
            self-attention and the A→L / V→L cross-modal transformers (0.2 / 0.0 and 0.0 / 0.0).
        relu_dropout / res_dropout: inside the transformer FFN and on residual branches (0.0).
        output_dropout: inside every residual prediction head (0.5).

    Losses (``trains/singleTask/DLF.py``): ``L = Σ β·L1(head) + specific·L_s + recon·L_r + margin·L_m +
    ort·L_o``, where the official ``0.1·(L_s + L_r + 0.1·(L_m + L_o))`` gives the weights below.
        final_head_weight / shared_head_weight / text_head_weight / audio_head_weight / vision_head_weight:
            β of the final prediction and of the pre-fusion heads (1 / 1 / 3 / 1 / 1; the paper gives no
            values). ``task_loss`` is their criterion (``"l1"``; ``"ce"`` is used when ``num_labels > 1``).
        recon_weight: L_r, MSE of the Conv1d reconstruction of each projected input (0.1).
        specific_weight: L_s, MSE between the specific features and the specific encoder re-applied to the
            reconstruction (the "cycle"; 0.1).
        margin_weight / margin_scale: L_m, the code's label-margin hinge on the flattened shared features
            (0.01; margin ``margin_scale·|y_i − y_n|``, 0.15). The paper's Eq. 7 calls ``d`` a cosine
            *similarity* yet writes ``d(S,P) − d(S,N) + μ``, which would push positives apart, and draws
            positives across modalities and negatives within one (pwang322/DLF#3); we implement the code:
            all 3B vectors pooled, positives by exact label equality, ``max(0, m − cos(i,p) + cos(i,n))``.
        ort_weight: L_o, mean positive cosine between specific and shared features (0.01).
        ort_chunk: vector size of L_o. ``None`` (default, and official MOSI where it equals d=50): one
            d-vector per time step and sample. Official MOSEI reshapes to 10-d chunks, so each 50-d step
            counts as 5 separate vectors; that is a side effect of a hard-coded ``num``, not a design, and
            only the ``official`` MOSEI preset keeps it.

    Text:
        text_padding: ``"before_encoder"`` (official) pads the ids to ``text_length`` with [PAD] before BERT,
            so padding positions carry BERT outputs. ``"after_encoder"`` (default) runs BERT on the batch's
            own longest sequence and zero-pads its output to ``text_length``: much less BERT work on short
            utterances, and predictions do not depend on how far a batch was padded.
    """

    model_type = "dlf"

    presets = {
        # pwang322/DLF config/config.json "DLF" + trains/singleTask/DLF.py (methods.md §13 dlf_official)
        "official": {
            "all": {
                "skip_unused_computation": False,
                "hidden_size": 50,
                "num_heads": 10,
                "num_layers": 2,
                "lfa_memory_layers": 3,
                "attn_mask": True,
                "relu_dropout": 0.0,
                "res_dropout": 0.0,
                "output_dropout": 0.5,
                "text_padding": "before_encoder",
                "task_loss": "l1",
            },
            "mosi": {
                "text_kernel_size": 5,
                "audio_kernel_size": 5,
                "vision_kernel_size": 5,
                "text_dropout": 0.5,
                "embed_dropout": 0.2,
                "attn_dropout": 0.3,
                "attn_dropout_audio": 0.2,
                "attn_dropout_vision": 0.0,
                "ort_chunk": None,
            },
            "mosei": {
                "text_kernel_size": 3,
                "audio_kernel_size": 3,
                "vision_kernel_size": 3,
                "text_dropout": 0.1,
                "embed_dropout": 0.0,
                "attn_dropout": 0.5,
                "attn_dropout_audio": 0.0,
                "attn_dropout_vision": 0.0,
                "ort_chunk": 10,
            },
        },
    }

    def __init__(
        self,
        hidden_size: int = 50,
        num_heads: int = 10,
        num_layers: int = 2,
        lfa_memory_layers: int = 3,
        text_kernel_size: int = 5,
        audio_kernel_size: int = 5,
        vision_kernel_size: int = 5,
        attn_mask: bool = True,
        text_dropout: float = 0.5,
        embed_dropout: float = 0.2,
        attn_dropout: float = 0.3,
        attn_dropout_audio: float = 0.2,
        attn_dropout_vision: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
        output_dropout: float = 0.5,
        final_head_weight: float = 1.0,
        shared_head_weight: float = 1.0,
        text_head_weight: float = 3.0,
        audio_head_weight: float = 1.0,
        vision_head_weight: float = 1.0,
        recon_weight: float = 0.1,
        specific_weight: float = 0.1,
        margin_weight: float = 0.01,
        margin_scale: float = 0.15,
        ort_weight: float = 0.01,
        ort_chunk: int | None = None,
        text_padding: str = "after_encoder",
        task_loss: str = "l1",
        **kwargs,
    ):
        if text_padding not in TEXT_PADDING:
            raise ValueError(f"text_padding must be one of {TEXT_PADDING}, got {text_padding!r}")
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})")
        if ort_chunk is not None and hidden_size % ort_chunk:
            raise ValueError(f"ort_chunk ({ort_chunk}) must divide hidden_size ({hidden_size})")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.lfa_memory_layers = lfa_memory_layers
        self.text_kernel_size = text_kernel_size
        self.audio_kernel_size = audio_kernel_size
        self.vision_kernel_size = vision_kernel_size
        self.attn_mask = attn_mask
        self.text_dropout = text_dropout
        self.embed_dropout = embed_dropout
        self.attn_dropout = attn_dropout
        self.attn_dropout_audio = attn_dropout_audio
        self.attn_dropout_vision = attn_dropout_vision
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout
        self.output_dropout = output_dropout
        self.final_head_weight = final_head_weight
        self.shared_head_weight = shared_head_weight
        self.text_head_weight = text_head_weight
        self.audio_head_weight = audio_head_weight
        self.vision_head_weight = vision_head_weight
        self.recon_weight = recon_weight
        self.specific_weight = specific_weight
        self.margin_weight = margin_weight
        self.margin_scale = margin_scale
        self.ort_weight = ort_weight
        self.ort_chunk = ort_chunk
        self.text_padding = text_padding
        self.task_loss = task_loss
        super().__init__(**kwargs)

    def reduced_length(self, modality: str) -> int:
        """``T'``: steps left after the modality's temporal convolution (``length − kernel + 1``)."""
        return getattr(self, f"{modality}_length") - getattr(self, f"{modality}_kernel_size") + 1
