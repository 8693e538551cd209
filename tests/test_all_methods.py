"""Contracts every registered method must keep: remote-code checkpoints that load without the package."""

from __future__ import annotations

import os

import pytest
import torch

import modeling
from conftest import random_batch, run_without_package, tiny_text_config

#: tiny, fast configuration per method (a new method adds its entry here)
TINY = {
    "misa": dict(hidden_size=16, fusion_ffn_dim=32),
    "dmd": dict(text_length=8, audio_length=10, vision_length=8, hidden_size=8, num_heads=2, nlevels=1,
                conv_kernel_text=3, conv_kernel_audio=3, conv_kernel_vision=2, homo_gd_size=4, hetero_gd_size=6),
    "dlf": dict(text_length=12, audio_length=10, vision_length=8, hidden_size=8, num_heads=2, num_layers=1,
                lfa_memory_layers=1, text_kernel_size=3, audio_kernel_size=3, vision_kernel_size=2),
    "fdmer": dict(hidden_size=16, discriminator_size=8, transformer_size=8, transformer_heads=2, transformer_ffn_size=16,
                  text_layers=1, audio_layers=1, vision_layers=1),
    "tridira": dict(hidden_size=16, fusion_ffn_dim=32),
    "derl": dict(hidden_size=8, num_shared_experts=2),
    "tsda": dict(hidden_size=8, num_heads=2, temporal_tokens=3, spatial_tokens=2),
}


def test_every_method_has_a_tiny_configuration():
    assert set(TINY) == set(modeling.METHODS)


@pytest.mark.parametrize("method", sorted(modeling.METHODS))
def test_remote_code_loads_without_the_package(tmp_path, method):
    config_class, model_class = modeling.METHODS[method]
    torch.manual_seed(0)
    config = config_class(text_config=tiny_text_config(), audio_dim=5, vision_dim=20, text_frozen_layers=1,
                          **TINY[method])
    model = model_class(config).eval()
    checkpoint = tmp_path / "ckpt"
    model.save_pretrained(checkpoint)
    assert {f"modeling_{method}.py", f"configuration_{method}.py", "layers.py", "losses.py", "outputs.py"} <= set(
        os.listdir(checkpoint)
    )
    batch = random_batch()
    with torch.no_grad():
        expected = model(**batch).logits
    torch.save({"batch": batch, "expected": expected}, tmp_path / "io.pt")
    script = f"""
import torch
from transformers import AutoModel
io = torch.load({str(tmp_path / 'io.pt')!r})
model = AutoModel.from_pretrained({str(checkpoint)!r}, trust_remote_code=True).eval()
assert type(model).__module__.startswith('transformers_modules'), type(model).__module__
assert type(model).__name__ == {model_class.__name__!r}
with torch.no_grad():
    assert torch.allclose(model(**io['batch']).logits, io['expected'], atol=1e-6)
assert not any(p.requires_grad for p in model.text_encoder.encoder.layer[0].parameters())
print('REMOTE_OK')
"""
    result = run_without_package(script, tmp_path)
    assert "REMOTE_OK" in result.stdout, result.stderr[-3000:]


def test_from_pretrained_keeps_loading_info_and_freezing(tmp_path):
    torch.manual_seed(0)
    config = modeling.MISAConfig(text_config=tiny_text_config(), audio_dim=5, vision_dim=20, text_frozen_layers=1,
                                 **TINY["misa"])
    modeling.MISAModel(config).save_pretrained(tmp_path)
    model, info = modeling.MISAModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert not any(p.requires_grad for p in model.text_encoder.encoder.layer[0].parameters())
