"""DMD: official parameter parity, loss wiring as implemented, golden values, missing modalities, text padding,
save/reload, remote code, presets."""

from __future__ import annotations

import itertools
import math
import re

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, BertConfig, BertModel

from modeling import DMDConfig, DMDModel
from official_references import official_hinge
from conftest import random_batch, tiny_text_config

ORDER = ("text", "vision", "audio")
GROUPS = {
    "text": ("input_ids", "attention_mask", "token_type_ids"),
    "audio": ("audio", "audio_lengths"),
    "vision": ("vision", "vision_lengths"),
}


def tiny_config(**overrides) -> DMDConfig:
    values = dict(
        text_config=tiny_text_config(), audio_dim=5, vision_dim=20, text_length=8, audio_length=10, vision_length=8,
        hidden_size=8, num_heads=2, nlevels=1, conv_kernel_text=3, conv_kernel_audio=3, conv_kernel_vision=2,
        homo_gd_size=4, hetero_gd_size=6,
    )
    values.update(overrides)
    return DMDConfig(**values)


def official_total(t: dict, homo_repr: bool = False) -> torch.Tensor:
    """``combined_loss`` of trains/singleTask/DMD.py, term by term."""
    task = t["task"] + t["task_common"] + sum(t[f"task_{b}_{m}"] for b in ("homo", "hetero") for m in ORDER)
    homo = 0.05 * (t["homo_logit"] + t["homo_reg"] + (t["homo_repr"] if homo_repr else 0))
    hetero = 0.05 * (t["hetero_logit"] + t["hetero_repr"] + t["hetero_reg"])
    return task + homo + hetero + (t["cyc"] + t["rec"] + (t["margin"] + t["ort"]) * 0.1) * 0.1


TERMS = {"task", "task_common", "rec", "cyc", "margin", "ort"} | {
    f"task_{b}_{m}" for b in ("homo", "hetero") for m in ORDER
} | {f"{b}_{p}" for b in ("homo", "hetero") for p in ("logit", "repr", "reg")}


# ----------------------------------------------------------------------------------------------- forward / loss


def test_forward_shapes_terms_and_official_total():
    torch.manual_seed(0)
    model = DMDModel(tiny_config())
    batch = random_batch()
    out = model(**batch)
    assert out.logits.shape == (4, 1)
    assert set(out.loss_terms) == TERMS
    assert set(out.shared) == set(out.private) == set(out.utterance) == set(ORDER)
    assert out.shared["text"].shape == out.private["audio"].shape == out.utterance["vision"].shape == (4, 8)
    assert out.fused.shape == (4, 9 * 8)
    assert torch.allclose(out.loss, official_total(out.loss_terms), rtol=1e-6, atol=1e-6)
    quirk = DMDModel(tiny_config(homo_repr_in_total=True))
    quirk.load_state_dict(model.state_dict())
    torch.manual_seed(1)
    a = model(**batch)
    torch.manual_seed(1)
    b = quirk(**batch)
    assert torch.allclose(b.loss, official_total(b.loss_terms, homo_repr=True), rtol=1e-6, atol=1e-6)
    assert torch.allclose(b.loss - a.loss, 0.05 * a.loss_terms["homo_repr"], atol=1e-5)


def test_every_parameter_is_trained():
    """The official optimiser updates the whole DMD model and both kernels; only ``proj_cosine_*`` (not built
    here) and BERT's pooler (absent) never get a gradient. Every parameter here must get one."""
    torch.manual_seed(0)
    model = DMDModel(tiny_config())
    model(**random_batch()).loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_feature_shapes_follow_the_official_walkthrough():
    torch.manual_seed(0)
    model = DMDModel(tiny_config()).eval()
    batch = random_batch()
    with torch.no_grad():
        f = model._features(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], batch["audio"],
                            batch["vision"])
    reduced = {"text": 6, "audio": 8, "vision": 7}  # T' = length - kernel + 1
    for m in ORDER:
        assert f["proj"][m].shape == f["recon"][m].shape == f["s_cycle"][m].shape == (4, 8, reduced[m])
        assert f["s"][m].shape == f["c"][m].shape == (reduced[m], 4, 8)
        assert f["c_sim"][m].shape == f["homo_repr"][m].shape == f["c_att"][m].shape == (4, 8)
        assert f["homo_logits"][m].shape == f["hetero_logits"][m].shape == (4, 1)
        assert f["last_h"][m].shape == f["hetero_repr"][m].shape == (4, 16)
        assert (f["homo_repr"][m] >= 0).all()  # post-ReLU, as the official in-place ReLU leaves it
    assert f["c_fusion"].shape == (4, 24) and f["fused"].shape == (4, 72)
    assert ((f["fused"] > 0) & (f["fused"] < 1)).all()  # sigmoid projections


def _relu_cosine(x: torch.Tensor, y: torch.Tensor, dim: int) -> torch.Tensor:
    """``CosineEmbeddingLoss(x, y, target=-1)`` with ATen's formula (EPSILON 1e-12 on the squared norms)."""
    prod = (x * y).sum(dim)
    denom = torch.sqrt(((x * x).sum(dim) + 1e-12) * ((y * y).sum(dim) + 1e-12))
    return (prod / denom).clamp_min(0).mean()


def _official_gd(kernel, logits, reprs, prior_weights, repr_metric):
    """distillnets/get_distillation_kernel{,_homo}.py: forward edges and distillation_loss, as loops."""
    z = [torch.cat([kernel.W_logit(lg), kernel.W_repr(r)], dim=1) for lg, r in zip(logits, reprs)]
    pairs = [(j, i) for j in range(3) for i in range(3) if i != j]
    edges = torch.cat([kernel.W_edge(torch.cat([z[j], z[i]], dim=1)) for j, i in pairs], dim=1)
    edges = F.softmax(edges / 8, dim=1).t()
    prior = F.softmax(torch.tensor(prior_weights) / 0.25, dim=0)
    reg = (edges.mean(1) - prior).pow(2).sum() * 10
    logit = repr_ = 0
    for k, (j, i) in enumerate(pairs):
        w = edges[k] + prior[k]
        logit = logit + ((logits[j] - logits[i].detach()).abs().sum(1) * w).mean()
        if repr_metric == "l1":
            repr_ = repr_ + 10 * ((reprs[j] - reprs[i].detach()).abs().sum(1) * w).mean()
        else:
            repr_ = repr_ + 10 * (_relu_cosine(reprs[j], reprs[i].detach(), 1) * w).mean()
    return {"logit": logit, "repr": repr_, "reg": reg}


@pytest.mark.parametrize("ort_mode", ["legacy_batch_axis", "per_token", "per_sample_flat"])
def test_loss_terms_follow_the_official_definitions(ort_mode):
    torch.manual_seed(0)
    model = DMDModel(tiny_config(ort_mode=ort_mode)).eval()
    batch = random_batch()
    batch["labels"][1] = batch["labels"][3]  # two samples with exactly equal labels: extra margin positives
    inputs = [batch[k] for k in ("input_ids", "attention_mask", "token_type_ids", "audio", "vision")]
    with torch.no_grad():
        out = model(**batch)
        f = model._features(*inputs)
    t, y = out.loss_terms, batch["labels"]
    assert torch.allclose(t["task"], (f["logits"].view(-1) - y).abs().mean())
    assert torch.allclose(t["task_common"], (f["common_logits"].view(-1) - y).abs().mean())
    for m in ORDER:
        assert torch.allclose(t[f"task_homo_{m}"], (f["homo_logits"][m].view(-1) - y).abs().mean())
        assert torch.allclose(t[f"task_hetero_{m}"], (f["hetero_logits"][m].view(-1) - y).abs().mean())
    assert torch.allclose(t["rec"], sum(((f["recon"][m] - f["proj"][m]) ** 2).mean() for m in ORDER))
    assert torch.allclose(t["cyc"], sum(((f["s"][m].permute(1, 2, 0) - f["s_cycle"][m]) ** 2).mean() for m in ORDER))
    d = model.config.hidden_size
    if ort_mode == "legacy_batch_axis":  # PyTorch < 1.10 reduced dim 1 of the (T', B, d) tensors: the batch
        ort = sum(_relu_cosine(f["s"][m], f["c"][m], 1) for m in ORDER)
    elif ort_mode == "per_token":
        ort = sum(_relu_cosine(f["s"][m].reshape(-1, d), f["c"][m].reshape(-1, d), 1) for m in ORDER)
    else:
        ort = sum(
            _relu_cosine(f["s"][m].transpose(0, 1).reshape(4, -1), f["c"][m].transpose(0, 1).reshape(4, -1), 1)
            for m in ORDER
        )
    assert torch.allclose(t["ort"], ort, atol=1e-6)
    feats = torch.stack([f["c_sim"][m] for m in ORDER], dim=1).reshape(12, d)  # c_l[i], c_v[i], c_a[i], ...
    assert torch.allclose(t["margin"], official_hinge(y.repeat_interleave(3), feats), atol=1e-6)
    with torch.no_grad():
        homo = _official_gd(model.homo_kernel, [f["homo_logits"][m] for m in ORDER],
                            [f["homo_repr"][m] for m in ORDER], [0, 0, 1, 0, 1, 0], "l1")
        hetero = _official_gd(model.hetero_kernel, [f["hetero_logits"][m] for m in ORDER],
                              [f["hetero_repr"][m] for m in ORDER], [0, 0, 1, 0, 1, 1], "min_cosine")
    for name, parts in (("homo", homo), ("hetero", hetero)):
        for part, value in parts.items():
            assert torch.allclose(t[f"{name}_{part}"], value, rtol=1e-5, atol=1e-6), (name, part)


def test_hetero_l1_switch_distils_instead_of_pushing_apart():
    torch.manual_seed(0)
    model = DMDModel(tiny_config(hetero_repr_metric="l1")).eval()
    batch = random_batch()
    inputs = [batch[k] for k in ("input_ids", "attention_mask", "token_type_ids", "audio", "vision")]
    with torch.no_grad():
        out = model(**batch)
        f = model._features(*inputs)
        expected = _official_gd(model.hetero_kernel, [f["hetero_logits"][m] for m in ORDER],
                                [f["hetero_repr"][m] for m in ORDER], [0, 0, 1, 0, 1, 1], "l1")
    assert torch.allclose(out.loss_terms["hetero_repr"], expected["repr"], rtol=1e-5)


def test_golden_priors_regulariser_and_margin():
    """methods.md §12: the priors, L_reg with all-zero edge logits (E = 1/6), margin 0 with equal labels."""
    torch.manual_seed(0)
    model = DMDModel(tiny_config()).eval()
    homo = model.homo_kernel.prior.cpu()
    hetero = model.hetero_kernel.prior.cpu()
    assert torch.allclose(homo, torch.tensor([0.0088, 0.0088, 0.4823, 0.0088, 0.4823, 0.0088]), atol=1e-4)
    assert torch.allclose(hetero, torch.tensor([0.0060, 0.0060, 0.3273, 0.0060, 0.3273, 0.3273]), atol=1e-4)
    for kernel in (model.homo_kernel, model.hetero_kernel):
        torch.nn.init.zeros_(kernel.W_edge.weight)
        torch.nn.init.zeros_(kernel.W_edge.bias)
    batch = random_batch()
    batch["labels"] = torch.full((4,), 1.2)
    with torch.no_grad():
        terms = model(**batch).loss_terms
    assert terms["homo_reg"].item() == pytest.approx(10 * ((1 / 6 - homo) ** 2).sum().item(), rel=1e-5)
    assert terms["homo_reg"].item() == pytest.approx(2.99, abs=0.005)
    assert terms["hetero_reg"].item() == pytest.approx(1.549, abs=0.001)
    assert terms["margin"].item() == 0.0


def test_classification_uses_cross_entropy_for_every_head():
    torch.manual_seed(0)
    model = DMDModel(tiny_config(num_labels=3))
    batch = random_batch()
    batch["labels"] = torch.tensor([0, 2, 1, 0])
    out = model(**batch)
    assert out.logits.shape == (4, 3)
    assert torch.allclose(out.loss_terms["task"], F.cross_entropy(out.logits, batch["labels"]))
    assert torch.isfinite(out.loss)
    out.loss.backward()


# ----------------------------------------------------------------------------------------- missing modalities


def test_every_subset_of_modalities_works():
    torch.manual_seed(0)
    model = DMDModel(tiny_config())
    batch = random_batch()
    for size in (1, 2, 3):
        for present in itertools.combinations(GROUPS, size):
            inputs = {k: batch[k] for m in present for k in GROUPS[m]}
            out = model(**inputs, labels=batch["labels"])
            assert torch.isfinite(out.loss), present
            assert set(out.loss_terms) == TERMS
            assert set(out.shared) == set(out.private) == set(present)
            for m in set(ORDER) - set(present):
                assert out.loss_terms[f"task_homo_{m}"] == 0 and out.loss_terms[f"task_hetero_{m}"] == 0
            if size < 3:
                assert all(out.loss_terms[f"{b}_{p}"] == 0 for b in ("homo", "hetero") for p in ("logit", "reg"))
            out.loss.backward()
    with pytest.raises(ValueError, match="every modality is missing"):
        model(labels=batch["labels"])


def test_missing_modality_equals_zero_features():
    torch.manual_seed(0)
    model = DMDModel(tiny_config()).eval()
    batch = random_batch()
    without = {k: v for k, v in batch.items() if k not in GROUPS["audio"]}
    zeroed = dict(batch, audio=torch.zeros(4, 10, 5))
    with torch.no_grad():
        assert torch.allclose(model(**without).logits, model(**zeroed).logits, atol=1e-6)


# ------------------------------------------------------------------------------------------------ text padding


def _extra_padding(batch: dict, text: int = 3, audio: int = 1, vision: int = 2) -> dict:
    padded = dict(batch)
    b = batch["input_ids"].size(0)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        padded[key] = torch.cat([batch[key], torch.zeros(b, text, dtype=torch.long)], 1)
    padded["audio"] = torch.cat([batch["audio"], torch.zeros(b, audio, 5)], 1)
    padded["vision"] = torch.cat([batch["vision"], torch.zeros(b, vision, 20)], 1)
    return padded


@pytest.mark.parametrize("text_padding", ["after_encoder", "before_encoder"])
def test_outputs_do_not_depend_on_batch_padding(text_padding):
    """Inputs are padded to the configured lengths, so extra padding columns in the batch change nothing
    (after_encoder: BERT never sees padding; before_encoder: BERT always sees ids padded to text_length)."""
    torch.manual_seed(0)
    model = DMDModel(tiny_config(text_length=12, text_padding=text_padding)).eval()
    batch = random_batch()
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, model(**_extra_padding(batch)).logits, atol=1e-5)


def test_text_padding_modes_agree_without_padding_and_differ_with_it():
    torch.manual_seed(0)
    after = DMDModel(tiny_config(text_length=8)).eval()
    before = DMDModel(tiny_config(text_length=8, text_padding="before_encoder")).eval()
    before.load_state_dict(after.state_dict())
    full = random_batch(text_len=8)
    full["attention_mask"] = torch.ones_like(full["attention_mask"])
    full["input_ids"][:, 1:-1] = full["input_ids"][:, 1:-1].clamp_min(104)
    short = random_batch(text_len=5)
    with torch.no_grad():
        assert torch.allclose(after(**full).logits, before(**full).logits, atol=1e-5)
        assert not torch.allclose(after(**short).logits, before(**short).logits, atol=1e-4)


def test_inputs_longer_than_the_configured_lengths_are_cut():
    torch.manual_seed(0)
    model = DMDModel(tiny_config(audio_length=6, vision_length=4)).eval()
    batch = random_batch()
    cut = dict(batch, audio=batch["audio"][:, :6], vision=batch["vision"][:, :4])
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, model(**cut).logits, atol=1e-6)


# ------------------------------------------------------------------------------------------ official parity

_M = {"l": "text", "a": "audio", "v": "vision"}


def _linear(name: str, fan_in: int, fan_out: int) -> dict:
    return {f"{name}.weight": (fan_out, fan_in), f"{name}.bias": (fan_out,)}


def _mult(prefix: str, d: int, layers: int) -> dict:
    """trains/subNets/transformers_encoder: MultiheadAttention(in_proj (3d, d), out_proj), fc1/fc2 (4d),
    two LayerNorms per layer, a final LayerNorm (the sinusoidal table and ``version`` are buffers/none)."""
    shapes = {}
    for i in range(layers):
        p = f"{prefix}.layers.{i}."
        shapes.update({p + "self_attn.in_proj_weight": (3 * d, d), p + "self_attn.in_proj_bias": (3 * d,)})
        shapes.update(_linear(p + "self_attn.out_proj", d, d))
        shapes.update(_linear(p + "fc1", d, 4 * d) | _linear(p + "fc2", 4 * d, d))
        for j in range(2):
            shapes.update({f"{p}layer_norms.{j}.weight": (d,), f"{p}layer_norms.{j}.bias": (d,)})
    shapes.update({f"{prefix}.layer_norm.weight": (d,), f"{prefix}.layer_norm.bias": (d,)})
    return shapes


def official_trained_shapes(d: int, nlevels: int, dims: dict, kernels: dict, lengths: dict) -> dict:
    """Every parameter the official optimiser updates apart from BERT, by official name (``DMD.__init__`` in
    trains/singleTask/model/dmd.py and the two ``DistillationKernel``s built in run.py with gd_size 64 / 32).
    ``proj_cosine_*`` are left out: they are built but their outputs never reach the loss."""
    flat = {m: (lengths[m] - kernels[m] + 1) * d for m in "lav"}
    shapes = {}
    for m in "lav":
        shapes[f"proj_{m}.weight"] = (d, dims[m], kernels[m])
        shapes[f"encoder_s_{m}.weight"] = (d, d, 1)
        shapes[f"decoder_{m}.weight"] = (d, 2 * d, 1)
        shapes.update(_linear(f"align_c_{m}", flat[m], d))
        shapes.update(_mult(f"self_attentions_c_{m}", d, nlevels))
        shapes.update(_mult(f"trans_{m}_mem", 2 * d, max(nlevels, 3)))
        shapes.update(_linear(f"proj1_{m}_low", flat[m], d) | _linear(f"proj2_{m}_low", d, flat[m]))
        shapes.update(_linear(f"out_layer_{m}_low", flat[m], 1))
        shapes.update(_linear(f"proj1_{m}_high", 2 * d, 2 * d) | _linear(f"proj2_{m}_high", 2 * d, 2 * d))
        shapes.update(_linear(f"out_layer_{m}_high", 2 * d, 1) | _linear(f"weight_{m}", 2 * d, 2 * d))
    shapes["encoder_c.weight"] = (d, d, 1)
    for t, s in ("la", "lv", "al", "av", "vl", "va"):
        shapes.update(_mult(f"trans_{t}_with_{s}", d, nlevels))
    shapes.update(_linear("proj1_c", 3 * d, 3 * d) | _linear("proj2_c", 3 * d, 3 * d))
    shapes.update(_linear("out_layer_c", 3 * d, 1) | _linear("weight_c", 3 * d, 3 * d))
    shapes.update(_linear("proj1", 9 * d, 9 * d) | _linear("proj2", 9 * d, 9 * d) | _linear("out_layer", 9 * d, 1))
    for kernel, repr_dim, gd in (("homo", d, 64), ("hetero", 2 * d, 32)):
        shapes.update(_linear(f"{kernel}.W_logit", 1, gd) | _linear(f"{kernel}.W_repr", repr_dim, gd))
        shapes.update(_linear(f"{kernel}.W_edge", 4 * gd, 1))
    return shapes


_RENAMES = [  # official name -> name here
    (r"^proj_(\w)\.", lambda g: f"projections.{_M[g[1]]}."),
    (r"^encoder_s_(\w)\.", lambda g: f"private_encoders.{_M[g[1]]}."),
    (r"^encoder_c\.", lambda g: "shared_encoder."),
    (r"^decoder_(\w)\.", lambda g: f"decoders.{_M[g[1]]}."),
    (r"^align_c_(\w)\.", lambda g: f"align_shared.{_M[g[1]]}."),
    (r"^self_attentions_c_(\w)\.", lambda g: f"self_attentions.{_M[g[1]]}."),
    (r"^trans_(\w)_with_(\w)\.", lambda g: f"cross_attentions.{_M[g[1]]}_{_M[g[2]]}."),
    (r"^trans_(\w)_mem\.", lambda g: f"memories.{_M[g[1]]}."),
    (r"^(proj1|proj2)_(\w)_low\.", lambda g: f"homo_heads.{_M[g[2]]}.{g[1]}."),
    (r"^out_layer_(\w)_low\.", lambda g: f"homo_heads.{_M[g[1]]}.out."),
    (r"^(proj1|proj2)_(\w)_high\.", lambda g: f"hetero_heads.{_M[g[2]]}.{g[1]}."),
    (r"^out_layer_(\w)_high\.", lambda g: f"hetero_heads.{_M[g[1]]}.out."),
    (r"^(proj1|proj2)_c\.", lambda g: f"common_head.{g[1]}."),
    (r"^out_layer_c\.", lambda g: "common_head.out."),
    (r"^weight_c\.", lambda g: "fusion_weights.common."),
    (r"^weight_(\w)\.", lambda g: f"fusion_weights.{_M[g[1]]}."),
    (r"^(proj1|proj2)\.", lambda g: f"fusion_head.{g[1]}."),
    (r"^out_layer\.", lambda g: "fusion_head.out."),
    (r"^(homo|hetero)\.", lambda g: f"{g[1]}_kernel."),
]


def _rename(name: str) -> str:
    for pattern, replacement in _RENAMES:
        match = re.match(pattern, name)
        if match:
            return replacement(match) + name[match.end():]
    raise AssertionError(f"no rename for {name}")


def _check_parity(config: DMDConfig, expected_total: int) -> None:
    with torch.device("meta"):
        model = DMDModel(config)
    ours = {n: tuple(p.shape) for n, p in model.named_parameters() if not n.startswith("text_encoder.")}
    c = config
    official = official_trained_shapes(
        c.hidden_size,
        c.nlevels,
        {"l": c.text_config.hidden_size, "a": c.audio_dim, "v": c.vision_dim},
        {"l": c.conv_kernel_text, "a": c.conv_kernel_audio, "v": c.conv_kernel_vision},
        {"l": c.text_length, "a": c.audio_length, "v": c.vision_length},
    )
    assert {_rename(n): s for n, s in official.items()} == ours
    count = sum(math.prod(s) for s in ours.values())
    assert count == expected_total
    bert = sum(p.numel() for p in model.text_encoder.parameters())
    assert bert == 108_891_648  # bert-base-uncased without the pooler (unused by DMD, so never trained)
    assert all(p.requires_grad for p in model.parameters())


def test_official_parameter_parity_mosi_aligned_bert_base():
    """MOSI aligned (A=5, V=20, lengths 50/50/50, d=50, k=5/5/5: T' = 46, flattened 2300)."""
    config = DMDConfig.from_preset("official", "mosi", text_config=BertConfig(), audio_dim=5, vision_dim=20,
                                   text_length=50, audio_length=50, vision_length=50)
    _check_parity(config, 4_405_582)


def test_official_parameter_parity_mosei_aligned():
    """MOSEI aligned (A=74, V=35, d=30, 6 heads, k=5/1/3: T' = 46/50/48, flattened 1380/1500/1440)."""
    config = DMDConfig.from_preset("official", "mosei", text_config=BertConfig(), audio_dim=74, vision_dim=35,
                                   text_length=50, audio_length=50, vision_length=50)
    with torch.device("meta"):
        model = DMDModel(config)
    assert model.align_shared["audio"].weight.shape == (30, 1500)
    assert model.homo_heads["vision"].proj2.weight.shape == (1440, 30)
    assert model.fusion_head.proj1.weight.shape == (270, 270)
    _check_parity(config, 1_667_602)


def test_official_parameter_parity_mosi_unaligned():
    """MOSI unaligned (lengths l50/a375/v500, k=5: T'_a = 371, T'_v = 496, flattened 18,550 and 24,800)."""
    config = DMDConfig.from_preset("official", "mosi", text_config=BertConfig(), audio_dim=5, vision_dim=20,
                                   text_length=50, audio_length=375, vision_length=500)
    with torch.device("meta"):
        model = DMDModel(config)
    assert model.align_shared["audio"].weight.shape == (50, 18_550)
    assert model.homo_heads["vision"].proj1.weight.shape == (50, 24_800)
    _check_parity(config, 10_295_582)


# ------------------------------------------------------------------------------------------ config / presets


def test_presets_and_switches():
    mosi = DMDConfig.from_preset("official", "mosi")
    assert (mosi.hidden_size, mosi.num_heads, mosi.nlevels) == (50, 10, 4)
    assert (mosi.conv_kernel_text, mosi.conv_kernel_audio, mosi.conv_kernel_vision) == (5, 5, 5)
    assert (mosi.text_dropout, mosi.embed_dropout, mosi.attn_dropout, mosi.attn_dropout_audio) == (0.5, 0.2, 0.3, 0.2)
    assert (mosi.attn_dropout_vision, mosi.relu_dropout, mosi.res_dropout, mosi.output_dropout) == (0, 0, 0, 0.5)
    assert mosi.ort_mode == "legacy_batch_axis" and mosi.text_padding == "before_encoder"
    assert mosi.hetero_repr_metric == "min_cosine" and not mosi.homo_repr_in_total and mosi.attn_mask
    assert (mosi.homo_gd_size, mosi.hetero_gd_size, mosi.task_loss) == (64, 32, "l1")
    assert (mosi.rec_weight, mosi.cyc_weight, mosi.margin_weight, mosi.ort_weight) == (0.1, 0.1, 0.01, 0.01)
    assert (mosi.homo_gd_weight, mosi.hetero_gd_weight, mosi.gd_reg_weight, mosi.gd_repr_weight) == (0.05, 0.05, 10, 10)
    mosei = DMDConfig.from_preset("official", "mosei")
    assert (mosei.hidden_size, mosei.num_heads) == (30, 6)
    assert (mosei.conv_kernel_text, mosei.conv_kernel_audio, mosei.conv_kernel_vision) == (5, 1, 3)
    assert (mosei.text_dropout, mosei.embed_dropout, mosei.attn_dropout, mosei.attn_dropout_audio) == (0.3, 0, 0.4, 0)
    default = DMDConfig()
    assert default.ort_mode == "per_token" and default.text_padding == "after_encoder"
    assert default.hetero_repr_metric == "min_cosine" and default.margin_positives == "equal_labels"
    for bad in ({"ort_mode": "x"}, {"hetero_repr_metric": "l2"}, {"margin_positives": "same_sample"},
                {"text_padding": "none"}, {"hidden_size": 50, "num_heads": 6}, {"homo_prior": [1.0]}):
        with pytest.raises(ValueError):
            DMDConfig(**bad)
    with pytest.raises(ValueError, match="no preset"):
        DMDConfig.from_preset("mmsa")
    with pytest.raises(ValueError, match="at least conv_kernel_audio"):
        DMDModel(tiny_config(audio_length=2))


# ------------------------------------------------------------------------------------ save / reload / remote


def test_save_reload_identical_and_freezing_survives(tmp_path):
    torch.manual_seed(0)
    model = DMDModel(tiny_config(text_frozen_layers=1)).eval()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("text_encoder.encoder.layer.0.") for n in frozen)
    batch = random_batch()
    model.save_pretrained(tmp_path)
    with torch.no_grad():
        expected = model(**batch)
    for loader in (DMDModel, AutoModel):
        reloaded = loader.from_pretrained(tmp_path).eval()
        assert isinstance(reloaded, DMDModel)
        assert {n for n, p in reloaded.named_parameters() if not p.requires_grad} == frozen
        with torch.no_grad():
            out = reloaded(**batch)
        assert torch.equal(expected.logits, out.logits)
        assert all(torch.equal(expected.loss_terms[k], out.loss_terms[k]) for k in TERMS)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "dmd"


def test_from_text_pretrained_keeps_bert_weights(tmp_path):
    torch.manual_seed(0)
    bert = BertModel(tiny_text_config(), add_pooling_layer=False)
    bert.save_pretrained(tmp_path / "bert")
    model = DMDModel.from_text_pretrained(str(tmp_path / "bert"), preset="official", dataset="mosei",
                                          text_length=8, audio_length=10, vision_length=8)
    assert model.config.preset == "official" and model.config.hidden_size == 30
    for name, tensor in bert.state_dict().items():
        assert torch.equal(model.text_encoder.state_dict()[name], tensor), name
