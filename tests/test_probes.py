"""The probe tool: ridge R² and modality accuracies on constructed data, then end to end on tiny models (any
method's output), the JSON/Markdown report and the command line."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT, tiny_text_config
from modeling import FDMERConfig, FDMERModel, MISAConfig, MISAModel, TriDiRAConfig, TriDiRAModel
from modeling.analysis import (
    collect_parts, discriminator_accuracy, modality_probe_accuracy, probe_markdown, ridge_probe_r2, run_probes,
    write_probe_report,
)
from modeling.synthetic import make_synthetic


def test_ridge_probe_r2_recovers_linear_information_only():
    rng = np.random.default_rng(0)
    factors = rng.standard_normal((600, 3))
    mixing = rng.standard_normal((2, 8))
    part = factors[:, :2] @ mixing + 0.05 * rng.standard_normal((600, 8))  # encodes factors 0 and 1, not 2
    r2 = ridge_probe_r2(part[:400], part[400:], factors[:400], factors[400:])
    assert r2.shape == (3,)
    assert r2[0] > 0.98 and r2[1] > 0.98 and abs(r2[2]) < 0.05
    noise = rng.standard_normal((600, 8))
    assert np.abs(ridge_probe_r2(noise[:400], noise[400:], factors[:400], factors[400:])).max() < 0.05


def test_modality_probe_tells_specific_from_invariant_groups():
    rng = np.random.default_rng(1)

    def parts(n):
        shared = {f"shared/{m}": rng.standard_normal((n, 4)) for m in ("text", "audio", "vision")}
        private = {f"private/{m}": rng.standard_normal((n, 4)) + 3 * np.eye(4)[i] for i, m in enumerate(("text", "audio", "vision"))}
        wide = {"utterance/text": rng.standard_normal((n, 5)), "utterance/audio": rng.standard_normal((n, 4))}
        return {**shared, **private, **wide}

    accuracy = modality_probe_accuracy(parts(300), parts(300))
    assert set(accuracy) == {"shared", "private"}  # groups of unequal widths are skipped
    assert abs(accuracy["shared"] - 1 / 3) < 0.07 and accuracy["private"] > 0.95


@pytest.fixture(scope="module")
def tiny_set():
    return make_synthetic(seed=0, sizes=(96, 8, 64))[0]


def _tiny(model_class, config_class, **kwargs):
    torch.manual_seed(0)
    config = config_class(text_config=tiny_text_config(vocab_size=30522), audio_dim=5, vision_dim=20, **kwargs)
    return model_class(config)


def test_collect_parts_covers_every_output_part(tiny_set):
    model = _tiny(TriDiRAModel, TriDiRAConfig, hidden_size=8, fusion_ffn_dim=16)
    parts, summaries = collect_parts(model, tiny_set["test"], batch_size=16)
    for group in ("shared", "private", "utterance", "ineffective_specific", "specific"):
        for m in ("text", "audio", "vision"):
            assert parts[f"{group}/{m}"].shape == (64, 8)
        assert parts[f"{group}/all"].shape == (64, 24)
    assert parts["fused"].shape == (64, 48) and parts["ineffective_logits"].shape == (64, 1)
    assert summaries["ineffective_logits"] == pytest.approx(parts["ineffective_logits"].mean(0))
    assert model.training  # the mode is restored
    model.eval()
    row = tiny_set["test"].with_format("numpy")[3]  # one utterance alone, audio only
    with torch.no_grad():
        expected = model(audio=torch.as_tensor(row["audio"])[None]).shared["audio"]
    np.testing.assert_allclose(parts["shared/audio"][3], expected[0].numpy(), atol=1e-5)


def test_run_probes_fdmer_report_and_discriminator(tiny_set, tmp_path):
    model = _tiny(FDMERModel, FDMERConfig, hidden_size=8, discriminator_size=4, transformer_size=8, transformer_heads=2,
                  transformer_ffn_size=16, text_layers=1, audio_layers=1, vision_layers=1)
    results = run_probes(model, tiny_set, batch_size=32)
    assert results["targets"][-1] == "label" and results["targets"][0] == "factor_shared"
    assert results["label_metric"] == "r2" and results["n_train"] == 96 and results["n_test"] == 64
    assert set(results["r2"]["shared/text"]) == set(results["targets"])
    assert set(results["discriminator"]) >= {"shared", "private", "utterance"}
    assert all(0 <= v <= 1 for v in results["discriminator"].values())
    weights = results["summaries"]["fusion_weights"]
    assert len(weights) == 4 and sum(weights) == pytest.approx(1.0, abs=1e-5)
    json_path, md_path = write_probe_report(results, str(tmp_path), "fdmer")
    assert json.loads(open(json_path).read())["r2"] == results["r2"]
    markdown = open(md_path).read()
    assert "| part | shared | p_text | p_audio | p_vision | n_text | n_audio | n_vision | label |" in markdown
    assert "| shared/text |" in markdown and "| private | " in markdown
    assert "Mean `fusion_weights` on test" in markdown


def test_discriminator_accuracy_matches_the_model_and_is_absent_without_one(tiny_set):
    fdmer = _tiny(FDMERModel, FDMERConfig, hidden_size=8, discriminator_size=4, transformer_size=8,
                  transformer_heads=2, transformer_ffn_size=16, text_layers=1, audio_layers=1, vision_layers=1)
    parts, _ = collect_parts(fdmer, tiny_set["test"])
    accuracy = discriminator_accuracy(fdmer, parts)
    vectors = np.concatenate([parts[f"private/{m}"] for m in ("text", "audio", "vision")])
    with torch.no_grad():
        predicted = fdmer.modality_logits(torch.as_tensor(vectors)).argmax(-1).numpy()
    assert accuracy["private"] == pytest.approx(float((predicted == np.repeat(np.arange(3), 64)).mean()))
    misa = _tiny(MISAModel, MISAConfig, hidden_size=8, fusion_ffn_dim=16)
    assert discriminator_accuracy(misa, collect_parts(misa, tiny_set["test"])[0]) is None


def test_classification_label_is_probed_by_accuracy():
    dataset, _ = make_synthetic(seed=1, sizes=(96, 8, 64), task="emotion7")
    model = _tiny(TriDiRAModel, TriDiRAConfig, hidden_size=8, fusion_ffn_dim=16, num_labels=7)
    results = run_probes(model, dataset, batch_size=64)
    assert results["label_metric"] == "accuracy" and 0 < results["label_chance"] < 1
    assert all(0 <= scores["label"] <= 1 for scores in results["r2"].values())
    assert "`label` column: accuracy" in probe_markdown(results)


def test_command_line_on_a_saved_checkpoint(tmp_path):
    model = _tiny(TriDiRAModel, TriDiRAConfig, hidden_size=8, fusion_ffn_dim=16)
    model.save_pretrained(tmp_path / "ckpt")
    spec = importlib.util.spec_from_file_location("probes_cli", REPO_ROOT / "benchmarks" / "probes.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    results = cli.main(["--checkpoint", str(tmp_path / "ckpt"), "--synthetic", '{"sizes": [64, 8, 48]}',
                        "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(tmp_path / "out")])
    assert results["method"] == "tridira" and results["n_test"] == 48
    assert (tmp_path / "out" / "tridira.json").exists() and (tmp_path / "out" / "tridira.md").exists()
    with pytest.raises(SystemExit):
        cli.main(["--checkpoint", str(tmp_path / "missing")])
