"""benchmarks/leaderboard.py on tiny runs: one row per method, finite mean ± std, counts, timings, failures."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import shutil

import pytest

from conftest import REPO_ROOT


@pytest.fixture(scope="module")
def leaderboard():
    spec = importlib.util.spec_from_file_location("leaderboard", REPO_ROOT / "benchmarks" / "leaderboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_overrides(tmp_path) -> list[str]:
    return [f"data.cache_dir={tmp_path / 'cache'}", "data.max_train_samples=64", "data.max_eval_samples=32",
            "training.epochs=1", "training.eval_batch_size=16"]


def test_tiny_leaderboard_rows_numbers_and_files(leaderboard, tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    for method in ("misa", "dlf"):  # dmd deliberately has no config here
        shutil.copy(REPO_ROOT / "configs" / f"{method}_synthetic.yaml", configs / f"{method}.yaml")
    out = tmp_path / "results"
    payload = leaderboard.main([
        "--methods", "misa", "dlf", "dmd", "--seeds", "2", "--config-pattern", str(configs / "{method}.yaml"),
        "--override", *tiny_overrides(tmp_path), "--runs-dir", str(tmp_path / "runs"), "--output-dir", str(out),
    ])
    rows = {row["method"]: row for row in payload["rows"]}
    assert list(rows) == ["misa", "dlf", "dmd"]
    assert rows["dmd"]["status"].startswith("no config")
    for method in ("misa", "dlf"):
        row = rows[method]
        assert row["status"] == "ok" and row["seeds"] == [1111, 1112]
        assert set(row["metrics"]) == {"acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc5", "acc7", "mae", "corr"}
        for stat in row["metrics"].values():
            assert len(stat["values"]) == 2 and all(math.isfinite(v) for v in stat["values"])
            assert stat["std"] >= 0
        assert 0 < row["trainable_parameters"] <= row["parameters"]
        assert row["train_time_s"]["mean"] > 0 and row["train_samples_per_s"] > 0
        assert row["inference_samples_per_s"] > 0 and row["epochs_run"] == 1
        result = json.loads((tmp_path / "runs" / method / "seed_1112" / "result.json").read_text())
        assert result["test_samples"] == 32
    with open(out / "leaderboard.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [r["method"] for r in table] == ["misa", "dlf", "dmd"]
    assert float(table[0]["mae_mean"]) == pytest.approx(rows["misa"]["metrics"]["mae"]["mean"])
    assert table[2]["mae_mean"] == "" and table[2]["status"].startswith("no config")
    markdown = (out / "leaderboard.md").read_text()
    assert markdown.startswith("# Leaderboard: synthetic")
    assert sum(line.startswith(("| misa |", "| dlf |", "| dmd |")) for line in markdown.splitlines()) == 3
    assert json.loads((out / "leaderboard.json").read_text())["settings"]["seeds"] == [1111, 1112]


def test_failed_method_gets_a_row_and_exit_status_1(leaderboard, tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "misa.yaml").write_text("method: misa\ntraining: {epoch: 3}\n")  # a typo: 'epoch'
    with pytest.raises(SystemExit) as exit_info:
        leaderboard.main(["--methods", "misa", "--seeds", "1", "--config-pattern", str(configs / "{method}.yaml"),
                          "--runs-dir", str(tmp_path / "runs"), "--output-dir", str(tmp_path / "results")])
    assert exit_info.value.code == 1
    saved = json.loads((tmp_path / "results" / "leaderboard.json").read_text())
    assert saved["rows"][0]["status"].startswith("failed: ValueError: unknown keys in 'training'")
