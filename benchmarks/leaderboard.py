"""Multi-seed leaderboard: every registered method trained with ``modeling.training.train`` on one dataset.

For each method in ``modeling.METHODS`` (or ``--methods``) the run configuration is
``--config-pattern`` with ``{method}`` filled in (default ``configs/{method}_synthetic.yaml``), plus the
``--override section.key=value`` items (the same syntax as ``train.py``; e.g. ``data.path=data/mosi_text``
for a converted real dataset). Each method is trained with ``--seeds`` seeds (default 5: 1111 ... 1115,
MMSA's convention) and its best-validation checkpoint is timed on the test split for inference. One table:
mean ± std (sample std over seeds) of every test metric, trainable and total parameters, training time per
seed, training and inference samples/s. Written to ``benchmarks/results/leaderboard.{md,csv,json}``.

A method without a config file, or whose training fails, gets a row saying so; the others still run (the
exit status is 1 when any training failed).

    python benchmarks/leaderboard.py                         # every method, 5 seeds, synthetic set
    python benchmarks/leaderboard.py --seeds 3 --methods misa dlf
    python benchmarks/leaderboard.py --config-pattern 'configs/{method}_synthetic.yaml' \
        --override data.path=data/mosi_text data.preset_dataset=mosi --name mosi_text_leaderboard
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from modeling import METHODS  # noqa: E402

FIRST_SEED = 1111
#: run settings a leaderboard does not need (per-epoch resumable state, TensorBoard); user overrides win
DEFAULT_OVERRIDES = ["training.save_state=false", "training.tensorboard=false"]
#: summary statistics that are timings, not test metrics
TIMING_KEYS = ("train_time_s", "train_samples_per_s")


def seed_list(count: int) -> list[int]:
    return list(range(FIRST_SEED, FIRST_SEED + count))


@torch.no_grad()
def inference_samples_per_s(run, checkpoint: str) -> float:
    """Samples/s of an eval-mode pass over the test split with the checkpoint (after one warm-up batch)."""
    from transformers import AutoModel

    from modeling.data import MSACollator, build_dataloaders
    from modeling.features import MODALITIES
    from modeling.training import load_data, model_inputs

    model = AutoModel.from_pretrained(checkpoint).eval()
    dataset, _ = load_data(run.data)
    limits = {m: getattr(run.data, f"max_{m}_length") for m in MODALITIES}
    if run.data.pad_to_max_length:
        limits = {m: limits[m] or getattr(model.config, f"{m}_length") for m in MODALITIES}
    collator = MSACollator(
        max_text_length=limits["text"], max_audio_length=limits["audio"], max_vision_length=limits["vision"],
        pad_to_max_length=run.data.pad_to_max_length, drop_modalities=tuple(run.data.drop_modalities),
    )
    loader = build_dataloaders({"test": dataset["test"]}, batch_size=run.training.eval_batch_size,
                               collator=collator)["test"]
    batches = [model_inputs(batch) for batch in loader]
    for batch in batches:
        batch.pop("labels", None)
    model(**batches[0])
    start = time.perf_counter()
    for batch in batches:
        model(**batch)
    return len(dataset["test"]) / (time.perf_counter() - start)


def method_row(method: str, config_path: Path, overrides: list[str], seeds: list[int], runs_dir: Path) -> dict:
    """Train one method on every seed and summarise it as one leaderboard row (status says what happened)."""
    from modeling.training import load_config, train

    row = {"method": method, "config": str(config_path), "seeds": seeds}
    if not config_path.exists():
        return {**row, "status": f"no config {config_path}"}
    try:
        run = load_config(str(config_path), DEFAULT_OVERRIDES + overrides + [
            f"training.seeds={seeds}", f"training.output_dir={runs_dir / method}"])
        start = time.perf_counter()
        summary = train(run)
        wall = time.perf_counter() - start
        best = summary["per_seed"][summary["best_seed"]]
        inference = inference_samples_per_s(run, best["checkpoint"])
    except Exception as error:  # a broken method must not hide the others' results
        traceback.print_exc()
        return {**row, "status": f"failed: {type(error).__name__}: {error}"}
    metrics = {k: v for k, v in summary["stats"].items() if k not in TIMING_KEYS and k != "loss"}
    return {
        **row,
        "status": "ok",
        "dataset": run.data.path,
        "task": summary["task"],
        "metrics": metrics,
        "parameters": best["parameters"],
        "trainable_parameters": best["trainable_parameters"],
        "train_time_s": summary["stats"]["train_time_s"],
        "train_samples_per_s": summary["stats"]["train_samples_per_s"]["mean"],
        "inference_samples_per_s": inference,
        "epochs_run": statistics.fmean(r["epochs_run"] for r in summary["per_seed"].values()),
        "wall_s": wall,
        "best_checkpoint": best["checkpoint"],
    }


def metric_keys(rows: list[dict]) -> list[str]:
    """Test metric keys in first-seen order over the rows that trained."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row.get("metrics", {}) if k not in keys]
    return keys


def markdown(rows: list[dict], settings: dict) -> str:
    """The leaderboard table with what was run and how the columns were measured."""
    keys = metric_keys(rows)
    overrides = f" with `{' '.join(settings['overrides'])}`" if settings["overrides"] else ""
    lines = [
        f"# Leaderboard: {settings['dataset_label']}",
        "",
        f"Test split, mean ± std (sample std) over {len(settings['seeds'])} seeds {settings['seeds']}; configs "
        f"`{settings['config_pattern']}`{overrides}; {settings['threads']} torch thread(s). Parameters: trainable "
        "/ total. Training s/seed is the training loop of one seed (validation included); inference samples/s is "
        "an eval-mode pass over the test split with the best seed's checkpoint.",
        "",
        "| method | " + " | ".join(keys) + " | parameters | training s/seed | train samples/s | "
        "inference samples/s | epochs | status |",
        "|" + " --- |" * (len(keys) + 7),
    ]
    for row in rows:
        if row["status"] != "ok":
            dashes = " | ".join("—" for _ in range(len(keys) + 5))
            lines.append(f"| {row['method']} | {dashes} | {row['status']} |")
            continue
        cells = [f"{row['metrics'][k]['mean']:.4f} ± {row['metrics'][k]['std']:.4f}" if k in row["metrics"] else "—"
                 for k in keys]
        time_s = row["train_time_s"]
        cells += [f"{row['trainable_parameters']:,} / {row['parameters']:,}",
                  f"{time_s['mean']:.1f} ± {time_s['std']:.1f}", f"{row['train_samples_per_s']:.0f}",
                  f"{row['inference_samples_per_s']:.0f}", f"{row['epochs_run']:.1f}"]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " | ok |")
    lines += ["", f"Total wall time {settings['wall_s'] / 60:.1f} min; command: `{settings['command']}`"]
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: Path) -> None:
    keys = metric_keys(rows)
    header = ["method", "status", "dataset", "seeds"] + [f"{k}_{s}" for k in keys for s in ("mean", "std")] + [
        "trainable_parameters", "parameters", "train_time_s_mean", "train_time_s_std", "train_samples_per_s",
        "inference_samples_per_s", "epochs_run"]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            ok = row["status"] == "ok"
            values = [row["method"], row["status"], row.get("dataset", ""), len(row["seeds"])]
            for key in keys:
                stat = row.get("metrics", {}).get(key)
                values += [stat["mean"], stat["std"]] if stat else ["", ""]
            values += [row["trainable_parameters"], row["parameters"], row["train_time_s"]["mean"],
                       row["train_time_s"]["std"], row["train_samples_per_s"], row["inference_samples_per_s"],
                       row["epochs_run"]] if ok else [""] * 7
            writer.writerow(values)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=sorted(METHODS))
    parser.add_argument("--seeds", type=int, default=5, help=f"number of seeds ({FIRST_SEED}, {FIRST_SEED + 1}, ...)")
    parser.add_argument("--config-pattern", default="configs/{method}_synthetic.yaml",
                        help="run configuration per method; {method} is replaced (relative to the repository)")
    parser.add_argument("--override", nargs="+", default=[], metavar="SECTION.KEY=VALUE",
                        help="applied to every method's config (e.g. data.path=data/mosi_text)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a 2-core machine shared with other jobs, 2 threads made "
                             "steps several times slower)")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "leaderboard")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="leaderboard", help="file name of the results (default leaderboard)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    seeds = seed_list(args.seeds)
    start = time.perf_counter()
    rows = []
    for method in args.methods:
        config_path = Path(args.config_pattern.format(method=method))
        if not config_path.is_absolute():
            config_path = ROOT / config_path
        rows.append(method_row(method, config_path, args.override, seeds, args.runs_dir))
        print(f"leaderboard: {method}: {rows[-1]['status']}")
    datasets = sorted({row["dataset"] for row in rows if "dataset" in row})
    settings = {
        "seeds": seeds, "config_pattern": args.config_pattern, "overrides": args.override, "threads": args.threads,
        "dataset_label": ", ".join(datasets) or "no method trained", "wall_s": time.perf_counter() - start,
        "command": " ".join(["python benchmarks/leaderboard.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    from modeling.training import environment

    text = markdown(rows, settings)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    payload = {"rows": rows, "settings": settings, "environment": environment()}
    (args.output_dir / f"{args.name}.json").write_text(json.dumps(payload, indent=2, default=str))
    (args.output_dir / f"{args.name}.md").write_text(text)
    write_csv(rows, args.output_dir / f"{args.name}.csv")
    print(text)
    if any(row["status"].startswith("failed") for row in rows):
        raise SystemExit(1)
    return payload


if __name__ == "__main__":
    main()
