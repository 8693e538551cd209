"""Evaluation metrics with the exact semantics of MMSA, so that numbers are comparable with published tables.

Definitions follow ``shared/reference/data_and_metrics.md`` §A4:

* MOSI / MOSEI (``scale="mosi"``): MMSA ``__eval_mosei_regression``. Rounding is ``np.round``
  (half-to-even), weighted F1 is called with the truth first, the Non0 subset keeps ``t != 0`` of the
  truth only (a prediction of exactly 0 counts as negative), MAE uses the unclipped predictions.
* SIMS / SIMS-v2 (``scale="sims"``): MMSA ``__eval_sims_regression``. Both arrays are clipped to
  [-1, 1] first; bins are left-open/right-closed, so a value on an edge goes to the lower bin.
* Classification (UR-FUNNY, MELD): argmax accuracy and weighted F1.

Inputs may be numpy arrays, lists or torch tensors of any float dtype and any shape that flattens to N.
Values are computed in float64 and returned unrounded; rounding to 4 digits as MMSA does is left to the
caller. Undefined values never raise or warn: ``corr`` is NaN when either side is constant (as in MMSA),
``acc2_non0``/``f1_non0`` are NaN when every truth is 0, and F1 of a class that is never predicted is 0
(sklearn's value, without its warning).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import f1_score

MOSI_KEYS = ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc5", "acc7", "mae", "corr")
SIMS_KEYS = ("acc2", "acc3", "acc5", "f1", "mae", "corr")
CLASSIFICATION_KEYS = ("accuracy", "f1_weighted")

#: ``True`` when a larger value is better (model selection on any key); only ``mae`` is lower-is-better.
METRIC_DIRECTIONS: dict[str, bool] = {
    key: key != "mae" for key in (*MOSI_KEYS, *SIMS_KEYS, *CLASSIFICATION_KEYS)
}

_MMSA_NAMES = {
    "acc2_has0": "Has0_acc_2",
    "f1_has0": "Has0_F1_score",
    "acc2_non0": "Non0_acc_2",
    "f1_non0": "Non0_F1_score",
    "acc2": "Mult_acc_2",
    "acc3": "Mult_acc_3",
    "acc5": "Mult_acc_5",
    "acc7": "Mult_acc_7",
    "f1": "F1_score",
    "mae": "MAE",
    "corr": "Corr",
}

# Inner bin edges of MMSA's SIMS metrics (outer edges -1.01/1.01 never matter after clipping).
_SIMS_EDGES = {2: (0.0,), 3: (-0.1, 0.1), 5: (-0.7, -0.1, 0.1, 0.7)}


def _to_numpy(x) -> np.ndarray:
    """Return ``x`` (array, list, scalar or torch tensor) as a numpy array without changing its dtype."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        import torch

        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds it exactly
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _flat_float64(x) -> tuple[np.ndarray, np.dtype]:
    """Flatten to float64 (exact for float16/32) and return the source float dtype for edge comparisons."""
    arr = _to_numpy(x)
    source = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float64)
    return arr.astype(np.float64).reshape(-1), source


def _paired(predictions, labels):
    """Flatten predictions and labels, checking they describe the same non-empty set of samples."""
    p, p_dtype = _flat_float64(predictions)
    t, t_dtype = _flat_float64(labels)
    if p.size != t.size:
        raise ValueError(f"predictions have {p.size} values but labels have {t.size}")
    if p.size == 0:
        raise ValueError("cannot compute metrics on zero samples")
    return p, p_dtype, t, t_dtype


def _weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """sklearn weighted F1 with the truth first (MMSA since cb5e0bd); absent classes score 0 silently."""
    return float(f1_score(y_true, y_pred, average="weighted", zero_division=0))


def _pearson(p: np.ndarray, t: np.ndarray) -> float:
    """``np.corrcoef(p, t)[0, 1]``, NaN without a warning when either side is constant or N < 2."""
    if p.size < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return math.nan
    with np.errstate(all="ignore"):
        return float(np.corrcoef(p, t)[0, 1])


def _sims_bins(x: np.ndarray, n_classes: int, source: np.dtype) -> np.ndarray:
    """Left-open/right-closed bin index of clipped values.

    Edges are taken at the input's own float precision, as numpy does when MMSA compares a float32 array
    with Python floats, so a float32 prediction of exactly 0.1 lands in the lower bin as it does in MMSA.
    """
    edges = np.asarray(_SIMS_EDGES[n_classes], dtype=source).astype(np.float64)
    return np.searchsorted(edges, x, side="left")


def _mosi_metrics(p: np.ndarray, t: np.ndarray) -> dict[str, float]:
    """MMSA ``__eval_mosei_regression`` (also used for MOSI)."""
    non0 = t != 0
    if non0.any():
        pos_t, pos_p = t[non0] > 0, p[non0] > 0
        acc2_non0, f1_non0 = float(np.mean(pos_t == pos_p)), _weighted_f1(pos_t, pos_p)
    else:
        acc2_non0 = f1_non0 = math.nan
    has0_t, has0_p = t >= 0, p >= 0
    return {
        "acc2_has0": float(np.mean(has0_t == has0_p)),
        "f1_has0": _weighted_f1(has0_t, has0_p),
        "acc2_non0": acc2_non0,
        "f1_non0": f1_non0,
        "acc5": float(np.mean(np.round(np.clip(p, -2, 2)) == np.round(np.clip(t, -2, 2)))),
        "acc7": float(np.mean(np.round(np.clip(p, -3, 3)) == np.round(np.clip(t, -3, 3)))),
        "mae": float(np.mean(np.abs(p - t))),
        "corr": _pearson(p, t),
    }


def _sims_metrics(p: np.ndarray, p_dtype: np.dtype, t: np.ndarray, t_dtype: np.dtype) -> dict[str, float]:
    """MMSA ``__eval_sims_regression``: clip both sides to [-1, 1], then bin, MAE and Corr on clipped values."""
    p, t = np.clip(p, -1, 1), np.clip(t, -1, 1)
    bins = {n: (_sims_bins(p, n, p_dtype), _sims_bins(t, n, t_dtype)) for n in _SIMS_EDGES}
    return {
        "acc2": float(np.mean(bins[2][0] == bins[2][1])),
        "acc3": float(np.mean(bins[3][0] == bins[3][1])),
        "acc5": float(np.mean(bins[5][0] == bins[5][1])),
        "f1": _weighted_f1(bins[2][1], bins[2][0]),
        "mae": float(np.mean(np.abs(p - t))),
        "corr": _pearson(p, t),
    }


def compute_msa_metrics(predictions, labels, scale: str = "mosi") -> dict[str, float]:
    """Regression sentiment metrics on a whole split.

    ``scale="mosi"`` (MOSI, MOSEI) returns ``acc2_has0, f1_has0, acc2_non0, f1_non0, acc5, acc7, mae,
    corr``; ``scale="sims"`` (SIMS, SIMS-v2) returns ``acc2, acc3, acc5, f1, mae, corr``. Compute on the
    full split at once, as MMSA does: per-batch F1 is not the same number.
    """
    p, p_dtype, t, t_dtype = _paired(predictions, labels)
    if scale == "mosi":
        return _mosi_metrics(p, t)
    if scale == "sims":
        return _sims_metrics(p, p_dtype, t, t_dtype)
    raise ValueError(f"unknown scale {scale!r}; expected 'mosi' or 'sims'")


def compute_classification_metrics(logits_or_predictions, labels) -> dict[str, float]:
    """Accuracy and weighted F1 (truth first) for class targets such as UR-FUNNY humour or MELD emotion.

    Arrays whose last axis has more than one entry are logits and reduced by argmax over that axis;
    anything else is taken as class ids.
    """
    scores = _to_numpy(logits_or_predictions)
    if scores.ndim >= 2 and scores.shape[-1] > 1:
        scores = scores.argmax(axis=-1)
    pred = scores.reshape(-1).astype(np.int64)
    true = _to_numpy(labels).reshape(-1).astype(np.int64)
    if pred.size != true.size:
        raise ValueError(f"predictions have {pred.size} values but labels have {true.size}")
    if pred.size == 0:
        raise ValueError("cannot compute metrics on zero samples")
    return {"accuracy": float(np.mean(pred == true)), "f1_weighted": _weighted_f1(true, pred)}


def compute_metrics(predictions, labels, task: str) -> dict[str, float]:
    """Dispatch on ``task`` in {"mosi", "sims", "classification"}; the trainer's single entry point."""
    if task == "classification":
        return compute_classification_metrics(predictions, labels)
    if task in ("mosi", "sims"):
        return compute_msa_metrics(predictions, labels, scale=task)
    raise ValueError(f"unknown task {task!r}; expected 'mosi', 'sims' or 'classification'")


def mmsa_keys(metrics: dict[str, float]) -> dict[str, float]:
    """Rename our keys to MMSA's (``acc2_has0`` -> ``Has0_acc_2`` ...) for comparison with MMSA logs.

    Keys without an MMSA counterpart (``accuracy``, ``f1_weighted``) are kept unchanged.
    """
    return {_MMSA_NAMES.get(key, key): value for key, value in metrics.items()}
