"""What every MSA model shares: the BERT text encoder, PyTorch-default initialisation of the non-BERT
layers (as the official code uses), freezing that survives reloading, and starting from real BERT weights."""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import BertModel, PreTrainedModel
from transformers import initialization as init

from .configuration_base import MSAConfig
from .layers import pad_or_truncate

MODALITIES = ("text", "audio", "vision")


class MSAPreTrainedModel(PreTrainedModel):
    """Base class: subclasses build ``self.text_encoder`` (a ``BertModel``) and their own layers."""

    config_class = MSAConfig
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["BertLayer"]
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's own default initialisation for the method's layers (the official code never re-initialises
        them), except modules flagged ``xavier_init`` (MulT layers: Xavier-uniform weights, zero biases, as the
        MulT code does); BERT sub-modules are initialised by BERT's ``_init_weights`` (or loaded).

        The flags sit on the parameter-holding modules themselves because transformers skips custom-code
        modules without direct parameters. A ``MultiheadAttention`` is visited after its ``out_proj``.
        """
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            if getattr(module, "xavier_init", False):
                init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    init.zeros_(module.bias)
                return
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight[0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.LSTM):
            bound = 1.0 / math.sqrt(module.hidden_size)
            for param in module.parameters():
                init.uniform_(param, -bound, bound)
        elif isinstance(module, nn.MultiheadAttention):
            module._reset_parameters()
            if getattr(module, "xavier_init", False):
                init.xavier_uniform_(module.out_proj.weight)
        elif isinstance(module, nn.LayerNorm):
            if module.weight is not None:
                init.ones_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight)

    def _apply_freezing(self) -> None:
        """Set ``requires_grad`` of the text encoder from the configuration."""
        encoder = getattr(self, "text_encoder", None)
        if encoder is None:
            return
        if self.config.freeze_text_encoder:
            encoder.requires_grad_(False)
            return
        encoder.requires_grad_(True)
        for index, layer in enumerate(encoder.encoder.layer):
            if index < self.config.text_frozen_layers:
                layer.requires_grad_(False)

    def post_init(self) -> None:
        super().post_init()
        self._apply_freezing()

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """``PreTrainedModel.from_pretrained`` followed by re-applying the configured freezing."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, info) with output_loading_info
        model._apply_freezing()
        return loaded

    @classmethod
    def from_text_pretrained(
        cls, name_or_path: str, preset: str | None = None, dataset: str | None = None, **config_kwargs
    ):
        """Build the model around real BERT weights (local folder or Hub id, e.g. ``bert-base-uncased``).

        The configuration comes from ``preset``/``dataset`` (optional) and ``config_kwargs``; its
        ``text_config`` is the loaded BERT's. The loaded weights are kept; everything else is initialised.
        """
        text_encoder = BertModel.from_pretrained(name_or_path, add_pooling_layer=False)
        kwargs = cls.config_class.preset_kwargs(preset, dataset) if preset else {}
        kwargs.update(config_kwargs)
        config = cls.config_class(text_config=text_encoder.config.to_dict(), preset=preset, **kwargs)
        return cls(config, text_encoder=text_encoder)

    def _build_text_encoder(self, text_encoder: BertModel | None) -> BertModel:
        if text_encoder is None:
            return BertModel(self.config.text_config, add_pooling_layer=False)
        return text_encoder

    def _encode_text(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor | None,
        token_type_ids: torch.LongTensor | None,
    ) -> tuple[torch.Tensor, torch.LongTensor]:
        """BERT's last hidden states ``(B, T, H)`` on the batch as given, and the attention mask used (all
        ones when none is passed)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.text_encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        return hidden, attention_mask

    def _text_sequence(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor | None,
        token_type_ids: torch.LongTensor | None,
        length: int,
        pad_before_encoder: bool,
    ) -> torch.Tensor:
        """BERT's last hidden states ``(B, length, H)`` for methods that need a fixed text length.

        ``pad_before_encoder=True`` is what the official DMD/DLF code does: ids padded with [PAD] to ``length``
        go through BERT, so padded positions carry BERT outputs. ``False`` (fast): BERT only sees the batch's
        own longest sequence and its outputs are zero-padded to ``length`` afterwards (padding carries no
        BERT output), which saves the encoder's work on padding.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        if pad_before_encoder:
            input_ids = pad_or_truncate(input_ids, length)
            attention_mask = pad_or_truncate(attention_mask, length)
            token_type_ids = pad_or_truncate(token_type_ids, length)
        else:
            width = max(int(attention_mask.sum(1).max()), 1)
            input_ids, attention_mask, token_type_ids = (
                input_ids[:, :width], attention_mask[:, :width], token_type_ids[:, :width]
            )
        hidden = self.text_encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        if not pad_before_encoder:
            hidden = pad_or_truncate(hidden * attention_mask.unsqueeze(-1).to(hidden.dtype), length)
        return hidden

    @staticmethod
    def _batch_size(**tensors) -> int:
        for tensor in tensors.values():
            if tensor is not None:
                return tensor.size(0)
        raise ValueError("every modality is missing: pass input_ids, audio or vision")
