"""Shared fixtures: tiny random BERT configurations and batches, and the optional ../shared folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import BertConfig  # noqa: E402

# Tests use tiny models: one thread is faster for them and avoids oversubscribing a shared 2-core machine.
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def tiny_text_config(**overrides) -> BertConfig:
    values = dict(
        vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
        max_position_embeddings=64,
    )
    values.update(overrides)
    return BertConfig(**values)


def random_batch(batch=4, text_len=7, audio_len=9, vision_len=6, audio_dim=5, vision_dim=20, seed=0, vocab=200):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, text_len + 1, (batch,), generator=g)
    lengths[0] = text_len
    mask = (torch.arange(text_len)[None, :] < lengths[:, None]).long()
    input_ids = torch.randint(104, vocab, (batch, text_len), generator=g) * mask
    input_ids[:, 0] = 101
    input_ids[torch.arange(batch), lengths - 1] = 102
    audio_lengths = torch.randint(1, audio_len + 1, (batch,), generator=g)
    audio_lengths[0] = audio_len
    vision_lengths = torch.randint(1, vision_len + 1, (batch,), generator=g)
    vision_lengths[0] = vision_len
    audio = torch.randn(batch, audio_len, audio_dim, generator=g)
    audio = audio * (torch.arange(audio_len)[None, :, None] < audio_lengths[:, None, None])
    vision = torch.randn(batch, vision_len, vision_dim, generator=g)
    vision = vision * (torch.arange(vision_len)[None, :, None] < vision_lengths[:, None, None])
    return {
        "input_ids": input_ids,
        "attention_mask": mask,
        "token_type_ids": torch.zeros_like(input_ids),
        "audio": audio,
        "audio_lengths": audio_lengths,
        "vision": vision,
        "vision_lengths": vision_lengths,
        "labels": torch.empty(batch).uniform_(-3, 3, generator=g),
    }


BLOCK_PACKAGE = """
import importlib.abc
import sys


class _NoPackage(importlib.abc.MetaPathFinder):
    # Make `modeling` unimportable even when it is pip-installed (editable installs use a meta-path finder).
    def find_spec(self, name, path=None, target=None):
        if name == "modeling" or name.startswith("modeling."):
            raise ImportError("the package is blocked in this subprocess")


sys.meta_path.insert(0, _NoPackage())
sys.path = [p for p in sys.path if p not in ("", %r)]
try:
    import modeling  # noqa: F401
    raise SystemExit("the package must not be importable here")
except ImportError:
    pass
""" % str(REPO_ROOT)


def extra_padded(batch: dict) -> dict:
    """``batch`` with 4 more text, 5 more audio and 3 more vision steps of padding beyond every true length
    (random frames, [PAD] ids): a model that respects the lengths must predict the same."""
    padded = dict(batch)
    size = batch["input_ids"].size(0)
    padded["audio"] = torch.cat([batch["audio"], torch.randn(size, 5, batch["audio"].size(2))], 1)
    padded["vision"] = torch.cat([batch["vision"], torch.randn(size, 3, batch["vision"].size(2))], 1)
    padded["input_ids"] = torch.cat([batch["input_ids"], torch.zeros(size, 4, dtype=torch.long)], 1)
    padded["attention_mask"] = torch.cat([batch["attention_mask"], torch.zeros(size, 4, dtype=torch.long)], 1)
    padded["token_type_ids"] = torch.zeros_like(padded["input_ids"])
    return padded


def run_without_package(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter where this package cannot be imported (a user without it)."""
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", PYTHONPATH="")
    return subprocess.run(
        [sys.executable, "-c", BLOCK_PACKAGE + script], cwd=tmp_path, env=env, capture_output=True, text=True
    )


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (the project was cloned alone)")
    return SHARED
