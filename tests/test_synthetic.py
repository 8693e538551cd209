"""The synthetic MOSI-shaped generator: determinism, shapes, MOSI-like statistics, factors and fusion."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from modeling.features import load_msa_dataset
from modeling.synthetic import FACTORS, load_or_make_synthetic, make_synthetic, ridge_baselines

SPECIAL_IDS = {0, 100, 101, 102, 103}
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def aligned():
    return make_synthetic(seed=0, aligned=True)


@pytest.fixture(scope="module")
def unaligned():
    return make_synthetic(seed=0, aligned=False, sizes=(300, 50, 100))


def _all_ids(dataset):
    return [ids for split in dataset.values() for ids in split["input_ids"][:]]


def test_deterministic_by_seed():
    a, meta_a = make_synthetic(seed=3, sizes=(30, 10, 10), aligned=False)
    b, meta_b = make_synthetic(seed=3, sizes=(30, 10, 10), aligned=False)
    c, _ = make_synthetic(seed=4, sizes=(30, 10, 10), aligned=False)
    assert meta_a == meta_b
    for split in a:
        assert a[split]["input_ids"][:] == b[split]["input_ids"][:]
        assert a[split]["labels"][:] == b[split]["labels"][:]
        first_a, first_b = a[split].with_format("numpy")[0], b[split].with_format("numpy")[0]
        np.testing.assert_array_equal(first_a["audio"], first_b["audio"])
    assert a["train"]["labels"][:] != c["train"]["labels"][:]
    assert a["train"]["input_ids"][:] != c["train"]["input_ids"][:]


def test_sizes_splits_and_metadata(aligned):
    dataset, meta = aligned
    assert {k: len(v) for k, v in dataset.items()} == {"train": 1284, "validation": 229, "test": 686}
    small, _ = make_synthetic(sizes=(7, 3, 5))
    assert [len(small[s]) for s in ("train", "validation", "test")] == [7, 3, 5]
    assert meta["dataset"] == "synthetic" and meta["aligned"] is True and meta["seed"] == 0
    assert meta["scale"] == "mosi"
    assert meta["padded_lengths"] == {"text": 50, "audio": 50, "vision": 50}
    assert meta["feature_dims"] == {"audio": 5, "vision": 20}
    assert meta["factors"] == list(FACTORS)
    assert set(meta["generator"]["weights"]) == {"shared", "text", "audio", "vision"}
    features = dataset["train"].features
    assert features["audio"].shape == (None, 5) and features["vision"].shape == (None, 20)
    ids = dataset["train"]["id"]
    assert len(set(ids)) == len(ids) and all("$_$" in i for i in ids)


def test_text_ids_and_length_distribution(aligned):
    dataset, _ = aligned
    rows = _all_ids(dataset)
    lengths = np.array([len(r) for r in rows])
    assert lengths.min() >= 3 and lengths.max() <= 80
    assert abs(lengths.mean() - 15.5) < 1.0
    assert 12 <= np.median(lengths) <= 14
    assert 24 <= np.percentile(lengths, 90) <= 30
    assert 0.002 <= (lengths > 50).mean() <= 0.03
    assert all(r[0] == 101 and r[-1] == 102 for r in rows)
    content = np.concatenate([r[1:-1] for r in rows])
    assert content.min() >= 1996 and content.max() <= 29611
    assert not SPECIAL_IDS & set(content.tolist())


def test_aligned_lengths_equal_text(aligned):
    dataset, _ = aligned
    split = dataset["validation"].with_format("numpy")[:]
    text = np.array([len(r) for r in split["input_ids"]])
    np.testing.assert_array_equal(split["audio_lengths"], text)
    np.testing.assert_array_equal(split["vision_lengths"], text)
    assert [a.shape for a in split["audio"]] == [(n, 5) for n in text]
    assert [v.shape for v in split["vision"]] == [(n, 20) for n in text]


def test_unaligned_lengths(unaligned):
    dataset, meta = unaligned
    assert meta["aligned"] is False
    assert meta["padded_lengths"] == {"text": 50, "audio": 375, "vision": 500}
    split = dataset["train"].with_format("numpy")[:]
    text = np.array([len(r) for r in split["input_ids"]])
    audio, vision = split["audio_lengths"], split["vision_lengths"]
    assert audio.min() >= 1 and audio.max() <= 375 and vision.min() >= 1 and vision.max() <= 500
    assert 6 < np.median(audio / text) < 10 and 8 < np.median(vision / text) < 12
    assert np.corrcoef(audio, text)[0, 1] > 0.8
    assert [a.shape[0] for a in split["audio"]] == audio.tolist()
    assert [v.shape[0] for v in split["vision"]] == vision.tolist()


def test_aligned_and_unaligned_share_labels_text_and_factors():
    a, _ = make_synthetic(seed=5, sizes=(40, 5, 5), aligned=True)
    u, _ = make_synthetic(seed=5, sizes=(40, 5, 5), aligned=False)
    for column in ("input_ids", "labels", *FACTORS):
        assert a["train"][column][:] == u["train"][column][:]


def test_factors_and_labels(aligned):
    dataset, meta = aligned
    features = dataset["train"].features
    train = dataset["train"].with_format("numpy")[:]
    for name in FACTORS:
        assert features[name].dtype == "float32"
        values = train[name]
        assert abs(values.mean()) < 0.1 and 0.9 < values.std() < 1.1
    labels = train["labels"]
    assert features["labels"].dtype == "float32"
    assert labels.min() >= -3 and labels.max() <= 3
    assert 1.3 < labels.std() < 1.7 and abs(labels.mean()) < 0.2
    assert 0.01 < (labels == 0).mean() < 0.1
    w = meta["generator"]["weights"]
    score = sum(w[k] * train[f] for k, f in (("shared", "factor_shared"), ("text", "factor_private_text"),
                                             ("audio", "factor_private_audio"), ("vision", "factor_private_vision")))
    assert np.corrcoef(score, labels)[0, 1] > 0.9
    for nuisance in ("factor_nuisance_text", "factor_nuisance_audio", "factor_nuisance_vision"):
        assert abs(np.corrcoef(train[nuisance], labels)[0, 1]) < 0.1


def test_nuisance_dominates_acoustic_variance(aligned):
    dataset, _ = aligned
    train = dataset["train"].with_format("numpy")[:]
    means = np.stack([x.mean(0) for x in train["audio"]])
    centred = means - means.mean(0)
    first_pc = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
    assert abs(np.corrcoef(first_pc, train["factor_nuisance_audio"])[0, 1]) > 0.8


def test_fusion_beats_text_and_text_beats_other_modalities():
    dataset, meta = make_synthetic(seed=1, sizes=(2000, 10, 1500))
    r = ridge_baselines(dataset, meta)
    assert 0.83 <= r["all"]["acc2"] <= 0.95
    assert r["all"]["acc2"] >= r["text"]["acc2"] + 0.05
    assert r["all"]["mae"] <= r["text"]["mae"] - 0.15
    for other in ("audio", "vision"):
        assert r["text"]["corr"] >= r[other]["corr"] + 0.05
        assert r["text"]["mae"] < r[other]["mae"]
        assert r["text"]["acc2"] > r[other]["acc2"]


def test_load_or_make_caches(tmp_path):
    first, meta = load_or_make_synthetic(str(tmp_path), sizes=(12, 4, 4), seed=2)
    again, meta_again = load_or_make_synthetic(str(tmp_path), sizes=(12, 4, 4), seed=2, aligned=True)
    assert meta == meta_again and meta["seed"] == 2
    assert first["train"]["labels"][:] == again["train"]["labels"][:]
    assert len(list(tmp_path.iterdir())) == 1
    load_or_make_synthetic(str(tmp_path), sizes=(12, 4, 4), seed=3)
    assert len(list(tmp_path.iterdir())) == 2


def test_cli_writes_loadable_folder(tmp_path):
    script = REPO_ROOT / "datasets_scripts" / "make_synthetic.py"
    spec = importlib.util.spec_from_file_location("make_synthetic_cli", script)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = tmp_path / "synth"
    cli.main(["--output", str(out), "--seed", "1", "--unaligned", "--sizes", "10", "4", "6"])
    dataset, meta = load_msa_dataset(str(out))
    assert meta["aligned"] is False and meta["seed"] == 1
    assert [len(dataset[s]) for s in ("train", "validation", "test")] == [10, 4, 6]


# ------------------------------------------------------------------- classification variants (``task``)


def _fingerprint(dataset) -> str:
    import hashlib
    import json

    digest = hashlib.sha256()
    for split in dataset.values():
        for column in split.column_names:
            digest.update(json.dumps(split[column][:], default=lambda x: np.asarray(x).tolist()).encode())
    return digest.hexdigest()


def test_default_task_is_unchanged_data_and_cache_folder(tmp_path):
    # pinned before the task option existed: the same rows and the same cache folder
    dataset, _ = make_synthetic(seed=3, sizes=(30, 10, 10), aligned=False)
    assert _fingerprint(dataset) == "8b799902b5ef3a89cc21f8de2ce2c6dd98a5adcdccc8fc2ef30a24528b71a99d"
    explicit, _ = make_synthetic(seed=3, sizes=(30, 10, 10), aligned=False, task="regression")
    assert _fingerprint(explicit) == _fingerprint(dataset)
    load_or_make_synthetic(str(tmp_path), task="regression")
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic-b8fa7e66da9cb560"]  # the default set's folder
    load_or_make_synthetic(str(tmp_path))
    load_or_make_synthetic(str(tmp_path), task="binary")
    assert len(list(tmp_path.iterdir())) == 2


@pytest.fixture(scope="module")
def variants():
    kwargs = dict(seed=2, sizes=(3000, 10, 10))
    return {task: make_synthetic(task=task, **kwargs) for task in ("regression", "binary", "emotion7")}


def test_classification_variants_share_everything_but_labels(variants):
    regression = variants["regression"][0]["train"]
    for task in ("binary", "emotion7"):
        dataset, meta = variants[task]
        split = dataset["train"]
        assert split.features["labels"].dtype == "int64"
        assert meta["scale"] == "classification" and meta["task"] == task
        for column in ("input_ids", "audio_lengths", *FACTORS):
            assert split[column][:] == regression[column][:]
        np.testing.assert_array_equal(split.with_format("numpy")[:5]["audio"][0], regression.with_format("numpy")[:5]["audio"][0])
    assert "task" not in variants["regression"][1]


def test_binary_labels_are_balanced_and_follow_the_sentiment_sign(variants):
    labels = np.asarray(variants["binary"][0]["train"]["labels"][:])
    scores = np.asarray(variants["regression"][0]["train"]["labels"][:])
    assert set(labels.tolist()) == {0, 1} and 0.47 < labels.mean() < 0.53
    nonzero = scores != 0
    assert (labels[nonzero] == (scores[nonzero] > 0)).all()
    assert variants["binary"][1]["classes"] == ["no humour", "humour"]


def test_emotion_labels_look_like_meld(variants):
    dataset, meta = variants["emotion7"]
    train = dataset["train"].with_format("numpy")[:]
    labels = train["labels"]
    assert meta["classes"] == ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]
    shares = np.bincount(labels, minlength=7) / len(labels)
    meld = np.array([4710, 1205, 268, 683, 1743, 271, 1109]) / 9989  # MELD train emotion counts
    assert np.abs(shares - meld).max() < 0.03
    scores = np.asarray(variants["regression"][0]["train"]["labels"][:])
    assert scores[labels == 4].mean() > 0.5 and scores[labels == 3].mean() < -0.5  # joy vs sadness valence
    for name in ("factor_nuisance_text", "factor_nuisance_audio", "factor_nuisance_vision"):
        # nuisances never enter a label: every class mean within 4 standard errors of 0
        z = [abs(train[name][labels == k].mean()) * np.sqrt((labels == k).sum()) for k in range(7)]
        assert max(z) < 4
    # arousal is carried mostly by the audio/vision private factors: high for surprise and fear, low for sadness
    for name in ("factor_private_audio", "factor_private_vision"):
        means = [train[name][labels == k].mean() for k in (1, 2, 3)]
        assert means[0] > 0.5 and means[1] > 0.5 and means[2] < -0.5


def test_task_errors(variants):
    with pytest.raises(ValueError, match="unknown task"):
        make_synthetic(sizes=(3, 1, 1), task="ternary")
    with pytest.raises(ValueError, match="regression"):
        ridge_baselines(*variants["binary"])
