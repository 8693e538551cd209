"""Converters: every source layout → the shared schema, with the quirks of the real files."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datasets import Array2D, load_dataset, load_from_disk

import fixtures_data as fx
from modeling.converters import (
    conversion_summary,
    convert_csd,
    convert_label_csv,
    convert_mmsa_pickle,
    convert_mult_pickle,
    dataset_card,
    load_tokenizer,
    merge_card_text,
    resolve_csd_files,
)
from modeling.features import load_msa_dataset, save_msa_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SPLIT_OF = {"train": "train", "validation": "valid", "test": "test"}


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return fx.make_vocab_folder(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def tok(tok_dir):
    return load_tokenizer(tok_dir)


def _clean(array):
    array = np.asarray(array, dtype=np.float32).copy()
    array[~np.isfinite(array)] = 0
    return array


def _rows(ds, column):
    return ds.with_format("numpy")[column]


# --------------------------------------------------------------------------------------------------------------
# MMSA
# --------------------------------------------------------------------------------------------------------------


def test_mmsa_aligned(tmp_path):
    path, raw = fx.make_mmsa_pickle(tmp_path, aligned=True)
    dd, meta = convert_mmsa_pickle(path, dataset_name="mosi")
    assert list(dd) == ["train", "validation", "test"]
    assert meta["split_sizes"] == {"train": 5, "validation": 3, "test": 4}
    assert dd["train"].features["audio"] == Array2D((None, 5), "float32")
    assert dd["train"].features["vision"] == Array2D((None, 20), "float32")
    assert meta["aligned"] is True and meta["feature_dims"] == {"audio": 5, "vision": 20}
    assert meta["padded_lengths"] == {"text": 8, "audio": 8, "vision": 8}
    assert meta["ignored_keys"] == {"top_level": ["config"], "per_split": ["classification_labels", "text"]}
    assert meta["source_files"] == [{"name": "aligned_50.pkl", "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}]
    assert meta["scale"] == "mosi" and meta["dataset"] == "mosi"
    assert meta["nonfinite_replaced"]["train"] == {"audio": 2, "vision": 0}
    assert meta["nonfinite_replaced"]["validation"] == {"audio": 0, "vision": 1}
    assert meta["nonfinite_replaced_total"] == 3 and meta["lengths_clamped_total"] == 0
    for split, ds in dd.items():
        src = raw[SPLIT_OF[split]]
        counts = src["text_bert"][:, 1].sum(1).astype(int)
        for i, row in enumerate(ds):
            assert row["input_ids"] == src["text_bert"][i, 0, : counts[i]].astype(int).tolist()
            assert row["audio_lengths"] == row["vision_lengths"] == counts[i]
            np.testing.assert_array_equal(np.asarray(row["audio"], np.float32), _clean(src["audio"][i, : counts[i]]))
            np.testing.assert_array_equal(np.asarray(row["vision"], np.float32), _clean(src["vision"][i, : counts[i]]))
            video, clip = src["id"][i].split("$_$")
            assert (row["id"], row["video_id"], row["clip_id"]) == (src["id"][i], video, clip)
            assert row["text"] == src["raw_text"][i]
            assert row["annotation"] == src["annotations"][i]
            assert row["labels"] == pytest.approx(float(src["regression_labels"][i]))
    assert np.isfinite(np.concatenate(_rows(dd["train"], "audio"))).all()
    truncated = dd["train"][2]["input_ids"]  # cut by MMSA after adding [SEP]: kept as stored
    assert len(truncated) == 8 and truncated[0] == 101 and truncated[-1] != 102
    assert dd["train"][0]["input_ids"] == [101, 1037, 2843, 1997, 6517, 3033, 102]  # "a lot of sad parts"


def test_mmsa_unaligned_lengths_clamped(tmp_path):
    path, raw = fx.make_mmsa_pickle(tmp_path, aligned=False)
    dd, meta = convert_mmsa_pickle(path)
    assert meta["aligned"] is False
    assert meta["padded_lengths"] == {"text": 8, "audio": 10, "vision": 12}
    assert meta["lengths_clamped"]["train"] == {"audio": 1, "vision": 0}
    assert meta["lengths_clamped"]["test"] == {"audio": 0, "vision": 1}
    assert meta["lengths_clamped_total"] == 2
    assert dd["train"][1]["audio_lengths"] == 10  # stored 15 > padded 10
    assert dd["test"][0]["vision_lengths"] == 1  # stored 0
    for split, ds in dd.items():
        src = raw[SPLIT_OF[split]]
        expected_a = np.clip(np.asarray(src["audio_lengths"]), 1, 10)
        expected_v = np.clip(np.asarray(src["vision_lengths"]), 1, 12)
        np.testing.assert_array_equal(ds["audio_lengths"], expected_a)
        np.testing.assert_array_equal(ds["vision_lengths"], expected_v)
        for i, audio in enumerate(_rows(ds, "audio")):
            np.testing.assert_array_equal(audio, _clean(src["audio"][i, : expected_a[i]]))
        assert [len(v) for v in _rows(ds, "vision")] == expected_v.tolist()


def test_sims_unimodal_labels_and_zero_padded_ids(tmp_path):
    path, raw = fx.make_sims_pickle(tmp_path)
    dd, meta = convert_mmsa_pickle(path)
    assert meta["dataset"] == "sims" and meta["scale"] == "sims"
    assert meta["feature_dims"] == {"audio": 33, "vision": 709}
    row = dd["train"][0]
    assert (row["id"], row["video_id"], row["clip_id"]) == ("video_0001$_$0001", "video_0001", "0001")
    for column, key in (("labels_text", "T"), ("labels_audio", "A"), ("labels_vision", "V")):
        np.testing.assert_allclose(dd["validation"][column], raw["valid"][f"regression_labels_{key}"], atol=1e-6)
    assert dd["train"].features["labels_text"].dtype == "float32"


@pytest.mark.parametrize("alias", ["dev", "validation"])
def test_mmsa_accepts_dev_and_validation_keys(tmp_path, alias):
    path, raw = fx.make_mmsa_pickle(tmp_path)
    raw[alias] = raw.pop("valid")
    with open(path, "wb") as fh:
        pickle.dump(raw, fh)
    dd, _ = convert_mmsa_pickle(path)
    assert list(dd) == ["train", "validation", "test"] and len(dd["validation"]) == 3


def _rewrite(path, raw, change):
    change(raw)
    with open(path, "wb") as fh:
        pickle.dump(raw, fh)
    return path


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda r: r["train"].__setitem__("audio", r["train"]["audio"][:, :, 0]),
         ["split 'train'", "key 'audio'", "(5, 8)", "expected (5, L_a, D_a)"]),
        (lambda r: r["valid"].__setitem__("text_bert", r["valid"]["text_bert"][:, :2]),
         ["split 'valid'", "key 'text_bert'", "(3, 2, 8)", "expected (N, 3, L_t)"]),
        (lambda r: r["test"].__setitem__("vision", r["test"]["vision"][:3]),
         ["split 'test'", "key 'vision'", "(3, 8, 20)", "expected (4, L_v, D_v)"]),
        (lambda r: r["test"].__setitem__("vision", r["test"]["vision"][:, :, :7]),
         ["split 'test'", "key 'vision'", "(4, 8, 7)", "(4, L_v, 20) like the other splits"]),
        (lambda r: r["train"].__setitem__("regression_labels", r["train"]["regression_labels"][:4]),
         ["split 'train'", "key 'regression_labels'", "(4,)", "expected (5,) or (5, 1)"]),
        (lambda r: r["valid"].pop("regression_labels"), ["split 'valid'", "no key 'regression_labels'"]),
        (lambda r: r["train"].pop("text_bert"), ["split 'train'", "no key 'text_bert'"]),
        (lambda r: [r.pop(k) for k in ("train", "valid", "test")], ["no split found", "config"]),
        (lambda r: r.__setitem__("dev", r["valid"]), ["'valid' and 'dev' both map to split 'validation'"]),
    ],
)
def test_mmsa_errors_name_file_split_key(tmp_path, change, words):
    path, raw = fx.make_mmsa_pickle(tmp_path)
    _rewrite(path, raw, change)
    with pytest.raises(ValueError) as err:
        convert_mmsa_pickle(path)
    for word in ["aligned_50.pkl", *words]:
        assert word in str(err.value)


def test_mmsa_forced_unaligned_needs_lengths(tmp_path):
    path, _ = fx.make_mmsa_pickle(tmp_path)
    with pytest.raises(ValueError, match=r"aligned_50.pkl: split 'train' has no key 'audio_lengths'"):
        convert_mmsa_pickle(path, aligned=False)


def test_mmsa_non_dict_top_level(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([np.zeros(3)]))
    with pytest.raises(ValueError, match="list.pkl: expected a dict with keys train/valid/test.*found list"):
        convert_mmsa_pickle(path)


# --------------------------------------------------------------------------------------------------------------
# MulT
# --------------------------------------------------------------------------------------------------------------


def _front_length(array):
    nonzero = np.flatnonzero((array != 0).any(axis=1))
    return len(array) - nonzero[0] if len(nonzero) else 0


def test_mult_unaligned_front_padding(tmp_path):
    path, raw = fx.make_mult_pickle(tmp_path, aligned=False)
    dd, meta = convert_mult_pickle(path)
    assert meta["aligned"] is False and meta["format"] == "mult_pickle"
    assert meta["split_sizes"] == {"train": 3, "validation": 2, "test": 2}
    assert meta["feature_dims"] == {"text_features": 300, "audio": 5, "vision": 20}
    assert meta["padded_lengths"] == {"text": 6, "audio": 9, "vision": 11}
    assert dd["train"].features["text_features"] == Array2D((None, 300), "float32")
    assert meta["nonfinite_replaced_total"] == 3  # one -inf per split
    assert meta["lengths_clamped"]["train"]["audio"] == 0
    for split, ds in dd.items():
        src = raw[SPLIT_OF[split]]
        for i, row in enumerate(ds):
            for column, key in (("audio", "audio"), ("vision", "vision"), ("text_features", "text")):
                n = max(_front_length(src[key][i]), 1)
                np.testing.assert_array_equal(np.asarray(row[column], np.float32), _clean(src[key][i, -n:]))
            assert row["audio_lengths"] == max(_front_length(src["audio"][i]), 1)
            video, start, end = (x.decode() for x in src["id"][i])
            assert (row["id"], row["video_id"], row["clip_id"]) == (f"{video}[{start}:{end}]", video, "")
            assert row["input_ids"] == [] and row["text"] == ""
            assert row["labels"] == pytest.approx(float(src["labels"][i, 0, 0]))
    assert len(dd["train"][1]["text_features"]) == 1  # all-zero text: length 0 clamped to 1
    assert meta["lengths_clamped"]["train"]["text"] == 1


def test_mult_aligned_uses_text_length(tmp_path):
    path, raw = fx.make_mult_pickle(tmp_path, aligned=True)
    dd, meta = convert_mult_pickle(path)
    assert meta["aligned"] is True
    for ds in dd.values():
        assert ds["audio_lengths"] == ds["vision_lengths"] == [len(t) for t in _rows(ds, "text_features")]


@pytest.mark.parametrize("layout, timed", [("mosi", True), ("mosei", False)])
def test_mult_label_csv_join(tmp_path, tok_dir, layout, timed):
    path, _ = fx.make_mult_pickle(tmp_path)
    csv_path, rows = fx.make_label_csv(tmp_path, layout=layout, timed=timed)
    dd, meta = convert_mult_pickle(path, label_csv=csv_path, tokenizer=tok_dir)
    assert meta["label_csv_join"] == {"matched": 7, "unmatched": 0, "label_mismatches": 0}
    by_id = {f"{r['video_id']}$_${r['clip_id']}": r for r in rows}
    tokenizer = load_tokenizer(tok_dir)
    for ds in dd.values():
        for row in ds:
            source = by_id[row["id"]]
            assert row["text"] == source["text"] and row["clip_id"] == source["clip_id"]
            assert row["input_ids"] == tokenizer(source["text"])["input_ids"]
    assert dd["train"][0]["input_ids"] == [101, 102]  # empty transcript
    assert "text" in meta["length_stats"]["train"]


def test_mult_join_without_tokenizer_and_errors(tmp_path, tok_dir):
    path, raw = fx.make_mult_pickle(tmp_path)
    csv_path, _ = fx.make_label_csv(tmp_path)
    dd, meta = convert_mult_pickle(path, label_csv=csv_path)
    assert dd["validation"][0]["text"] and dd["validation"][0]["input_ids"] == []
    with pytest.raises(ValueError, match="tokenizer given without label_csv"):
        convert_mult_pickle(path, tokenizer=tok_dir)
    raw["train"]["labels"] = np.zeros((3, 4, 2), np.float32)  # IEMOCAP layout
    _rewrite(path, raw, lambda r: None)
    expected = r"mosi_data_noalign.pkl: split 'train', key 'labels': found shape \(3, 4, 2\)"
    with pytest.raises(ValueError, match=expected):
        convert_mult_pickle(path)


# --------------------------------------------------------------------------------------------------------------
# CMU-SDK .csd
# --------------------------------------------------------------------------------------------------------------


def _segments(video):
    return sorted(fx.CSD_SEGMENTS[video])


def _segment_words(video, start, end):
    return [(w, s, e) for w, s, e in fx.CSD_WORDS[video] if w != "sp" and start <= (s + e) / 2 < end]


def _naive_word_average(frames, intervals, s, e):
    picked = [frames[t] for t, (fs, fe) in enumerate(intervals)
              if (fs < e and fe > s) or fs <= (s + e) / 2 < fe]
    return np.mean(picked, axis=0) if picked else np.zeros(frames.shape[1], np.float32)


def test_csd_aligned(tmp_path, tok):
    files, folds, raw = fx.make_csd_files(tmp_path)
    dd, meta = convert_csd(tmp_path, folds, tok)
    assert meta["split_sizes"] == {"train": 3, "validation": 3, "test": 1}
    assert meta["videos_without_fold"] == ["vid_e"]
    assert meta["csd_roots"]["words"] == "CMU_MOSI_ModifiedTimestampedWords"
    assert meta["csd_metadata"]["audio"]["dataset name"] == "CMU-MOSI"
    assert meta["feature_dims"] == {"audio": 5, "vision": 20} and meta["dataset"] == "mosi"
    assert meta["nonfinite_replaced"]["train"]["audio"] == 1
    assert meta["lengths_clamped"]["validation"] == {"audio": 1, "vision": 1}  # segment without words
    assert {e["role"] for e in meta["source_files"]} == {"words", "labels", "audio", "vision", "folds"}
    rows = {r["id"]: r for ds in dd.values() for r in ds}
    for video, split in fx.CSD_FOLDS.items():
        for k, (start, end, label) in enumerate(_segments(video)):
            row = rows[f"{video}$_${k + 1}"]
            words = _segment_words(video, start, end)
            assert row["text"] == " ".join(w for w, _, _ in words).lower()
            assert row["input_ids"] == tok(row["text"])["input_ids"]
            assert row["labels"] == pytest.approx(label)
            for modality in ("audio", "vision"):
                frames, intervals = raw[modality][video]
                expected = [_naive_word_average(_clean(frames), intervals, s, e) for _, s, e in words]
                expected = np.array(expected or [np.zeros(frames.shape[1])], np.float32)
                np.testing.assert_allclose(np.asarray(row[modality], np.float32), expected, atol=1e-5)
                assert row[f"{modality}_lengths"] == max(len(words), 1)
    assert rows["vid_a$_$1"]["input_ids"] == [101, 1037, 2843, 1997, 6517, 3033, 102]
    assert rows["vid_a$_$2"]["text"] == "i loved it"
    assert dd["validation"][2]["text"] == "" and dd["validation"][2]["input_ids"] == [101, 102]


def test_csd_unaligned_and_explicit_mapping(tmp_path, tok):
    files, folds, raw = fx.make_csd_files(tmp_path)
    mapping = {"text": files["words"], "labels": files["labels"], "acoustic": files["audio"], "visual": files["vision"]}
    dd, meta = convert_csd(mapping, dict(fx.CSD_FOLDS), tok, aligned=False)
    assert meta["aligned"] is False
    row = next(r for r in dd["validation"] if r["id"] == "vid_c$_$3")
    frames, intervals = raw["vision"]["vid_c"]
    mid = intervals.mean(1)
    np.testing.assert_array_equal(np.asarray(row["vision"], np.float32), frames[(mid >= 2.1) & (mid < 3.0)])
    a_frames, a_iv = raw["audio"]["vid_a"]
    first = next(r for r in dd["train"] if r["id"] == "vid_a$_$1")
    a_mid = a_iv.mean(1)
    expected = _clean(a_frames[(a_mid >= 0) & (a_mid < 1.9)])
    np.testing.assert_array_equal(np.asarray(first["audio"], np.float32), expected)
    assert first["audio_lengths"] == len(first["audio"])


def test_csd_role_guessing_and_integrity(tmp_path, tok):
    files, folds, _ = fx.make_csd_files(tmp_path)
    assert resolve_csd_files(tmp_path) == files
    assert resolve_csd_files([files["audio"]], overrides={k: v for k, v in files.items() if k != "audio"}) == files
    import h5py

    with h5py.File(files["vision"], "a") as handle:
        group = handle["CMU_MOSI_Visual_Facet_41/data/vid_b"]
        del group["intervals"]
        group.create_dataset("intervals", data=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"CMU_MOSI_Visual_Facet_41.csd: video 'vid_b': features shape \(16, 20\)"):
        convert_csd(tmp_path, folds, tok)
    (tmp_path / "CMU_MOSI_COVAREP_copy.csd").write_bytes(files["audio"].read_bytes())
    with pytest.raises(ValueError, match="cannot pick the audio file"):
        resolve_csd_files(tmp_path)


# --------------------------------------------------------------------------------------------------------------
# label.csv
# --------------------------------------------------------------------------------------------------------------


def test_label_csv_mosi_and_mosei_orders_agree(tmp_path, tok):
    mosi, rows = fx.make_label_csv(tmp_path, layout="mosi")
    mosei, _ = fx.make_label_csv(tmp_path, layout="mosei")
    a, meta = convert_label_csv(mosi, tok)
    b, _ = convert_label_csv(mosei, tok)
    assert meta["modalities"] == ["text"] and meta["split_sizes"] == {"train": 3, "validation": 2, "test": 2}
    assert "audio" not in a["train"].features and "vision_lengths" not in a["train"].features
    assert "labels_text" not in a["train"].features
    for split in a:
        assert a[split].to_list() == b[split].to_list()
    assert a["train"][1]["input_ids"] == tok(rows[1]["text"])["input_ids"]
    assert a["train"][0]["annotation"] == rows[0]["annotation"]


def test_label_csv_sims_and_truncation(tmp_path, tok):
    path, rows = fx.make_sims_label_csv(tmp_path)
    dd, meta = convert_label_csv(path, tok, max_length=3)
    assert meta["scale"] == "sims"
    row = dd["train"][0]
    assert (row["id"], row["video_id"], row["clip_id"]) == ("video_0001$_$0001", "video_0001", "0001")
    assert dd["test"][0]["clip_id"] == "0010"
    assert dd["train"][1]["labels_audio"] == pytest.approx(0.8)
    assert dd["train"][1]["input_ids"] == [101, fx.word_id("hello"), 102]  # truncation keeps [SEP]


def test_label_csv_errors(tmp_path, tok):
    path, rows = fx.make_sims_label_csv(tmp_path)
    text = path.read_text().replace(",valid\n", ",holdout\n")
    path.write_text(text)
    with pytest.raises(ValueError, match=r"sims_label.csv: data row 3 \(video_0002/0001\): mode 'holdout'"):
        convert_label_csv(path, tok)
    path.write_text(text.replace(",holdout\n", ",valid\n").replace("0.4,0.0,-0.2", "0.4,,-0.2"))
    with pytest.raises(ValueError, match="label_T/label_A/label_V must be filled in every row or in none"):
        convert_label_csv(path, tok)
    bad = tmp_path / "no_header.csv"
    bad.write_text("27.8,32.9,_dI--eQ6qVU,1,2.4\n")
    with pytest.raises(ValueError, match="no_header.csv: missing column"):
        convert_label_csv(bad, tok)


@pytest.mark.skipif(not (SHARED / "data/mosi/mosi_label_mmsa_layout.csv").exists(), reason="../shared absent")
def test_real_mosi_label_csv(tok):
    dd, meta = convert_label_csv(SHARED / "data/mosi/mosi_label_mmsa_layout.csv", tok)
    assert meta["split_sizes"] == {"train": 1284, "validation": 229, "test": 686}
    assert meta["dataset"] == "mosi" and meta["scale"] == "mosi"
    assert meta["ignored_columns"] == ["label_T", "label_A", "label_V", "start", "end"]
    first = dd["validation"][0]
    assert (first["id"], first["labels"]) == ("_dI--eQ6qVU$_$1", pytest.approx(2.4))
    assert all(len(ids) <= 50 and ids[0] == 101 and ids[-1] == 102 for ids in dd["test"]["input_ids"])
    assert sum(t == "" for ds in dd.values() for t in ds["text"]) == 4


# --------------------------------------------------------------------------------------------------------------
# Saving, loading, card, CLIs
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["mmsa", "mult", "label_csv"])
def test_save_then_load_from_disk_and_load_dataset(tmp_path, tok_dir, source):
    if source == "mmsa":
        dd, meta = convert_mmsa_pickle(fx.make_mmsa_pickle(tmp_path, aligned=False)[0])
    elif source == "mult":
        dd, meta = convert_mult_pickle(fx.make_mult_pickle(tmp_path)[0])
    else:
        dd, meta = convert_label_csv(fx.make_label_csv(tmp_path)[0], tok_dir)
    out = tmp_path / "out"
    save_msa_dataset(dd, str(out), meta, dataset_card(meta))
    from_disk, meta_disk = load_msa_dataset(str(out))
    loaded = load_dataset(str(out))
    assert meta_disk == meta
    assert load_from_disk(str(out))["train"].features == dd["train"].features
    for split in dd:
        assert from_disk[split].features == loaded[split].features == dd[split].features
        assert from_disk[split].to_list() == loaded[split].to_list() == dd[split].to_list()
    assert (out / "README.md").read_text().startswith("---\npretty_name:")


def test_dataset_card_contents(tmp_path):
    path, _ = fx.make_mmsa_pickle(tmp_path, aligned=False)
    _, meta = convert_mmsa_pickle(path, dataset_name="mosi")
    card = dataset_card(meta)
    assert meta["source_files"][0]["sha256"] in card and "unaligned_50.pkl" in card
    assert "[1, 3, 6, 25, 60]" in card and "FACET 4.1, 20 dimensions" in card
    assert "| train | audio | " in card and "| validation | 3 |" in card
    assert "obtain them from the authors" in card
    assert "lengths clamped" in conversion_summary(meta)


def test_merge_card_keeps_hub_yaml_and_replaces_config_section():
    hub = "---\nconfigs:\n- config_name: aligned_50\n  data_files: aligned_50/train-*\n---\n# auto\n"
    first = merge_card_text(hub, "---\nlicense: other\n---\n# ALIGNED v1\n", "aligned_50")
    second = merge_card_text(first, "---\nlicense: other\n---\n# ALIGNED v2\n", "aligned_50")
    third = merge_card_text(second, "---\nlicense: other\n---\n# UNALIGNED\n", "unaligned_50")
    assert "config_name: aligned_50" in third and "license: other" in third
    assert "ALIGNED v1" not in third and "ALIGNED v2" in third and "UNALIGNED" in third


def test_push_to_hub_only_when_asked(tmp_path, monkeypatch):
    """finish_cli saves locally; with --push-to-hub it pushes the parquet config, the metadata and a merged card."""
    import argparse

    from datasets import DatasetDict
    from huggingface_hub import DatasetCard

    import modeling.converters as converters

    calls = []
    monkeypatch.setattr(DatasetDict, "push_to_hub", lambda self, repo, **kw: calls.append(("data", repo, kw)))
    monkeypatch.setattr(converters.HfApi, "upload_file", lambda self, **kw: calls.append(("file", kw["path_in_repo"])))
    hub_readme = "---\nconfigs:\n- config_name: aligned_50\n  data_files: aligned_50/train-*\n---\n"
    monkeypatch.setattr(DatasetCard, "load", classmethod(lambda cls, repo, **kw: cls(hub_readme)))
    monkeypatch.setattr(DatasetCard, "push_to_hub", lambda self, repo, **kw: calls.append(("card", self.content)))
    dd, meta = convert_mmsa_pickle(fx.make_mmsa_pickle(tmp_path)[0])
    args = argparse.Namespace(output=str(tmp_path / "local"), push_to_hub=None, config_name="aligned_50", private=False)
    converters.finish_cli(dd, meta, args)
    assert calls == [] and (tmp_path / "local" / "README.md").exists()
    args.push_to_hub = "org/cmu-mosi"
    converters.finish_cli(dd, meta, args)
    assert calls[0] == ("data", "org/cmu-mosi", {"config_name": "aligned_50", "private": None})
    assert calls[1] == ("file", "msa_metadata/aligned_50.json")
    assert calls[2][0] == "card" and "config_name: aligned_50" in calls[2][1] and "## Source files" in calls[2][1]


def test_tokenizer_paths(tmp_path):
    with pytest.raises(ValueError, match="not a local folder; converters never download"):
        load_tokenizer("bert-base-uncased")
    only_vocab = fx.make_vocab_folder(tmp_path / "v", with_config=False)
    assert load_tokenizer(only_vocab)("A lot of sad parts")["input_ids"] == [101, 1037, 2843, 1997, 6517, 3033, 102]


def test_clis_run_on_fixtures(tmp_path, tok_dir):
    """convert_mmsa.py runs as a plain subprocess; the three others run as ``__main__`` in one more
    subprocess (importing ``modeling`` costs seconds, so they share one interpreter)."""
    mmsa, _ = fx.make_mmsa_pickle(tmp_path)
    mult, _ = fx.make_mult_pickle(tmp_path)
    label_csv, _ = fx.make_label_csv(tmp_path, timed=True)
    fx.make_csd_files(tmp_path / "csd")
    scripts = REPO / "datasets_scripts"
    out = {name: str(tmp_path / f"out_{name}") for name in ("mmsa", "mult", "csd", "label_csv")}
    others = [
        [str(scripts / "convert_mult.py"), str(mult), "--label-csv", str(label_csv), "--tokenizer", str(tok_dir),
         "--output", out["mult"]],
        [str(scripts / "convert_csd.py"), str(tmp_path / "csd"), "--folds", str(tmp_path / "csd/folds.csv"),
         "--tokenizer", str(tok_dir), "--unaligned", "--output", out["csd"]],
        [str(scripts / "convert_label_csv.py"), str(label_csv), "--tokenizer", str(tok_dir), "--output",
         out["label_csv"]],
    ]
    driver = (
        "import runpy, sys\n"
        f"for argv in {others!r}:\n"
        "    sys.argv = argv\n"
        "    print('=== ' + argv[0])\n"
        "    runpy.run_path(argv[0], run_name='__main__')\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    run = dict(cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs = [
        subprocess.Popen([sys.executable, str(scripts / "convert_mmsa.py"), str(mmsa), "--dataset", "mosi",
                          "--output", out["mmsa"]], **run),
        subprocess.Popen([sys.executable, "-c", driver], **run),
    ]
    stdout = ""
    for proc in procs:
        text, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        stdout += text
    for sizes in ("train 5, validation 3, test 4", "train 3, validation 2, test 2", "train 3, validation 3, test 1"):
        assert sizes in stdout
    assert stdout.count("non-finite values replaced") == 4
    for folder in out.values():
        dataset, meta = load_msa_dataset(folder)
        assert meta["split_sizes"] == {k: len(v) for k, v in dataset.items()}
        assert Path(folder, "README.md").exists()
