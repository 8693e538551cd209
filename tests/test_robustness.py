"""benchmarks/robustness.py on tiny checkpoints: fixed corruptions (independent of batching, method and run),
rate 0 = clean evaluation, every output written, the train-first path."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys

import pytest
import torch
import yaml

from conftest import REPO_ROOT, tiny_text_config
from modeling import DERLConfig, DERLModel, MISAConfig, MISAModel
from modeling.data import MSACollator
from modeling.features import save_msa_dataset
from modeling.synthetic import make_synthetic

SPEC = importlib.util.spec_from_file_location("robustness", REPO_ROOT / "benchmarks" / "robustness.py")
robustness = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(robustness)

TEXT = dict(vocab_size=30522, hidden_size=16, intermediate_size=32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny synthetic dataset folder and two tiny untrained checkpoints (MISA and DERL)."""
    root = tmp_path_factory.mktemp("robustness")
    dataset, metadata = make_synthetic(seed=0, sizes=(8, 8, 40))
    save_msa_dataset(dataset, str(root / "data"), metadata)
    torch.manual_seed(0)
    shapes = dict(text_config=tiny_text_config(**TEXT), audio_dim=5, vision_dim=20)
    MISAModel(MISAConfig(hidden_size=8, fusion_ffn_dim=16, **shapes)).save_pretrained(root / "misa")
    DERLModel(DERLConfig(hidden_size=8, num_shared_experts=2, **shapes)).save_pretrained(root / "derl")
    return root


def run(setup, out, *extra):
    argv = ["--checkpoints", str(setup / "misa"), str(setup / "derl"), "--dataset", str(setup / "data"),
            "--rates", "0", "0.5", "--noise-levels", "0", "1", "--batch-size", "16", "--output-dir", str(out), *extra]
    return robustness.main(argv)


def test_outputs_rate_zero_equals_clean_and_runs_repeat(setup, tmp_path):
    plots = importlib.util.find_spec("matplotlib") is not None  # optional: the `analysis` extra
    payload = run(setup, tmp_path / "a", *([] if plots else ["--no-plots"]))
    rows = payload["rows"]
    n_conditions = 1 + 4 * 2 + 2 * 7 + 3 * 2  # clean, intra, inter (7 subsets incl. all present), noise
    assert len(rows) == 2 * n_conditions and set(payload["checkpoints"]) == {"misa", "derl"}
    names = ["robustness.json", "robustness.csv", "robustness.md"]
    if plots:
        names += ["robustness_intra_acc2_non0.png", "robustness_intra_mae.png", "robustness_noise_acc2_non0.png"]
    for name in names:
        assert (tmp_path / "a" / name).stat().st_size > 0, name
    with open(tmp_path / "a" / "robustness.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)
    report = (tmp_path / "a" / "robustness.md").read_text()
    assert report.startswith("# Robustness") and "| derl |" in report and "| text+audio |" in report

    def pick(method, setting, target, level):
        return next(r for r in rows if (r["method"], r["setting"], r["target"], r["level"]) ==
                    (method, setting, target, level))

    for method in ("misa", "derl"):
        clean = pick(method, "clean", "none", 0.0)
        zero_rate = [pick(method, "intra", t, 0.0) for t in robustness.INTRA_TARGETS]
        zero_noise = [pick(method, "noise", t, 0.0) for t in robustness.NOISE_TARGETS]
        for row in zero_rate + zero_noise:
            assert row["fingerprint"] == clean["fingerprint"]
            assert all(row[k] == clean[k] for k in ("acc2_non0", "mae", "corr")), row
        assert pick(method, "inter_absent", "text+audio+vision", 1.0)["mae"] == clean["mae"]
        assert pick(method, "intra", "all", 0.5)["fingerprint"] != clean["fingerprint"]
        area = payload["auc"][method]["all"]
        half = pick(method, "intra", "all", 0.5)["acc2_non0"]
        assert area["area"] == pytest.approx((clean["acc2_non0"] + half) / 2 * 0.5)
        assert area["normalised"] == pytest.approx(area["area"] / 0.5)
    # every method read the same corrupted inputs, and a second run reproduces them and the metrics
    by_condition = {}
    for r in rows:
        by_condition.setdefault((r["setting"], r["target"], r["level"]), set()).add(r["fingerprint"])
    assert all(len(f) == 1 for f in by_condition.values())
    def keyed(result):
        return {(r["method"], r["setting"], r["target"], r["level"]): (r["fingerprint"], r["mae"]) for r in result}

    again = keyed(run(setup, tmp_path / "b", "--no-plots", "--inter-modes", "zeroed", "--rates", "0.5",
                      "--noise-levels", "1")["rows"])
    assert again == {k: v for k, v in keyed(rows).items() if k in again} and len(again) == 2 * 15
    assert not list((tmp_path / "b").glob("*.png"))
    other = keyed(run(setup, tmp_path / "c", "--no-plots", "--seed", "7", "--inter-modes", "absent",
                      "--noise-levels", "0")["rows"])
    assert other[("misa", "intra", "all", 0.5)][0] != keyed(rows)[("misa", "intra", "all", 0.5)][0]
    assert other[("misa", "intra", "all", 0.0)] == keyed(rows)[("misa", "intra", "all", 0.0)]
    assert json.loads((tmp_path / "a" / "robustness.json").read_text())["settings"]["rates"] == [0.0, 0.5]


def test_corruption_is_independent_of_batching(setup):
    data = robustness.DataArgs(path=str(setup / "data"))
    split = robustness.load_data(data)[0]["test"]
    split = split.add_column("index", list(range(len(split)))).with_format("numpy")
    collate = MSACollator()
    full = collate(split.__getitems__(list(range(40))))
    stds = robustness.feature_stds([full])
    order = [31, 4, 17]
    part = collate(split.__getitems__(order))
    for cond in ({"setting": "intra", "target": "all", "level": 0.6},
                 {"setting": "inter_zeroed", "target": "text", "level": 1.0},
                 {"setting": "noise", "target": "audio+vision", "level": 1.0}):
        a = robustness.corrupt(full, cond, 1111, stds)
        b = robustness.corrupt(part, cond, 1111, stds)
        for row, i in enumerate(order):
            n = int(part["attention_mask"][row].sum())
            assert torch.equal(a["input_ids"][i, :n], b["input_ids"][row, :n])
            for m in ("audio", "vision"):
                t = int(part[f"{m}_lengths"][row])
                assert torch.equal(a[m][i, :t], b[m][row, :t]), (cond, m)
    noisy = robustness.corrupt(full, {"setting": "noise", "target": "audio", "level": 1.0}, 1111, stds)
    real = torch.arange(full["audio"].size(1))[None] < full["audio_lengths"][:, None]
    assert torch.equal(noisy["audio"][~real], full["audio"][~real]) and torch.equal(noisy["vision"], full["vision"])
    ratio = (noisy["audio"] - full["audio"])[real].std(0) / stds["audio"]
    assert ((ratio > 0.8) & (ratio < 1.2)).all()
    absent = robustness.corrupt(full, {"setting": "inter_absent", "target": "text+vision", "level": 1.0}, 1, stds)
    assert "audio" not in absent and "audio_lengths" not in absent and "input_ids" in absent


def test_train_first_then_compare(setup, tmp_path):
    config = {
        "method": "misa",
        "model": {"hidden_size": 8, "fusion_ffn_dim": 16,
                  "text_config": {**TEXT, "num_hidden_layers": 1, "num_attention_heads": 2}},
        "data": {"path": "synthetic", "synthetic": {"seed": 0, "sizes": [16, 8, 24]},
                 "cache_dir": str(tmp_path / "cache")},
        "training": {"epochs": 1, "batch_size": 8, "tensorboard": False, "save_state": False},
    }
    path = tmp_path / "misa_tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    payload = robustness.main(["--train-configs", str(path), "--train-seed", "5", "--train-output-dir",
                               str(tmp_path / "runs"), "--rates", "0", "0.9", "--noise-levels", "0",
                               "--inter-modes", "absent", "--no-plots", "--output-dir", str(tmp_path / "out")])
    assert payload["checkpoints"]["misa"].endswith("misa_tiny/seed_5/best")
    assert payload["samples"] == 24 and payload["settings"]["train_seed"] == 5
    # a train.py checkpoint alone finds its data through run_config.yaml
    again = robustness.main(["--checkpoints", payload["checkpoints"]["misa"], "--rates", "0", "--noise-levels", "0",
                             "--inter-modes", "absent", "--no-plots", "--output-dir", str(tmp_path / "again")])
    assert again["rows"][0]["mae"] == payload["rows"][0]["mae"]
    with pytest.raises(SystemExit, match="not a checkpoint"):
        robustness.main(["--checkpoints", str(tmp_path), "--dataset", str(setup / "data"), "--no-plots",
                         "--output-dir", str(tmp_path / "bad")])


def test_plots_without_matplotlib_fail_early_with_the_install_hint(setup, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(SystemExit, match=r"pip install -e '\.\[analysis\]'"):
        run(setup, tmp_path)
    assert not tmp_path.joinpath("robustness.json").exists()
