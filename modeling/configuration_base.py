"""Configuration fields every method shares: the nested BERT ``text_config``, the non-verbal input widths,
text-encoder freezing, the task type, and named presets."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from transformers import BertConfig, PretrainedConfig


class MSAConfig(PretrainedConfig):
    """Base configuration of a disentangled MSA model.

    Args:
        text_config: the BERT text encoder's configuration (``BertConfig`` or dict; default bert-base).
        audio_dim / vision_dim: widths of the acoustic and visual feature vectors (taken from the data).
        text_length / audio_length / vision_length: padded sequence lengths, for architectures whose layers
            depend on them (filled from the data by the training script).
        freeze_text_encoder: keep the whole BERT fixed (MISA official on UR-FUNNY).
        text_frozen_layers: freeze BERT encoder layers ``0 .. n-1`` only (MISA official on MOSEI: 9).
        num_labels: 1 means regression (the sentiment score), more means classification (HF convention).
        preset: name of the preset the configuration was built from (informational).
        skip_unused_computation: skip work whose result reaches neither the output nor the loss (DMD/DLF: the
            last MulT layer at every position but the last one, which is all that is read; loss-only heads when
            no labels are given). Outputs are identical either way. ``False`` does the official code's work and
            is set by the ``official`` presets, so that benchmarks of those presets measure the official cost.

    Freezing is re-applied after ``from_pretrained`` (transformers 5 recreates every loaded parameter with
    ``requires_grad=True``), so it survives save and reload.
    """

    sub_configs: ClassVar[dict[str, type]] = {"text_config": BertConfig}
    #: preset name -> {"all": kwargs, "<dataset>": kwargs}; subclasses fill it.
    presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {}

    def __init__(
        self,
        text_config: BertConfig | dict | None = None,
        audio_dim: int = 5,
        vision_dim: int = 20,
        text_length: int = 50,
        audio_length: int = 50,
        vision_length: int = 50,
        freeze_text_encoder: bool = False,
        text_frozen_layers: int = 0,
        preset: str | None = None,
        skip_unused_computation: bool = True,
        **kwargs,
    ):
        if text_config is None:
            text_config = BertConfig()
        elif isinstance(text_config, dict):
            text_config = BertConfig(**{k: v for k, v in text_config.items() if k != "model_type"})
        self.text_config = text_config
        self.audio_dim = audio_dim
        self.vision_dim = vision_dim
        self.text_length = text_length
        self.audio_length = audio_length
        self.vision_length = vision_length
        self.freeze_text_encoder = freeze_text_encoder
        self.text_frozen_layers = text_frozen_layers
        self.preset = preset
        self.skip_unused_computation = skip_unused_computation
        if "num_labels" not in kwargs and "id2label" not in kwargs:
            kwargs["num_labels"] = 1
        super().__init__(**kwargs)

    def to_diff_dict(self) -> dict[str, Any]:
        """Always write ``num_labels``: 2 equals ``PretrainedConfig``'s default and would otherwise be left out,
        so a binary (UR-FUNNY) checkpoint would reload as a 1-output regression model."""
        out = super().to_diff_dict()
        out["num_labels"] = self.num_labels
        return out

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @classmethod
    def preset_kwargs(cls, name: str, dataset: str | None = None) -> dict[str, Any]:
        """The keyword arguments of preset ``name`` for ``dataset`` (dataset-specific values win)."""
        if name not in cls.presets:
            raise ValueError(f"{cls.__name__} has no preset {name!r}; available: {sorted(cls.presets)}")
        table = cls.presets[name]
        kwargs = copy.deepcopy(table.get("all", {}))
        if dataset is not None:
            kwargs.update(copy.deepcopy(table.get(dataset, {})))
        return kwargs

    @classmethod
    def from_preset(cls, name: str, dataset: str | None = None, **overrides) -> MSAConfig:
        """Build a configuration from a named preset (e.g. ``"official"``) for a dataset, then apply overrides."""
        kwargs = cls.preset_kwargs(name, dataset)
        kwargs.update(overrides)
        return cls(preset=name, **kwargs)
