"""MSACollator and build_dataloaders: padding, truncation, MMSA text_bert, missing columns, dtypes, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modeling.data import LengthGroupedBatchSampler, MSACollator, build_dataloaders
from modeling.synthetic import make_synthetic


def _example(text_len, audio_len, vision_len, label=0.5, seed=0, audio_rows=None):
    rng = np.random.default_rng(seed)
    ids = np.concatenate([[101], rng.integers(2000, 3000, text_len - 2), [102]]).astype(np.int32)
    return {
        "id": f"vid$_${seed}",
        "text": "some words",
        "input_ids": ids,
        "audio": rng.standard_normal((audio_rows or audio_len, 5)).astype(np.float32),
        "audio_lengths": audio_len,
        "vision": rng.standard_normal((vision_len, 20)).astype(np.float32),
        "vision_lengths": vision_len,
        "labels": np.float32(label),
        "factor_shared": np.float32(seed),
    }


@pytest.fixture(scope="module")
def small_dataset():
    dataset, _ = make_synthetic(seed=0, aligned=False, sizes=(64, 16, 24))
    return dataset


def test_pads_to_batch_max():
    examples = [_example(5, 7, 3, seed=1), _example(9, 4, 6, seed=2)]
    batch = MSACollator()(examples)
    assert batch["input_ids"].shape == (2, 9)
    assert batch["audio"].shape == (2, 7, 5) and batch["vision"].shape == (2, 6, 20)
    assert batch["attention_mask"].sum(1).tolist() == [5, 9]
    assert batch["audio_lengths"].tolist() == [7, 4] and batch["vision_lengths"].tolist() == [3, 6]
    assert batch["input_ids"][0, 5:].eq(0).all() and batch["token_type_ids"].eq(0).all()
    torch.testing.assert_close(batch["audio"][1, :4], torch.from_numpy(examples[1]["audio"]))
    assert batch["audio"][1, 4:].eq(0).all() and batch["vision"][0, 3:].eq(0).all()
    torch.testing.assert_close(batch["input_ids"][1], torch.from_numpy(examples[1]["input_ids"]).long())


def test_rows_beyond_length_are_not_copied():
    batch = MSACollator()([_example(5, 3, 4, audio_rows=10)])
    assert batch["audio"].shape == (1, 3, 5) and batch["audio_lengths"].tolist() == [3]


def test_pad_to_max_length():
    collator = MSACollator(max_text_length=50, max_audio_length=20, max_vision_length=30, pad_to_max_length=True)
    batch = collator([_example(5, 7, 3), _example(8, 4, 6, seed=1)])
    assert batch["input_ids"].shape == (2, 50)
    assert batch["audio"].shape == (2, 20, 5) and batch["vision"].shape == (2, 30, 20)
    assert batch["attention_mask"].sum(1).tolist() == [5, 8]


def test_truncation_keeps_sep():
    examples = [_example(12, 30, 9, seed=3), _example(4, 5, 5)]
    batch = MSACollator(max_text_length=6, max_audio_length=10, max_vision_length=8)(examples)
    ids = batch["input_ids"]
    assert ids.shape == (2, 6)
    assert ids[0].tolist() == examples[0]["input_ids"][:5].tolist() + [102]
    assert ids[1, :4].tolist() == examples[1]["input_ids"].tolist()
    assert batch["audio_lengths"].tolist() == [10, 5] and batch["audio"].shape == (2, 10, 5)
    assert batch["vision_lengths"].tolist() == [8, 5]
    torch.testing.assert_close(batch["audio"][0], torch.from_numpy(examples[0]["audio"][:10]))


def test_truncation_of_text_without_final_sep_cuts_plainly():
    example = _example(10, 3, 3)
    example["input_ids"] = example["input_ids"][:-1]
    batch = MSACollator(max_text_length=5)([example])
    assert batch["input_ids"][0].tolist() == example["input_ids"][:5].tolist()


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.float32])
def test_text_bert_unpacking(dtype):
    text_bert = np.zeros((3, 10), dtype=dtype)
    text_bert[0, :7] = [101, 1037, 2843, 1997, 6517, 3033, 102]
    text_bert[1, :7] = 1
    short = np.zeros((3, 10), dtype=dtype)
    short[0, :3] = [101, 2000, 102]
    short[1, :3] = 1
    examples = [{"text_bert": text_bert, "labels": 1.0}, {"text_bert": short, "labels": -0.5}]
    batch = MSACollator()(examples)
    assert batch["input_ids"].tolist() == [[101, 1037, 2843, 1997, 6517, 3033, 102], [101, 2000, 102, 0, 0, 0, 0]]
    assert batch["attention_mask"].sum(1).tolist() == [7, 3]
    assert batch["input_ids"].dtype == torch.long
    assert "text_bert" not in batch


def test_missing_columns_and_dropped_modalities():
    examples = [_example(5, 4, 3), _example(6, 2, 2, seed=1)]
    no_vision = [{k: v for k, v in ex.items() if not k.startswith("vision")} for ex in examples]
    batch = MSACollator()(no_vision)
    assert "vision" not in batch and "vision_lengths" not in batch and "audio" in batch
    batch = MSACollator(drop_modalities=("audio",))(examples)
    assert "audio" not in batch and "audio_lengths" not in batch and "vision" in batch
    batch = MSACollator(drop_modalities=("text",))(examples)
    assert not {"input_ids", "attention_mask", "token_type_ids"} & set(batch)
    with pytest.raises(ValueError, match="drop_modalities"):
        MSACollator(drop_modalities=("video",))


def test_dtypes_and_passthrough():
    examples = [_example(5, 4, 3, seed=s) for s in range(3)]
    for i, ex in enumerate(examples):
        ex["index"] = i
        ex["labels_text"] = 0.25 * i
    batch = MSACollator()(examples)
    assert batch["labels"].dtype == torch.float32 and batch["factor_shared"].dtype == torch.float32
    assert batch["labels_text"].dtype == torch.float32 and batch["index"].dtype == torch.long
    for key in ("input_ids", "attention_mask", "token_type_ids", "audio_lengths", "vision_lengths"):
        assert batch[key].dtype == torch.long
    assert batch["audio"].dtype == torch.float32 and batch["vision"].dtype == torch.float32
    assert "id" not in batch and "text" not in batch
    assert batch["index"].tolist() == [0, 1, 2]
    classes = [dict(ex, labels=np.int64(i)) for i, ex in enumerate(examples)]
    assert MSACollator()(classes)["labels"].dtype == torch.long


def test_non_finite_values_raise_with_key():
    example = _example(5, 4, 3)
    bad = dict(example, audio=example["audio"].copy())
    bad["audio"][1, 2] = np.nan
    with pytest.raises(ValueError, match="'audio'"):
        MSACollator()([example, bad])
    with pytest.raises(ValueError, match="'labels'"):
        MSACollator()([example, dict(example, labels=np.float32("inf"))])
    vision = dict(example, vision=example["vision"].copy())
    vision["vision"][0, 0] = -np.inf
    with pytest.raises(ValueError, match="'vision'"):
        MSACollator()([vision])


def test_lengths_beyond_rows_raise_with_key():
    example = _example(5, 4, 3)
    with pytest.raises(ValueError, match="audio_lengths"):
        MSACollator()([dict(example, audio_lengths=9)])
    with pytest.raises(ValueError, match="vision_lengths"):
        MSACollator()([dict(example, vision_lengths=-1)])


def test_formats_give_identical_batches(small_dataset):
    collator = MSACollator(max_text_length=20)
    indices = [3, 0, 7, 12]
    batches = [
        collator(small_dataset["train"].with_format(fmt).__getitems__(indices)) for fmt in (None, "numpy", "torch")
    ]
    assert batches[0].keys() == batches[1].keys() == batches[2].keys()
    for key in batches[0]:
        torch.testing.assert_close(batches[0][key], batches[1][key])
        torch.testing.assert_close(batches[0][key], batches[2][key])


def test_dataloaders_shuffle_seeded_and_eval_in_order(small_dataset):
    def train_order(seed):
        loaders = build_dataloaders(small_dataset, batch_size=8, seed=seed)
        return torch.cat([b["factor_shared"] for b in loaders["train"]])

    torch.testing.assert_close(train_order(5), train_order(5))
    assert not torch.equal(train_order(5), train_order(6))
    loaders = build_dataloaders(small_dataset, batch_size=8, eval_batch_size=10)
    batches = list(loaders["test"])
    assert [len(b["labels"]) for b in batches] == [10, 10, 4]
    expected = torch.tensor(small_dataset["test"]["factor_shared"][:])
    torch.testing.assert_close(torch.cat([b["factor_shared"] for b in batches]), expected)
    assert sorted(loaders) == ["test", "train", "validation"]


def test_length_grouped_batches_cover_every_sample_and_cut_padding(small_dataset):
    grouped = build_dataloaders(small_dataset, batch_size=4, seed=1, length_grouped=True)["train"]
    plain = build_dataloaders(small_dataset, batch_size=4, seed=1)["train"]

    def padding(loader):
        masks = [b["attention_mask"] for b in loader]
        return sum(int((1 - m).sum()) for m in masks)

    first = torch.cat([b["factor_shared"] for b in grouped])
    second = torch.cat([b["factor_shared"] for b in grouped])
    assert sorted(first.tolist()) == sorted(small_dataset["train"]["factor_shared"][:]) == sorted(second.tolist())
    assert not torch.equal(first, second)
    assert padding(grouped) < padding(plain) / 2


def test_length_grouped_sampler_is_deterministic():
    lengths = np.random.default_rng(0).integers(3, 60, 500)
    a = LengthGroupedBatchSampler(lengths, batch_size=8, seed=3)
    b = LengthGroupedBatchSampler(lengths, batch_size=8, seed=3)
    assert list(a) == list(b) and len(list(a)) == len(a) == 63
    b.set_epoch(0)
    a.set_epoch(0)
    batches = list(a)
    assert batches == list(b)
    spans = [np.ptp(lengths[batch]) for batch in batches]
    assert np.median(spans) <= 3


def test_missing_mask_columns_are_padded_with_their_modality():
    examples = [_example(5, 4, 3), _example(7, 6, 2, seed=1)]
    for ex in examples:
        ex["text_missing_mask"] = np.ones(len(ex["input_ids"]), dtype=np.int8)
        ex["audio_missing_mask"] = np.ones(ex["audio_lengths"], dtype=np.int8)
    batch = MSACollator(max_text_length=6)(examples)
    assert batch["text_missing_mask"].shape == batch["input_ids"].shape == (2, 6)
    assert batch["text_missing_mask"].sum(1).tolist() == [5, 6]
    assert batch["audio_missing_mask"].shape == (2, 6) and batch["audio_missing_mask"].sum(1).tolist() == [4, 6]
    assert "vision_missing_mask" not in batch
