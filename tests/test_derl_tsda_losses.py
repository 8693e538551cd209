"""Golden values and invariances of the losses added for DERL (standardized_mse, expert_balance_loss) and TSDA
(squared_cosine)."""

import math

import pytest
import torch

from modeling.losses import expert_balance_loss, squared_cosine, standardized_mse


def test_standardized_mse_golden_values():
    target = torch.tensor([[0.0], [2.0]])  # mean 1, std 1 -> z = [-1, 1]
    assert math.isclose(float(standardized_mse(torch.zeros(2, 1), target)), 1.0, rel_tol=1e-5)
    assert float(standardized_mse(torch.tensor([[-1.0], [1.0]]), target)) < 1e-10
    assert math.isclose(float(standardized_mse(torch.tensor([[1.0], [1.0]]), target)), 2.0, rel_tol=1e-5)


def test_standardized_mse_is_per_feature_scale_free():
    g = torch.Generator().manual_seed(0)
    target, prediction = torch.randn(6, 5, 3, generator=g), torch.randn(6, 5, 3, generator=g)
    scale, shift = torch.tensor([1.0, 1000.0, 0.01]), torch.tensor([5.0, -300.0, 0.0])
    assert math.isclose(float(standardized_mse(prediction, target)),
                        float(standardized_mse(prediction, target * scale + shift)), rel_tol=1e-4)


def test_standardized_mse_mask_selects_entries_and_statistics():
    target = torch.tensor([[[0.0], [2.0], [100.0]]])
    mask = torch.tensor([[True, True, False]])
    prediction = torch.tensor([[[-1.0], [1.0], [55.0]]])  # the masked-out position is neither scored nor counted
    assert float(standardized_mse(prediction, target, mask)) < 1e-10
    constant = standardized_mse(torch.zeros(3, 2), torch.full((3, 2), 7.0))
    assert float(constant) == 0.0  # a constant feature standardises to 0 (eps guards the division)
    with pytest.raises(ValueError, match="equal shapes"):
        standardized_mse(torch.zeros(2, 3), torch.zeros(2, 4))


def test_expert_balance_loss_golden_values():
    uniform = torch.full((4, 3), 1 / 3)
    assert abs(float(expert_balance_loss(uniform))) < 1e-6
    collapsed = torch.tensor([[1.0, 0.0, 0.0]] * 4)
    assert math.isclose(float(expert_balance_loss(collapsed)), 2.0, rel_tol=1e-6)  # E - 1
    alternating = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # each sample picks one, the batch uses both equally
    assert abs(float(expert_balance_loss(alternating))) < 1e-6
    batched = expert_balance_loss(torch.stack([uniform, collapsed]))
    assert batched.shape == (2,) and math.isclose(float(batched[1]), 2.0, rel_tol=1e-6)


def test_squared_cosine_golden_values():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    y = torch.tensor([[0.0, 3.0], [-1.0, 0.0], [1.0, 1.0], [5.0, 0.0]])
    # cos² per pair: 0 (orthogonal), 1 (anti-parallel), 0.5 (45°), 1 (parallel)
    assert math.isclose(float(squared_cosine(x, y)), 2.5 / 4, rel_tol=1e-6)
    stacked = squared_cosine(torch.stack([x, x]), torch.stack([y, y]))
    assert math.isclose(float(stacked), 2.5 / 4, rel_tol=1e-6)
    zero = torch.zeros(1, 2, requires_grad=True)
    value = squared_cosine(zero, torch.ones(1, 2))
    value.backward()
    assert float(value.detach()) == 0.0 and torch.isfinite(zero.grad).all()
