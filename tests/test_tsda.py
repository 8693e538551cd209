"""TSDA: segment pooling, order (in)sensitivity of the two encoders, the block-diagonal alignment mask, gated
recoupling, loss composition, missing modalities, aligned/unaligned, switches, save/reload."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel

from conftest import random_batch, tiny_text_config
from modeling import TSDAConfig, TSDAModel
from modeling.losses import difference_loss, hsic
from modeling.modeling_tsda import segment_pool

GROUPS = {
    "text": ("input_ids", "attention_mask", "token_type_ids"),
    "audio": ("audio", "audio_lengths"),
    "vision": ("vision", "vision_lengths"),
}
K, S, D = 3, 2, 8


def model_of(**overrides) -> TSDAModel:
    values = dict(text_config=tiny_text_config(), audio_dim=5, vision_dim=20, hidden_size=D, num_heads=2,
                  temporal_tokens=K, spatial_tokens=S)
    values.update(overrides)
    torch.manual_seed(0)
    return TSDAModel(TSDAConfig(**values))


def test_segment_pool_golden():
    x = torch.arange(7, dtype=torch.float).view(1, 7, 1).repeat(2, 1, 1)
    real = torch.tensor([[True] * 6 + [False], [True] * 2 + [False] * 5])
    pooled, valid = segment_pool(x, real, 3)
    # length 6: segments {0,1}, {2,3}, {4,5}; length 2: step t goes to floor(t·3/2): {0}, {1}, {}
    assert torch.equal(pooled[0, :, 0], torch.tensor([0.5, 2.5, 4.5]))
    assert torch.equal(pooled[1, :, 0], torch.tensor([0.0, 1.0, 0.0]))
    assert torch.equal(valid, torch.tensor([[True, True, True], [True, True, False]]))


def test_output_shapes_and_exposed_parts():
    model = model_of().eval()
    batch = random_batch()
    batch.pop("labels")
    with torch.no_grad():
        out = model(**batch)
    extra = out.extra
    assert out.logits.shape == (4, 1) and out.loss is None and out.fused.shape == (4, D)
    assert out.shared is None and out.private is None
    for m in GROUPS:
        assert extra["temporal_tokens"][m].shape == (4, K, D) and extra["spatial_tokens"][m].shape == (4, S, D)
        assert extra["temporal"][m].shape == extra["spatial"][m].shape == (4, D)
    n = 3 * K + 3 * S
    assert extra["aligned_tokens"].shape == (4, n, D) and extra["alignment_mask"].shape == (n, n)
    assert extra["alignment_tokens"][:K] == ["temporal:text"] * K and extra["alignment_tokens"][-1] == "spatial:vision"
    assert extra["gate"].shape == (4, D) and ((extra["gate"] > 0) & (extra["gate"] < 1)).all()
    assert set(extra["factor_logits"]) == set(extra["confidence"]) == {"temporal", "spatial"}
    h_t = torch.stack(list(extra["temporal"].values())).mean(0)
    h_s = torch.stack(list(extra["spatial"].values())).mean(0)
    assert torch.allclose(out.fused, extra["gate"] * h_t + (1 - extra["gate"]) * h_s, atol=1e-6)


def test_alignment_mask_is_block_diagonal_by_factor():
    out = model_of().eval()(**random_batch())
    mask, names = out.extra["alignment_mask"], out.extra["alignment_tokens"]
    factor = torch.tensor([name.startswith("temporal") for name in names])
    assert torch.equal(mask, factor[:, None] == factor[None, :])
    assert mask[:3 * K, :3 * K].all() and not mask[:3 * K, 3 * K:].any()  # temporal tokens of every modality
    full = model_of(alignment_mask="full").eval()(**random_batch())
    assert full.extra["alignment_mask"].all()


@pytest.mark.parametrize("mode, isolated", [("factor", True), ("full", False)])
def test_factor_consistent_alignment_isolates_the_factors(mode, isolated):
    """With the factor mask, changing the temporal tokens cannot change the aligned spatial tokens."""
    model = model_of(alignment_mask=mode).eval()
    g = torch.Generator().manual_seed(0)
    temporal = {m: torch.randn(2, K, D, generator=g) for m in GROUPS}
    spatial = {m: torch.randn(2, S, D, generator=g) for m in GROUPS}
    valid = {m: torch.ones(2, K, dtype=torch.bool) for m in GROUPS}
    with torch.no_grad():
        before = model._align(temporal, valid, spatial)[0]
        moved = {m: t + torch.randn(t.shape, generator=g) for m, t in temporal.items()}
        after = model._align(moved, valid, spatial)[0]
    assert torch.allclose(before[:, 3 * K:], after[:, 3 * K:], atol=1e-6) == isolated
    assert not torch.allclose(before[:, :3 * K], after[:, :3 * K])


@pytest.mark.parametrize("kind", ["attention", "statistics"])
def test_spatial_encoder_ignores_order_temporal_encoder_does_not(kind):
    model = model_of(spatial_encoder=kind).eval()
    batch = random_batch(audio_len=12)
    batch["audio_lengths"][:] = 12
    shuffled = {**batch, "audio": batch["audio"][:, torch.randperm(12, generator=torch.Generator().manual_seed(3))]}
    with torch.no_grad():
        a, b = model(**batch).extra, model(**shuffled).extra
    assert torch.allclose(a["spatial_tokens"]["audio"], b["spatial_tokens"]["audio"], atol=1e-5)
    assert not torch.allclose(a["temporal_tokens"]["audio"], b["temporal_tokens"]["audio"], atol=1e-3)


def test_every_parameter_is_trained_and_loss_is_the_weighted_sum():
    model = model_of(factor_weight=0.5, purity_weight=0.2, cosine_weight=0.3, hsic_weight=0.4, orth_weight=0.6)
    batch = random_batch()
    out = model(**batch)
    terms = out.loss_terms
    assert set(terms) == {"task", "factor_temporal", "factor_spatial", "factor", "purity", "cosine", "hsic", "orth"}
    total = (terms["task"] + 0.5 * terms["factor"] + 0.2 * terms["purity"] + 0.3 * terms["cosine"]
             + 0.4 * terms["hsic"] + 0.6 * terms["orth"])
    assert torch.allclose(out.loss, total)
    extra = out.extra
    temporal = torch.stack(list(extra["temporal"].values()))
    spatial = torch.stack(list(extra["spatial"].values()))
    assert torch.allclose(terms["hsic"], hsic(temporal, spatial, "rbf").mean())
    cosine = F.cosine_similarity(temporal, spatial, dim=-1).pow(2).mean()
    assert torch.allclose(terms["cosine"], cosine)
    h_t, h_s, gate = temporal.mean(0), spatial.mean(0), extra["gate"]
    assert torch.allclose(terms["orth"], difference_loss(gate * h_t, (1 - gate) * h_s))
    spatial_head = extra["factor_logits"]["spatial"].view(-1)
    assert torch.allclose(terms["factor_spatial"], F.mse_loss(spatial_head, batch["labels"]))
    out.loss.backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]


def test_purity_ignores_empty_temporal_segments():
    model = model_of(temporal_tokens=6)
    batch = random_batch(vision_len=6)
    batch["vision_lengths"][:] = torch.tensor([6, 2, 1, 3])
    out = model(**batch)
    valid = out.extra["temporal_valid"]["vision"]
    assert valid.sum(1).tolist() == [6, 2, 1, 3]
    assert torch.isfinite(out.loss)


def test_every_subset_of_modalities_works():
    model = model_of()
    batch = random_batch()
    for size in (1, 2, 3):
        for present in itertools.combinations(GROUPS, size):
            out = model(**{k: batch[k] for m in present for k in GROUPS[m]}, labels=batch["labels"])
            assert torch.isfinite(out.loss), present
            assert set(out.extra["temporal"]) == set(present)
            assert len(out.extra["alignment_tokens"]) == len(present) * (K + S)
            out.loss.backward()
    with pytest.raises(ValueError, match="every modality is missing"):
        model(labels=batch["labels"])


@pytest.mark.parametrize("overrides", [
    dict(temporal_encoder="gru", spatial_encoder="statistics"),
    dict(gate_form="scalar", gate_inputs="features", hsic_kernel="linear"),
    dict(num_labels=3),
])
def test_switches_unaligned_and_empty_sequences(overrides):
    model = model_of(**overrides)
    batch = random_batch(audio_len=37, vision_len=50)  # unaligned: every modality has its own length
    batch["vision_lengths"][2] = 0
    batch["vision"][2] = 0.0
    if overrides.get("num_labels") == 3:
        batch["labels"] = torch.tensor([0, 2, 1, 2])
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]
    if overrides.get("gate_form") == "scalar":
        assert out.extra["gate"].shape == (4, 1) and out.extra["confidence"] is None
    if overrides.get("num_labels") == 3:
        assert torch.allclose(out.loss_terms["task"], F.cross_entropy(out.logits, batch["labels"]))


def test_config_validation():
    for bad in (dict(temporal_encoder="lstm"), dict(spatial_encoder="max"), dict(alignment_mask="causal"),
                dict(gate_form="matrix"), dict(gate_inputs="labels"), dict(hsic_kernel="poly"),
                dict(hidden_size=10, num_heads=4), dict(temporal_tokens=0), dict(temporal_kernel_size=4)):
        with pytest.raises(ValueError):
            TSDAConfig(**bad)


def test_save_reload_identical_and_freezing_survives(tmp_path):
    model = model_of(text_frozen_layers=1, temporal_encoder="gru").eval()
    batch = random_batch()
    model.save_pretrained(tmp_path)
    for loader in (TSDAModel, AutoModel):
        reloaded = loader.from_pretrained(tmp_path).eval()
        assert isinstance(reloaded, TSDAModel) and reloaded.config.temporal_encoder == "gru"
        assert not any(p.requires_grad for p in reloaded.text_encoder.encoder.layer[0].parameters())
        with torch.no_grad():
            a, b = model(**batch), reloaded(**batch)
        assert torch.equal(a.logits, b.logits) and torch.equal(a.loss, b.loss)


@pytest.mark.parametrize("aligned", [True, False])
def test_trains_on_mosi_shaped_mmsa_data(tmp_path, aligned):
    from fixtures_data import make_mmsa_pickle
    from modeling.converters import convert_mmsa_pickle
    from modeling.features import save_msa_dataset
    from modeling.training import RunConfig, train

    path, _ = make_mmsa_pickle(tmp_path, aligned=aligned)
    dataset, metadata = convert_mmsa_pickle(path)
    save_msa_dataset(dataset, str(tmp_path / "mosi"), metadata)
    text = dict(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    run = RunConfig.from_dict({
        "method": "tsda", "model": {"hidden_size": 8, "num_heads": 2, "text_config": text},
        "data": {"path": str(tmp_path / "mosi"), "preset_dataset": "mosi"},
        "training": {"seeds": [3], "epochs": 2, "batch_size": 2, "tensorboard": False, "save_state": False,
                     "output_dir": str(tmp_path / "out")},
    })
    result = train(run)["per_seed"][3]
    assert result["test_samples"] == 4 and math.isfinite(result["test"]["mae"])
    log = [json.loads(line) for line in (tmp_path / "out" / "seed_3" / "log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(v) for record in log for v in record["train"].values())
