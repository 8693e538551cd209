"""Shared DMD/DLF blocks: the MulT encoder and its positions, the residual head, DMD's margin loss, the
cosine orthogonality modes and graph distillation, against the official numerics and loop references."""

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from modeling.layers import (
    DistillationKernel,
    MulTEncoder,
    MulTEncoderLayer,
    ResidualHead,
    SinusoidalPositionalEmbedding,
    dropout,
    future_mask,
)
from modeling.losses import cosine_orthogonality, graph_distillation_losses, label_margin_loss
from conftest import random_batch, tiny_text_config
from modeling import DLFConfig, DLFModel
from official_references import official_hinge


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


@pytest.mark.parametrize("use_sdpa", [False, True])
@pytest.mark.parametrize("attn_mask", [False, True])
@pytest.mark.parametrize("t_k", [None, 4, 8])
def test_mult_matches_explicit_official_forward(attn_mask, t_k, use_sdpa, monkeypatch):
    monkeypatch.setattr(MulTEncoderLayer, "use_sdpa", use_sdpa)
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


@pytest.mark.parametrize("t_k", [None, 5, 9])
def test_mult_attention_kernels_agree_in_value_and_gradient(t_k, monkeypatch):
    """The CPU bmm formulation and fused SDPA compute the same attention, forward and backward."""
    torch.manual_seed(3)
    encoder = MulTEncoder(10, 5, 2, attn_mask=True).train()  # no dropout configured: train mode is deterministic
    x = torch.randn(7, 3, 10)
    kv = None if t_k is None else torch.randn(t_k, 3, 10)
    results = []
    for use_sdpa in (False, True):
        monkeypatch.setattr(MulTEncoderLayer, "use_sdpa", use_sdpa)
        encoder.zero_grad()
        out = encoder(x, kv)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in encoder.named_parameters()}))
    (out_a, grads_a), (out_b, grads_b) = results
    torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-5)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("use_sdpa", [False, True])
def test_mult_attention_dropout_only_in_training(use_sdpa, monkeypatch):
    monkeypatch.setattr(MulTEncoderLayer, "use_sdpa", use_sdpa)
    torch.manual_seed(4)
    layer = MulTEncoderLayer(8, 2, attn_dropout=0.5)
    x = torch.randn(6, 4, 8)
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    layer.train()
    assert not torch.allclose(layer(x), layer(x))
    layer.self_attn.dropout = 0.0
    assert torch.equal(layer(x), layer.eval()(x))


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_keeps_one_minus_p_and_rescales(p):
    x = torch.ones(400, 500, requires_grad=True)
    torch.manual_seed(5)
    out = dropout(x, p, training=True)
    kept = out != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.005  # 200k draws: 5 standard deviations is < 0.0006
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / (1 - p)))
    out.backward(torch.full_like(out, 3.0))
    torch.testing.assert_close(x.grad, kept * 3.0 / (1 - p))
    torch.manual_seed(5)
    assert torch.equal(dropout(x, p, training=True), out)  # reproducible under torch.manual_seed
    assert dropout(x, p, training=False) is x and dropout(x, 0.0, training=True) is x
    assert torch.count_nonzero(dropout(x, 1.0, training=True)) == 0
    half = dropout(x.detach().bfloat16(), p, training=True)
    assert half.dtype == torch.bfloat16 and abs((half != 0).float().mean().item() - (1 - p)) < 0.005


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


# --- DMD's margin loss (HingeLoss) ---------------------------------------------------------------------------


def _reference_hinge(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """mdswyz/DMD ``HingeLoss`` as the trainer calls it: interleaved (l, v, a) per sample, loop over anchors."""
    feats = torch.cat([features[m, i].view(1, -1) for i in range(features.size(1)) for m in range(features.size(0))])
    ids = torch.cat([labels[i].view(1, 1) for i in range(labels.numel()) for _ in range(features.size(0))])
    return official_hinge(ids, feats)


def _devices():
    return ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_margin_loss_equals_official_loop(device, tied, seed):
    g = torch.Generator().manual_seed(seed)
    batch = 6 + seed
    features = torch.randn(3, batch, 5, generator=g, dtype=torch.float64)
    if tied:
        labels = torch.randint(-2, 3, (batch,), generator=g).double() * 0.2
        assert labels.unique().numel() < batch
    else:
        labels = torch.empty(batch, dtype=torch.float64).uniform_(-3, 3, generator=g)
    expected = _reference_hinge(features, labels)
    x = features.to(device, copy=True).requires_grad_()
    actual = label_margin_loss(x, labels.to(device))
    assert actual.device.type == device
    torch.testing.assert_close(actual.cpu(), expected, atol=1e-10, rtol=1e-10)
    reference_x = features.clone().requires_grad_()
    _reference_hinge(reference_x, labels).backward()
    actual.backward()
    torch.testing.assert_close(x.grad.cpu(), reference_x.grad, atol=1e-10, rtol=1e-10)


def test_label_margin_loss_float32_close_to_loop():
    g = torch.Generator().manual_seed(5)
    features = torch.randn(3, 16, 8, generator=g)
    labels = torch.randint(-15, 16, (16,), generator=g).float() * 0.2
    torch.testing.assert_close(label_margin_loss(features, labels), _reference_hinge(features, labels),
                               atol=1e-5, rtol=1e-5)


def test_label_margin_loss_all_equal_labels_is_zero():
    features = torch.randn(3, 5, 4, requires_grad=True)
    loss = label_margin_loss(features, torch.full((5,), 1.4))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(features.grad == 0)


def test_label_margin_loss_distinct_labels_positives_are_own_modalities():
    g = torch.Generator().manual_seed(7)
    features = torch.randn(3, 4, 6, generator=g, dtype=torch.float64)
    labels = torch.tensor([-1.0, 0.3, 0.7, 2.2], dtype=torch.float64)
    vectors = features.transpose(0, 1).reshape(12, 6)
    cosine = F.cosine_similarity(vectors[:, None], vectors[None, :], dim=-1, eps=0)
    ids = labels.repeat_interleave(3)
    expected = []
    for i in range(12):
        pos = [j for j in range(12) if j != i and j // 3 == i // 3]
        neg = [j for j in range(12) if j // 3 != i // 3]
        grid = 0.15 * (ids[i] - ids[neg]).abs()[None] - cosine[i, pos][:, None] + cosine[i, neg][None]
        expected.append(grid.clamp_min(0).mean())
    torch.testing.assert_close(label_margin_loss(features, labels), torch.stack(expected).mean())


def test_label_margin_loss_uses_scale():
    features = torch.randn(3, 4, 6, dtype=torch.float64)
    labels = torch.tensor([-1.0, 0.3, 0.7, 2.2], dtype=torch.float64)
    features = features / features.norm(dim=-1, keepdim=True)
    big = label_margin_loss(features, labels, scale=100.0)
    small = label_margin_loss(features, labels, scale=0.0)
    assert big > small


# --- orthogonality ------------------------------------------------------------------------------------------


def test_cosine_orthogonality_modes_match_cosine_embedding_loss():
    g = torch.Generator().manual_seed(3)
    s, c = torch.randn(7, 4, 20, generator=g), torch.randn(7, 4, 20, generator=g)
    loss = torch.nn.CosineEmbeddingLoss()

    def direct(a, b):
        return loss(a, b, -torch.ones(a.size(0)))

    torch.testing.assert_close(cosine_orthogonality(s, c), direct(s.reshape(-1, 20), c.reshape(-1, 20)))
    torch.testing.assert_close(cosine_orthogonality(s, c, "chunks", 10), direct(s.reshape(-1, 10), c.reshape(-1, 10)))
    per_sample = direct(s.permute(1, 0, 2).reshape(4, -1), c.permute(1, 0, 2).reshape(4, -1))
    torch.testing.assert_close(cosine_orthogonality(s, c, "per_sample_flat"), per_sample)
    # pre-1.10 PyTorch reduced the cosine over dim 1 of the 3-D input: the batch axis of (T', B, d)
    legacy = F.cosine_similarity(s, c, dim=1, eps=0).clamp_min(0).mean()
    torch.testing.assert_close(cosine_orthogonality(s, c, "legacy_batch_axis"), legacy)
    with pytest.raises(ValueError):
        cosine_orthogonality(s, c, "chunks")
    with pytest.raises(ValueError):
        cosine_orthogonality(s, c, "nope")


@pytest.mark.parametrize("mode", ["per_token", "chunks", "per_sample_flat", "legacy_batch_axis"])
def test_cosine_orthogonality_orthogonal_zero_identical_one(mode):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(5, 3, 10, generator=g)
    torch.testing.assert_close(cosine_orthogonality(x, x.clone(), mode, 5), torch.tensor(1.0))
    torch.testing.assert_close(cosine_orthogonality(x, -x, mode, 5), torch.tensor(0.0))
    if mode != "legacy_batch_axis":
        s, c = x.clone(), x.clone()
        s[..., 5:] = 0
        c[..., :5] = 0
        assert float(cosine_orthogonality(s, c, mode, 5)) == 0.0
    else:
        s, c = x.clone(), x.clone()
        s[:, 1:] = 0
        c[:, :1] = 0
        assert float(cosine_orthogonality(s, c, mode)) == 0.0


# --- graph distillation -------------------------------------------------------------------------------------

HOMO_PRIOR = [0.0088, 0.0088, 0.4823, 0.0088, 0.4823, 0.0088]
HETERO_PRIOR = [0.0060, 0.0060, 0.3273, 0.0060, 0.3273, 0.3273]


def _kernel(prior_weights, repr_dim=6, gd_size=4, seed=0):
    torch.manual_seed(seed)
    return DistillationKernel(num_modalities=3, logit_dim=1, repr_dim=repr_dim, gd_size=gd_size,
                              prior_weights=prior_weights, prior_temperature=0.25, alpha=0.125)


def _inputs(batch=5, repr_dim=6, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    logits = [torch.randn(batch, 1, generator=g).requires_grad_(grad) for _ in range(3)]
    reprs = [torch.randn(batch, repr_dim, generator=g).requires_grad_(grad) for _ in range(3)]
    return logits, reprs


def _zero_edges(kernel):
    with torch.no_grad():
        kernel.W_edge.weight.zero_()
        kernel.W_edge.bias.zero_()


def test_gd_priors():
    homo, hetero = _kernel([0, 0, 1, 0, 1, 0]), _kernel([0, 0, 1, 0, 1, 1])
    torch.testing.assert_close(homo.prior, torch.tensor(HOMO_PRIOR), atol=1e-4, rtol=0)
    torch.testing.assert_close(hetero.prior, torch.tensor(HETERO_PRIOR), atol=1e-4, rtol=0)
    assert homo.pairs == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    assert list(dict(homo.named_buffers())) == []
    with pytest.raises(ValueError):
        _kernel([0, 1])


def test_gd_edges_shape_and_normalisation():
    kernel = _kernel([0, 0, 1, 0, 1, 0])
    logits, reprs = _inputs()
    edges = kernel(logits, reprs)
    assert edges.shape == (6, 5)
    torch.testing.assert_close(edges.sum(0), torch.ones(5))
    torch.testing.assert_close(kernel(torch.stack(logits), torch.stack(reprs)), edges)
    # official: edge (student j <- teacher i) = W_edge([z_j; z_i]), softmax over edges of e / 8
    z = [torch.cat([kernel.W_logit(logits[m]), kernel.W_repr(reprs[m])], 1) for m in range(3)]
    raw = torch.cat([kernel.W_edge(torch.cat([z[j], z[i]], 1)) for j, i in kernel.pairs], 1)
    torch.testing.assert_close(edges, F.softmax(raw * 0.125, dim=1).t())


def test_gd_zero_edge_logits_uniform_edges_and_regulariser():
    kernel = _kernel([0, 0, 1, 0, 1, 0])
    _zero_edges(kernel)
    logits, reprs = _inputs()
    torch.testing.assert_close(kernel(logits, reprs), torch.full((6, 5), 1 / 6))
    losses = graph_distillation_losses(kernel, logits, reprs, "l1")
    prior = kernel.prior.double()
    expected = 10 * float(((1 / 6 - prior) ** 2).sum())
    assert math.isclose(expected, 2.99, abs_tol=0.01)
    assert math.isclose(losses["reg"].item(), expected, rel_tol=1e-5)


def _reference_gd(kernel, logits, reprs, metric):
    """mdswyz/DMD ``distillation_loss`` with the per-edge loop and ``misc.py``'s distance functions."""
    edges = kernel(logits, reprs)
    prior = kernel.prior
    loss_logit, loss_repr = 0, 0
    for x, (j, i) in enumerate(kernel.pairs):
        w = edges[x] + prior[x]
        loss_logit = loss_logit + (torch.abs(logits[j] - logits[i].detach()).sum(1) * w).mean()
        if metric == "l1":
            loss_repr = loss_repr + 10 * (torch.abs(reprs[j] - reprs[i].detach()).sum(1) * w).mean()
        else:
            dist = torch.nn.CosineEmbeddingLoss()(reprs[j], reprs[i].detach(), torch.tensor([-1]))
            loss_repr = loss_repr + 10 * (dist * w).mean()
    loss_reg = (edges.mean(1) - prior).pow(2).sum() * 10
    return {"logit": loss_logit, "repr": loss_repr, "reg": loss_reg}


@pytest.mark.parametrize("metric", ["l1", "min_cosine"])
def test_gd_losses_equal_official_loop(metric):
    kernel = _kernel([0, 0, 1, 0, 1, 1])
    logits, reprs = _inputs(grad=True, seed=3)
    actual = graph_distillation_losses(kernel, logits, reprs, metric)
    expected = _reference_gd(kernel, logits, reprs, metric)
    for name in ("logit", "repr", "reg"):
        torch.testing.assert_close(actual[name], expected[name])
    grads = torch.autograd.grad(sum(actual.values()), logits + reprs + list(kernel.parameters()))
    reference = torch.autograd.grad(sum(expected.values()), logits + reprs + list(kernel.parameters()))
    for a, b in zip(grads, reference):
        torch.testing.assert_close(a, b)


def test_gd_weights_and_repr_weight_arguments():
    kernel = _kernel([0, 0, 1, 0, 1, 0])
    logits, reprs = _inputs()
    base = graph_distillation_losses(kernel, logits, reprs, "l1")
    scaled = graph_distillation_losses(kernel, logits, reprs, "l1", reg_weight=1.0, repr_weight=2.0)
    torch.testing.assert_close(scaled["reg"], base["reg"] / 10)
    torch.testing.assert_close(scaled["repr"], base["repr"] / 5)
    with pytest.raises(ValueError):
        graph_distillation_losses(kernel, logits, reprs, "kl")


def test_gd_teacher_is_stop_gradient_edges_get_gradient():
    kernel = _kernel([0, 0, 1, 0, 1, 0])
    _zero_edges(kernel)
    logits, reprs = _inputs(grad=True, seed=1)
    losses = graph_distillation_losses(kernel, logits, reprs, "l1")
    losses["logit"].backward()
    weights = 1 / 6 + kernel.prior
    for m in range(3):
        # with constant edges only the student side of each distance carries gradient
        expected = sum(
            weights[k] * torch.sign(logits[j] - logits[i]).detach() / logits[j].size(0)
            for k, (j, i) in enumerate(kernel.pairs) if j == m
        )
        torch.testing.assert_close(logits[m].grad, expected)
    assert kernel.W_edge.weight.grad is not None and kernel.W_edge.weight.grad.abs().sum() > 0

    fresh = _kernel([0, 0, 1, 0, 1, 0])
    logits, reprs = _inputs(grad=True, seed=2)
    graph_distillation_losses(fresh, logits, reprs, "l1")["reg"].backward()
    for module in (fresh.W_edge, fresh.W_logit, fresh.W_repr):
        assert module.weight.grad.abs().sum() > 0
    assert all(x.grad.abs().sum() > 0 for x in logits + reprs)


def test_gd_hetero_repr_term_pushes_student_away_from_teacher():
    kernel = _kernel([0, 0, 1, 0, 1, 1])
    _zero_edges(kernel)
    g = torch.Generator().manual_seed(6)
    base = torch.randn(5, 6, generator=g)
    reprs = [base + 0.3 * torch.randn(5, 6, generator=g) for _ in range(3)]
    student = reprs[0].clone().requires_grad_()
    logits = [torch.zeros(5, 1) for _ in range(3)]
    loss = graph_distillation_losses(kernel, logits, [student, reprs[1], reprs[2]], "min_cosine")["repr"]
    loss.backward()
    moved = student.detach() - 0.05 * student.grad
    for teacher in reprs[1:]:
        assert torch.all(F.cosine_similarity(moved, teacher) < F.cosine_similarity(student.detach(), teacher))
    homo = graph_distillation_losses(kernel, logits, [student, reprs[1], reprs[2]], "l1")["repr"]
    student.grad = None
    homo.backward()
    pulled = student.detach() - 1e-3 * student.grad
    assert (pulled - reprs[1]).abs().sum() < (student.detach() - reprs[1]).abs().sum()


def test_mult_layers_get_mults_xavier_initialisation_in_every_model():
    """fc1/fc2/attention (in and out) Xavier-uniform with zero biases, also after from_pretrained's meta init."""
    model = DLFModel(DLFConfig(text_config=tiny_text_config(), audio_dim=5, vision_dim=20, hidden_size=32,
                               num_heads=4))
    layers = [m for m in model.modules() if type(m).__name__ == "MulTEncoderLayer"]
    assert layers
    for layer in layers:
        for linear in (layer.fc1, layer.fc2, layer.self_attn.out_proj):
            fan_in, fan_out = linear.weight.shape[1], linear.weight.shape[0]
            bound = math.sqrt(6 / (fan_in + fan_out))
            assert linear.weight.abs().max() <= bound + 1e-6
            assert torch.count_nonzero(linear.bias) == 0  # PyTorch's default bias would be non-zero
        assert torch.count_nonzero(layer.self_attn.in_proj_bias) == 0


@pytest.mark.parametrize("attn_mask", [False, True])
@pytest.mark.parametrize("cross", [False, True])
def test_mult_last_only_equals_last_step_of_full_output(attn_mask, cross):
    torch.manual_seed(0)
    encoder = MulTEncoder(8, 2, 3, attn_mask=attn_mask).eval()
    x = torch.randn(7, 4, 8)
    source = (torch.randn(9, 4, 8),) if cross else ()
    with torch.no_grad():
        full = encoder(x, *source)
        last = encoder(x, *source, last_only=True)
    assert last.shape == (4, 8)
    assert torch.allclose(last, full[-1], atol=1e-5)
    assert not torch.allclose(last, full[-2], atol=1e-3)


@pytest.mark.parametrize("method", ["dmd", "dlf"])
def test_skipping_unused_computation_leaves_outputs_and_losses_unchanged(method):
    from modeling import METHODS
    from test_all_methods import TINY

    config_class, model_class = METHODS[method]
    depth = {"dmd": dict(nlevels=2), "dlf": dict(num_layers=2, lfa_memory_layers=2)}[method]
    outputs = {}
    for skip in (True, False):
        torch.manual_seed(0)
        config = config_class(text_config=tiny_text_config(), audio_dim=5, vision_dim=20,
                              **{**TINY[method], **depth, "skip_unused_computation": skip})
        model = model_class(config).eval()
        batch = random_batch()
        with torch.no_grad():
            with_labels = model(**batch)
            without = model(**{k: v for k, v in batch.items() if k != "labels"})
        outputs[skip] = (with_labels, without)
    for fast, slow in zip(outputs[True], outputs[False]):
        assert torch.allclose(fast.logits, slow.logits, atol=1e-5)
        assert torch.allclose(fast.fused, slow.fused, atol=1e-5)
        for m in slow.shared:
            assert torch.allclose(fast.shared[m], slow.shared[m], atol=1e-5)
            assert torch.allclose(fast.private[m], slow.private[m], atol=1e-5)
    assert torch.allclose(outputs[True][0].loss, outputs[False][0].loss, atol=1e-5)
    assert outputs[True][1].loss is None and outputs[True][1].loss_terms is None
    assert config_class.from_preset("official", "mosi").skip_unused_computation is False
    assert config_class().skip_unused_computation is True
