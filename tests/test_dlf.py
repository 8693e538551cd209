"""DLF: official parameter parity, losses as implemented, missing modalities, padding, save/reload, remote code."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, BertConfig

from modeling import DLFConfig, DLFModel
from official_references import official_hinge
from conftest import random_batch, tiny_text_config

GROUPS = {
    "text": ("input_ids", "attention_mask", "token_type_ids"),
    "audio": ("audio", "audio_lengths"),
    "vision": ("vision", "vision_lengths"),
}


def tiny_config(**overrides) -> DLFConfig:
    values = dict(
        text_config=tiny_text_config(), audio_dim=5, vision_dim=20, text_length=12, audio_length=10, vision_length=8,
        hidden_size=8, num_heads=2, num_layers=1, lfa_memory_layers=1, text_kernel_size=3, audio_kernel_size=3,
        vision_kernel_size=2,
    )
    values.update(overrides)
    return DLFConfig(**values)


# ------------------------------------------------------------------------------------------- parity


def _mult(d: int, layers: int) -> list[tuple[int, ...]]:
    """Parameter shapes of the official MulT ``TransformerEncoder`` (pre-LN layers + final LayerNorm)."""
    layer = [(3 * d, d), (3 * d,), (d, d), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,), (d,), (d,), (d,), (d,)]
    return layer * layers + [(d,), (d,)]


def _linear(i: int, o: int) -> list[tuple[int, ...]]:
    return [(o, i), (o,)]


def _residual(dim: int) -> list[tuple[int, ...]]:
    return _linear(dim, dim) * 2 + _linear(dim, 1)


def _bert_base() -> list[tuple[int, ...]]:
    """bert-base-uncased without the pooler (its output is never used, so it gets no gradient)."""
    h, ffn = 768, 3072
    layer = _linear(h, h) * 4 + [(h,), (h,)] + _linear(h, ffn) + _linear(ffn, h) + [(h,), (h,)]
    return [(30522, h), (512, h), (2, h), (h,), (h,)] + layer * 12


def official_trained_shapes(dims, lengths, kernels, d=50, nlevels=2) -> list[tuple[int, ...]]:
    """Shapes of the parameters that get gradients in the official DLF training step.

    Read off pwang322/DLF ``trains/singleTask/model/DLF.py`` in ``__init__`` order, leaving out what no loss
    reaches: ``proj_cosine_*``, ``trans_{a,v}_with_{l,a,v}``, the ``*_low`` heads and the pooler of BERT.
    ``dims``/``lengths``/``kernels`` are (l, a, v).
    """
    reduced = [t - k + 1 for t, k in zip(lengths, kernels)]
    shapes = [(d, dim, k) for dim, k in zip(dims, kernels)]  # proj_l, proj_a, proj_v
    shapes += _mult(d, nlevels) * 3  # encoder_s_l, encoder_s_v, encoder_s_a
    shapes += _mult(d, nlevels)  # encoder_c
    shapes += [(d, 2 * d, 1)] * 3  # decoder_l, decoder_v, decoder_a
    for t in reduced:  # align_c_l, align_c_v, align_c_a
        shapes += _linear(d * t, d)
    shapes += _mult(d, nlevels) * 3  # self_attentions_c_l/v/a
    shapes += _residual(3 * d)  # proj1_c, proj2_c, out_layer_c
    shapes += _mult(d, nlevels) * 2  # trans_l_with_a, trans_l_with_v
    shapes += _mult(d, nlevels)  # trans_l_mem
    shapes += _mult(d, max(nlevels, 3)) * 2  # trans_a_mem, trans_v_mem
    shapes += _residual(d) * 3  # proj1/proj2/out_layer_{l,v,a}_high
    shapes += _linear(d, d) * 3 + _linear(3 * d, 3 * d)  # projector_l/v/a, projector_c
    shapes += _residual(6 * d)  # proj1, proj2, out_layer
    return shapes + _bert_base()


def _meta_model(dataset: str, **overrides) -> DLFModel:
    config = DLFConfig.from_preset("official", dataset, text_config=BertConfig(), **overrides)
    with torch.device("meta"):
        return DLFModel(config)


def _numel(shapes) -> int:
    return sum(torch.Size(s).numel() for s in shapes)


@pytest.mark.parametrize(
    "dataset, dims, lengths, kernels",
    [
        ("mosi", (768, 5, 20), (50, 50, 50), (5, 5, 5)),
        ("mosei", (768, 74, 35), (50, 50, 50), (3, 3, 3)),
        ("mosi", (768, 5, 20), (50, 375, 500), (5, 5, 5)),
        ("mosei", (768, 74, 35), (50, 500, 500), (3, 3, 3)),
    ],
    ids=["mosi_aligned", "mosei_aligned", "mosi_unaligned", "mosei_unaligned"],
)
def test_official_parameter_parity(dataset, dims, lengths, kernels):
    """Exactly the official trained parameters: the same multiset of shapes and the same count."""
    model = _meta_model(dataset, audio_dim=dims[1], vision_dim=dims[2], text_length=lengths[0],
                        audio_length=lengths[1], vision_length=lengths[2])
    ours = [tuple(p.shape) for p in model.parameters()]
    expected = official_trained_shapes(dims, lengths, kernels)
    assert Counter(ours) == Counter(expected)
    assert sum(p.numel() for p in model.parameters()) == _numel(expected)


def test_official_shapes_mosi_mosei_unaligned():
    mosi = _meta_model("mosi")
    assert mosi.projections["text"].weight.shape == (50, 768, 5)
    assert all(mosi.align[m].weight.shape == (50, 46 * 50) for m in ("text", "audio", "vision"))
    assert mosi.head.proj1.weight.shape == (300, 300) and mosi.shared_head.proj1.weight.shape == (150, 150)
    assert len(mosi.attractor.audio_memory.layers) == 3 and len(mosi.attractor.text_memory.layers) == 2
    mosei = _meta_model("mosei", audio_dim=74, vision_dim=35)
    assert mosei.config.reduced_length("audio") == 48
    assert all(mosei.align[m].weight.shape == (50, 2400) for m in ("text", "audio", "vision"))
    assert mosei.projections["audio"].weight.shape == (50, 74, 3)
    unaligned = _meta_model("mosi", audio_length=375, vision_length=500)
    assert unaligned.align["audio"].weight.shape == (50, 371 * 50)
    assert unaligned.align["vision"].weight.shape == (50, 496 * 50)


def test_every_parameter_is_trained():
    """No dead modules: one backward of the total loss reaches every parameter (the official code has some)."""
    torch.manual_seed(0)
    model = DLFModel(tiny_config())
    model(**random_batch()).loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


# -------------------------------------------------------------------------------------------- losses


def _capture(model: DLFModel):
    """Forward hooks recording the intermediate sequences the losses read."""
    seen = {"proj": {}, "specific": {}, "cycle": {}, "shared": [], "recon": {}, "align": {}}

    def keep(kind, name):
        def hook(module, args, output):
            if kind == "specific":
                (seen["cycle"] if name in seen["specific"] else seen["specific"])[name] = output
            elif kind == "shared":
                seen["shared"].append(output)
            else:
                seen[kind][name] = output
        return hook

    for m in ("text", "audio", "vision"):
        model.projections[m].register_forward_hook(keep("proj", m))
        model.specific_encoders[m].register_forward_hook(keep("specific", m))
        model.decoders[m].register_forward_hook(keep("recon", m))
        model.align[m].register_forward_hook(keep("align", m))
    model.shared_encoder.register_forward_hook(keep("shared", None))
    return seen


@pytest.mark.parametrize("ort_chunk, aligned", [(None, False), (4, True)])
def test_loss_terms_and_total_follow_the_official_code(ort_chunk, aligned):
    torch.manual_seed(0)
    lengths = dict(audio_length=12, vision_length=12, vision_kernel_size=3) if aligned else {}
    model = DLFModel(tiny_config(ort_chunk=ort_chunk, **lengths)).eval()
    seen = _capture(model)
    batch = random_batch()
    batch["labels"][1] = batch["labels"][2]  # a positive pair across samples for the margin loss
    out = model(**batch)
    labels, order = batch["labels"], ("text", "audio", "vision")
    terms, c = out.loss_terms, model.config
    assert set(terms) == {"task", "task_final", "task_shared", "task_text", "task_audio", "task_vision",
                          "recon", "specific", "margin", "ort"}

    def l1(x):
        return F.l1_loss(x.view(-1, 1), labels.view(-1, 1))

    assert torch.allclose(terms["task_final"], l1(out.logits))
    shared = torch.cat([out.shared[m] for m in ("text", "vision", "audio")], -1)
    assert torch.allclose(terms["task_shared"], l1(model.shared_head(shared)[0]))
    for m in order:
        assert torch.allclose(terms[f"task_{m}"], l1(model.specific_heads[m](out.private[m])[0]))
    task = terms["task_final"] + terms["task_shared"] + 3 * terms["task_text"] + terms["task_vision"]
    assert torch.allclose(terms["task"], task + terms["task_audio"])

    proj = {m: seen["proj"][m].permute(2, 0, 1) for m in order}  # official origin_m: (T', B, d)
    s, s_r = seen["specific"], seen["cycle"]
    if aligned:  # equal lengths: one shared-encoder call over the modalities stacked along the batch
        (joint,) = seen["shared"]
        shared_seq = dict(zip(order, joint.split(4, 1)))
    else:
        shared_seq = dict(zip(order, seen["shared"]))
    for m in order:
        assert torch.allclose(shared_seq[m], model.shared_encoder(proj[m]), atol=1e-5)
    recon = {m: seen["recon"][m].permute(2, 0, 1) for m in order}
    mse = lambda a, b: ((b - a) ** 2).sum() / a.numel()  # noqa: E731  the official MSE class
    assert torch.allclose(terms["recon"], sum(mse(recon[m], proj[m]) for m in order))
    assert torch.allclose(terms["specific"], sum(mse(s[m].permute(1, 2, 0), s_r[m].permute(1, 2, 0)) for m in order))
    num = ort_chunk or c.hidden_size
    target = torch.tensor([-1])
    ort = sum(F.cosine_embedding_loss(s[m].reshape(-1, num), shared_seq[m].reshape(-1, num), target) for m in order)
    assert torch.allclose(terms["ort"], ort, atol=1e-6)
    feats = torch.stack([seen["align"][m] for m in ("text", "vision", "audio")], 1).reshape(-1, c.hidden_size)
    assert torch.allclose(terms["margin"], official_hinge(labels.repeat_interleave(3), feats), atol=1e-6)
    assert terms["margin"] > 0
    # flattened as the official (B, d, T') view
    flat = shared_seq["text"].permute(1, 2, 0).reshape(4, -1)
    assert torch.allclose(seen["align"]["text"], model.align["text"](flat))

    official = terms["task"] + (terms["specific"] + terms["recon"] + (terms["margin"] + terms["ort"]) * 0.1) * 0.1
    assert torch.allclose(out.loss, official)


def test_output_shapes():
    torch.manual_seed(0)
    model = DLFModel(tiny_config()).eval()
    batch = random_batch()
    batch.pop("labels")
    out = model(**batch)
    assert out.logits.shape == (4, 1) and out.loss is None and out.loss_terms is None
    assert out.fused.shape == (4, 6 * 8)
    assert set(out.shared) == set(out.private) == {"text", "audio", "vision"}
    assert all(v.shape == (4, 8) for v in [*out.shared.values(), *out.private.values()])


def test_unaligned_lengths_forward():
    torch.manual_seed(0)
    config = tiny_config(text_length=50, audio_length=375, vision_length=500, text_kernel_size=5,
                         audio_kernel_size=5, vision_kernel_size=5)
    model = DLFModel(config)
    batch = random_batch(batch=2, text_len=20, audio_len=375, vision_len=430)
    out = model(**batch)
    assert out.logits.shape == (2, 1) and torch.isfinite(out.loss)
    assert model.align["audio"].in_features == 371 * 8 and model.align["vision"].in_features == 496 * 8


def test_classification_uses_cross_entropy():
    torch.manual_seed(0)
    model = DLFModel(tiny_config(num_labels=3))
    batch = random_batch()
    batch["labels"] = torch.tensor([0, 2, 1, 2])
    out = model(**batch)
    assert out.logits.shape == (4, 3)
    assert torch.allclose(out.loss_terms["task_final"], F.cross_entropy(out.logits, batch["labels"]))


# ------------------------------------------------------------------------------------------ missing


def test_every_subset_of_modalities_works():
    torch.manual_seed(0)
    model = DLFModel(tiny_config())
    batch = random_batch()
    for size in (1, 2, 3):
        for present in itertools.combinations(GROUPS, size):
            inputs = {k: batch[k] for m in present for k in GROUPS[m]}
            out = model(**inputs, labels=batch["labels"])
            assert torch.isfinite(out.loss), present
            assert set(out.shared) == set(present)
            assert set(out.private) == set(present)  # a head per present modality, text or not
            assert {k[5:] for k in out.loss_terms if k.startswith("task_")} == set(present) | {"final", "shared"}
            for m, start in (("text", 0), ("vision", 8), ("audio", 16)):
                if m not in present:
                    assert torch.count_nonzero(out.fused[:, start:start + 8]) == 0
            out.loss.backward()
    with pytest.raises(ValueError, match="every modality is missing"):
        model(labels=batch["labels"])


def test_missing_text_keeps_audio_and_vision_attraction():
    """Without text the language query is a learned constant; A→L and V→L still read their modality."""
    torch.manual_seed(0)
    model = DLFModel(tiny_config()).eval()
    batch = random_batch()
    inputs = {k: batch[k] for k in ("audio", "audio_lengths", "vision", "vision_lengths")}
    with torch.no_grad():
        out = model(**inputs)
        changed = model(**{**inputs, "audio": batch["audio"] * 2 + 1})
    assert set(out.private) == {"audio", "vision"}
    assert not torch.allclose(out.private["audio"], changed.private["audio"])
    assert torch.allclose(out.private["vision"], changed.private["vision"])


# ------------------------------------------------------------------------------------------ padding


def _extra_padding(batch, text=4, frames=1):
    padded = dict(batch)
    padded["input_ids"] = torch.cat([batch["input_ids"], torch.zeros(4, text, dtype=torch.long)], 1)
    padded["attention_mask"] = torch.cat([batch["attention_mask"], torch.zeros(4, text, dtype=torch.long)], 1)
    padded["token_type_ids"] = torch.zeros_like(padded["input_ids"])
    padded["audio"] = torch.cat([batch["audio"], torch.zeros(4, frames, 5)], 1)
    padded["vision"] = torch.cat([batch["vision"], torch.zeros(4, frames, 20)], 1)
    return padded


def test_after_encoder_padding_ignores_extra_padding_columns():
    torch.manual_seed(0)
    model = DLFModel(tiny_config()).eval()
    batch = random_batch()
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, model(**_extra_padding(batch)).logits, atol=1e-6)
        # BERT never sees the padding: a batch cut to its longest sequence gives the same result
        width = int(batch["attention_mask"].sum(1).max())
        cut = {**batch, **{k: batch[k][:, :width] for k in GROUPS["text"]}}
        assert torch.allclose(model(**batch).logits, model(**cut).logits, atol=1e-6)


def test_before_encoder_padding_is_the_official_behaviour():
    torch.manual_seed(0)
    fast = DLFModel(tiny_config()).eval()
    official = DLFModel(tiny_config(text_padding="before_encoder")).eval()
    official.load_state_dict(fast.state_dict())
    batch = random_batch()
    with torch.no_grad():
        a, b = official(**batch).logits, fast(**batch).logits
        assert torch.allclose(a, official(**_extra_padding(batch)).logits, atol=1e-6)
    assert not torch.allclose(a, b, atol=1e-4)  # padding positions carry BERT outputs


# ------------------------------------------------------------------------------------ config, reload


def test_presets():
    mosi = DLFConfig.from_preset("official", "mosi")
    assert (mosi.hidden_size, mosi.num_heads, mosi.num_layers, mosi.lfa_memory_layers) == (50, 10, 2, 3)
    assert (mosi.text_kernel_size, mosi.text_dropout, mosi.embed_dropout, mosi.attn_dropout) == (5, 0.5, 0.2, 0.3)
    assert (mosi.attn_dropout_audio, mosi.attn_dropout_vision, mosi.output_dropout) == (0.2, 0.0, 0.5)
    assert mosi.text_padding == "before_encoder" and mosi.ort_chunk is None and mosi.attn_mask
    mosei = DLFConfig.from_preset("official", "mosei")
    assert (mosei.audio_kernel_size, mosei.text_dropout, mosei.attn_dropout, mosei.embed_dropout) == (3, 0.1, 0.5, 0.0)
    assert mosei.ort_chunk == 10
    for config in (mosi, mosei, DLFConfig()):
        weights = (config.final_head_weight, config.shared_head_weight, config.text_head_weight,
                   config.vision_head_weight, config.audio_head_weight)
        assert weights == (1.0, 1.0, 3.0, 1.0, 1.0) and config.task_loss == "l1"
        assert (config.recon_weight, config.specific_weight, config.margin_weight, config.ort_weight) == (
            0.1, 0.1, 0.01, 0.01)
    default = DLFConfig()
    assert default.text_padding == "after_encoder" and default.ort_chunk is None
    with pytest.raises(ValueError, match="text_padding"):
        DLFConfig(text_padding="middle")
    with pytest.raises(ValueError, match="ort_chunk"):
        DLFConfig(ort_chunk=7)
    with pytest.raises(ValueError, match="no preset"):
        DLFConfig.from_preset("nope")


def test_save_reload_identical_and_freezing_survives(tmp_path):
    torch.manual_seed(0)
    model = DLFModel(tiny_config(text_frozen_layers=1)).eval()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("text_encoder.encoder.layer.0.") for n in frozen)
    batch = random_batch()
    model.save_pretrained(tmp_path)
    for loader in (DLFModel, AutoModel):
        reloaded = loader.from_pretrained(tmp_path).eval()
        assert isinstance(reloaded, DLFModel)
        assert {n for n, p in reloaded.named_parameters() if not p.requires_grad} == frozen
        with torch.no_grad():
            assert torch.equal(model(**batch).logits, reloaded(**batch).logits)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "dlf"
