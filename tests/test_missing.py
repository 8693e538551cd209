"""MissingModality: MMSA data_missing semantics, training (generator) and evaluation (per-sample) modes."""

from __future__ import annotations

import pytest
import torch

from modeling.data import MSACollator, MissingModality
from modeling.synthetic import make_synthetic

RATES = {"text": 0.3, "audio": 0.3, "vision": 0.3}


def _batch(n=400, text_width=40, audio_width=60, vision_width=50, seed=0, padding_value=0.0):
    """A collated-like batch; ``padding_value`` fills A/V rows beyond the true length (to see if they change)."""
    g = torch.Generator().manual_seed(seed)
    text_len = torch.randint(3, text_width + 1, (n,), generator=g)
    pos = torch.arange(text_width)[None, :]
    mask = (pos < text_len[:, None]).long()
    ids = torch.randint(2000, 3000, (n, text_width), generator=g) * mask
    ids[:, 0] = 101
    ids[torch.arange(n), text_len - 1] = 102
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    batch["index"] = torch.arange(n)
    for name, width, dim in (("audio", audio_width, 5), ("vision", vision_width, 20)):
        lengths = torch.randint(1, width + 1, (n,), generator=g)
        x = torch.randn(n, width, dim, generator=g) + 5.0
        real = (torch.arange(width)[None, :] < lengths[:, None])[..., None]
        batch[name] = torch.where(real, x, torch.full_like(x, padding_value))
        batch[f"{name}_lengths"] = lengths
    return batch


def _eligible_text(batch):
    lengths = batch["attention_mask"].sum(1, keepdim=True)
    pos = torch.arange(batch["input_ids"].shape[1])[None, :]
    return (pos >= 1) & (pos < lengths - 1)


def _real(batch, name):
    return torch.arange(batch[name].shape[1])[None, :] < batch[f"{name}_lengths"][:, None]


def _zeroed(batch, name):
    return batch[name].eq(0).all(-1)


@pytest.mark.parametrize("mode", ["generator", "index"])
def test_rates_are_respected(mode):
    batch = _batch()
    transform = MissingModality(rates={"text": 0.3, "audio": 0.1, "vision": 0.5}, seed=7)
    if mode == "generator":
        out = transform.apply_to_batch(batch, generator=torch.Generator().manual_seed(0))
    else:
        out = transform.apply_to_batch(batch)
    eligible = _eligible_text(batch)
    unk = out["input_ids"].eq(100) & eligible
    assert abs(unk.sum().item() / eligible.sum().item() - 0.3) < 0.02
    for name, rate in (("audio", 0.1), ("vision", 0.5)):
        real = _real(batch, name)
        assert abs((_zeroed(out, name) & real).sum().item() / real.sum().item() - rate) < 0.02
        torch.testing.assert_close(out[f"{name}_missing_mask"], (real & ~_zeroed(out, name)).long())
    torch.testing.assert_close(out["text_missing_mask"], (batch["attention_mask"].bool() & ~unk).long())


def test_cls_sep_padding_and_frames_outside_length_untouched():
    batch = _batch(n=200, padding_value=7.0)
    out = MissingModality(rates={"text": 0.9, "audio": 0.9, "vision": 0.9}, drop={"text": 0.5}).apply_to_batch(batch)
    lengths = batch["attention_mask"].sum(1)
    rows = torch.arange(len(lengths))
    assert out["input_ids"][:, 0].eq(101).all() and out["input_ids"][rows, lengths - 1].eq(102).all()
    assert out["text_missing_mask"][:, 0].eq(1).all() and out["text_missing_mask"][rows, lengths - 1].eq(1).all()
    pad = batch["attention_mask"].eq(0)
    assert torch.equal(out["input_ids"][pad], batch["input_ids"][pad])
    assert out["text_missing_mask"][pad].eq(0).all()
    for name in ("audio", "vision"):
        outside = ~_real(batch, name)
        assert torch.equal(out[name][outside], batch[name][outside])
        assert out[f"{name}_missing_mask"][outside].eq(0).all()


def test_inputs_are_not_modified_in_place():
    batch = _batch(n=20)
    copy = {k: v.clone() for k, v in batch.items()}
    MissingModality(rates=RATES, drop={"audio": 1.0}).apply_to_batch(batch, generator=torch.Generator().manual_seed(0))
    for key in batch:
        assert torch.equal(batch[key], copy[key])


def test_rate_zero_is_identity():
    batch = _batch(n=50)
    out = MissingModality(rates={"text": 0.0, "audio": 0.0, "vision": 0.0}).apply_to_batch(batch)
    for key in batch:
        assert torch.equal(out[key], batch[key])
    torch.testing.assert_close(out["text_missing_mask"], batch["attention_mask"])
    for name in ("audio", "vision"):
        torch.testing.assert_close(out[f"{name}_missing_mask"], _real(batch, name).long())


def test_inter_modal_drop_removes_whole_modality():
    batch = _batch(n=1000)
    transform = MissingModality(drop={"audio": 0.5, "text": 1.0})
    out = transform.apply_to_batch(batch, generator=torch.Generator().manual_seed(1))
    real = _real(batch, "audio")
    dropped = (_zeroed(out, "audio") | ~real).all(1)
    kept = (~_zeroed(out, "audio") | ~real).all(1)
    assert bool((dropped | kept).all())
    assert abs(dropped.float().mean().item() - 0.5) < 0.05
    assert out["audio_missing_mask"][dropped].eq(0).all()
    assert torch.equal(out["vision"], batch["vision"])
    eligible = _eligible_text(batch)
    assert out["input_ids"][eligible].eq(100).all()
    assert out["text_missing_mask"].sum(1).eq(2).all()


def test_evaluation_corruption_is_per_sample_and_independent_of_batching():
    dataset, _ = make_synthetic(seed=0, aligned=False, sizes=(10, 5, 30))
    test = dataset["test"].add_column("index", list(range(30))).with_format("numpy")
    transform = MissingModality(rates=RATES, drop={"vision": 0.3}, seed=1234)
    collator = MSACollator()
    full = transform.apply_to_batch(collator(test.__getitems__(list(range(30)))))
    for order in ([7, 3], [29, 0, 15, 8, 21], [12]):
        part = transform.apply_to_batch(collator(test.__getitems__(order)))
        for row, i in enumerate(order):
            n = int(part["attention_mask"][row].sum())
            assert torch.equal(part["input_ids"][row, :n], full["input_ids"][i, :n])
            for name in ("audio", "vision"):
                t = int(part[f"{name}_lengths"][row])
                assert torch.equal(part[name][row, :t], full[name][i, :t])
                assert torch.equal(part[f"{name}_missing_mask"][row, :t], full[f"{name}_missing_mask"][i, :t])
    other_seed = MissingModality(rates=RATES, seed=99).apply_to_batch(collator(test.__getitems__(list(range(30)))))
    assert not torch.equal(other_seed["input_ids"], full["input_ids"])


def test_dataset_map_route_matches_batch_route():
    dataset, _ = make_synthetic(seed=0, aligned=True, sizes=(10, 5, 25))
    transform = MissingModality(rates=RATES, drop={"audio": 0.4}, seed=5)
    mapped = transform.map_dataset(dataset["test"])
    assert mapped.features["audio"] == dataset["test"].features["audio"]
    collator = MSACollator()
    from_map = collator(mapped.with_format("numpy").__getitems__(list(range(25))))
    indexed = dataset["test"].add_column("index", list(range(25))).with_format("numpy")
    from_batch = transform.apply_to_batch(collator(indexed.__getitems__(list(range(25)))))
    for key in ("input_ids", "audio", "vision", "text_missing_mask", "audio_missing_mask", "vision_missing_mask"):
        assert torch.equal(from_map[key], from_batch[key]), key
    assert from_map["input_ids"].eq(100).any()


def test_generator_mode_is_reproducible_and_random_across_steps():
    batch = _batch(n=64)
    transform = MissingModality(rates=RATES)
    a = transform.apply_to_batch(batch, generator=torch.Generator().manual_seed(3))
    b = transform.apply_to_batch(batch, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["audio"], b["audio"])
    g = torch.Generator().manual_seed(3)
    first, second = transform.apply_to_batch(batch, generator=g), transform.apply_to_batch(batch, generator=g)
    assert not torch.equal(first["input_ids"], second["input_ids"])


def test_invalid_arguments():
    with pytest.raises(ValueError, match="video"):
        MissingModality(rates={"video": 0.2})
    with pytest.raises(ValueError, match="probability"):
        MissingModality(drop={"audio": 1.5})


def test_missing_modality_in_batch_is_skipped():
    batch = {k: v for k, v in _batch(n=8).items() if not k.startswith("vision")}
    out = MissingModality(rates=RATES).apply_to_batch(batch)
    assert "vision" not in out and "vision_missing_mask" not in out and "audio_missing_mask" in out


def test_generator_takes_precedence_over_index_column():
    batch = _batch(n=64)
    transform = MissingModality(rates=RATES, seed=2)
    hashed = transform.apply_to_batch(batch)
    random = transform.apply_to_batch(batch, generator=torch.Generator().manual_seed(0))
    assert torch.equal(hashed["input_ids"], transform.apply_to_batch(batch, index=batch["index"])["input_ids"])
    assert not torch.equal(hashed["input_ids"], random["input_ids"])
