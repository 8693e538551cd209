"""Shared DMD/DLF blocks: the MulT encoder and its positions, the residual head, DMD's margin loss, the
cosine orthogonality modes and graph distillation, against the official numerics and loop references."""

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from modeling.layers import MulTEncoder, ResidualHead, SinusoidalPositionalEmbedding, future_mask


def _mult_parameter_count(d: int, layers: int) -> int:
    attention = 4 * d * d + 4 * d
    ffn = d * 4 * d + 4 * d + 4 * d * d + d
    layer_norms = 2 * 2 * d
    return layers * (attention + ffn + layer_norms) + 2 * d


def _reference_mult(encoder: MulTEncoder, x_q, x_k=None, x_v=None):
    """The official MulT forward written out with explicit attention maths (eval mode)."""
    d = encoder.embed_dim

    def embed(x):
        first = x[:, :, 0]
        positions = torch.zeros_like(x)
        for t in range(x.size(0)):
            for b in range(x.size(1)):
                if first[t, b] != 0:
                    p = t + 1
                    half = d // 2
                    for i in range(half):
                        freq = math.exp(-i * math.log(10000) / (half - 1))
                        positions[t, b, i] = math.sin(p * freq)
                        positions[t, b, half + i] = math.cos(p * freq)
        return math.sqrt(d) * x + positions

    x = embed(x_q)
    cross = x_k is not None
    if cross:
        x_k, x_v = embed(x_k), embed(x_v)
    for layer in encoder.layers:
        attention = layer.self_attn
        heads = attention.num_heads
        w, bias = attention.in_proj_weight, attention.in_proj_bias
        residual = x
        q_in = layer.layer_norms[0](x)
        k_in = layer.layer_norms[0](x_k) if cross else q_in
        v_in = layer.layer_norms[0](x_v) if cross else q_in
        q = F.linear(q_in, w[:d], bias[:d]) * (d // heads) ** -0.5
        k = F.linear(k_in, w[d:2 * d], bias[d:2 * d])
        v = F.linear(v_in, w[2 * d:], bias[2 * d:])
        t_q, batch, t_k = q.size(0), q.size(1), k.size(0)
        q = q.reshape(t_q, batch * heads, d // heads).transpose(0, 1)
        k = k.reshape(t_k, batch * heads, d // heads).transpose(0, 1)
        v = v.reshape(t_k, batch * heads, d // heads).transpose(0, 1)
        scores = q @ k.transpose(1, 2)
        if encoder.attn_mask:
            scores = scores + torch.triu(torch.full((t_q, t_k), float("-inf")), 1 + abs(t_k - t_q))
        out = (scores.softmax(-1) @ v).transpose(0, 1).reshape(t_q, batch, d)
        x = residual + attention.out_proj(out)
        x = x + layer.fc2(F.relu(layer.fc1(layer.layer_norms[1](x))))
    return encoder.layer_norm(x)


@pytest.mark.parametrize("d,layers", [(8, 1), (50, 4), (30, 2)])
def test_mult_parameter_count_matches_official_formula(d, layers):
    encoder = MulTEncoder(d, 2, layers)
    assert sum(p.numel() for p in encoder.parameters()) == _mult_parameter_count(d, layers)
    assert encoder.layers[0].self_attn.in_proj_weight.shape == (3 * d, d)
    assert list(dict(encoder.named_buffers())) == []


def test_mult_shapes_self_and_cross_modal():
    torch.manual_seed(0)
    encoder = MulTEncoder(12, 3, 2, attn_mask=True).eval()
    x = torch.randn(6, 4, 12)
    assert encoder(x).shape == (6, 4, 12)
    for t_k in (3, 9):
        kv = torch.randn(t_k, 4, 12)
        assert encoder(x, kv, kv).shape == (6, 4, 12)
        assert encoder(x, kv).shape == (6, 4, 12)


@pytest.mark.parametrize("t_q,t_k", [(5, 5), (4, 7), (7, 4)])
def test_future_mask_shape_and_values(t_q, t_k):
    mask = future_mask(t_q, t_k)
    assert mask.shape == (t_q, t_k)
    offset = 1 + abs(t_k - t_q)
    for i in range(t_q):
        for j in range(t_k):
            assert mask[i, j] == (float("-inf") if j - i >= offset else 0.0)


@pytest.mark.parametrize("attn_mask", [False, True])
@pytest.mark.parametrize("t_k", [None, 4, 8])
def test_mult_matches_explicit_official_forward(attn_mask, t_k):
    torch.manual_seed(1)
    encoder = MulTEncoder(8, 2, 2, attn_mask=attn_mask).eval()
    for p in encoder.parameters():
        p.data.normal_(0, 0.3)
    x = torch.randn(6, 3, 8)
    x[4:, 1] = 0
    x[2, 2, 0] = 0
    if t_k is None:
        expected, actual = _reference_mult(encoder, x), encoder(x)
    else:
        k, v = torch.randn(t_k, 3, 8), torch.randn(t_k, 3, 8)
        k[-2:, 0, 0] = 0
        expected, actual = _reference_mult(encoder, x, k, v), encoder(x, k, v)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def test_causal_self_attention_ignores_future_steps():
    torch.manual_seed(2)
    encoder = MulTEncoder(8, 2, 3, attn_mask=True).eval()
    x = torch.randn(7, 2, 8)
    changed = x.clone()
    changed[5:] = torch.randn(2, 2, 8)
    before, after = encoder(x), encoder(changed)
    torch.testing.assert_close(before[:5], after[:5])
    assert not torch.allclose(before[5:], after[5:])
    unmasked = MulTEncoder(8, 2, 3, attn_mask=False).eval()
    assert not torch.allclose(unmasked(x)[:5], unmasked(changed)[:5])


def test_sinusoidal_table_matches_fairseq_formula():
    d = 10
    module = SinusoidalPositionalEmbedding(d)
    tokens = torch.ones(1, 6)
    table = module(tokens)[0]
    half = d // 2
    for t, i in [(0, 0), (0, 7), (2, 1), (3, 4), (5, 5), (5, 9)]:
        p = t + 1
        freq = math.exp(-(i % half) * math.log(10000) / (half - 1))
        expected = math.sin(p * freq) if i < half else math.cos(p * freq)
        assert math.isclose(float(table[t, i]), expected, abs_tol=1e-6)
    odd = SinusoidalPositionalEmbedding(7)(tokens)[0]
    assert torch.all(odd[:, -1] == 0)


def test_zero_first_channel_step_gets_no_position():
    module = SinusoidalPositionalEmbedding(6)
    tokens = torch.tensor([[0.5, 0.0, -1.0, 2.0, 0.0]])
    positions = module(tokens)[0]
    assert torch.all(positions[1] == 0) and torch.all(positions[4] == 0)
    # MulT's make_positions keeps absolute indices: the step after an inner zero is position 3, not 2
    torch.testing.assert_close(positions[2], module(torch.ones(1, 5))[0, 2])
    encoder = MulTEncoder(6, 2, 1).eval()
    x = torch.randn(5, 1, 6)
    x[:, 0, 0] = tokens[0]
    embedded = encoder._embed(x)
    torch.testing.assert_close(embedded[1], math.sqrt(6) * x[1])
    assert not torch.allclose(embedded[0], math.sqrt(6) * x[0])


def test_mult_gradient_checkpointing_gives_same_gradients():
    torch.manual_seed(3)
    encoder = MulTEncoder(8, 2, 2, attn_mask=True).train()
    x = torch.randn(5, 2, 8, requires_grad=True)
    encoder(x).square().sum().backward()
    expected = x.grad.clone()
    x.grad = None
    for layer in encoder.layers:
        layer.gradient_checkpointing = True
        layer._gradient_checkpointing_func = partial(torch.utils.checkpoint.checkpoint, use_reentrant=False)
    encoder(x).square().sum().backward()
    torch.testing.assert_close(x.grad, expected)


def test_residual_head():
    torch.manual_seed(4)
    head = ResidualHead(6, 1, dropout=0.5).eval()
    h = torch.randn(3, 6)
    logits, hidden = head(h)
    expected_hidden = head.proj2(F.relu(head.proj1(h))) + h
    torch.testing.assert_close(hidden, expected_hidden)
    torch.testing.assert_close(logits, head.out(expected_hidden))
    assert logits.shape == (3, 1)
