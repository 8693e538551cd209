"""modeling.visualize: figures from a real tiny checkpoint, generic handling of optional output fields."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from transformers.utils import ModelOutput

from modeling import visualize
from modeling.training import RunConfig, train
from test_training import TINY

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A MISA checkpoint after 2 epochs on a 96/40/48 synthetic set, with its run config and log."""
    pytest.importorskip("matplotlib")
    root = tmp_path_factory.mktemp("tiny")
    raw = json.loads(json.dumps(TINY))
    raw["data"]["cache_dir"] = str(root / "cache")
    raw["training"]["output_dir"] = str(root / "run")
    raw["training"]["save_state"] = False
    summary = train(RunConfig.from_dict(raw))
    return summary["per_seed"][7]["checkpoint"]


def test_figures_from_checkpoint(tiny_checkpoint, tmp_path):
    result = visualize.main(["--checkpoint", tiny_checkpoint, "--out", str(tmp_path / "fig"), "--max-samples", "30"])
    expected = {"embedding", "confusion", "loss_curves"}
    if importlib.util.find_spec("modeling.analysis") is not None:
        expected.add("probes")
    else:
        assert result["skipped"]["probes"].startswith("modeling.analysis is not available")
    assert set(result["files"]) == expected
    for path in result["files"].values():
        assert open(path, "rb").read(8) == PNG and (tmp_path / "fig" / path.split("/")[-1]).stat().st_size > 5000
    assert result["files"]["confusion"].endswith("misa_confusion.png")
    assert result["skipped"]["weights"] == "the output exposes no fusion/expert/gate weights"
    assert result["spaces"] == ["shared", "private"] and result["task"] == "mosi"
    matrix = result["confusion"]
    assert matrix.shape == (7, 7) and matrix.sum() == result["samples"] == 48
    assert result["class_names"] == ["HN", "N", "WN", "NT", "WP", "P", "HP"]


def test_confusion_uses_acc7_rounding():
    logits = np.array([[-3.6], [-0.5], [0.5], [1.5], [2.5], [0.49]])
    labels = np.array([-3.0, -0.4, 0.6, 1.4, 3.0, 0.0])
    predicted, true, names = visualize.sentiment_classes(logits, labels, "mosi")
    # half to even: -0.5 -> 0, 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 (as numpy's Acc-7)
    assert predicted.tolist() == [0, 3, 3, 5, 5, 3] and true.tolist() == [0, 3, 4, 4, 6, 3]
    matrix = visualize.confusion(predicted, true, len(names))
    assert matrix.sum() == 6 and matrix[3, 3] == 2 and matrix[4, 3] == 1
    assert float(np.trace(matrix)) / matrix.sum() == pytest.approx(3 / 6)


@dataclass
class _Output(ModelOutput):
    """An output with the optional fields other methods add (independent of the package's own class)."""

    logits: torch.Tensor | None = None
    shared: dict | None = None
    private: dict | None = None
    fused: torch.Tensor | None = None
    extra: dict[str, Any] | None = None
    fusion_weights: torch.Tensor | None = None


def test_optional_fields_become_spaces_or_weights_or_are_ignored(tmp_path):
    pytest.importorskip("matplotlib")
    g = torch.Generator().manual_seed(0)
    b, d = 40, 8

    def modal():
        return {m: torch.randn(b, d, generator=g) for m in ("text", "audio", "vision")}

    output = _Output(
        logits=torch.randn(b, 1, generator=g),
        shared=None,  # e.g. TSDA: no shared/private split
        fused=torch.randn(b, 3 * d, generator=g),
        fusion_weights=torch.softmax(torch.randn(b, 4, generator=g), -1),  # FDMER (B, 4)
        extra={
            "temporal": modal(),
            "spatial": {m: torch.randn(b, 5, d, generator=g) for m in ("text", "audio")},  # sequences: pooled
            "importance": {m: torch.rand(b, generator=g) for m in ("text", "audio", "vision")},  # DERL (B,) each
            "private_gates": {m: torch.softmax(torch.randn(b, 3, generator=g), -1) for m in ("text", "audio")},
            "gate": torch.rand(b, 64, generator=g),  # TSDA (B, d): no per-modality reading
            "alignment_tokens": ["temporal:text"],
            "confidence": None,
        },
    )
    spaces, weights = visualize.split_output(output)
    assert list(spaces) == ["temporal", "spatial"]
    assert spaces["spatial"]["audio"].shape == (b, d)
    assert set(weights) == {"fusion_weights", "importance", "private_gates", "gate"}
    drawn = visualize.weights_figure(weights, tmp_path / "w.png", "test")
    assert drawn == ["fusion_weights", "importance", "private_gates"]
    assert (tmp_path / "w.png").read_bytes()[:8] == PNG
    spaces["wide"] = {"text": np.random.default_rng(0).normal(size=(b, 16))}  # another width: its own embedding
    visualize.embedding_figure(spaces, tmp_path / "e.png", "test", max_samples=20)
    assert (tmp_path / "e.png").read_bytes()[:8] == PNG


def test_loss_curves_skip_all_zero_terms(tmp_path):
    pytest.importorskip("matplotlib")
    records = [{"epoch": e, "train": {"task": 1.0 / e, "ort": 0.1, "homo_vision": 0.0, "loss": 2.0 / e},
                "validation": {"loss": 1.0 / e}, "improved": True} for e in (1, 2, 3)]
    drawn = visualize.loss_curves_figure(records, tmp_path / "c.png", "test")
    assert drawn == ["loss", "task", "ort"]
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG


def test_missing_matplotlib_has_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"\[analysis\]"):
        visualize.require_matplotlib()
