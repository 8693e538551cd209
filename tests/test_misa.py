"""MISA: architecture parity, losses as implemented, missing modalities, save/reload, remote code."""

from __future__ import annotations

import itertools

import pytest
import torch
from transformers import AutoConfig, AutoModel, BertConfig, BertModel

from modeling import MISAConfig, MISAModel
from modeling.losses import cmd, difference_loss
from conftest import extra_padded, random_batch, tiny_text_config


def tiny_config(**overrides) -> MISAConfig:
    values = dict(text_config=tiny_text_config(), audio_dim=5, vision_dim=20, hidden_size=16, fusion_ffn_dim=32)
    values.update(overrides)
    return MISAConfig(**values)


def test_forward_outputs_and_total_loss():
    torch.manual_seed(0)
    model = MISAModel(tiny_config())
    out = model(**random_batch())
    assert out.logits.shape == (4, 1)
    assert set(out.loss_terms) == {"task", "diff", "sim", "recon"}
    assert set(out.shared) == set(out.private) == set(out.utterance) == {"text", "audio", "vision"}
    assert out.fused.shape == (4, 6 * 16)
    c = model.config
    expected = out.loss_terms["task"] + c.diff_weight * out.loss_terms["diff"] + c.sim_weight * out.loss_terms["sim"]
    expected = expected + c.recon_weight * out.loss_terms["recon"]
    assert torch.allclose(out.loss, expected)
    out.loss.backward()
    assert model.shared_encoder[0].weight.grad.abs().sum() > 0


def test_loss_terms_follow_the_official_definitions():
    torch.manual_seed(0)
    model = MISAModel(tiny_config()).eval()
    out = model(**random_batch())
    p, s, u = out.private, out.shared, out.utterance
    diff = sum(difference_loss(p[m], s[m]) for m in ("text", "vision", "audio"))
    diff = diff + difference_loss(p["audio"], p["text"]) + difference_loss(p["audio"], p["vision"])
    diff = diff + difference_loss(p["text"], p["vision"])
    sim = (cmd(s["text"], s["vision"]) + cmd(s["text"], s["audio"]) + cmd(s["audio"], s["vision"])) / 3
    recon = sum(
        torch.nn.functional.mse_loss(model.reconstructors[m](p[m] + s[m]), u[m]) for m in ("text", "vision", "audio")
    ) / 3
    assert torch.allclose(out.loss_terms["diff"], diff)
    assert torch.allclose(out.loss_terms["sim"], sim)
    assert torch.allclose(out.loss_terms["recon"], recon)


def _module_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_official_architecture_parameter_shapes_with_bert_base():
    """MMSA MOSI dims (A=5, V=20), d=128, bert-base: the official module sizes (methods.md §11.3)."""
    config = MISAConfig.from_preset("official", "mosi", text_config=BertConfig(), audio_dim=5, vision_dim=20)
    with torch.device("meta"):
        model = MISAModel(config)
    audio, vision = model.sequence_encoders["audio"], model.sequence_encoders["vision"]
    assert (audio.rnn1.input_size, audio.rnn1.hidden_size, audio.rnn2.input_size) == (5, 5, 10)
    assert (vision.rnn1.input_size, vision.rnn1.hidden_size, vision.rnn2.input_size) == (20, 20, 40)
    assert model.projections["audio"][0].weight.shape == (128, 20)
    assert model.projections["vision"][0].weight.shape == (128, 80)
    assert model.projections["text"][0].weight.shape == (128, 768)
    assert model.head[0].weight.shape == (384, 768) and model.head[3].weight.shape == (1, 384)
    assert model.fusion_transformer.linear1.weight.shape == (2048, 128)
    assert not hasattr(model, "discriminator")  # only built for the adversarial option

    def lstm(i, h):
        return 2 * (4 * h * i + 4 * h * h + 8 * h)

    expected = {
        "audio": lstm(5, 5) + 2 * 10 + lstm(10, 5) + (20 * 128 + 128) + 2 * 128,
        "vision": lstm(20, 20) + 2 * 40 + lstm(40, 20) + (80 * 128 + 128) + 2 * 128,
        "text": 768 * 128 + 128 + 2 * 128,
        "private_shared_recon": 7 * (128 * 128 + 128),
        "fusion": 4 * 128 * 128 + 4 * 128 + 2 * 128 * 2048 + 2048 + 128 + 4 * 128,
        "head": 768 * 384 + 384 + 384 + 1,
    }
    non_bert = _module_params(model) - _module_params(model.text_encoder)
    assert non_bert == sum(expected.values())


def test_every_subset_of_modalities_works():
    torch.manual_seed(0)
    model = MISAModel(tiny_config())
    batch = random_batch()
    groups = {"text": ("input_ids", "attention_mask", "token_type_ids"), "audio": ("audio", "audio_lengths"),
              "vision": ("vision", "vision_lengths")}
    for size in (1, 2, 3):
        for present in itertools.combinations(groups, size):
            inputs = {k: batch[k] for m in present for k in groups[m]}
            out = model(**inputs, labels=batch["labels"])
            assert torch.isfinite(out.loss), present
            assert set(out.shared) == set(present)
            out.loss.backward()
    with pytest.raises(ValueError, match="every modality is missing"):
        model(labels=batch["labels"])


def test_padding_does_not_change_predictions():
    torch.manual_seed(0)
    model = MISAModel(tiny_config()).eval()
    batch = random_batch()
    padded = extra_padded(batch)
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, model(**padded).logits, atol=1e-5)


def test_mmsa_text_length_switch_truncates_audio_and_vision():
    torch.manual_seed(0)
    batch = random_batch(text_len=4, audio_len=12, vision_len=12)
    model = MISAModel(tiny_config()).eval()
    quirky = MISAModel(tiny_config(av_lengths_from_text=True)).eval()
    quirky.load_state_dict(model.state_dict())
    truncated = dict(batch)
    lengths = batch["attention_mask"].sum(1)
    truncated["audio_lengths"] = torch.minimum(batch["audio_lengths"], lengths)
    truncated["vision_lengths"] = torch.minimum(batch["vision_lengths"], lengths)
    with torch.no_grad():
        a = quirky(**batch).logits
        b = model(**{**batch, "audio_lengths": lengths, "vision_lengths": lengths}).logits
        c = model(**batch).logits
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, c, atol=1e-4)


def test_adversarial_similarity_reverses_gradient_into_shared_encoder():
    torch.manual_seed(0)
    model = MISAModel(tiny_config(similarity="adversarial", dropout=0.0, fusion_dropout=0.0))
    batch = random_batch()
    out = model(**batch)
    assert set(out.loss_terms) == {"task", "diff", "sim", "recon"}
    shared_weight = model.shared_encoder[0].weight
    (grad_shared,) = torch.autograd.grad(out.loss_terms["sim"], shared_weight, retain_graph=True)
    # the same CE without reversal gives exactly the opposite gradient on the shared encoder
    logits = torch.cat([model.discriminator(out.shared[m]) for m in ("text", "vision", "audio")])
    domains = torch.arange(3).repeat_interleave(4)
    plain_loss = torch.nn.functional.cross_entropy(logits, domains)
    (grad_plain,) = torch.autograd.grad(plain_loss, shared_weight, retain_graph=True)
    assert torch.allclose(grad_shared, -grad_plain, atol=1e-6)
    out.loss.backward()
    assert model.discriminator[0].weight.grad.abs().sum() > 0


def test_classification_uses_cross_entropy():
    model = MISAModel(tiny_config(num_labels=2))
    batch = random_batch()
    batch["labels"] = torch.tensor([0, 1, 1, 0])
    out = model(**batch)
    assert out.logits.shape == (4, 2)
    expected = torch.nn.functional.cross_entropy(out.logits, batch["labels"])
    assert torch.allclose(out.loss_terms["task"], expected)


def test_presets():
    official = MISAConfig.from_preset("official", "mosei")
    assert (official.diff_weight, official.sim_weight, official.recon_weight, official.dropout) == (0.3, 1.0, 1.0, 0.5)
    assert official.text_frozen_layers == 9 and official.lstm_orthogonal_init
    assert MISAConfig.from_preset("official", "ur_funny").freeze_text_encoder
    mmsa = MISAConfig.from_preset("mmsa", "mosi")
    assert (mmsa.diff_weight, mmsa.sim_weight, mmsa.dropout) == (0.1, 0.3, 0.2)
    assert not mmsa.av_lengths_from_text and not mmsa.lstm_orthogonal_init
    with pytest.raises(ValueError, match="no preset"):
        MISAConfig.from_preset("nope")


def test_orthogonal_lstm_init():
    model = MISAModel(tiny_config(audio_dim=6, lstm_orthogonal_init=True))
    w = model.sequence_encoders["audio"].rnn1.weight_hh_l0  # (4h, h) with orthonormal columns
    assert torch.allclose(w.t() @ w, torch.eye(6), atol=1e-5)
    plain = MISAModel(tiny_config(audio_dim=6, lstm_orthogonal_init=False))
    w = plain.sequence_encoders["audio"].rnn1.weight_hh_l0
    assert not torch.allclose(w.t() @ w, torch.eye(6), atol=1e-2)


def test_save_reload_identical_and_freezing_survives(tmp_path):
    torch.manual_seed(0)
    model = MISAModel(tiny_config(text_frozen_layers=1)).eval()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("text_encoder.encoder.layer.0.") for n in frozen)
    batch = random_batch()
    model.save_pretrained(tmp_path)
    for loader in (MISAModel, AutoModel):
        reloaded = loader.from_pretrained(tmp_path).eval()
        assert isinstance(reloaded, MISAModel)
        assert {n for n, p in reloaded.named_parameters() if not p.requires_grad} == frozen
        with torch.no_grad():
            assert torch.equal(model(**batch).logits, reloaded(**batch).logits)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "misa"
    whole = MISAModel.from_pretrained(tmp_path, freeze_text_encoder=True)
    assert not any(p.requires_grad for p in whole.text_encoder.parameters())


def test_from_text_pretrained_keeps_bert_weights(tmp_path):
    torch.manual_seed(0)
    bert = BertModel(tiny_text_config(), add_pooling_layer=False)
    bert.save_pretrained(tmp_path / "bert")
    model = MISAModel.from_text_pretrained(str(tmp_path / "bert"), preset="official", dataset="mosi", hidden_size=16)
    assert model.config.preset == "official" and model.config.diff_weight == 0.3
    for name, tensor in bert.state_dict().items():
        assert torch.equal(model.text_encoder.state_dict()[name], tensor), name
    assert model.config.text_config.hidden_size == 32
