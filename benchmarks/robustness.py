"""Missing-modality and noise robustness of trained checkpoints of any registered method.

Every checkpoint (a folder written by ``save_pretrained``, loaded with ``AutoModel.from_pretrained`` after
``import modeling``) is evaluated on one split under:

* **intra-modal missingness**: rates 0.0–0.9 (step 0.1) for text, audio and vision separately and for all
  three together, with :class:`modeling.data.MissingModality` (MMSA semantics: text tokens other than
  [CLS]/[SEP] become [UNK], audio/vision frames are zeroed within the true length);
* **inter-modal missingness**: each of the six non-empty subsets of {text, audio, vision} present, the
  others either ``absent`` (the model receives ``None``) or ``zeroed`` (all frames zero, all content tokens
  [UNK], as a data pipeline without the modality would deliver);
* **Gaussian noise** on the audio and/or vision features of the real frames, with standard deviation
  ``level × (that feature's standard deviation over the split)``.

The randomness of every corruption is a hash of ``(seed, sample index, modality, position)``, so it does not
depend on the batch size, the order or the model: each condition's corrupted batches are built once and
every checkpoint reads exactly the same inputs (a SHA-256 fingerprint of them is stored per condition).
Rate 0 (and noise level 0) leaves the inputs unchanged, i.e. equals the clean evaluation.

Outputs under ``--output-dir``: ``robustness.json`` (settings, environment, every row, the AUCs),
``robustness.csv`` (one row per checkpoint and condition, every metric), ``robustness.md`` (summary tables,
including the area under the Acc-2-vs-rate curve per method) and PNG plots (one line per method; they need
matplotlib: ``pip install -e '.[analysis]'``, or pass ``--no-plots``).

    python benchmarks/robustness.py --checkpoints runs/misa_synthetic/seed_1111/best runs/derl_synthetic/seed_1111/best
    python benchmarks/robustness.py --train-configs configs/misa_synthetic.yaml configs/derl_synthetic.yaml \
        --train-seed 1111                    # train each config once, then compare the checkpoints

The dataset is ``--dataset synthetic`` (with ``--synthetic '{"seed": 0, "aligned": true}'``), a folder written
by a converter, or a Hub id; by default it is the data section of the training run (``run_config.yaml`` two
folders above a ``train.py`` checkpoint, or the first ``--train-configs`` file).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

import modeling  # noqa: E402,F401  registers every method with the Auto classes
from modeling.data import MissingModality, MSACollator, build_dataloaders, hashed_uniform  # noqa: E402
from modeling.metrics import compute_metrics  # noqa: E402
from modeling.training import DataArgs, environment, infer_task, load_config, load_data, model_inputs  # noqa: E402

MODALITIES = ("text", "audio", "vision")
DEFAULT_RATES = tuple(round(0.1 * k, 1) for k in range(10))
DEFAULT_NOISE = (0.0, 0.25, 0.5, 1.0, 2.0)
INTRA_TARGETS = ("text", "audio", "vision", "all")
NOISE_TARGETS = ("audio", "vision", "audio+vision")
SUBSETS = tuple("+".join(s) for k in (3, 2, 1) for s in itertools.combinations(MODALITIES, k))
INPUT_KEYS = {
    "text": ("input_ids", "attention_mask", "token_type_ids"),
    "audio": ("audio", "audio_lengths"),
    "vision": ("vision", "vision_lengths"),
}
NOISE_SALT = {"audio": 201, "vision": 301}
#: primary metric per task (the Acc-2 of the AUC) and the secondary one shown beside it
PRIMARY = {"mosi": ("acc2_non0", "mae"), "sims": ("acc2", "mae"), "classification": ("accuracy", "f1_weighted")}


# ------------------------------------------------------------------------------------------- conditions


def conditions(rates, noise_levels, inter_modes) -> list[dict]:
    """Every evaluation condition: ``setting`` (clean / intra / inter / noise), ``target`` and ``level``."""
    out = [{"setting": "clean", "target": "none", "level": 0.0}]
    out += [{"setting": "intra", "target": t, "level": float(r)} for t in INTRA_TARGETS for r in rates]
    out += [{"setting": f"inter_{mode}", "target": s, "level": 1.0} for mode in inter_modes for s in SUBSETS]
    out += [{"setting": "noise", "target": t, "level": float(s)} for t in NOISE_TARGETS for s in noise_levels]
    return out


def gaussian(seed: int, salt: int, index: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Standard normal ``(B, T, D)`` numbers that depend only on ``(seed, salt, sample index, step, channel)``
    (Box–Muller on two hashed uniforms)."""
    steps, channels = shape
    position = torch.arange(steps * channels)[None, :]
    u1 = hashed_uniform(seed, salt, index[:, None], position)
    u2 = hashed_uniform(seed, salt + 1, index[:, None], position)
    z = torch.sqrt(-2.0 * torch.log1p(-u1)) * torch.cos(2 * torch.pi * u2)
    return z.reshape(-1, steps, channels)


def corrupt(batch: dict, condition: dict, seed: int, feature_std: dict[str, torch.Tensor]) -> dict:
    """The inputs of ``batch`` under ``condition`` (a copy; the randomness is per sample via ``batch["index"]``)."""
    setting, target, level = condition["setting"], condition["target"], condition["level"]
    if setting == "clean":
        return dict(batch)
    if setting == "intra":
        rates = {m: level for m in MODALITIES} if target == "all" else {target: level}
        return MissingModality(rates=rates, seed=seed).apply_to_batch(batch)
    if setting.startswith("inter_"):
        missing = [m for m in MODALITIES if m not in target.split("+")]
        if setting == "inter_zeroed":
            return MissingModality(drop={m: 1.0 for m in missing}, seed=seed).apply_to_batch(batch)
        return {k: v for k, v in batch.items() if not any(k in INPUT_KEYS[m] for m in missing)}
    if setting == "noise":
        out = dict(batch)
        for m in target.split("+"):
            if m not in batch or level == 0:
                continue
            x = batch[m]
            real = torch.arange(x.size(1))[None, :] < batch[f"{m}_lengths"][:, None]
            noise = gaussian(seed, NOISE_SALT[m], batch["index"], tuple(x.shape[1:])) * feature_std[m] * level
            out[m] = x + noise * real.unsqueeze(-1)
        return out
    raise ValueError(f"unknown setting {setting!r}")


def fingerprint(batches: list[dict]) -> str:
    """SHA-256 of every model input of the corrupted batches (equal fingerprints = identical inputs)."""
    digest = hashlib.sha256()
    for batch in batches:
        for key in sorted(model_inputs(batch)):
            digest.update(key.encode())
            digest.update(batch[key].contiguous().numpy().tobytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------- data


def resolve_data(args, train_runs) -> DataArgs:
    """The data source: ``--dataset``, else the data section of the first training run or of the first
    checkpoint's ``run_config.yaml`` (``train.py`` writes ``<output_dir>/seed_<s>/best``)."""
    if args.dataset:
        return DataArgs(path=args.dataset, name=args.dataset_name, synthetic=json.loads(args.synthetic),
                        cache_dir=args.cache_dir)
    if train_runs:
        sources = {json.dumps({"path": r.data.path, "name": r.data.name, "synthetic": r.data.synthetic},
                              sort_keys=True) for r in train_runs}
        if len(sources) > 1:
            raise SystemExit(f"the training configs use different data {sorted(sources)}; pass --dataset")
        return DataArgs(**{**vars(train_runs[0].data), "max_train_samples": None, "max_eval_samples": None})
    run_config = Path(args.checkpoints[0]).resolve().parents[1] / "run_config.yaml"
    if not run_config.exists():
        raise SystemExit(f"no --dataset given and no {run_config}; pass --dataset synthetic or a dataset path")
    data = yaml.safe_load(run_config.read_text())["data"]
    return DataArgs(**{**data, "max_train_samples": None, "max_eval_samples": None})


def clean_batches(args, data: DataArgs) -> tuple[list[dict], str]:
    """The evaluation split collated once (with an ``index`` column) and the task."""
    dataset, metadata = load_data(data)
    if args.split not in dataset:
        raise SystemExit(f"split {args.split!r} not in the dataset ({sorted(dataset)})")
    split = dataset[args.split]
    if args.max_samples:
        split = split.select(range(min(args.max_samples, len(split))))
    split = split.add_column("index", list(range(len(split))))
    task = infer_task(dataset, metadata, args.task)
    collator = MSACollator(max_text_length=args.max_text_length)
    loader = build_dataloaders({"eval": split}, args.batch_size, collator=collator)["eval"]
    return list(loader), task


def feature_stds(batches: list[dict]) -> dict[str, torch.Tensor]:
    """Per-feature standard deviation of audio and vision over the real frames of the split."""
    stds = {}
    for m in ("audio", "vision"):
        if m not in batches[0]:
            continue
        frames = [b[m][torch.arange(b[m].size(1))[None, :] < b[f"{m}_lengths"][:, None]] for b in batches]
        stds[m] = torch.cat(frames).std(0)
    return stds


# ------------------------------------------------------------------------------------------- evaluate


@torch.no_grad()
def predict(model, batches: list[dict]) -> np.ndarray:
    outputs = []
    for batch in batches:
        inputs = {k: v for k, v in model_inputs(batch).items() if k != "labels"}
        outputs.append(model(**inputs).logits.float())
    logits = torch.cat(outputs)
    return (logits.view(-1) if logits.size(-1) == 1 else logits).numpy()


def evaluate_all(models: dict, batches: list[dict], task: str, conds: list[dict], seed: int) -> list[dict]:
    """Evaluate every model under every condition; the corrupted batches are shared by all models."""
    labels = torch.cat([b["labels"] for b in batches]).numpy()
    stds = feature_stds(batches)
    rows = []
    bar = tqdm(total=len(conds) * len(models), desc="robustness", unit="eval")
    for cond in conds:
        corrupted = [corrupt(b, cond, seed, stds) for b in batches]
        digest = fingerprint(corrupted)
        for name, model in models.items():
            bar.set_postfix_str(f"{name} {cond['setting']} {cond['target']} {cond['level']:g}")
            predictions = predict(model, corrupted)
            metrics = compute_metrics(predictions, labels, task)
            rows.append({"method": name, **cond, **{k: float(v) for k, v in metrics.items()}, "fingerprint": digest})
            bar.update()
    bar.close()
    return rows


def auc(rows: list[dict], method: str, target: str, metric: str) -> dict[str, float]:
    """Trapezoidal area under ``metric`` vs intra-modal rate, raw and divided by the rate span (= mean value)."""
    points = sorted((r["level"], r[metric]) for r in rows if r["method"] == method and r["setting"] == "intra"
                    and r["target"] == target)
    rates, values = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    area = float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(rates)))
    span = float(rates[-1] - rates[0]) if len(rates) > 1 else 0.0
    return {"area": area, "normalised": area / span if span else float(values[0])}


# -------------------------------------------------------------------------------------------- report


def write_csv(rows: list[dict], path: Path) -> None:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _value(rows, method, setting, target, level, metric):
    for r in rows:
        if (r["method"], r["setting"], r["target"]) == (method, setting, target) and abs(r["level"] - level) < 1e-9:
            return r[metric]
    return None


def _fmt(value, digits=3) -> str:
    return "—" if value is None or value != value else f"{value:.{digits}f}"


def markdown(payload: dict) -> str:
    rows, methods = payload["rows"], list(payload["checkpoints"])
    metric, second = payload["metrics"]
    settings = payload["settings"]
    lines = [
        "# Robustness to missing modalities and noise",
        "",
        f"Dataset `{payload['dataset']}`, split `{settings['split']}` ({payload['samples']} samples), task "
        f"`{payload['task']}`; corruption seed {settings['seed']} (identical inputs for every method: one "
        f"fingerprint per condition in the JSON). Primary metric `{metric}`, secondary `{second}`.",
        "",
        "## Intra-modal missingness: area under the curve",
        "",
        f"AUC = trapezoidal area under `{metric}` vs missing rate over [{settings['rates'][0]:g}, "
        f"{settings['rates'][-1]:g}], divided by the span (so it is the mean `{metric}` over the rates; the raw "
        "areas are in the JSON). `all` corrupts the three modalities at the same rate.",
        "",
        f"| method | clean {metric} | clean {second} | " + " | ".join(f"AUC {t}" for t in INTRA_TARGETS)
        + f" | {metric} at rate {settings['rates'][-1]:g} (all) |",
        "|" + " --- |" * (4 + len(INTRA_TARGETS)),
    ]
    for m in methods:
        aucs = [payload["auc"][m][t]["normalised"] for t in INTRA_TARGETS]
        worst = _value(rows, m, "intra", "all", settings["rates"][-1], metric)
        lines.append(
            f"| {m} | {_fmt(_value(rows, m, 'clean', 'none', 0.0, metric))} | "
            f"{_fmt(_value(rows, m, 'clean', 'none', 0.0, second))} | "
            + " | ".join(_fmt(a) for a in aucs) + f" | {_fmt(worst)} |"
        )
    lines += ["", f"## Intra-modal missingness, all modalities: `{metric}` by rate", "",
              "| method | " + " | ".join(f"{r:g}" for r in settings["rates"]) + " |",
              "|" + " --- |" * (1 + len(settings["rates"]))]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(_fmt(_value(rows, m, "intra", "all", r, metric))
                                               for r in settings["rates"]) + " |")
    for mode in settings["inter_modes"]:
        lines += ["", f"## Inter-modal missingness ({mode}): `{metric}` / `{second}` with only these modalities",
                  "", "| present | " + " | ".join(methods) + " |", "|" + " --- |" * (1 + len(methods))]
        for subset in SUBSETS:
            cells = [f"{_fmt(_value(rows, m, f'inter_{mode}', subset, 1.0, metric))} / "
                     f"{_fmt(_value(rows, m, f'inter_{mode}', subset, 1.0, second))}" for m in methods]
            lines.append(f"| {subset} | " + " | ".join(cells) + " |")
    lines += ["", f"## Gaussian noise on the features: `{metric}` (audio+vision; level × per-feature std)", "",
              "| method | " + " | ".join(f"{s:g}" for s in settings["noise_levels"]) + " |",
              "|" + " --- |" * (1 + len(settings["noise_levels"]))]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(_fmt(_value(rows, m, "noise", "audio+vision", s, metric))
                                               for s in settings["noise_levels"]) + " |")
    lines += ["", "Checkpoints:", ""] + [f"* `{m}`: `{p}`" for m, p in payload["checkpoints"].items()]
    if payload.get("plots"):
        lines += ["", "Plots: " + ", ".join(f"`{p}`" for p in payload["plots"])]
    return "\n".join(lines) + "\n"


def require_matplotlib():
    try:
        import matplotlib
    except ImportError as error:
        raise SystemExit(
            "the plots need matplotlib, an optional dependency: pip install -e '.[analysis]' "
            "(or pip install matplotlib), or pass --no-plots"
        ) from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(payload: dict, output_dir: Path) -> list[str]:
    """Metric-vs-level line plots (one line per method) for intra-modal missingness and noise."""
    plt = require_matplotlib()
    rows, methods = payload["rows"], list(payload["checkpoints"])
    metric, second = payload["metrics"]
    written = []
    panels = (
        ("intra", INTRA_TARGETS, "missing rate", metric, "robustness_intra_{}.png"),
        ("intra", INTRA_TARGETS, "missing rate", second, "robustness_intra_{}.png"),
        ("noise", NOISE_TARGETS, "noise level (× feature std)", metric, "robustness_noise_{}.png"),
    )
    for setting, targets, xlabel, key, pattern in panels:
        fig, axes = plt.subplots(1, len(targets), figsize=(4 * len(targets), 3.4), sharey=True, squeeze=False)
        for ax, target in zip(axes[0], targets):
            for m in methods:
                points = sorted((r["level"], r[key]) for r in rows
                                if (r["method"], r["setting"], r["target"]) == (m, setting, target))
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=m)
            ax.set_title(target)
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel(key)
        axes[0][-1].legend(fontsize="small")
        fig.tight_layout()
        path = output_dir / pattern.format(key)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path.name)
    return written


# ----------------------------------------------------------------------------------------------- main


def train_checkpoints(args) -> tuple[list[str], list]:
    """Train each ``--train-configs`` file once with ``--train-seed``; return the best checkpoints and runs."""
    from modeling.training import train

    checkpoints, runs = [], []
    for path in args.train_configs:
        stem = Path(path).stem
        overrides = [f"training.seeds=[{args.train_seed}]", f"training.output_dir={args.train_output_dir}/{stem}",
                     *args.train_overrides]
        run = load_config(path, overrides)
        summary = train(run)
        checkpoints.append(summary["per_seed"][args.train_seed]["checkpoint"])
        runs.append(run)
    return checkpoints, runs


def load_models(paths: list[str], names: list[str] | None) -> dict:
    from transformers import AutoModel

    if names and len(names) != len(paths):
        raise SystemExit(f"--names needs one name per checkpoint ({len(paths)}), got {len(names)}")
    models = {}
    for i, path in enumerate(paths):
        if not (Path(path) / "config.json").exists():
            raise SystemExit(f"{path} is not a checkpoint folder (no config.json)")
        model = AutoModel.from_pretrained(path).eval()
        name = names[i] if names else model.config.model_type
        if name in models:
            name = f"{name}:{Path(path).parent.name}/{Path(path).name}"
        models[name] = (model, str(path))
    return models


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", nargs="+", default=[], help="checkpoint folders (save_pretrained)")
    parser.add_argument("--names", nargs="+",
                        help="display name per checkpoint, trained ones first (default: the model type)")
    parser.add_argument("--train-configs", nargs="+", default=[], help="train.py YAML files to train first")
    parser.add_argument("--train-seed", type=int, default=1111)
    parser.add_argument("--train-output-dir", default="runs/robustness")
    parser.add_argument("--train-overrides", nargs="+", default=[], help="section.key=value for every training run")
    parser.add_argument("--dataset", help="'synthetic', a converted dataset folder or a Hub id")
    parser.add_argument("--dataset-name", help="Hub configuration name")
    parser.add_argument("--synthetic", default='{"seed": 0, "aligned": true}', help="make_synthetic kwargs (JSON)")
    parser.add_argument("--cache-dir", default="data_cache")
    parser.add_argument("--split", default="test")
    parser.add_argument("--task", help="metric set (default: from the data)")
    parser.add_argument("--max-samples", type=int)
    parser.add_argument("--max-text-length", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rates", type=float, nargs="+", default=list(DEFAULT_RATES))
    parser.add_argument("--noise-levels", type=float, nargs="+", default=list(DEFAULT_NOISE))
    parser.add_argument("--inter-modes", nargs="+", choices=("absent", "zeroed"), default=["absent", "zeroed"])
    parser.add_argument("--seed", type=int, default=1111, help="corruption seed")
    parser.add_argument("--threads", type=int, help="torch threads")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "benchmarks" / "results" / "robustness")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    if not args.checkpoints and not args.train_configs:
        parser.error("pass --checkpoints and/or --train-configs")
    if any(not 0.0 <= r <= 1.0 for r in args.rates):
        parser.error("--rates must lie in [0, 1]")
    if any(s < 0 for s in args.noise_levels):
        parser.error("--noise-levels must be non-negative")
    args.rates = sorted(set(args.rates))
    args.noise_levels = sorted(set(args.noise_levels))
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if not args.no_plots:
        require_matplotlib()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    trained, runs = train_checkpoints(args) if args.train_configs else ([], [])
    paths = trained + list(args.checkpoints)
    data = resolve_data(args, runs)
    batches, task = clean_batches(args, data)
    models = load_models(paths, args.names)
    conds = conditions(args.rates, args.noise_levels, args.inter_modes)
    rows = evaluate_all({n: m for n, (m, _) in models.items()}, batches, task, conds, args.seed)
    metrics = PRIMARY.get(task, PRIMARY["mosi"])
    payload = {
        "dataset": data.path if data.path != "synthetic" else f"synthetic {json.dumps(data.synthetic)}",
        "task": task,
        "metrics": list(metrics),
        "samples": int(sum(b["labels"].size(0) for b in batches)),
        "checkpoints": {n: p for n, (_, p) in models.items()},
        "settings": {"split": args.split, "seed": args.seed, "rates": args.rates, "noise_levels": args.noise_levels,
                     "inter_modes": args.inter_modes, "batch_size": args.batch_size,
                     "max_text_length": args.max_text_length, "train_configs": args.train_configs,
                     "train_seed": args.train_seed if args.train_configs else None},
        "environment": environment(),
        "rows": rows,
        "auc": {n: {t: auc(rows, n, t, metrics[0]) for t in INTRA_TARGETS} for n in models},
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    if not args.no_plots:
        payload["plots"] = plot(payload, args.output_dir)
    payload["elapsed_s"] = time.perf_counter() - start
    (args.output_dir / "robustness.json").write_text(json.dumps(payload, indent=2) + "\n")
    write_csv(rows, args.output_dir / "robustness.csv")
    report = markdown(payload)
    (args.output_dir / "robustness.md").write_text(report)
    print(report)
    print(f"wrote robustness.json, .csv, .md{' and plots' if not args.no_plots else ''} to {args.output_dir}")
    return payload


if __name__ == "__main__":
    main()
