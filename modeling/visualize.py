"""Paper figures from a trained checkpoint and a dataset (PNG files; matplotlib with the Agg backend).

    pip install '.[analysis]'          # matplotlib (umap-learn optional, for --embedding umap)
    python -m modeling.visualize --checkpoint runs/dlf_synthetic/seed_1111/best --out figures/

Figures (each skipped with a printed reason when the model or run does not provide what it needs):

* ``<prefix>embedding.png``: t-SNE (or UMAP) of every representation space the output exposes (``shared``,
  ``private`` and per-modality entries of ``extra`` such as TriDiRA's ``ineffective_specific``), one joint
  embedding, coloured by modality; a well-disentangled model mixes modalities in the shared space and
  separates them in the private one (FDMER Fig. 2, TriDiRA's subspace plot).
* ``<prefix>confusion.png``: 7-class confusion matrix of the regression predictions (rounded half to even and
  clipped to [-3, 3], as Acc-7) and per-class accuracy (DLF Fig. 4); SIMS scale uses [-1, 1], classification
  the argmax.
* ``<prefix>weights.png``: fusion / expert / gate weights per modality or expert when the output exposes
  them (any field or ``extra`` entry whose name contains weight, gate, importance or confidence).
* ``<prefix>loss_curves.png``: every training loss term per epoch and the validation criterion, from the
  run's ``seed_*/log.jsonl``.
* ``<prefix>probes.png``: test R² of linear probes from every learned part to every true factor of the
  synthetic set and to the label (:func:`modeling.analysis.probe_checkpoint`).

The model files contain no plotting; this module only reads ``MSAModelOutput``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

MODALITY_COLOURS = {"text": "tab:blue", "audio": "tab:orange", "vision": "tab:green"}
SPACE_MARKERS = ("o", "^", "s", "D", "v", "P")
#: output fields that are not representation spaces or weights
KNOWN_FIELDS = ("loss", "logits", "loss_terms", "shared", "private", "utterance", "fused", "extra")
WEIGHT_NAME = re.compile(r"weight|gate|importance|confidence", re.IGNORECASE)
#: class names of the 7 MOSI sentiment classes -3 ... 3 (DLF Fig. 4)
SENTIMENT_7 = ("HN", "N", "WN", "NT", "WP", "P", "HP")


def require_matplotlib():
    """``matplotlib.pyplot`` on the Agg backend, or an ImportError saying how to install it."""
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError("figures need matplotlib: pip install 'msa-disentangled[analysis]' "
                          "(or pip install -e '.[analysis]' in a clone)") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------------------------------------- loading


def find_run_config(checkpoint: Path) -> Path | None:
    """``run_config.yaml`` written by ``train`` two levels above ``<output_dir>/seed_<s>/best``."""
    for parent in (checkpoint.parent, checkpoint.parent.parent):
        if (parent / "run_config.yaml").exists():
            return parent / "run_config.yaml"
    return None


def load_model_and_data(checkpoint: str | Path, dataset: str | None = None, split: str = "test"):
    """The checkpoint's model (eval mode), a DataLoader over ``split`` built as in training, and the task.

    Data settings (synthetic generator arguments, maximum lengths, dropped modalities) come from the run's
    ``run_config.yaml`` when it is found; ``dataset`` replaces the data path ("synthetic", a converted
    folder or a Hub id).
    """
    from transformers import AutoModel

    import modeling  # noqa: F401  (registers every method with the Auto classes)

    from .data import MSACollator, build_dataloaders
    from .features import MODALITIES
    from .training import DataArgs, infer_task, load_config, load_data

    checkpoint = Path(checkpoint)
    config_path = find_run_config(checkpoint)
    data_args = load_config(str(config_path)).data if config_path else DataArgs()
    if dataset is not None and dataset != data_args.path:
        data_args = DataArgs(**{**data_args.__dict__, "path": dataset,
                                "synthetic": data_args.synthetic if dataset == "synthetic" else {}})
    model = AutoModel.from_pretrained(str(checkpoint)).eval()
    data, metadata = load_data(data_args)
    if split not in data:
        raise ValueError(f"dataset {data_args.path!r} has no split {split!r}; found {sorted(data)}")
    task = infer_task(data, metadata, data_args.task)
    limits = {m: getattr(data_args, f"max_{m}_length") for m in MODALITIES}
    if data_args.pad_to_max_length:
        limits = {m: limits[m] or getattr(model.config, f"{m}_length") for m in MODALITIES}
    collator = MSACollator(
        max_text_length=limits["text"], max_audio_length=limits["audio"], max_vision_length=limits["vision"],
        pad_to_max_length=data_args.pad_to_max_length, drop_modalities=tuple(data_args.drop_modalities),
    )
    loader = build_dataloaders({split: data[split]}, batch_size=64, collator=collator)[split]
    return model, loader, task


def _vector(tensor: torch.Tensor) -> np.ndarray | None:
    """A per-sample representation ``(B, d)``: sequences ``(B, T, d)`` are averaged over time."""
    if not isinstance(tensor, torch.Tensor) or tensor.dim() < 2:
        return None
    if tensor.dim() > 2:
        tensor = tensor.mean(dim=tuple(range(1, tensor.dim() - 1)))
    return tensor.detach().float().cpu().numpy()


def _weight(value: Any) -> dict[str, np.ndarray] | np.ndarray | None:
    """Weights as ``(B, K)`` / ``(B,)`` arrays or a dict of them; None for anything else."""
    if isinstance(value, torch.Tensor) and value.dim() in (1, 2):
        return value.detach().float().cpu().numpy()
    if isinstance(value, dict):
        parts = {str(k): _weight(v) for k, v in value.items()}
        parts = {k: v for k, v in parts.items() if isinstance(v, np.ndarray)}
        return parts or None
    return None


def split_output(output) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """``(spaces, weights)`` of one model output.

    ``spaces``: space name -> modality -> ``(B, d)``, from ``shared``/``private`` and from any other field or
    ``extra`` entry that maps modality names to tensors. ``weights``: name -> array or dict of arrays, from
    fields and ``extra`` entries whose name contains weight/gate/importance/confidence. Absent (None) fields
    are skipped, so methods without them produce fewer figures, not errors.
    """
    from .features import MODALITIES

    candidates: dict[str, Any] = {}
    for name in ("shared", "private"):
        if getattr(output, name, None) is not None:
            candidates[name] = getattr(output, name)
    for name, value in output.items():
        if name not in KNOWN_FIELDS:
            candidates[name] = value
    for name, value in (getattr(output, "extra", None) or {}).items():
        candidates.setdefault(name, value)
    spaces, weights = {}, {}
    for name, value in candidates.items():
        if value is None:
            continue
        if WEIGHT_NAME.search(name):
            parsed = _weight(value)
            if parsed is not None:
                weights[name] = parsed
        elif isinstance(value, dict) and value and set(value) <= set(MODALITIES):
            vectors = {m: _vector(v) for m, v in value.items()}
            vectors = {m: v for m, v in vectors.items() if v is not None and v.shape[1] > 1}
            if vectors:
                spaces[name] = vectors
    return spaces, weights


def _concat(parts: list) -> Any:
    """Concatenate per-batch arrays (or dicts of arrays with the same keys) along the sample axis."""
    if isinstance(parts[0], dict):
        keys = [k for k in parts[0] if all(k in p for p in parts)]
        return {k: _concat([p[k] for p in parts]) for k in keys}
    return np.concatenate(parts)


@torch.no_grad()
def collect(model, loader) -> dict[str, Any]:
    """Predictions, labels, representation spaces and weights over a whole split (eval mode, no labels given)."""
    from .training import model_inputs

    logits, labels, spaces, weights = [], [], [], []
    for batch in loader:
        inputs = model_inputs(batch)
        labels.append(inputs.pop("labels").numpy())
        output = model(**inputs)
        logits.append(output.logits.float().cpu().numpy())
        batch_spaces, batch_weights = split_output(output)
        spaces.append(batch_spaces)
        weights.append(batch_weights)
    space_names = [n for n in spaces[0] if all(n in s for s in spaces)]
    weight_names = [n for n in weights[0] if all(n in w for w in weights)]
    return {
        "logits": np.concatenate(logits),
        "labels": np.concatenate(labels),
        "spaces": {n: _concat([s[n] for s in spaces]) for n in space_names},
        "weights": {n: _concat([w[n] for w in weights]) for n in weight_names},
    }


# ------------------------------------------------------------------------------------------- figures


def sentiment_classes(logits: np.ndarray, labels: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Predicted and true class indices and class names: Acc-7 classes for MOSI, Acc-3 style for SIMS."""
    if task == "classification":
        n = max(int(labels.max()) + 1, logits.shape[-1])
        return logits.argmax(-1), labels.astype(int), [str(i) for i in range(n)]
    bound, names = (3, list(SENTIMENT_7)) if task == "mosi" else (1, ["Neg", "Neu", "Pos"])

    def to_class(x: np.ndarray) -> np.ndarray:
        return (np.round(np.clip(x.reshape(-1).astype(np.float64), -bound, bound)) + bound).astype(int)

    return to_class(logits), to_class(labels), names


def confusion(predicted: np.ndarray, true: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]``."""
    matrix = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


def confusion_figure(matrix: np.ndarray, names: list[str], path: Path, title: str) -> None:
    """Confusion matrix (counts, row-normalised colours) beside the accuracy of each true class."""
    plt = require_matplotlib()
    totals = matrix.sum(1)
    rates = matrix / np.maximum(totals, 1)[:, None]
    accuracy = np.divide(np.diag(matrix), totals, out=np.full(len(names), np.nan), where=totals > 0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [1.1, 1]})
    image = left.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            left.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                      color="white" if rates[i, j] > 0.6 else "black")
    left.set_xticks(range(len(names)), names)
    left.set_yticks(range(len(names)), names)
    left.set_xlabel("predicted")
    left.set_ylabel("true")
    left.set_title("confusion matrix (counts; colour = row share)")
    fig.colorbar(image, ax=left, fraction=0.046)
    bars = right.bar(range(len(names)), np.nan_to_num(accuracy) * 100, color="tab:blue")
    for bar, value, total in zip(bars, accuracy, totals):
        label = "n=0" if total == 0 else f"{value * 100:.0f}%\nn={total}"
        right.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 1, label, ha="center", fontsize=8)
    right.set_xticks(range(len(names)), names)
    right.set_ylim(0, 115)
    right.set_ylabel("accuracy of the class (%)")
    right.set_title("per-class accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def embed(vectors: np.ndarray, method: str, seed: int) -> np.ndarray:
    """2-D t-SNE (scikit-learn) or UMAP (umap-learn) of standardised vectors."""
    vectors = (vectors - vectors.mean(0)) / (vectors.std(0) + 1e-8)
    if method == "umap":
        try:
            import umap
        except ImportError as error:
            raise ImportError("--embedding umap needs umap-learn: pip install umap-learn") from error
        return umap.UMAP(random_state=seed).fit_transform(vectors)
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (len(vectors) - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(vectors)


def embedding_figure(spaces: dict[str, dict[str, np.ndarray]], path: Path, title: str, method: str = "tsne",
                     max_samples: int = 300, seed: int = 0) -> None:
    """One joint 2-D embedding of every space × modality (same width required; else one per width group),
    drawn all together (marker = space) and one panel per space (colour = modality)."""
    plt = require_matplotlib()
    rng = np.random.default_rng(seed)
    n = len(next(iter(next(iter(spaces.values())).values())))
    keep = np.sort(rng.choice(n, size=min(n, max_samples), replace=False))
    groups: dict[int, list[tuple[str, str]]] = {}
    for space, vectors in spaces.items():
        for modality, array in vectors.items():
            groups.setdefault(array.shape[1], []).append((space, modality))
    points: dict[tuple[str, str], np.ndarray] = {}
    for members in groups.values():
        stacked = np.concatenate([spaces[s][m][keep] for s, m in members])
        coords = embed(stacked, method, seed)
        for index, member in enumerate(members):
            points[member] = coords[index * len(keep):(index + 1) * len(keep)]
    names = list(spaces)
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(4.2 * (len(names) + 1), 4.2), squeeze=False)
    overview, panels = axes[0, 0], axes[0, 1:]
    for (space, modality), xy in points.items():
        marker = SPACE_MARKERS[names.index(space) % len(SPACE_MARKERS)]
        colour = MODALITY_COLOURS.get(modality, "tab:gray")
        overview.scatter(xy[:, 0], xy[:, 1], s=7, alpha=0.55, marker=marker, color=colour,
                         label=f"{space} · {modality}")
        panel = panels[names.index(space)]
        panel.scatter(xy[:, 0], xy[:, 1], s=7, alpha=0.6, marker=marker, color=colour, label=modality)
    overview.set_title("all spaces (marker = space)")
    overview.legend(fontsize=7, markerscale=2, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=len(names))
    for panel, space in zip(panels, names):
        panel.set_title(f"{space}")
        panel.legend(fontsize=8, markerscale=2, loc="best")
    shared_axes = len(groups) == 1
    for axis in axes[0]:
        axis.set_xticks([])
        axis.set_yticks([])
        if shared_axes:
            axis.set_xlim(overview.get_xlim())
            axis.set_ylim(overview.get_ylim())
    name = "UMAP" if method == "umap" else "t-SNE"
    fig.suptitle(f"{title} — {name} of {len(keep)} utterances per space and modality")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def weights_figure(weights: dict[str, Any], path: Path, title: str) -> list[str]:
    """Mean ± std over samples of each weight; one panel per output field. Returns the fields drawn."""
    plt = require_matplotlib()
    panels = []
    for name, value in weights.items():
        if isinstance(value, dict):
            bars = {}
            for part, array in value.items():
                if array.ndim == 1:
                    bars[part] = array
                elif array.shape[1] <= 16:
                    bars.update({f"{part}[{k}]": array[:, k] for k in range(array.shape[1])})
        elif value.ndim == 1:
            bars = {name: value}
        elif value.shape[1] <= 16:
            bars = {str(k): value[:, k] for k in range(value.shape[1])}
        else:
            continue  # a wide gate (B, d) has no per-modality reading
        if bars:
            panels.append((name, bars))
    if not panels:
        return []
    widths = [max(3.0, 0.4 * len(bars) + 1.2) for _, bars in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(sum(widths), 3.8), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    for axis, (name, bars) in zip(axes[0], panels):
        labels = list(bars)
        means = [float(np.mean(bars[k])) for k in labels]
        stds = [float(np.std(bars[k])) for k in labels]
        colours = [next((c for m, c in MODALITY_COLOURS.items() if m in k), "tab:gray") for k in labels]
        axis.bar(range(len(labels)), means, yerr=stds, color=colours, capsize=3)
        axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        axis.set_title(name)
        axis.set_ylabel("mean ± std over utterances")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [name for name, _ in panels]


def probe_figure(results: dict[str, Any], path: Path, title: str) -> None:
    """Heat map of the test R² of a linear probe from every learned part (rows) to every true factor and the
    label (columns), from :func:`modeling.analysis.probe_checkpoint`; colour clipped to [0, 1]."""
    plt = require_matplotlib()
    parts, targets = list(results["r2"]), list(results["targets"])
    values = np.array([[results["r2"][p][t] for t in targets] for p in parts])
    names = [t.replace("factor_", "").replace("private_", "p_").replace("nuisance_", "n_") for t in targets]
    fig, axis = plt.subplots(figsize=(1.0 * len(targets) + 3, 0.38 * len(parts) + 1.8))
    image = axis.imshow(np.clip(values, 0, 1), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for i in range(len(parts)):
        for j in range(len(targets)):
            axis.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                      color="black" if values[i, j] > 0.6 else "white")
    axis.set_xticks(range(len(targets)), names, rotation=30, ha="right", fontsize=8)
    axis.set_yticks(range(len(parts)), parts, fontsize=8)
    axis.set_title(f"{title}: linear-probe test R² (p_ = private factor, n_ = nuisance)", fontsize=9)
    fig.colorbar(image, ax=axis, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_log(path: Path) -> list[dict]:
    """The per-epoch records ``train`` writes to ``seed_*/log.jsonl``."""
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def loss_curves_figure(records: list[dict], path: Path, title: str) -> list[str]:
    """One panel per training loss term (terms that are 0 in every epoch are listed, not drawn) and one for
    the validation criterion. Returns the terms drawn."""
    plt = require_matplotlib()
    epochs = [r["epoch"] for r in records]
    terms = list(dict.fromkeys(["loss"] + [k for r in records for k in r["train"]]))
    drawn = [t for t in terms if any(r["train"].get(t, 0.0) != 0.0 for r in records)]
    zero = [t for t in terms if t not in drawn]
    panels = drawn + ["validation"]
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.6 * rows), squeeze=False)
    for axis, name in zip(axes.flat, panels):
        if name == "validation":
            values = [r["validation"]["loss"] for r in records]
            axis.plot(epochs, values, marker="o", color="tab:red")
            best = [(e, v) for e, v, r in zip(epochs, values, records) if r.get("improved")]
            axis.scatter([e for e, _ in best], [v for _, v in best], marker="*", s=140, color="gold",
                         edgecolor="black", zorder=3)
            axis.set_title("validation criterion (★ = new best)", fontsize=9)
        else:
            axis.plot(epochs, [r["train"].get(name, np.nan) for r in records], marker="o")
            axis.set_title("train: total weighted loss" if name == "loss" else f"train: {name}", fontsize=9)
        axis.set_xlabel("epoch", fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(panels):]:
        axis.axis("off")
    note = f" (always 0, not drawn: {', '.join(zero)})" if zero else ""
    fig.suptitle(title + note, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


# -------------------------------------------------------------------------------------------- command


def _probe_figure(checkpoint: Path, dataset: str | None, path: Path, title: str) -> str | None:
    """Probe the checkpoint on the synthetic set with :mod:`modeling.analysis` and draw the R² matrix; return
    why not when that is impossible (probes need the synthetic set's known factors)."""
    from .training import DataArgs, load_config

    config_path = find_run_config(checkpoint)
    data_args = load_config(str(config_path)).data if config_path else DataArgs()
    if (dataset or data_args.path) != "synthetic":
        return "probes need the synthetic set's factor columns (--dataset synthetic)"
    try:
        from .analysis import probe_checkpoint
    except ImportError as error:
        return f"modeling.analysis is not available ({error})"
    results = probe_checkpoint(str(checkpoint), dataset="synthetic", cache_dir=data_args.cache_dir)
    probe_figure(results, path, title)
    return None


def visualize(checkpoint: str | Path, out: str | Path, dataset: str | None = None, split: str = "test",
              log: str | Path | None = None, embedding: str = "tsne", max_samples: int = 300, prefix: str | None = None,
              seed: int = 0, probes: bool = True) -> dict[str, Any]:
    """Write every figure the checkpoint supports into ``out``; return ``{"files": {...}, "skipped": {...}, ...}``."""
    require_matplotlib()
    checkpoint, out = Path(checkpoint), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, loader, task = load_model_and_data(checkpoint, dataset, split)
    method = model.config.model_type
    prefix = f"{method}_" if prefix is None else prefix
    label = f"{method.upper()} ({checkpoint.parent.name}), {split} split"
    data = collect(model, loader)
    files, skipped = {}, {}

    if data["spaces"]:
        files["embedding"] = out / f"{prefix}embedding.png"
        embedding_figure(data["spaces"], files["embedding"], label, embedding, max_samples, seed)
    else:
        skipped["embedding"] = "the output exposes no per-modality representation spaces"

    predicted, true, names = sentiment_classes(data["logits"], data["labels"], task)
    matrix = confusion(predicted, true, len(names))
    files["confusion"] = out / f"{prefix}confusion.png"
    confusion_figure(matrix, names, files["confusion"], label)

    drawn_weights = weights_figure(data["weights"], out / f"{prefix}weights.png", label) if data["weights"] else []
    if drawn_weights:
        files["weights"] = out / f"{prefix}weights.png"
    else:
        skipped["weights"] = "the output exposes no fusion/expert/gate weights"

    if probes:
        reason = _probe_figure(checkpoint, dataset, out / f"{prefix}probes.png", label)
        if reason:
            skipped["probes"] = reason
        else:
            files["probes"] = out / f"{prefix}probes.png"

    log = Path(log) if log else checkpoint.parent / "log.jsonl"
    if log.exists():
        files["loss_curves"] = out / f"{prefix}loss_curves.png"
        loss_curves_figure(read_log(log), files["loss_curves"], f"{method.upper()} training ({log.parent.name})")
    else:
        skipped["loss_curves"] = f"no per-epoch log at {log}"

    for name, reason in skipped.items():
        print(f"visualize: no {name} figure: {reason}")
    for name, path in files.items():
        print(f"visualize: wrote {path}")
    return {"files": {k: str(v) for k, v in files.items()}, "skipped": skipped, "confusion": matrix,
            "class_names": names, "task": task, "samples": int(len(data["labels"])),
            "spaces": list(data["spaces"]), "weights": drawn_weights}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a save_pretrained folder, e.g. runs/x/seed_1111/best")
    parser.add_argument("--dataset", help="'synthetic', a converted folder or a Hub id (default: the run's data)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", default="figures")
    parser.add_argument("--log", help="per-epoch log (default: log.jsonl beside the checkpoint)")
    parser.add_argument("--embedding", choices=("tsne", "umap"), default="tsne")
    parser.add_argument("--max-samples", type=int, default=300,
                        help="utterances per space and modality in the embedding")
    parser.add_argument("--prefix", help="file name prefix (default '<method>_')")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-probes", action="store_true", help="skip the linear-probe R² matrix")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return visualize(args.checkpoint, args.out, args.dataset, args.split, args.log, args.embedding,
                     args.max_samples, args.prefix, args.seed, probes=not args.no_probes)


if __name__ == "__main__":
    main()
