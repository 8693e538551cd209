"""A researcher's path: convert the files they have, then train on them with train.py's code."""

from __future__ import annotations

import csv
import json

import pytest

from fixtures_data import make_mmsa_pickle
from modeling.converters import convert_label_csv, convert_mmsa_pickle
from modeling.features import save_msa_dataset
from modeling.training import RunConfig, train
from test_training import TINY


def run_on(folder, tmp_path, **data) -> dict:
    raw = json.loads(json.dumps(TINY))
    raw["model"]["text_config"]["vocab_size"] = 30522
    raw["data"] = {"path": str(folder), "preset_dataset": "mosi", **data}
    raw["training"].update(output_dir=str(tmp_path / "out"), epochs=1, batch_size=2)
    return train(RunConfig.from_dict(raw))


@pytest.mark.parametrize("aligned", [True, False])
def test_train_on_converted_mmsa_pickle(tmp_path, aligned):
    path, _ = make_mmsa_pickle(tmp_path, aligned=aligned)
    dataset, metadata = convert_mmsa_pickle(path)
    save_msa_dataset(dataset, str(tmp_path / "mosi"), metadata)
    summary = run_on(tmp_path / "mosi", tmp_path)
    result = summary["per_seed"][7]
    assert result["test_samples"] == 4
    assert summary["task"] == "mosi"


def test_train_text_only_on_real_mosi_labels(tmp_path, shared_dir):
    """Real MOSI transcripts and labels (label.csv layout, no A/V features): the models' missing-modality path."""
    label_csv = shared_dir / "data" / "mosi" / "mosi_label_mmsa_layout.csv"
    words = sorted({w for row in csv.DictReader(open(label_csv)) for w in row["text"].split()})
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    specials = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (vocab / "vocab.txt").write_text("\n".join(specials + words) + "\n")
    dataset, metadata = convert_label_csv(label_csv, str(vocab), max_length=50)
    assert {k: len(v) for k, v in dataset.items()} == {"train": 1284, "validation": 229, "test": 686}
    assert "audio" not in dataset["train"].column_names
    save_msa_dataset(dataset, str(tmp_path / "mosi_text"), metadata)
    summary = run_on(tmp_path / "mosi_text", tmp_path, max_train_samples=64, max_eval_samples=686)
    result = summary["per_seed"][7]
    assert result["test_samples"] == 686
    assert set(result["test"]) >= {"acc2_has0", "acc2_non0", "mae", "corr"}
