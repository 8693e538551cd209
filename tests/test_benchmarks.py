"""The benchmark scripts run from a clone with ``--quick`` and write the documented rows (timings not asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from conftest import REPO_ROOT
from modeling import METHODS


def run_quick(name: str, output_dir, *extra: str) -> tuple[dict, str]:
    command = [sys.executable, f"benchmarks/{name}.py", "--quick", "--output-dir", str(output_dir), *extra]
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert (output_dir / f"{name}.md").read_text().startswith("# ")
    return json.loads((output_dir / f"{name}.json").read_text()), proc.stdout


def test_throughput_quick(tmp_path):
    # one thread: two threads on a CPU shared with other jobs can make a step a hundred times slower
    payload, stdout = run_quick("throughput", tmp_path, "--threads", "1", "--bf16")
    plan = (("official", "padded-50", "fp32"), ("default", "padded-50", "fp32"),
            ("default", "mosi-lengths-grouped", "fp32"), ("default", "mosi-lengths-grouped", "bf16 autocast"))
    expected = [
        (method, *row)
        for method, (config_class, _) in METHODS.items()
        for row in plan
        if row[0] == "default" or "official" in config_class.presets
    ]
    assert [(r["method"], r["preset"], r["layout"], r["precision"]) for r in payload["rows"]] == expected
    for row in payload["rows"]:
        for key in ("train_step_s", "train_samples_per_s", "forward_only_s", "inference_samples_per_s"):
            assert math.isfinite(row[key]) and row[key] > 0, (key, row)
        assert 0 <= row["text_padding"] < 1
        if row["preset"] == "default" and "official" in METHODS[row["method"]][0].presets:
            assert row["train_ratio_own"] > 0 and row["inference_ratio_own"] > 0
    grouped = [r for r in payload["rows"] if r["layout"] == "mosi-lengths-grouped"]
    padded = [r for r in payload["rows"] if r["layout"] == "padded-50"]
    assert all(g["text_padding"] < p["text_padding"] for g in grouped for p in padded)
    assert payload["settings"]["steps"] == 2 and payload["settings"]["quick"] and payload["settings"]["bf16"]
    assert payload["environment"]["cpu_threads"] == 1 and payload["environment"]["cpu_model"]
    assert set(payload["reference"]) >= {"misa", "dmd", "dlf"}
    assert "| method | preset | layout | precision |" in stdout


def test_data_pipeline_quick(tmp_path):
    payload, stdout = run_quick("data_pipeline", tmp_path)
    steps = ["generate", "save_msa_dataset", "load_msa_dataset",
             "epoch padded-50", "epoch per-batch", "epoch length-grouped"]
    expected = [(step, data) for data in ("aligned", "unaligned") for step in steps]
    rows = payload["rows"]
    assert [(r["step"], r["data"]) for r in rows] == expected
    for row in rows:
        assert row["seconds"] > 0 and row["samples"] > 0 and math.isfinite(row["samples_per_s"])
    for data in ("aligned", "unaligned"):
        padding = {r["step"]: r for r in rows if r["data"] == data and r["step"].startswith("epoch")}
        for modality in ("text", "audio", "vision"):
            assert all(0 <= r[f"{modality}_padding"] < 1 for r in padding.values())
        text = [padding[f"epoch {layout}"]["text_padding"] for layout in ("padded-50", "per-batch", "length-grouped")]
        assert text[0] >= text[1] > text[2]
    assert "| step | data |" in stdout
