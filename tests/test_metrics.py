"""Metrics against the MMSA golden values of data_and_metrics.md §A4 and the gotchas listed there."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from modeling.metrics import (
    METRIC_DIRECTIONS,
    compute_classification_metrics,
    compute_metrics,
    compute_msa_metrics,
    mmsa_keys,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MOSI_LABELS = SHARED / "data" / "mosi" / "mosi_label_mmsa_layout.csv"

MOSI_KEYS = {"acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc5", "acc7", "mae", "corr"}
SIMS_KEYS = {"acc2", "acc3", "acc5", "f1", "mae", "corr"}

CASE_A_T = np.array([-3, -2.5, -1.5, -0.5, 0, 0, 0.5, 1.5, 2.5, 3, 0.2, -0.2], dtype=np.float32)
CASE_A_P = np.array([-3.4, -2.0, -1.2, 0.0, 0.3, -0.1, 0.4, 2.5, 1.6, 3.6, -0.3, 0.1], dtype=np.float32)
CASE_C_T = np.array([-1, -0.8, -0.6, -0.2, 0, 0, 0.2, 0.4, 0.6, 0.8, 1, -0.4], dtype=np.float32)
CASE_C_P = np.array(
    [-0.9, -0.5, -0.75, 0.05, -0.05, 0.12, 0.08, 0.69, 0.71, 1.3, 0.4, -0.11], dtype=np.float32
)


def assert_close(result: dict, expected: dict, tol: float = 1e-4) -> None:
    for key, value in expected.items():
        if math.isnan(value):
            assert math.isnan(result[key]), key
        else:
            assert abs(result[key] - value) <= tol, (key, result[key], value)


@pytest.fixture(scope="module")
def mosi_test_labels() -> np.ndarray:
    """Real MOSI test labels (mode=='test', file order) as float32, as MMSA stores them."""
    if not MOSI_LABELS.is_file():
        pytest.skip(f"shared MOSI labels not available at {MOSI_LABELS}")
    with MOSI_LABELS.open(newline="") as handle:
        labels = [float(row["label"]) for row in csv.DictReader(handle) if row["mode"] == "test"]
    return np.asarray(labels, dtype=np.float32)


def case_b_predictions(t: np.ndarray) -> np.ndarray:
    i = np.arange(t.size)
    return (0.7 * t + 0.9 * np.sin(1.3 * i)).astype(np.float32)


def test_case_a_golden():
    result = compute_msa_metrics(CASE_A_P, CASE_A_T)
    assert set(result) == MOSI_KEYS
    assert_close(result, {
        "acc2_has0": 0.6667, "f1_has0": 0.6667, "acc2_non0": 0.8, "f1_non0": 0.8,
        "acc5": 0.9167, "acc7": 0.9167, "mae": 0.4583, "corr": 0.9583,
    })


def test_case_b_golden(mosi_test_labels):
    assert mosi_test_labels.size == 686
    result = compute_msa_metrics(case_b_predictions(mosi_test_labels), mosi_test_labels)
    assert_close(result, {
        "acc2_has0": 0.8659, "f1_has0": 0.8654, "acc2_non0": 0.875, "f1_non0": 0.8747,
        "acc5": 0.4461, "acc7": 0.398, "mae": 0.647, "corr": 0.8716,
    })


def test_case_b_float64_gives_same_result(mosi_test_labels):
    t64 = mosi_test_labels.astype(np.float64)
    p64 = 0.7 * t64 + 0.9 * np.sin(1.3 * np.arange(t64.size))
    reference = compute_msa_metrics(case_b_predictions(mosi_test_labels), mosi_test_labels)
    assert_close(compute_msa_metrics(p64, t64), {k: round(v, 4) for k, v in reference.items()}, tol=5e-5)


def test_case_b_constant_zero_prediction(mosi_test_labels):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = compute_msa_metrics(np.zeros_like(mosi_test_labels), mosi_test_labels)
    assert_close(result, {
        "acc2_has0": 0.4475, "f1_has0": 0.2767, "acc2_non0": 0.5777, "f1_non0": 0.4231,
        "acc5": 0.1545, "acc7": 0.1545, "mae": 1.4174, "corr": math.nan,
    })


def test_case_b_half_even_changes_13_acc7_classes(mosi_test_labels):
    """§A4 gotcha 1: on the real test split 13/686 labels get another Acc-7 class under half-up rounding."""
    clipped = np.clip(mosi_test_labels.astype(np.float64), -3, 3)
    half_away = np.sign(clipped) * np.floor(np.abs(clipped) + 0.5)
    assert int(np.sum(np.round(clipped) != half_away)) == 13


def test_case_c_sims_golden():
    result = compute_msa_metrics(CASE_C_P, CASE_C_T, scale="sims")
    assert set(result) == SIMS_KEYS
    assert_close(result, {
        "acc2": 0.8333, "acc3": 0.75, "acc5": 0.4167, "f1": 0.8333, "mae": 0.215, "corr": 0.9108,
    })


def test_half_even_rounding():
    t = np.array([0.5, 1.5, 2.5, -0.5, -2.5])
    p = np.array([0.0, 2.0, 2.0, 0.0, -2.0])
    half_up = np.floor(t + 0.5)
    assert np.mean(half_up == p) < 1.0  # the case distinguishes the two roundings
    result = compute_msa_metrics(p, t)
    assert result["acc7"] == 1.0
    assert result["acc5"] == 1.0


def test_f1_truth_first():
    t = np.array([1, 1, 1, -1, -1, -1], dtype=np.float32)
    p = np.array([1, -1, -1, -1, -1, 1], dtype=np.float32)
    # class +: F1 2/5, class -: F1 4/7; truth supports 3:3 -> 17/35, prediction supports 2:4 -> 18/35
    assert f1_score(p > 0, t > 0, average="weighted") == pytest.approx(18 / 35)
    result = compute_msa_metrics(p, t)
    assert result["f1_non0"] == pytest.approx(17 / 35)
    assert result["f1_has0"] == pytest.approx(17 / 35)


def test_non0_filters_truth_only():
    t = np.array([0.0, 1.0, -1.0, 2.0])
    p = np.array([5.0, 0.0, -1.0, 0.0])
    result = compute_msa_metrics(p, t)
    # the zero-truth sample is dropped; predictions of exactly 0 stay and count as negative
    assert result["acc2_non0"] == pytest.approx(1 / 3)
    # in Has0 the same zero predictions are non-negative, like the positive truths
    assert result["acc2_has0"] == 1.0


def test_non0_undefined_when_all_truths_zero():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = compute_msa_metrics([0.3, -0.2], [0.0, 0.0])
    assert math.isnan(result["acc2_non0"]) and math.isnan(result["f1_non0"])


def test_mae_on_unclipped_mosi_and_clipped_sims():
    assert compute_msa_metrics([4.0], [3.0])["mae"] == pytest.approx(1.0)
    assert compute_msa_metrics([4.0], [1.0], scale="sims")["mae"] == 0.0


def test_sims_edges_go_to_lower_bin():
    """Left-open/right-closed bins, also for float32 predictions (MMSA compares those in float32)."""
    for dtype in (np.float32, np.float64):
        def sims(p, t):
            return compute_msa_metrics(np.array(p, dtype=dtype), t, scale="sims")

        assert sims([0.0], [-0.2])["acc2"] == 1.0  # zero is negative in SIMS 2-class
        assert sims([0.1, -0.1], [0.0, -0.2])["acc3"] == 1.0
        assert sims([0.7, 0.1, -0.1, -0.7], [0.6, 0.0, -0.2, -0.8])["acc5"] == 1.0


def test_tensor_inputs_match_numpy():
    expected = compute_msa_metrics(CASE_A_P, CASE_A_T)
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        p = torch.tensor(CASE_A_P).to(dtype).reshape(-1, 1).requires_grad_()
        t = torch.tensor(CASE_A_T).to(dtype)
        result = compute_msa_metrics(p, t)
        if dtype is torch.bfloat16:
            assert set(result) == MOSI_KEYS
        else:
            assert result == expected
    assert compute_msa_metrics(CASE_A_P.tolist(), CASE_A_T.tolist()) == pytest.approx(expected)
    assert compute_msa_metrics(torch.tensor(CASE_C_P), torch.tensor(CASE_C_T), scale="sims") == (
        compute_msa_metrics(CASE_C_P, CASE_C_T, scale="sims")
    )


def test_constant_prediction_nan_corr_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mosi = compute_msa_metrics(np.full(12, 0.7, dtype=np.float32), CASE_A_T)
        sims = compute_msa_metrics(np.full(12, 2.0), CASE_C_T, scale="sims")  # constant after clipping
        single = compute_msa_metrics([0.5], [1.0])
    assert math.isnan(mosi["corr"]) and math.isnan(sims["corr"]) and math.isnan(single["corr"])


def test_classification_metrics():
    logits = torch.tensor([[2.0, 0.1, 0.0], [0.0, 3.0, 1.0], [0.0, 0.2, 0.1], [0.0, 0.0, 5.0]])
    labels = torch.tensor([0, 1, 2, 2])
    result = compute_classification_metrics(logits, labels)
    assert set(result) == {"accuracy", "f1_weighted"}
    assert result["accuracy"] == 0.75
    assert result["f1_weighted"] == pytest.approx(f1_score([0, 1, 2, 2], [0, 1, 1, 2], average="weighted"))
    assert compute_classification_metrics(np.array([0, 1, 1, 2]), [0, 1, 2, 2]) == result
    assert compute_metrics(logits.numpy(), labels.numpy(), "classification") == result


def test_dispatcher_and_errors():
    assert compute_metrics(CASE_A_P, CASE_A_T, "mosi") == compute_msa_metrics(CASE_A_P, CASE_A_T)
    assert compute_metrics(CASE_C_P, CASE_C_T, "sims") == compute_msa_metrics(CASE_C_P, CASE_C_T, "sims")
    with pytest.raises(ValueError):
        compute_metrics(CASE_A_P, CASE_A_T, "regression")
    with pytest.raises(ValueError):
        compute_msa_metrics(CASE_A_P, CASE_A_T, scale="mosei")
    with pytest.raises(ValueError):
        compute_msa_metrics(CASE_A_P[:3], CASE_A_T)
    with pytest.raises(ValueError):
        compute_msa_metrics([], [])


def test_directions_and_mmsa_keys():
    assert set(METRIC_DIRECTIONS) == MOSI_KEYS | SIMS_KEYS | {"accuracy", "f1_weighted"}
    assert [k for k, higher in METRIC_DIRECTIONS.items() if not higher] == ["mae"]
    renamed = mmsa_keys(compute_msa_metrics(CASE_A_P, CASE_A_T))
    assert set(renamed) == {
        "Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_5", "Mult_acc_7", "MAE", "Corr",
    }
    assert set(mmsa_keys(compute_msa_metrics(CASE_C_P, CASE_C_T, "sims"))) == {
        "Mult_acc_2", "Mult_acc_3", "Mult_acc_5", "F1_score", "MAE", "Corr",
    }
    assert mmsa_keys({"accuracy": 0.5}) == {"accuracy": 0.5}
