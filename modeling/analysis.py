"""Linear probes of what each learned part of a disentangled MSA model encodes (any method of this package).

Why: "shared", "private" and "nuisance" are claims about information content. On the synthetic set the
generating factors are known (``factor_*`` columns, :mod:`modeling.synthetic`), so the claims can be measured:

* :func:`collect_parts` runs a model over a split and gathers every part of its :class:`~modeling.outputs.
  MSAModelOutput`: ``shared``/``private``/``utterance`` per modality, every per-modality dict in ``extra``
  (TriDiRA's ``ineffective_specific`` u* and ``specific`` u), each group concatenated over the modalities
  (``<group>/all``), ``fused`` and every 2-D tensor in ``extra`` (TriDiRA's u*-only prediction
  ``ineffective_logits``, FDMER's ``fusion_weights``).
* :func:`ridge_probe_r2`: a ridge regression (standardised inputs, ridge strength chosen by leave-one-out
  on the training split) from each part to each factor and to the label, fit on train, R² on test.
* :func:`modality_probe_accuracy`: a fresh logistic regression that tells the modality a vector came from
  (chance 1/3: a modality-invariant group; near 1: modality-specific), for any method.
* :func:`discriminator_accuracy`: the same question answered by a model's own modality discriminator
  (``model.modality_logits``: FDMER, TriDiRA).
* :func:`run_probes` / :func:`probe_checkpoint` do all of it; :func:`write_probe_report` writes JSON and
  Markdown. ``benchmarks/probes.py`` is the command line.

A classification label (UR-FUNNY/MELD-like sets) is probed with a logistic regression and reported as
accuracy (``label_metric``); regression labels and factors as R².
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch

from .modeling_base import MODALITIES

PER_MODALITY_GROUPS = ("shared", "private", "utterance")


def _model_inputs(batch: dict[str, Any], device) -> dict[str, Any]:
    from .training import MODEL_INPUTS

    return {k: v.to(device) for k, v in batch.items() if k in MODEL_INPUTS and k != "labels"}


@torch.no_grad()
def collect_parts(model, split, batch_size: int = 64, max_text_length: int | None = 50
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run ``model`` (eval mode, no gradient) over a dataset ``split`` in order.

    Returns ``(parts, summaries)``: ``parts`` maps ``"<group>/<modality>"``, ``"<group>/all"``, ``"fused"``
    and the name of each 2-D tensor of ``extra`` to ``(N, width)`` arrays; ``summaries`` maps those extra
    tensors (e.g. FDMER's ``fusion_weights``) to their mean over the split.
    """
    from .data import MSACollator, build_dataloaders

    loader = build_dataloaders(
        {"probe": split}, batch_size, collator=MSACollator(max_text_length=max_text_length), shuffle=False
    )["probe"]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chunks: dict[str, list[np.ndarray]] = {}
    tensors: dict[str, list[np.ndarray]] = {}
    for batch in loader:
        output = model(**_model_inputs(batch, device))
        groups = {name: getattr(output, name) for name in PER_MODALITY_GROUPS if getattr(output, name)}
        for name, value in (output.extra or {}).items():
            if isinstance(value, dict):
                groups[name] = value
            elif isinstance(value, torch.Tensor) and value.dim() == 2:
                tensors.setdefault(name, []).append(value.float().cpu().numpy())
        for group, per_modality in groups.items():
            for modality in MODALITIES:
                if modality in per_modality:
                    chunks.setdefault(f"{group}/{modality}", []).append(per_modality[modality].float().cpu().numpy())
        if output.fused is not None:
            chunks.setdefault("fused", []).append(output.fused.float().cpu().numpy())
    model.train(was_training)
    parts = {name: np.concatenate(values) for name, values in chunks.items()}
    for group in {name.split("/")[0] for name in parts if "/" in name}:
        members = [parts.get(f"{group}/{m}") for m in MODALITIES]
        if all(member is not None for member in members):
            parts[f"{group}/all"] = np.concatenate(members, axis=1)
    for name, values in tensors.items():
        parts[name] = np.concatenate(values)
    summaries = {name: parts[name].mean(0) for name in tensors}
    return parts, summaries


def _one_blas_thread():
    """Probe problems are small: one BLAS thread is faster and does not oversubscribe a shared CPU."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train)
    return scaler.transform(train), scaler.transform(test)


def ridge_probe_r2(train_x: np.ndarray, test_x: np.ndarray, train_y: np.ndarray, test_y: np.ndarray
                   ) -> np.ndarray:
    """Test R² of ridge regressions from ``train_x`` ``(N, d)`` to each column of ``train_y`` ``(N, k)``.

    Inputs are standardised with the training statistics; the ridge strength is chosen per target among
    ``10^-3 … 10^3`` by efficient leave-one-out on the training split. R² can be negative (worse than the
    training mean) on test.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score

    with _one_blas_thread():
        train_x, test_x = _standardise(train_x, test_x)
        model = RidgeCV(alphas=np.logspace(-3, 3, 13), alpha_per_target=True).fit(train_x, train_y)
        return np.atleast_1d(r2_score(test_y, model.predict(test_x), multioutput="raw_values"))


def logistic_probe_accuracy(train_x: np.ndarray, test_x: np.ndarray, train_y: np.ndarray, test_y: np.ndarray
                            ) -> float:
    """Test accuracy of a logistic regression (standardised inputs, default L2 strength) fit on train."""
    from sklearn.linear_model import LogisticRegression

    with _one_blas_thread():
        train_x, test_x = _standardise(train_x, test_x)
        classifier = LogisticRegression(max_iter=2000).fit(train_x, train_y)
        return float(classifier.score(test_x, test_y))


def _stack_modalities(parts: dict[str, np.ndarray], group: str) -> tuple[np.ndarray, np.ndarray] | None:
    members = [(index, parts[f"{group}/{m}"]) for index, m in enumerate(MODALITIES) if f"{group}/{m}" in parts]
    if len(members) < 2 or len({x.shape[1] for _, x in members}) > 1:
        return None
    vectors = np.concatenate([x for _, x in members])
    labels = np.concatenate([np.full(len(x), index) for index, x in members])
    return vectors, labels


def modality_probe_accuracy(train_parts: dict[str, np.ndarray], test_parts: dict[str, np.ndarray]
                            ) -> dict[str, float]:
    """Per group with equal-width vectors for at least two modalities: test accuracy of a fresh logistic
    regression telling which modality a vector came from (chance = 1 / number of modalities)."""
    results = {}
    for group in _groups(train_parts):
        train, test = _stack_modalities(train_parts, group), _stack_modalities(test_parts, group)
        if train is not None and test is not None:
            results[group] = logistic_probe_accuracy(train[0], test[0], train[1], test[1])
    return results


@torch.no_grad()
def discriminator_accuracy(model, parts: dict[str, np.ndarray]) -> dict[str, float] | None:
    """Accuracy of the model's own modality discriminator (``model.modality_logits(h)``, columns in
    ``MODALITIES`` order) on every group whose vectors have the width of the ``shared`` ones; ``None`` for a
    model without a discriminator."""
    if not hasattr(model, "modality_logits") or "shared/text" not in parts:
        return None
    device = next(model.parameters()).device
    width = parts["shared/text"].shape[1]
    was_training = model.training
    model.eval()
    results = {}
    for group in _groups(parts):
        stacked = _stack_modalities(parts, group)
        if stacked is None or stacked[0].shape[1] != width:
            continue
        logits = model.modality_logits(torch.as_tensor(stacked[0], dtype=torch.float32, device=device))
        results[group] = float((logits.argmax(-1).cpu().numpy() == stacked[1]).mean())
    model.train(was_training)
    return results


def _groups(parts: dict[str, np.ndarray]) -> list[str]:
    return sorted({name.split("/")[0] for name in parts if "/" in name})


def _targets(split) -> tuple[list[str], np.ndarray]:
    names = [c for c in split.column_names if c.startswith("factor_")]
    columns = [np.asarray(split[name][:], dtype=np.float64) for name in names]
    return names, (np.stack(columns, 1) if columns else np.zeros((len(split), 0)))


def run_probes(model, dataset, batch_size: int = 64, max_text_length: int | None = 50,
               train_split: str = "train", test_split: str = "test") -> dict[str, Any]:
    """All probes of ``model`` on a ``DatasetDict``: fit on ``train_split``, score on ``test_split``.

    Returns a JSON-ready dict: ``targets`` (factor columns then ``label``), ``r2`` (part → target → test
    R²; the ``label`` entry is accuracy when ``label_metric`` is ``"accuracy"``), ``label_chance`` (majority
    rate of a classification label), ``modality_probe`` and ``discriminator`` (group → accuracy, chance
    ``1/3``), ``summaries`` (mean of 2-D ``extra`` tensors on the test split) and the split sizes.
    """
    train, test = dataset[train_split], dataset[test_split]
    train_parts, _ = collect_parts(model, train, batch_size, max_text_length)
    test_parts, summaries = collect_parts(model, test, batch_size, max_text_length)
    names, train_factors = _targets(train)
    _, test_factors = _targets(test)
    train_labels = np.asarray(train["labels"][:])
    test_labels = np.asarray(test["labels"][:])
    classification = np.issubdtype(train_labels.dtype, np.integer)
    if not classification:
        train_factors = np.concatenate([train_factors, train_labels[:, None]], 1)
        test_factors = np.concatenate([test_factors, test_labels[:, None]], 1)
    targets = [*names, "label"]
    r2: dict[str, dict[str, float]] = {}
    for part in train_parts:
        scores = ridge_probe_r2(train_parts[part], test_parts[part], train_factors, test_factors)
        r2[part] = {target: float(score) for target, score in zip(targets, scores)}
        if classification:
            r2[part]["label"] = logistic_probe_accuracy(train_parts[part], test_parts[part], train_labels, test_labels)
    results = {
        "method": getattr(model.config, "model_type", type(model).__name__),
        "targets": targets,
        "label_metric": "accuracy" if classification else "r2",
        "label_chance": float(np.bincount(test_labels).max() / len(test_labels)) if classification else None,
        "r2": r2,
        "modality_probe": modality_probe_accuracy(train_parts, test_parts),
        "discriminator": discriminator_accuracy(model, test_parts),
        "modality_chance": 1.0 / len(MODALITIES),
        "summaries": {name: value.tolist() for name, value in summaries.items()},
        "n_train": len(train),
        "n_test": len(test),
    }
    return results


def _short(target: str) -> str:
    return target.replace("factor_", "").replace("private_", "p_").replace("nuisance_", "n_")


def probe_markdown(results: dict[str, Any], title: str | None = None) -> str:
    """The probe results as Markdown: the R² matrix, then the modality accuracies and summaries."""
    targets = results["targets"]
    label_note = "accuracy" if results["label_metric"] == "accuracy" else "R²"
    lines = [
        f"## {title or results['method']}: linear probes (fit on {results['n_train']} train, scored on "
        f"{results['n_test']} test utterances)",
        "",
        f"Test R² of a ridge probe from each part to each true factor; `label` column: {label_note}.",
        "",
        "| part | " + " | ".join(_short(t) for t in targets) + " |",
        "|" + " --- |" * (len(targets) + 1),
    ]
    for part, scores in results["r2"].items():
        lines.append(f"| {part} | " + " | ".join(f"{scores[t]:.3f}" for t in targets) + " |")
    if results["label_chance"] is not None:
        lines += ["", f"Label accuracy of the majority class: {results['label_chance']:.3f}."]
    chance = results["modality_chance"]
    lines += ["", f"Modality accuracy per group (chance {chance:.3f}):", "", "| group | fresh logistic probe | "
              "model's discriminator |", "| --- | --- | --- |"]
    discriminator = results["discriminator"] or {}
    for group, accuracy in results["modality_probe"].items():
        own = f"{discriminator[group]:.3f}" if group in discriminator else "–"
        lines.append(f"| {group} | {accuracy:.3f} | {own} |")
    for name, mean in results["summaries"].items():
        lines += ["", f"Mean `{name}` on test: " + ", ".join(f"{v:.3f}" for v in mean)]
    return "\n".join(lines) + "\n"


def write_probe_report(results: dict[str, Any], output_dir: str, name: str = "probes", title: str | None = None
                       ) -> tuple[str, str]:
    """Write ``<name>.json`` and ``<name>.md`` into ``output_dir``; return their paths."""
    os.makedirs(output_dir, exist_ok=True)
    json_path, md_path = os.path.join(output_dir, f"{name}.json"), os.path.join(output_dir, f"{name}.md")
    with open(json_path, "w") as fh:
        json.dump(results, fh, indent=2)
    with open(md_path, "w") as fh:
        fh.write(probe_markdown(results, title))
    return json_path, md_path


def _run_config(checkpoint: str) -> dict[str, Any]:
    """``run_config.yaml`` of the ``train.py`` run a checkpoint belongs to (``<output_dir>/seed_N/best``)."""
    import yaml

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(checkpoint))), "run_config.yaml")
    if not os.path.exists(path):
        return {}
    with open(path) as fh:
        return yaml.safe_load(fh) or {}


def probe_checkpoint(checkpoint: str, dataset: str = "synthetic", synthetic: dict[str, Any] | None = None,
                     cache_dir: str = "data_cache", batch_size: int = 64) -> dict[str, Any]:
    """Load a saved model and probe it on ``dataset``: ``"synthetic"`` (the generator's arguments are those of
    the checkpoint's ``train.py`` run when its ``run_config.yaml`` is found, updated with ``synthetic``) or
    a folder written by a converter. Text is cut to the run's ``max_text_length`` (default 50)."""
    from transformers import AutoModel

    import modeling  # noqa: F401  (registers every method with AutoModel)
    from .features import load_msa_dataset

    run = _run_config(checkpoint)
    data = run.get("data") or {}
    if dataset == "synthetic":
        from .synthetic import load_or_make_synthetic

        kwargs = dict(data.get("synthetic") or {}) if data.get("path") == "synthetic" else {}
        kwargs.update(synthetic or {})
        if "sizes" in kwargs:
            kwargs["sizes"] = tuple(kwargs["sizes"])
        splits, _ = load_or_make_synthetic(cache_dir, **kwargs)
    else:
        splits, _ = load_msa_dataset(dataset)
    model = AutoModel.from_pretrained(checkpoint)
    results = run_probes(model, splits, batch_size, data.get("max_text_length", 50))
    results["checkpoint"] = checkpoint
    return results
