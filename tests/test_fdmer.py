"""FDMER: the paper's losses (Eq. 4–11, 18) and fusion (Eq. 12–17), switches, presets for every dataset,
missing modalities, padding, save/reload, training on the synthetic classification variant."""

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
from modeling import FDMERConfig, FDMERModel
from modeling.configuration_fdmer import PAPER_TRAINING
from modeling.losses import angular_margin_loss, similarity_consistency

ORDER = ("text", "audio", "vision")
GROUPS = {
    "text": ("input_ids", "attention_mask", "token_type_ids"),
    "audio": ("audio", "audio_lengths"),
    "vision": ("vision", "vision_lengths"),
}
TINY = dict(hidden_size=16, discriminator_size=8, transformer_size=8, transformer_heads=2, transformer_ffn_size=16,
            text_layers=1, audio_layers=1, vision_layers=1)


def tiny_config(**overrides) -> FDMERConfig:
    values = dict(text_config=tiny_text_config(), audio_dim=5, vision_dim=20, **TINY)
    values.update(overrides)
    return FDMERConfig(**values)


# ------------------------------------------------------------------------------ consistency loss (Eq. 4–5)


def test_similarity_consistency_golden_value():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # cosine similarity matrix: identity
    b = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # all ones
    # one pair: ‖I − 11ᵀ‖²_F = 2
    assert similarity_consistency(torch.stack([a, b])).item() == pytest.approx(2.0)
    # three modalities: mean over the pairs (a,b), (a,a'), (b,a') with a' = a -> (2 + 0 + 2) / 3
    assert similarity_consistency(torch.stack([a, b, a])).item() == pytest.approx(4 / 3)
    # as printed, S = C · Ĉᵀ: scaling a's rows by 3 scales its matrix by 3 -> ‖3I − 11ᵀ‖²_F = 4 + 4 + 1 + 1
    assert similarity_consistency(torch.stack([3 * a, b]), "as_printed").item() == pytest.approx(10.0)


def test_similarity_consistency_properties():
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(3, 6, 4, generator=g)
    assert similarity_consistency(codes[[0, 0, 0]]).item() == 0.0
    scale = torch.rand(6, 1, generator=g) + 0.5  # positive per-sample rescaling of one modality
    rescaled = torch.stack([codes[0] * scale, codes[1], codes[2]])
    assert torch.allclose(similarity_consistency(rescaled), similarity_consistency(codes), atol=1e-5)
    assert not torch.allclose(similarity_consistency(rescaled, "as_printed"), similarity_consistency(codes, "as_printed"))
    loop = sum(
        (F.normalize(codes[i], dim=1) @ F.normalize(codes[i], dim=1).t()
         - F.normalize(codes[j], dim=1) @ F.normalize(codes[j], dim=1).t()).pow(2).sum()
        for i, j in ((0, 1), (0, 2), (1, 2))
    ) / 3
    assert torch.allclose(similarity_consistency(codes), loop, atol=1e-5)
    assert similarity_consistency(codes[:1]).item() == 0.0
    with pytest.raises(ValueError, match="shape"):
        similarity_consistency(codes[0])
    with pytest.raises(ValueError, match="normalise"):
        similarity_consistency(codes, "cosine")


# ------------------------------------------------------------------------------------------- the model


def test_forward_outputs_and_total_loss():
    torch.manual_seed(0)
    model = FDMERModel(tiny_config(adversarial_weight=0.3, consistency_weight=0.2, disparity_weight=0.7))
    out = model(**random_batch())
    assert out.logits.shape == (4, 1)
    assert set(out.loss_terms) == {"task", "ami", "ams", "con", "dis"}
    assert set(out.shared) == set(out.private) == set(out.utterance) == set(ORDER)
    assert all(v.shape == (4, 16) for part in (out.shared, out.private, out.utterance) for v in part.values())
    assert out.fused.shape == (4, 16)
    weights = out.extra["fusion_weights"]
    assert weights.shape == (4, 4) and torch.allclose(weights.sum(1), torch.ones(4))
    t = out.loss_terms
    expected = t["task"] + 0.3 * (t["ami"] + t["ams"]) + 0.2 * t["con"] + 0.7 * t["dis"]
    assert torch.allclose(out.loss, expected)
    out.loss.backward()
    for module in (model.common_encoder, model.private_encoders["audio"], model.discriminator, model.fusion,
                   model.sequence_encoders["vision"], model.text_encoder.embeddings):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), module


def test_loss_terms_follow_the_paper():
    torch.manual_seed(1)
    model = FDMERModel(tiny_config(dropout=0.0)).eval()
    out = model(**random_batch())
    c, p = out.shared, out.private
    d = model.discriminator
    weight = d.classifier.weight.t()
    labels = torch.arange(3).repeat_interleave(4)
    # Eq. 10–11: Σ_m (1/n) Σ_i L_am with α = 72, τ = 0.5
    ami = sum(angular_margin_loss(d.projection(c[m]), weight, labels[:4] + i, 72.0, 0.5) for i, m in enumerate(ORDER))
    ams = sum(angular_margin_loss(d.projection(p[m]), weight, labels[:4] + i, 72.0, 0.5) for i, m in enumerate(ORDER))
    assert torch.allclose(out.loss_terms["ami"], ami, rtol=1e-5)
    assert torch.allclose(out.loss_terms["ams"], ams, rtol=1e-5)
    assert torch.allclose(out.loss_terms["con"], similarity_consistency(torch.stack([c[m] for m in ORDER])))
    n = 4
    u = torch.eye(n) - torch.ones(n, n) / n

    def hsic_trace(x, y):  # Eq. 6 with the inner-product kernel
        return torch.trace(u @ x @ x.t() @ u @ y @ y.t()) / (n - 1) ** 2

    dis = sum(hsic_trace(p[a], p[b]) for a, b in itertools.combinations(ORDER, 2)) / 3
    assert torch.allclose(out.loss_terms["dis"], dis, rtol=1e-4, atol=1e-7)


def test_gradient_reversal_on_the_common_branch_only():
    torch.manual_seed(2)
    model = FDMERModel(tiny_config(dropout=0.0))
    out = model(**random_batch())
    common_weight = model.common_encoder[0].weight
    projection = model.discriminator.projection.weight
    reversed_grads = torch.autograd.grad(out.loss_terms["ami"], (common_weight, projection), retain_graph=True)
    labels = torch.arange(3).repeat_interleave(4)
    plain = model.discriminator.loss(torch.cat([out.shared[m] for m in ORDER]), labels) * 3
    plain_grads = torch.autograd.grad(plain, (common_weight, projection), retain_graph=True)
    assert torch.allclose(out.loss_terms["ami"], plain)
    assert torch.allclose(reversed_grads[0], -plain_grads[0], atol=1e-6)  # the encoder hides the modality
    assert torch.allclose(reversed_grads[1], plain_grads[1], atol=1e-6)  # the discriminator still learns it
    private_weight = model.private_encoders["text"][0].weight
    ams_grad = torch.autograd.grad(out.loss_terms["ams"], private_weight, retain_graph=True)[0]
    direct = model.discriminator.loss(torch.cat([out.private[m] for m in ORDER]), labels) * 3
    assert torch.allclose(ams_grad, torch.autograd.grad(direct, private_weight)[0], atol=1e-6)


def test_cross_entropy_discriminator_switch():
    torch.manual_seed(3)
    model = FDMERModel(tiny_config(discriminator_loss="ce", dropout=0.0)).eval()
    out = model(**random_batch())
    d = model.discriminator
    labels = torch.arange(3).repeat_interleave(4)
    logits = d.classifier(d.projection(torch.cat([out.shared[m] for m in ORDER])))
    assert torch.allclose(out.loss_terms["ami"], 3 * F.cross_entropy(logits, labels), rtol=1e-5)
    assert torch.allclose(model.modality_logits(out.shared["text"]), logits[:4])


def test_arcface_discriminator_logits_are_scaled_cosines():
    torch.manual_seed(4)
    model = FDMERModel(tiny_config()).eval()
    h = torch.randn(5, 16)
    d = model.discriminator
    cosine = F.normalize(d.projection(h), dim=1) @ F.normalize(d.classifier.weight, dim=1).t()
    assert torch.allclose(model.modality_logits(h), 72 * cosine, atol=1e-5)


def test_cmaf_phases_match_the_equations():
    torch.manual_seed(5)
    model = FDMERModel(tiny_config(dropout=0.0)).eval()
    fusion = model.fusion
    tokens = torch.randn(3, 4, 16)
    present = torch.ones(4, dtype=torch.bool)
    # phase 1 (Eq. 12–14) for target 2 (P_a), written out
    normed = fusion.target_norms[2](tokens[:, 2])
    g = fusion.target_projections[2](normed)
    source = fusion.source_norm(tokens.reshape(3, 64))
    q, values = fusion.source_query(source).view(3, 4, 16), fusion.source_value(source).view(3, 4, 16)
    attention = torch.softmax((q @ g.unsqueeze(-1)).squeeze(-1) / 4.0, -1)  # scaled by √d_k = 4
    y = normed + (attention.unsqueeze(-1) * values).sum(1)
    y = y + fusion.feed_forward(fusion.feed_forward_norm(y))
    interacted = fusion._interact(tokens, present)
    assert torch.allclose(interacted[:, 2], y, atol=1e-5)
    # phase 2 (Eq. 15–17) on the phase-1 outputs, per-target W_ta
    mu = torch.stack(
        [fusion.attention_vector(torch.tanh(fusion.weight_projections[i](interacted[:, i]))).squeeze(-1) for i in range(4)], 1
    )
    psi = mu.softmax(-1)
    fused, weights = fusion(tokens, present)
    assert torch.allclose(weights, psi, atol=1e-6)
    assert torch.allclose(fused, (psi.unsqueeze(-1) * interacted).sum(1), atol=1e-5)


def test_fusion_ablations():
    torch.manual_seed(6)
    batch = random_batch()
    expected_fused = {"concat": 64, "add": 16, "multiply": 16, "cmaf": 16}
    for fusion in expected_fused:
        model = FDMERModel(tiny_config(fusion=fusion, dropout=0.0)).eval()
        out = model(**batch)
        assert out.fused.shape == (4, expected_fused[fusion]) and torch.isfinite(out.loss)
        out.loss.backward()
        if fusion != "cmaf":
            assert out.extra is None and not hasattr(model, "fusion")
    add = FDMERModel(tiny_config(fusion="add")).eval()
    out = add(**batch)
    tokens = [sum(out.shared[m] for m in ORDER)] + [out.private[m] for m in ORDER]
    assert torch.allclose(out.fused, sum(tokens), atol=1e-6)
    multiply = FDMERModel(tiny_config(fusion="multiply")).eval()
    multiply.load_state_dict(add.state_dict())
    assert torch.allclose(multiply(**batch).fused, tokens[0] * tokens[1] * tokens[2] * tokens[3], atol=1e-6)
    no_phase2 = FDMERModel(tiny_config(cmaf_phase2=False)).eval()
    assert torch.allclose(no_phase2(**batch).extra["fusion_weights"], torch.full((4, 4), 0.25))
    no_phase1 = FDMERModel(tiny_config(cmaf_phase1=False)).eval()
    assert not hasattr(no_phase1.fusion, "source_query")
    out = no_phase1(**batch)
    tokens = torch.stack([sum(out.shared[m] for m in ORDER)] + [out.private[m] for m in ORDER], 1)
    assert torch.allclose(out.fused, (out.extra["fusion_weights"].unsqueeze(-1) * tokens).sum(1), atol=1e-6)
    shared_w = FDMERModel(tiny_config(cmaf_target_projections=False))
    assert len(shared_w.fusion.weight_projections) == 1 and len(no_phase1.fusion.weight_projections) == 4


def test_every_subset_of_modalities_works():
    torch.manual_seed(7)
    model = FDMERModel(tiny_config())
    batch = random_batch()
    for size in (1, 2, 3):
        for present in itertools.combinations(GROUPS, size):
            inputs = {k: batch[k] for m in present for k in GROUPS[m]}
            out = model(**inputs, labels=batch["labels"])
            assert torch.isfinite(out.loss), present
            assert set(out.shared) == set(present)
            weights = out.extra["fusion_weights"]
            for index, m in enumerate(ORDER, start=1):
                assert (weights[:, index] == 0).all() == (m not in present)
            out.loss.backward()
    with pytest.raises(ValueError, match="every modality is missing"):
        model(labels=batch["labels"])


def test_padding_does_not_change_predictions():
    torch.manual_seed(8)
    model = FDMERModel(tiny_config()).eval()
    batch = random_batch()
    padded = extra_padded(batch)
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, model(**padded).logits, atol=1e-5)
    last = FDMERModel(tiny_config(pooling="last", positional_encoding="none")).eval()
    with torch.no_grad():
        assert torch.allclose(last(**batch).logits, last(**padded).logits, atol=1e-5)


def test_bad_configuration_raises():
    for bad in (dict(fusion="gated"), dict(pooling="max"), dict(discriminator_loss="softmax"),
                dict(consistency_normalise="none"), dict(transformer_size=10, transformer_heads=4),
                dict(audio_layers=0), dict(task_loss="huber")):
        with pytest.raises(ValueError):
            tiny_config(**bad)


# ------------------------------------------------------------------------------------ presets, datasets


def test_official_presets():
    for dataset, (beta, gamma) in {"mosi": (0.02, 0.02), "mosei": (0.03, 0.04), "ur_funny": (0.02, 0.03)}.items():
        config = FDMERConfig.from_preset("official", dataset)
        assert (config.adversarial_weight, config.consistency_weight, config.disparity_weight) == (beta, gamma, gamma)
        assert (config.hidden_size, config.discriminator_size) == (256, 128)
        assert (config.text_layers, config.audio_layers, config.vision_layers) == (5, 4, 4)
        assert (config.angular_scale, config.angular_margin, config.discriminator_loss) == (72.0, 0.5, "arcface")
        assert config.fusion == "cmaf" and config.cmaf_phase1 and config.cmaf_phase2 and config.freeze_text_encoder
        assert config.num_labels == (2 if dataset == "ur_funny" else 1)
        run = yaml.safe_load((REPO_ROOT / "configs" / f"fdmer_{dataset}.yaml").read_text())
        assert run["method"] == "fdmer" and run["preset"] == "official" and run["data"]["preset_dataset"] == dataset
        training = run["training"]
        assert {k: training[k] for k in ("batch_size", "epochs", "lr")} == PAPER_TRAINING[dataset]
        assert training["optimizer"] == "adam"


# (dataset, audio_dim, vision_dim, text/audio/vision lengths): MMSA MOSI aligned and unaligned, MOSEI, UR-FUNNY
DATASETS = [
    ("mosi", 5, 20, (12, 12, 12)),
    ("mosi", 5, 20, (12, 375, 500)),
    ("mosei", 74, 35, (12, 12, 12)),
    ("ur_funny", 81, 75, (12, 12, 12)),
]


@pytest.mark.parametrize("dataset, audio_dim, vision_dim, lengths", DATASETS)
def test_preset_shapes_forward_backward(dataset, audio_dim, vision_dim, lengths):
    torch.manual_seed(9)
    config = FDMERConfig.from_preset("official", dataset, text_config=tiny_text_config(), audio_dim=audio_dim,
                                     vision_dim=vision_dim, **TINY)
    model = FDMERModel(config)
    batch = random_batch(batch=3, text_len=lengths[0], audio_len=lengths[1], vision_len=lengths[2],
                         audio_dim=audio_dim, vision_dim=vision_dim)
    if config.num_labels > 1:
        batch["labels"] = torch.tensor([0, 1, 1])
    out = model(**batch)
    assert out.logits.shape == (3, config.num_labels)
    assert model.sequence_encoders["audio"].input_projection.in_features == audio_dim
    out.loss.backward()
    assert not any(p.requires_grad for p in model.text_encoder.parameters())  # preset: BERT frozen
    assert model.sequence_encoders["text"].input_projection.weight.grad.abs().sum() > 0
    if config.num_labels > 1:
        assert torch.allclose(out.loss_terms["task"], F.cross_entropy(out.logits, batch["labels"]))


def test_full_size_official_parameter_shapes():
    from transformers import BertConfig

    config = FDMERConfig.from_preset("official", "mosei", text_config=BertConfig(), audio_dim=74, vision_dim=35)
    with torch.device("meta"):
        model = FDMERModel(config)
    assert model.discriminator.projection.weight.shape == (128, 256)
    assert model.discriminator.classifier.weight.shape == (3, 128)
    assert model.fusion.source_query.weight.shape == (1024, 1024)
    assert [len(model.sequence_encoders[m].transformer.layers) for m in ORDER] == [5, 4, 4]
    assert model.common_encoder[0].weight.shape == model.private_encoders["text"][2].weight.shape == (256, 256)
    assert model.head[-1].out_features == 1


# ------------------------------------------------------------------------------- reload and training


def test_save_reload_identical_and_freezing_survives(tmp_path):
    torch.manual_seed(10)
    model = FDMERModel(tiny_config(text_frozen_layers=1)).eval()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("text_encoder.encoder.layer.0.") for n in frozen)
    batch = random_batch()
    model.save_pretrained(tmp_path)
    for loader in (FDMERModel, AutoModel):
        reloaded = loader.from_pretrained(tmp_path).eval()
        assert isinstance(reloaded, FDMERModel)
        assert {n for n, p in reloaded.named_parameters() if not p.requires_grad} == frozen
        with torch.no_grad():
            a, b = model(**batch), reloaded(**batch)
        assert torch.equal(a.logits, b.logits) and torch.equal(a.extra["fusion_weights"], b.extra["fusion_weights"])


def test_trains_on_the_synthetic_binary_variant(tmp_path):
    from modeling.training import RunConfig, train

    raw = {
        "method": "fdmer",
        "model": {**TINY, "text_config": tiny_text_config(vocab_size=30522).to_dict()},
        "data": {"path": "synthetic", "synthetic": {"seed": 0, "sizes": [64, 16, 32], "task": "binary"},
                 "cache_dir": str(tmp_path / "cache")},
        "training": {"output_dir": str(tmp_path / "out"), "seeds": [3], "epochs": 1, "batch_size": 16,
                     "tensorboard": False, "save_state": False},
    }
    summary = train(RunConfig.from_dict(json.loads(json.dumps(raw))))
    assert summary["task"] == "classification"
    result = summary["per_seed"][3]
    assert set(result["test"]) == {"loss", "accuracy", "f1_weighted"} and result["test_samples"] == 32
    assert math.isfinite(result["test"]["loss"]) and result["parameters"] > 0


def test_two_class_checkpoint_reloads_with_two_labels(tmp_path):
    FDMERModel(tiny_config(num_labels=2)).save_pretrained(tmp_path)
    assert FDMERConfig.from_pretrained(tmp_path).num_labels == 2
