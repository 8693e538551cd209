"""Golden values and invariances of the shared loss functions."""

import math

import pytest
import torch

from modeling.losses import angular_margin_loss, cmd, difference_loss, grad_reverse, hsic, task_loss


def test_cmd_golden_value():
    x = torch.tensor([[0.0], [1.0]])
    y = torch.tensor([[0.0], [0.5]])
    # means .5 vs .25 -> .25; k=2: .25 vs .0625; k=3,5: 0; k=4: .0625 vs .00390625
    assert math.isclose(float(cmd(x, y, 5)), 0.25 + 0.1875 + 0.05859375, rel_tol=1e-6)
    assert math.isclose(float(cmd(x, y, 1)), 0.25, rel_tol=1e-6)


def test_cmd_is_zero_for_equal_inputs_with_finite_gradient():
    x = torch.rand(8, 5, requires_grad=True)
    loss = cmd(x, x.detach().clone(), 5)
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert torch.isfinite(x.grad).all()


def test_cmd_constant_shift_leaves_only_mean_term():
    x = torch.rand(16, 4)
    delta = torch.tensor([0.1, -0.2, 0.3, 0.0])
    assert math.isclose(float(cmd(x, x + delta, 5)), float(delta.norm()), rel_tol=1e-4)


def test_cmd_symmetric_and_matches_loop_reference():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(10, 3, generator=g), torch.rand(10, 3, generator=g)
    reference = sum(
        float(((x - x.mean(0)) ** k).mean(0).sub(((y - y.mean(0)) ** k).mean(0)).norm()) for k in range(2, 6)
    ) + float((x.mean(0) - y.mean(0)).norm())
    assert math.isclose(float(cmd(x, y)), reference, rel_tol=1e-5)
    assert math.isclose(float(cmd(x, y)), float(cmd(y, x)), rel_tol=1e-6)


def test_difference_loss_golden_value():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    # centred, row-normalised: x̂ᵀŷ = [[1, 1], [-1, -1]] -> mean of squares 1 (eps shifts it by ~6e-6)
    assert math.isclose(float(difference_loss(x, y)), 1.0, abs_tol=1e-4)


def test_difference_loss_zero_for_uncorrelated_codes_not_for_disjoint_dims():
    # x̂ᵀŷ correlates features ACROSS THE BATCH: batch-orthogonal codes give 0 ...
    a = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])
    b = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]])
    assert float(difference_loss(a, b)) < 1e-12
    # ... while codes living on disjoint feature dims but correlated over samples do not.
    g = torch.Generator().manual_seed(1)
    z = torch.rand(6, 3, generator=g)
    disjoint_a = torch.cat([z, torch.zeros(6, 3)], 1)
    disjoint_b = torch.cat([torch.zeros(6, 3), z], 1)
    assert float(difference_loss(disjoint_a, disjoint_b)) > 0.01


def test_difference_loss_row_scale_invariant():
    g = torch.Generator().manual_seed(1)
    # rows of an already centred batch: rescaling them (keeping the batch centred) leaves the loss unchanged
    c = torch.tensor([[1.0, 2.0], [-1.0, -2.0], [3.0, -1.0], [-3.0, 1.0]])
    c_scaled = c * torch.tensor([[2.0], [2.0], [0.5], [0.5]])
    d = torch.rand(4, 3, generator=g)
    assert math.isclose(float(difference_loss(c, d)), float(difference_loss(c_scaled, d)), rel_tol=1e-5)


def test_difference_loss_norm_is_detached():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(5, 3, generator=g, requires_grad=True)
    y = torch.rand(5, 3, generator=g)
    difference_loss(x, y).backward()
    # reference: same formula with the norms as constants
    xr = x.detach().clone().requires_grad_(True)
    xc = xr - xr.mean(0, keepdim=True)
    yc = y - y.mean(0, keepdim=True)
    nx = xc.detach().norm(dim=1, keepdim=True) + 1e-6
    ny = yc.norm(dim=1, keepdim=True) + 1e-6
    ((xc / nx).t() @ (yc / ny)).pow(2).mean().backward()
    assert torch.allclose(x.grad, xr.grad, atol=1e-7)


def test_gradient_reversal():
    x = torch.randn(3, 2, requires_grad=True)
    out = grad_reverse(x, 0.5)
    assert torch.equal(out, x)
    out.sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, -0.5))


def test_task_losses():
    logits = torch.tensor([[1.0], [3.0]])
    labels = torch.tensor([0.0, 1.0])
    assert math.isclose(float(task_loss(logits, labels, "mse")), (1 + 4) / 2)
    assert math.isclose(float(task_loss(logits, labels, "l1")), (1 + 2) / 2)
    class_logits = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    assert math.isclose(float(task_loss(class_logits, torch.tensor([0, 1]), "ce")), math.log(2), rel_tol=1e-6)


def test_hsic_linear_golden_properties():
    torch.manual_seed(0)
    x, y = torch.randn(16, 5), torch.randn(16, 3)
    n = x.size(0)
    u = torch.eye(n) - torch.ones(n, n) / n
    trace_form = torch.trace(u @ x @ x.t() @ u @ y @ y.t()) / (n - 1) ** 2
    assert torch.allclose(hsic(x, y), trace_form, rtol=1e-5)
    assert torch.allclose(hsic(x, y), hsic(y, x))
    assert torch.allclose(hsic(x + torch.randn(5), y - 3.0), hsic(x, y), rtol=1e-5)
    assert hsic(torch.ones(16, 4) * 2.5, y).item() == 0.0
    # Batch-centred columns orthogonal to each other give 0.
    a = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])
    b = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]])
    assert hsic(a, b).abs().item() < 1e-7
    # Identical inputs are strongly dependent, independent ones much less.
    big = torch.randn(512, 4)
    assert hsic(big, big) > 50 * hsic(big, torch.randn(512, 4))


def test_hsic_rbf_matches_trace_form_and_is_batched():
    torch.manual_seed(1)
    x, y = torch.randn(3, 12, 4), torch.randn(3, 12, 2)
    n = 12
    u = torch.eye(n) - torch.ones(n, n) / n
    values = hsic(x, y, kernel="rbf", bandwidth=1.5)
    for i in range(3):
        k_x = torch.exp(-torch.cdist(x[i], x[i]).pow(2) / (2 * 1.5 ** 2))
        k_y = torch.exp(-torch.cdist(y[i], y[i]).pow(2) / (2 * 1.5 ** 2))
        assert torch.allclose(values[i], torch.trace(u @ k_x @ u @ k_y) / (n - 1) ** 2, rtol=1e-4)
    median_bandwidth = hsic(x, y, kernel="rbf")
    assert median_bandwidth.shape == (3,) and torch.isfinite(median_bandwidth).all()
    dependent = torch.randn(256, 3)
    assert hsic(dependent, dependent.pow(2), kernel="rbf") > 5 * hsic(dependent, torch.randn(256, 3), kernel="rbf")
    with pytest.raises(ValueError, match="kernel"):
        hsic(x, y, kernel="poly")


def test_angular_margin_loss_golden_values():
    weight = torch.eye(4)[:, :3]  # three unit class vectors in 4-d
    orthogonal = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    label = torch.tensor([1])
    expected = math.log(1 + 2 * math.exp(72 * math.sin(0.5)))
    assert angular_margin_loss(orthogonal, weight, label).item() == pytest.approx(expected, rel=1e-5)
    assert angular_margin_loss(orthogonal, weight, label, margin=0.0).item() == pytest.approx(math.log(3), rel=1e-5)
    assert angular_margin_loss(torch.tensor([[0.0, 3.0, 0.0, 0.0]]), weight, label).item() < 1e-6
    # margin 0 and scale 1: plain cross-entropy over cosine logits.
    torch.manual_seed(2)
    features, w, labels = torch.randn(8, 5), torch.randn(5, 3), torch.randint(0, 3, (8,))
    cosine = torch.nn.functional.normalize(features, dim=1) @ torch.nn.functional.normalize(w, dim=0)
    reference = torch.nn.functional.cross_entropy(cosine, labels)
    assert torch.allclose(angular_margin_loss(features, w, labels, scale=1.0, margin=0.0), reference, atol=1e-6)
