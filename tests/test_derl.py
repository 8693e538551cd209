"""DERL: shapes, gradients, loss composition, self-corruption with clean targets, missingness-aware fusion,
switches, save/reload."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel

from conftest import random_batch, tiny_text_config
from modeling import DERLConfig, DERLModel

GROUPS = {
    "text": ("input_ids", "attention_mask", "token_type_ids"),
    "audio": ("audio", "audio_lengths"),
    "vision": ("vision", "vision_lengths"),
}
QUIET = dict(dropout=0.0, head_dropout=0.0)


def tiny_config(**overrides) -> DERLConfig:
    values = dict(text_config=tiny_text_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
                  audio_dim=5, vision_dim=20, hidden_size=8, num_private_experts=2, num_shared_experts=3)
    values.update(overrides)
    return DERLConfig(**values)


def model_of(**overrides) -> DERLModel:
    torch.manual_seed(0)
    return DERLModel(tiny_config(**overrides))


def test_output_shapes_and_expert_weights():
    model = model_of().eval()
    batch = random_batch()
    batch.pop("labels")
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape == (4, 1) and out.loss is None and out.loss_terms is None
    assert out.fused.shape == (4, 4 * 8)
    for part in (out.private, out.shared, out.utterance):
        assert set(part) == {"text", "audio", "vision"} and all(v.shape == (4, 8) for v in part.values())
    importance = out.extra["importance"]
    assert set(importance) == {"text", "audio", "vision", "shared"}
    weights = torch.stack(list(importance.values()), -1)
    assert torch.allclose(weights.sum(-1), torch.ones(4)) and (weights > 0).all()
    assert all(g.shape == (4, 2) for g in out.extra["private_gates"].values())
    assert all(g.shape == (4, 3) for g in out.extra["shared_gates"].values())
    assert all(torch.allclose(g.sum(-1), torch.ones(4)) for g in out.extra["shared_gates"].values())
    # the fused vector is the importance-weighted experts, in FUSION_EXPERTS order
    expected = torch.cat([out.private["text"] * importance["text"][:, None],
                          out.private["audio"] * importance["audio"][:, None],
                          out.private["vision"] * importance["vision"][:, None]], -1)
    assert torch.allclose(out.fused[:, :24], expected)


def test_every_parameter_is_trained_and_loss_is_the_weighted_sum():
    model = model_of(orth_weight=0.2, sim_weight=0.3, recon_weight=0.7, balance_weight=0.05)
    model.train()
    out = model(**random_batch())
    terms = out.loss_terms
    assert set(terms) == {"task", "orth", "sim", "balance", "recon", "recon_token", "recon_utterance",
                          "recon_representation"}
    levels = terms["recon_token"] + terms["recon_utterance"] + terms["recon_representation"]
    assert torch.allclose(terms["recon"], levels)
    total = terms["task"] + 0.2 * terms["orth"] + 0.3 * terms["sim"] + 0.7 * terms["recon"] + 0.05 * terms["balance"]
    assert torch.allclose(out.loss, total)
    out.loss.backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]


def test_observed_fraction_follows_the_mmsa_missing_convention():
    model = model_of().eval()
    batch = random_batch()
    batch["audio"][0, :3] = 0.0  # sample 0 has all 9 audio frames real
    batch["input_ids"][0, 1:3] = 100  # two of its 5 content tokens become [UNK]
    with torch.no_grad():
        fraction = model(**batch).extra["observed_fraction"]
    assert math.isclose(float(fraction["audio"][0]), 6 / 9, rel_tol=1e-6)
    assert math.isclose(float(fraction["text"][0]), 3 / 5, rel_tol=1e-6)
    assert torch.equal(fraction["vision"], torch.ones(4))


def test_a_zeroed_modality_is_fused_like_an_absent_one():
    """With missingness awareness, a modality whose frames are all zero gets no importance and no share of the
    shared vector, exactly as when it is not passed at all."""
    model = model_of().eval()
    batch = random_batch()
    batch.pop("labels")
    zeroed = {**batch, "audio": torch.zeros_like(batch["audio"])}
    absent = {k: v for k, v in batch.items() if k not in GROUPS["audio"]}
    with torch.no_grad():
        a, b = model(**zeroed), model(**absent)
    assert torch.equal(a.extra["importance"]["audio"], torch.zeros(4))
    assert torch.allclose(a.logits, b.logits, atol=1e-6)
    unaware = model_of(missingness_aware=False).eval()
    with torch.no_grad():
        assert not torch.allclose(unaware(**zeroed).logits, unaware(**absent).logits, atol=1e-4)


def test_every_subset_of_modalities_works():
    model = model_of()
    batch = random_batch()
    for size in (1, 2, 3):
        for present in itertools.combinations(GROUPS, size):
            inputs = {k: batch[k] for m in present for k in GROUPS[m]}
            out = model(**inputs, labels=batch["labels"])
            assert torch.isfinite(out.loss), present
            assert set(out.private) == set(present) and set(out.extra["importance"]) == set(present) | {"shared"}
            out.loss.backward()
    with pytest.raises(ValueError, match="every modality is missing"):
        model(labels=batch["labels"])


# ------------------------------------------------------------------------------------------ corruption


def test_corrupt_keeps_cls_sep_padding_and_lengths():
    model = model_of(augment_missing_rate=1.0, augment_rate_sampling="fixed", augment_drop_prob=0.0)
    batch = random_batch()
    torch.manual_seed(1)
    out = model.corrupt({k: batch.get(k) for k in (*GROUPS["text"], *GROUPS["audio"], *GROUPS["vision"])})
    ids, mask = out["input_ids"], batch["attention_mask"]
    lengths = mask.sum(1)
    rows = torch.arange(4)
    assert torch.equal(ids[:, 0], batch["input_ids"][:, 0]) and ids[rows, lengths - 1].eq(102).all()
    content = mask.bool() & (torch.arange(7)[None] >= 1) & (torch.arange(7)[None] < lengths[:, None] - 1)
    assert ids[content].eq(100).all() and torch.equal(ids[~content], batch["input_ids"][~content])
    for m in ("audio", "vision"):
        real = torch.arange(batch[m].size(1))[None] < batch[f"{m}_lengths"][:, None]
        assert out[m][real].eq(0).all() and torch.equal(out[m][~real], batch[m][~real])
    assert all(batch[k] is out[k] for k in ("attention_mask", "audio_lengths", "vision_lengths"))


def test_corrupt_rates_and_drops():
    model = model_of(augment_missing_rate=0.4, augment_rate_sampling="fixed", augment_drop_prob=0.0)
    batch = random_batch(batch=64, audio_len=200, vision_len=5)
    inputs = {k: batch.get(k) for k in (*GROUPS["text"], *GROUPS["audio"], *GROUPS["vision"])}
    torch.manual_seed(0)
    audio = model.corrupt(inputs)["audio"]
    real = torch.arange(200)[None] < batch["audio_lengths"][:, None]
    assert abs(audio.eq(0).all(-1)[real].float().mean().item() - 0.4) < 0.03
    dropper = model_of(augment_missing_rate=0.0, augment_drop_prob=0.9, augment_modalities=["audio", "vision"])
    torch.manual_seed(0)
    out = dropper.corrupt(inputs)
    zero_audio = out["audio"].eq(0).all(-1).all(-1)
    zero_vision = out["vision"].eq(0).all(-1).all(-1)
    assert torch.equal(out["input_ids"], batch["input_ids"])  # text is not in augment_modalities
    assert 0.6 < zero_audio.float().mean() < 1.0 and 0.6 < zero_vision.float().mean() < 1.0
    only_av = dropper.corrupt({**inputs, **{k: None for k in GROUPS["text"]}})
    assert not (only_av["audio"].eq(0).all(-1).all(-1) & only_av["vision"].eq(0).all(-1).all(-1)).any()


def test_training_corrupts_and_reconstructs_the_clean_input(monkeypatch):
    """Training mode encodes a corrupted copy, but every reconstruction target comes from the clean input;
    evaluation mode never corrupts (deterministic, equal to the clean forward)."""
    model = model_of(**QUIET, augment_missing_rate=0.8, augment_rate_sampling="fixed")
    batch = random_batch()
    seen = {}
    encode, targets = model._encode, model._clean_targets

    def spy_encode(inputs):
        seen.setdefault("encoded", []).append(inputs)
        return encode(inputs)

    def spy_targets(clean, encoded, corrupted):
        seen["clean"], seen["corrupted"] = clean, corrupted
        seen["targets"] = targets(clean, encoded, corrupted)
        return seen["targets"]

    monkeypatch.setattr(model, "_encode", spy_encode)
    monkeypatch.setattr(model, "_clean_targets", spy_targets)
    model.train()
    model(**batch)
    assert seen["corrupted"] and seen["clean"]["audio"] is batch["audio"]
    first, clean_pass = seen["encoded"]  # the corrupted pass, then the clean pass of the representation level
    assert first["audio"].eq(0).all(-1).sum() > batch["audio"].eq(0).all(-1).sum()
    assert clean_pass["audio"] is batch["audio"] and clean_pass["input_ids"] is batch["input_ids"]
    real = (torch.arange(9)[None] < batch["audio_lengths"][:, None]).float()
    expected = (batch["audio"] * real[..., None]).sum(1) / real.sum(1, keepdim=True)
    assert torch.equal(seen["targets"]["audio"]["tokens"], batch["audio"])
    assert torch.allclose(seen["targets"]["audio"]["pooled"], expected)
    embeddings = model.text_encoder.get_input_embeddings()(batch["input_ids"])
    assert torch.equal(seen["targets"]["text"]["tokens"], embeddings)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, model(**batch).logits)


def test_augmentation_off_means_training_sees_the_clean_input():
    on = model_of(**QUIET)
    off = model_of(**QUIET, augment_missing_rate=0.0, augment_drop_prob=0.0)
    assert on.augments and not off.augments
    batch = random_batch()
    off.train()
    torch.manual_seed(0)
    a = off(**batch).logits
    off.eval()
    assert torch.allclose(a, off(**batch).logits, atol=1e-6)
    on.train()
    torch.manual_seed(0)
    b = on(**batch).logits
    assert not torch.allclose(b, on(**batch).logits)


# ------------------------------------------------------------------------------------------ switches


@pytest.mark.parametrize("overrides", [
    dict(router_input="token"),
    dict(router_top_k=1, fusion_gate="sigmoid", fusion_combine="sum", orthogonality="cosine"),
    dict(reconstruction_levels=["token"], pool_observed_only=False, missingness_aware=False),
    dict(reconstruction_levels=[], num_labels=3),
])
def test_switches_forward_and_backward(overrides):
    model = model_of(**overrides)
    batch = random_batch()
    if overrides.get("num_labels") == 3:
        batch["labels"] = torch.tensor([0, 2, 1, 2])
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]
    levels = model.config.reconstruction_levels
    assert {k[6:] for k in out.loss_terms if k.startswith("recon_")} == set(levels)
    assert hasattr(model, "utterance_decoders") == ("utterance" in levels)
    if model.config.fusion_combine == "sum":
        assert out.fused.shape == (4, 8)
    if model.config.num_labels == 3:
        assert torch.allclose(out.loss_terms["task"], F.cross_entropy(out.logits, batch["labels"]))


def test_top_k_routing_keeps_k_experts():
    model = model_of(router_top_k=1).eval()
    with torch.no_grad():
        out = model(**random_batch())
    for gates in (*out.extra["private_gates"].values(), *out.extra["shared_gates"].values()):
        assert torch.equal(gates.gt(0).sum(-1), torch.ones(4, dtype=torch.long))


def test_unaligned_lengths_and_empty_sequences():
    model = model_of()
    batch = random_batch(audio_len=40, vision_len=33)
    batch["vision_lengths"][1] = 0
    batch["vision"][1] = 0.0
    out = model(**batch)
    assert torch.isfinite(out.loss) and out.extra["observed_fraction"]["vision"][1] == 0
    out.loss.backward()


def test_config_validation():
    for bad in (dict(router_input="frame"), dict(fusion_gate="relu"), dict(fusion_combine="max"),
                dict(orthogonality="l2"), dict(augment_rate_sampling="beta"), dict(reconstruction_levels=["pixel"]),
                dict(augment_modalities=["video"]), dict(num_private_experts=0), dict(router_top_k=3),
                dict(augment_missing_rate=1.5), dict(encoder_kernel_size=2)):
        with pytest.raises(ValueError):
            DERLConfig(**bad)
    config = DERLConfig(reconstruction_levels=("representation", "token"))
    assert config.reconstruction_levels == ["token", "representation"]


def test_save_reload_identical_and_freezing_survives(tmp_path):
    model = model_of(text_frozen_layers=1, router_top_k=2, reconstruction_levels=["utterance"]).eval()
    batch = random_batch()
    model.save_pretrained(tmp_path)
    for loader in (DERLModel, AutoModel):
        reloaded = loader.from_pretrained(tmp_path).eval()
        assert isinstance(reloaded, DERLModel)
        assert reloaded.config.reconstruction_levels == ["utterance"] and reloaded.config.router_top_k == 2
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
        "method": "derl", "model": {"hidden_size": 8, "text_config": text},
        "data": {"path": str(tmp_path / "mosi"), "preset_dataset": "mosi"},
        "training": {"seeds": [3], "epochs": 2, "batch_size": 2, "tensorboard": False, "save_state": False,
                     "output_dir": str(tmp_path / "out")},
    })
    result = train(run)["per_seed"][3]
    assert result["test_samples"] == 4 and math.isfinite(result["test"]["mae"])
    log = [json.loads(line) for line in (tmp_path / "out" / "seed_3" / "log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(v) for record in log for v in record["train"].values())
    assert {"recon_token", "recon_utterance", "recon_representation", "balance"} <= set(log[0]["train"])
