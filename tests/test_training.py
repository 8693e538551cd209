"""The Accelerate trainer end to end on a small synthetic set: results, checkpoints, model card, resume,
accumulation semantics, early stopping, and a 2-process CPU (gloo) run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
import yaml
from huggingface_hub import ModelCard

from conftest import REPO_ROOT
from modeling.training import RunConfig, environment, is_better, load_config, train

TINY = {
    "method": "misa",
    "model": {
        "hidden_size": 16,
        "dropout": 0.1,
        "fusion_ffn_dim": 32,
        "text_config": {"vocab_size": 30522, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                        "intermediate_size": 32, "max_position_embeddings": 64},
    },
    "data": {"path": "synthetic", "synthetic": {"seed": 0, "sizes": [96, 40, 48]}},
    "training": {"seeds": [7], "epochs": 2, "batch_size": 16, "eval_batch_size": 32, "lr": 1e-3,
                 "tensorboard": False, "log_every": 2},
}


def tiny_run(tmp_path, **training) -> RunConfig:
    raw = json.loads(json.dumps(TINY))
    raw["data"]["cache_dir"] = str(tmp_path / "cache")
    raw["training"]["output_dir"] = str(tmp_path / "out")
    raw["training"].update(training)
    return RunConfig.from_dict(raw)


def test_load_config_overrides_and_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(TINY))
    run = load_config(str(path), ["training.seeds=[1, 2]", "model.hidden_size=8", "data.path=somewhere"])
    assert run.training.seeds == [1, 2] and run.model["hidden_size"] == 8 and run.data.path == "somewhere"
    with pytest.raises(ValueError, match="unknown keys in 'training'"):
        load_config(str(path), ["training.epoch=3"])
    with pytest.raises(ValueError, match="unknown top-level"):
        load_config(str(path), ["trainer.epochs=3"])


def test_is_better_directions_ties_and_delta():
    assert is_better(0.5, None, "loss", 0.0, False)
    assert is_better(0.4, 0.5, "loss", 0.0, False) and not is_better(0.6, 0.5, "loss", 0.0, False)
    assert is_better(0.9, 0.8, "acc2_non0", 0.0, False) and not is_better(0.7, 0.8, "acc2_non0", 0.0, False)
    assert not is_better(0.5, 0.5, "loss", 0.0, False) and is_better(0.5, 0.5, "loss", 0.0, True)
    assert not is_better(0.5 - 1e-7, 0.5, "loss", 1e-6, False)
    assert not is_better(math.nan, 0.5, "loss", 0.0, False)


def test_train_end_to_end_writes_results_checkpoint_and_card(tmp_path):
    summary = train(tiny_run(tmp_path, seeds=[7, 8]))
    out = tmp_path / "out"
    results = json.loads((out / "results.json").read_text())
    assert set(results["stats"]) >= {"acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc5", "acc7", "mae", "corr"}
    assert len(results["stats"]["mae"]["values"]) == 2
    assert "± " in (out / "results.md").read_text()
    for seed in (7, 8):
        result = summary["per_seed"][seed]
        assert result["test_samples"] == 48
        lines = (out / f"seed_{seed}" / "log.jsonl").read_text().splitlines()
        assert len(lines) == 2 and set(json.loads(lines[0])["train"]) >= {"task", "diff", "sim", "recon"}
        best = out / f"seed_{seed}" / "best"
        from transformers import AutoModel

        model = AutoModel.from_pretrained(best)
        assert type(model).__name__ == "MISAModel"
        card = ModelCard.load(best / "README.md")
        parsed = {r.metric_type: r.metric_value for r in card.data.eval_results}
        assert parsed["mae"] == pytest.approx(result["test"]["mae"])
    # the selected checkpoint reproduces the reported test metrics
    from modeling.training import evaluate, load_data
    from accelerate import Accelerator
    from modeling.data import MSACollator, build_dataloaders

    run = tiny_run(tmp_path)
    dataset, _ = load_data(run.data)
    loader = build_dataloaders(dataset, batch_size=16, collator=MSACollator(max_text_length=50))["test"]
    metrics, _, _ = evaluate(model.eval(), loader, Accelerator(), "mosi", "mse")
    assert metrics["mae"] == pytest.approx(summary["per_seed"][8]["test"]["mae"], rel=1e-5)


def test_resume_gives_identical_weights(tmp_path):
    full = train(tiny_run(tmp_path / "a", epochs=2, early_stopping_patience=None))
    train(tiny_run(tmp_path / "b", epochs=1, early_stopping_patience=None))
    resumed = train(tiny_run(tmp_path / "b", epochs=2, early_stopping_patience=None, resume_from_checkpoint="auto"))
    assert resumed["per_seed"][7]["optimizer_steps"] == full["per_seed"][7]["optimizer_steps"]
    from safetensors.torch import load_file

    a = load_file(tmp_path / "a" / "out" / "seed_7" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "b" / "out" / "seed_7" / "checkpoint" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("drop_remainder, expected_steps", [(True, 2), (False, 4)])
def test_accumulation_drops_the_remainder_only_when_asked(tmp_path, drop_remainder, expected_steps):
    # 96 train samples / batch 16 = 6 micro-batches per epoch; accumulating 4 leaves a remainder of 2, which the
    # official MMSA/DMD/DLF loop never steps (1 step per epoch) and the default loop steps (2 per epoch).
    summary = train(tiny_run(tmp_path, accumulate_steps=4, drop_remainder=drop_remainder, clip_value=0.6,
                             clip_norm=None, early_stopping_patience=None, epochs=2, optimizer="adam", text_lr=None))
    assert summary["per_seed"][7]["optimizer_steps"] == expected_steps


def test_early_stopping_stops_after_patience(tmp_path):
    # a huge learning rate makes the validation loss stop improving quickly
    summary = train(tiny_run(tmp_path, epochs=30, lr=10.0, text_lr=10.0, early_stopping_patience=2, clip_norm=None))
    result = summary["per_seed"][7]
    assert result["epochs_run"] == result["best_epoch"] + 2 < 30


TINY_DLF = {
    "hidden_size": 8, "num_heads": 2, "num_layers": 1, "lfa_memory_layers": 1, "text_length": 16,
    "audio_length": 16, "vision_length": 16, "text_kernel_size": 3, "audio_kernel_size": 3,
    "vision_kernel_size": 3, "text_config": TINY["model"]["text_config"],
}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["misa", "dlf"])
def test_two_process_cpu_run_gathers_every_test_sample(tmp_path, method):
    config = json.loads(json.dumps(TINY))
    if method == "dlf":
        config.update(method="dlf", model=TINY_DLF)
    config["data"]["cache_dir"] = str(tmp_path / "cache")
    config["training"].update(output_dir=str(tmp_path / "out"), epochs=1)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(REPO_ROOT / "train.py"), "--config", str(path)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((tmp_path / "out" / "results.json").read_text())
    assert summary["num_processes"] == 2
    # 48 test samples split over 2 ranks with batch 32: gather_for_metrics must return each exactly once
    assert summary["per_seed"]["7"]["test_samples"] == 48


def test_environment_records_the_mixed_precision_accelerate_uses(monkeypatch):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    assert environment()["mixed_precision"] == "no"
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # what `accelerate launch --mixed_precision bf16` sets
    AcceleratorState._reset_state(True)
    try:
        assert environment()["mixed_precision"] == "bf16" == Accelerator(cpu=True).mixed_precision
    finally:
        AcceleratorState._reset_state(True)  # later in-process runs must not inherit bf16
