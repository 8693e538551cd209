"""TriDiRA: the printed losses, the triple split, the switches for what the paper leaves open, presets for every
dataset (MELD included), missing modalities, padding, save/reload, training on the synthetic 7-class variant."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
import torch.nn.functional as F
import yaml
from transformers import AutoModel

from conftest import REPO_ROOT, extra_padded, random_batch, tiny_text_config
from modeling import TriDiRAConfig, TriDiRAModel
from modeling.losses import cmd, hsic, label_agreement_loss, pearson_correlation

ORDER = ("text", "audio", "vision")
GROUPS = {
    "text": ("input_ids", "attention_mask", "token_type_ids"),
    "audio": ("audio", "audio_lengths"),
    "vision": ("vision", "vision_lengths"),
}
TINY = dict(hidden_size=16, fusion_ffn_dim=32)


def tiny_config(**overrides) -> TriDiRAConfig:
    values = dict(text_config=tiny_text_config(), audio_dim=5, vision_dim=20, **TINY)
    values.update(overrides)
    return TriDiRAConfig(**values)


# ----------------------------------------------------------------------------- L_ucorr (Pearson, signed)


def test_pearson_correlation_golden_values():
    y = torch.tensor([1.0, 2.0, 4.0, 7.0])
    assert pearson_correlation(3 * y + 5, y).item() == pytest.approx(1.0, abs=1e-6)
    assert pearson_correlation(-0.5 * y + 1, y).item() == pytest.approx(-1.0, abs=1e-6)
    x = torch.tensor([1.0, -1.0, 1.0, -1.0])
    z = torch.tensor([1.0, 1.0, -1.0, -1.0])
    assert pearson_correlation(x, z).item() == pytest.approx(0.0, abs=1e-7)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, generator=g), torch.randn(50, generator=g)
    reference = torch.corrcoef(torch.stack([a, b]))[0, 1]
    assert pearson_correlation(a, b).item() == pytest.approx(reference.item(), abs=1e-6)
    assert pearson_correlation(2.5 * a - 3, b).item() == pytest.approx(reference.item(), abs=1e-6)
    with pytest.raises(ValueError, match="as many values"):
        pearson_correlation(a, b[:3])


def test_pearson_correlation_constant_prediction_is_finite():
    constant = torch.full((6,), 0.7, requires_grad=True)
    value = pearson_correlation(constant, torch.arange(6.0))
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(constant.grad).all()


def test_label_agreement_loss_modes():
    y = torch.tensor([0.5, -1.0, 2.0, 0.0])
    anti = (-2 * y + 1).unsqueeze(1)
    assert label_agreement_loss(anti, y, "signed").item() == pytest.approx(-1.0, abs=1e-6)
    assert label_agreement_loss(anti, y, "abs").item() == pytest.approx(1.0, abs=1e-6)
    assert label_agreement_loss(anti, y, "squared").item() == pytest.approx(1.0, abs=1e-6)
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [0.5, 0.5, 3.0]])
    classes = torch.tensor([0, 2, 2])
    assert label_agreement_loss(logits, classes, "signed").item() == pytest.approx(-F.cross_entropy(logits, classes).item())
    uniform = torch.zeros(3, 3)
    assert label_agreement_loss(uniform, classes, "abs").item() == pytest.approx(0.0, abs=1e-7)
    certain = torch.tensor([[50.0, 0.0, 0.0], [0.0, 0.0, 50.0], [0.0, 0.0, 50.0]])
    assert label_agreement_loss(certain, classes, "squared").item() == pytest.approx((2 / 3) ** 2, abs=1e-6)
    never = torch.tensor([[-50.0, 0.0, 0.0]])
    assert label_agreement_loss(never, torch.tensor([0]), "signed").item() == pytest.approx(math.log(1e-8), rel=1e-6)
    with pytest.raises(ValueError, match="mode"):
        label_agreement_loss(anti, y, "pearson")


# ------------------------------------------------------------------------------------------- the model


def test_forward_outputs_and_total_loss():
    torch.manual_seed(0)
    weights = dict(modality_weight=0.5, ucorr_weight=0.3, sim_weight=0.7, inter_weight=2.0, intra_weight=3.0,
                   recon_weight=0.2)
    model = TriDiRAModel(tiny_config(**weights))
    out = model(**random_batch())
    assert out.logits.shape == (4, 1)
    assert set(out.loss_terms) == {"task", "modality", "ucorr", "sim", "inter", "intra", "recon"}
    assert set(out.shared) == set(out.private) == set(out.utterance) == set(ORDER)
    assert set(out.extra["ineffective_specific"]) == set(out.extra["specific"]) == set(ORDER)
    assert out.extra["ineffective_logits"].shape == (4, 1)
    assert out.fused.shape == (4, 6 * 16)
    t = out.loss_terms
    expected = t["task"] + sum(w * t[name.removesuffix("_weight")] for name, w in weights.items())
    assert torch.allclose(out.loss, expected)
    out.loss.backward()
    for module in (model.shared_encoder, model.specific_encoders["audio"], model.splitters["vision"],
                   model.discriminator, model.ineffective_head, model.reconstructors["text"], model.head):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), module


def test_complementary_split_and_independent_gates():
    torch.manual_seed(1)
    out = TriDiRAModel(tiny_config()).eval()(**random_batch())
    for m in ORDER:
        assert torch.allclose(out.private[m] + out.extra["ineffective_specific"][m], out.extra["specific"][m], atol=1e-6)
    model = TriDiRAModel(tiny_config(dual_attention="independent")).eval()
    assert model.splitters["text"].gates.out_features == 32
    out = model(**random_batch())
    splitter = model.splitters["audio"]
    u = out.extra["specific"]["audio"]
    a1, a2 = torch.sigmoid(splitter.gates(u)).chunk(2, -1)
    assert torch.allclose(out.private["audio"], a1 * u) and torch.allclose(out.extra["ineffective_specific"]["audio"], a2 * u)


def test_loss_terms_follow_the_printed_formulas():
    torch.manual_seed(2)
    model = TriDiRAModel(tiny_config(dropout=0.0, fusion_dropout=0.0)).eval()
    batch = random_batch()
    out = model(**batch)
    r, ru, us, u, x = out.shared, out.private, out.extra["ineffective_specific"], out.extra["specific"], out.utterance
    pairs = list(itertools.combinations(ORDER, 2))
    modality = sum(
        F.cross_entropy(model.discriminator(u[m]), torch.full((4,), i)) for i, m in enumerate(ORDER)
    )
    assert torch.allclose(out.loss_terms["modality"], modality, rtol=1e-5)
    ineffective = model.ineffective_head(torch.cat([us[m] for m in ORDER], -1))
    assert torch.allclose(out.loss_terms["ucorr"], pearson_correlation(ineffective, batch["labels"]), atol=1e-6)
    assert torch.allclose(out.loss_terms["sim"], sum(cmd(r[a], r[b], 5) for a, b in pairs) / 3, rtol=1e-5)
    assert torch.allclose(out.loss_terms["inter"], sum(hsic(ru[a], ru[b]) for a, b in pairs) / 3, rtol=1e-4)
    assert torch.allclose(out.loss_terms["intra"], sum(hsic(r[m], us[m]) for m in ORDER) / 3, rtol=1e-4)
    recon = sum(F.mse_loss(model.reconstructors[m](torch.cat([r[m], ru[m], us[m]], -1)), x[m]) for m in ORDER) / 3
    assert torch.allclose(out.loss_terms["recon"], recon, rtol=1e-5)


def test_discriminator_on_the_two_parts_and_rbf_kernel():
    torch.manual_seed(3)
    model = TriDiRAModel(tiny_config(discriminator_input="parts", hsic_kernel="rbf", dropout=0.0)).eval()
    out = model(**random_batch())
    ru, us = out.private, out.extra["ineffective_specific"]
    modality = sum(
        (F.cross_entropy(model.discriminator(ru[m]), torch.full((4,), i))
         + F.cross_entropy(model.discriminator(us[m]), torch.full((4,), i))) / 2
        for i, m in enumerate(ORDER)
    )
    assert torch.allclose(out.loss_terms["modality"], modality, rtol=1e-5)
    intra = sum(hsic(out.shared[m], us[m], "rbf") for m in ORDER) / 3
    assert torch.allclose(out.loss_terms["intra"], intra, rtol=1e-4)
    assert torch.allclose(model.modality_logits(ru["text"]), model.discriminator(ru["text"]))


def test_adversarial_ucorr_separates_the_head_from_the_encoders():
    torch.manual_seed(4)
    model = TriDiRAModel(tiny_config(ucorr_training="adversarial", ucorr_mode="squared", dropout=0.0))
    batch = random_batch()
    out = model(**batch)
    assert "ucorr_head" in out.loss_terms
    head = list(model.ineffective_head.parameters())
    gate = model.splitters["audio"].gates.weight
    ucorr_grads = torch.autograd.grad(out.loss_terms["ucorr"], head + [gate], retain_graph=True, allow_unused=True)
    assert all(g is None for g in ucorr_grads[:-1])  # the head is not trained to forget the label ...
    assert ucorr_grads[-1].abs().sum() > 0  # ... the encoders are trained to hide it from the head
    fit_grads = torch.autograd.grad(out.loss_terms["ucorr_head"], head + [gate], retain_graph=True, allow_unused=True)
    assert fit_grads[-1] is None and all(g.abs().sum() > 0 for g in fit_grads[:-1])
    pearson = pearson_correlation(out.extra["ineffective_logits"], batch["labels"])
    assert torch.allclose(out.loss_terms["ucorr"], pearson.pow(2), atol=1e-6)
    t = out.loss_terms
    assert torch.allclose(out.loss, sum(t.values()))


def test_fusion_concat_and_classification():
    torch.manual_seed(5)
    batch = random_batch()
    model = TriDiRAModel(tiny_config(fusion="concat", num_labels=3, dropout=0.0)).eval()
    assert not hasattr(model, "fusion_transformer")
    batch["labels"] = torch.tensor([0, 2, 1, 2])
    out = model(**batch)
    tokens = [out.shared[m] for m in ORDER] + [out.private[m] for m in ORDER]
    assert torch.allclose(out.fused, torch.cat(tokens, -1))
    assert torch.allclose(out.loss_terms["task"], F.cross_entropy(out.logits, batch["labels"]))
    ineffective = out.extra["ineffective_logits"]
    assert torch.allclose(out.loss_terms["ucorr"], -F.cross_entropy(ineffective, batch["labels"]), atol=1e-6)


def test_every_subset_of_modalities_works():
    torch.manual_seed(6)
    model = TriDiRAModel(tiny_config())
    batch = random_batch()
    for size in (1, 2, 3):
        for present in itertools.combinations(GROUPS, size):
            inputs = {k: batch[k] for m in present for k in GROUPS[m]}
            out = model(**inputs, labels=batch["labels"])
            assert torch.isfinite(out.loss), present
            assert set(out.shared) == set(out.extra["ineffective_specific"]) == set(present)
            out.loss.backward()
    with pytest.raises(ValueError, match="every modality is missing"):
        model(labels=batch["labels"])


def test_padding_does_not_change_predictions():
    torch.manual_seed(7)
    model = TriDiRAModel(tiny_config()).eval()
    batch = random_batch()
    padded = extra_padded(batch)
    with torch.no_grad():
        a, b = model(**batch), model(**padded)
    assert torch.allclose(a.logits, b.logits, atol=1e-5)
    assert torch.allclose(a.extra["ineffective_logits"], b.extra["ineffective_logits"], atol=1e-5)


def test_bad_configuration_raises():
    for bad in (dict(dual_attention="softmax"), dict(ucorr_mode="pearson"), dict(ucorr_training="frozen"),
                dict(hsic_kernel="poly"), dict(discriminator_input="u"), dict(fusion="sum"),
                dict(hidden_size=15, fusion_num_heads=2), dict(task_loss="ce")):
        with pytest.raises(ValueError):
            tiny_config(**bad)


# ------------------------------------------------------------------------------------ presets, datasets


def test_official_presets():
    for dataset in ("mosi", "mosei", "ur_funny", "meld"):
        config = TriDiRAConfig.from_preset("official", dataset)
        weights = [config.modality_weight, config.ucorr_weight, config.sim_weight, config.inter_weight,
                   config.intra_weight, config.recon_weight]
        assert weights == [1.0] * 6
        assert (config.ucorr_mode, config.ucorr_training, config.discriminator_input) == ("signed", "joint", "specific")
        assert config.num_labels == {"ur_funny": 2, "meld": 7}.get(dataset, 1)
        run = yaml.safe_load((REPO_ROOT / "configs" / f"tridira_{dataset}.yaml").read_text())
        assert run["method"] == "tridira" and run["preset"] == "official" and run["data"]["preset_dataset"] == dataset
        assert (run["data"].get("task") == "classification") == (dataset in ("ur_funny", "meld"))


# (dataset, audio_dim, vision_dim, lengths, extra config): MMSA MOSI aligned and unaligned, MOSEI, UR-FUNNY,
# MELD with its 1611-d openSMILE utterance vector as a one-step sequence
DATASETS = [
    ("mosi", 5, 20, (12, 12, 12), {}),
    ("mosi", 5, 20, (12, 375, 500), {}),
    ("mosei", 74, 35, (12, 12, 12), {}),
    ("ur_funny", 81, 75, (12, 12, 12), {}),
    ("meld", 1611, 35, (12, 1, 12), {"lstm_hidden_size": 8}),
]


@pytest.mark.parametrize("dataset, audio_dim, vision_dim, lengths, extra", DATASETS)
def test_preset_shapes_forward_backward(dataset, audio_dim, vision_dim, lengths, extra):
    torch.manual_seed(8)
    config = TriDiRAConfig.from_preset("official", dataset, text_config=tiny_text_config(), audio_dim=audio_dim,
                                       vision_dim=vision_dim, **TINY, **extra)
    model = TriDiRAModel(config)
    batch = random_batch(batch=3, text_len=lengths[0], audio_len=lengths[1], vision_len=lengths[2],
                         audio_dim=audio_dim, vision_dim=vision_dim)
    if config.num_labels > 1:
        batch["labels"] = torch.tensor([0, 1, config.num_labels - 1])
    out = model(**batch)
    assert out.logits.shape == out.extra["ineffective_logits"].shape == (3, config.num_labels)
    assert model.sequence_encoders["audio"].rnn1.input_size == audio_dim
    assert model.sequence_encoders["audio"].rnn1.hidden_size == extra.get("lstm_hidden_size", audio_dim)
    out.loss.backward()
    assert torch.isfinite(out.loss) and model.projections["audio"][0].weight.grad.abs().sum() > 0


# ------------------------------------------------------------------------------- reload and training


def test_save_reload_identical_and_freezing_survives(tmp_path):
    torch.manual_seed(9)
    model = TriDiRAModel(tiny_config(text_frozen_layers=1)).eval()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("text_encoder.encoder.layer.0.") for n in frozen)
    batch = random_batch()
    model.save_pretrained(tmp_path)
    for loader in (TriDiRAModel, AutoModel):
        reloaded = loader.from_pretrained(tmp_path).eval()
        assert isinstance(reloaded, TriDiRAModel)
        assert {n for n, p in reloaded.named_parameters() if not p.requires_grad} == frozen
        with torch.no_grad():
            a, b = model(**batch), reloaded(**batch)
        # identical weights; CPU LSTM kernels can round the last bit differently for the reloaded (differently
        # aligned) tensors (MISA's encoder too), hence a float32-rounding tolerance rather than torch.equal
        for name in ("logits", "fused"):
            assert torch.allclose(getattr(a, name), getattr(b, name), rtol=0, atol=1e-6)
        assert torch.allclose(a.extra["ineffective_logits"], b.extra["ineffective_logits"], rtol=0, atol=1e-6)
    assert all(torch.equal(v, reloaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_trains_on_the_synthetic_emotion_variant(tmp_path):
    from modeling.training import RunConfig, train

    raw = {
        "method": "tridira",
        "preset": "official",
        "model": {**TINY, "text_config": tiny_text_config(vocab_size=30522).to_dict()},
        "data": {"path": "synthetic", "preset_dataset": "meld", "cache_dir": str(tmp_path / "cache"),
                 "synthetic": {"seed": 0, "sizes": [96, 16, 32], "task": "emotion7"}},
        "training": {"output_dir": str(tmp_path / "out"), "seeds": [3], "epochs": 1, "batch_size": 16,
                     "tensorboard": False, "save_state": False},
    }
    summary = train(RunConfig.from_dict(json.loads(json.dumps(raw))))
    assert summary["task"] == "classification"
    result = summary["per_seed"][3]
    assert set(result["test"]) == {"loss", "accuracy", "f1_weighted"} and math.isfinite(result["test"]["loss"])
    reloaded = TriDiRAModel.from_pretrained(result["checkpoint"])
    assert reloaded.config.num_labels == 7 and reloaded.config.preset == "official"
