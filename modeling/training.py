"""Accelerate training loop shared by every method: YAML config, seeds, model selection, early stopping,
the official optimisation quirks by name, resume, logging, model cards and Hub upload.

``train.py`` at the repository root is the command-line entry point; everything here is importable so
that benchmarks and tests drive the same code.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
import yaml

from .features import MODALITIES, feature_dims, load_msa_dataset
from .hub import check_can_push, is_hub_dataset_id, load_hub_msa_dataset, push_checkpoint
from .model_card import card_metadata

#: keyword arguments of every model's forward (the common signature)
MODEL_INPUTS = (
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "audio",
    "audio_lengths",
    "vision",
    "vision_lengths",
    "labels",
)


@dataclass
class DataArgs:
    """Where the data comes from and how batches are built."""

    path: str = "synthetic"  # "synthetic", a folder written by a converter, or a Hub dataset id
    name: str | None = None  # Hub configuration name (e.g. "aligned_50")
    task: str | None = None  # metric set: "mosi", "sims" or "classification" (default: from the metadata)
    preset_dataset: str | None = None  # which dataset's preset values to use (mosi, mosei, ur_funny, ...)
    synthetic: dict[str, Any] = field(default_factory=dict)  # make_synthetic keyword arguments
    cache_dir: str = "data_cache"
    max_text_length: int | None = 50
    max_audio_length: int | None = None
    max_vision_length: int | None = None
    pad_to_max_length: bool = False
    drop_modalities: list[str] = field(default_factory=list)
    length_grouped: bool = False
    num_workers: int = 0
    max_train_samples: int | None = None
    max_eval_samples: int | None = None


@dataclass
class TrainingArgs:
    """Optimisation, selection and bookkeeping. Official quirks are named switches (see README)."""

    output_dir: str = "runs/default"
    seeds: list[int] = field(default_factory=lambda: [1111])
    epochs: int = 30
    max_steps: int | None = None  # stop after this many optimiser steps per seed (quick runs)
    batch_size: int = 32
    eval_batch_size: int = 128
    optimizer: str = "adamw"  # "adam" (official: one group, no weight decay) or "adamw"
    fused_optimizer: bool = True  # fused Adam/AdamW kernel: same update, ~6x faster step for bert-base on CPU;
    #                               the official configs turn it off to do exactly the official code's work
    lr: float = 1e-3
    text_lr: float | None = 5e-5  # learning rate of the BERT encoder; None = same as lr (official)
    weight_decay: float = 0.0
    clip_value: float | None = None  # clip_grad_value_ (official MISA 1.0, MMSA 0.8, DMD/DLF 0.6)
    clip_norm: float | None = 1.0  # clip_grad_norm_ (modern default)
    accumulate_steps: int = 1
    drop_remainder: bool = False  # official MMSA/DMD/DLF: summed grads, clip after every micro-batch,
    #                               leftover micro-batches at the end of an epoch never stepped
    scheduler: str = "none"  # "none", "plateau" (ReduceLROnPlateau on val loss), "linear", "cosine"
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    warmup_ratio: float = 0.0
    early_stopping_patience: int | None = 8
    select_on: str = "loss"  # "loss" (the task criterion on validation, official) or a metric key
    min_delta: float = 0.0  # improvement must exceed this (MMSA 1e-6)
    ties_improve: bool = False  # official MISA counts an equal validation loss as an improvement
    missing_augmentation: dict[str, Any] | None = None  # MissingModality kwargs, applied to train batches
    find_unused_parameters: bool = True
    log_every: int = 10
    tensorboard: bool = True
    save_state: bool = True  # accelerate state after every epoch (for --resume_from_checkpoint)
    resume_from_checkpoint: str | None = None  # a checkpoint folder or "auto" (latest one in output_dir)
    push_to_hub: bool = False
    hub_model_id: str | None = None
    hub_private: bool = False


@dataclass
class RunConfig:
    method: str = "misa"
    preset: str | None = None
    model: dict[str, Any] = field(default_factory=dict)
    data: DataArgs = field(default_factory=DataArgs)
    training: TrainingArgs = field(default_factory=TrainingArgs)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        raw = copy.deepcopy(raw)
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown top-level config keys {sorted(unknown)}; expected {sorted(known)}")
        data = _build(DataArgs, raw.pop("data", {}) or {}, "data")
        training = _build(TrainingArgs, raw.pop("training", {}) or {}, "training")
        return cls(data=data, training=training, **raw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(kind, values: dict[str, Any], section: str):
    names = {f.name for f in fields(kind)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown keys in '{section}': {sorted(unknown)}; expected some of {sorted(names)}")
    return kind(**values)


def load_config(path: str | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML run configuration and apply ``section.key=value`` overrides (values parsed as YAML)."""
    raw: dict[str, Any] = {}
    if path:
        with open(path) as fh:
            raw = yaml.safe_load(fh) or {}
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value")
        key, value = item.split("=", 1)
        target = raw
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = _parse_value(value)
    return RunConfig.from_dict(raw)


def _parse_value(text: str) -> Any:
    """YAML value of an override; also reads ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


# --------------------------------------------------------------------------------------------- data


def load_data(args: DataArgs):
    """Return ``(DatasetDict, metadata)`` for the configured source."""
    if args.path == "synthetic":
        from .synthetic import load_or_make_synthetic

        dataset, metadata = load_or_make_synthetic(args.cache_dir, **args.synthetic)
    elif is_hub_dataset_id(args.path):  # org/name pushed by a converter's --push-to-hub
        dataset, metadata = load_hub_msa_dataset(args.path, args.name)
    else:
        dataset, metadata = load_msa_dataset(args.path, args.name)
    for split in ("train", "validation", "test"):
        if split not in dataset:
            raise ValueError(f"dataset {args.path!r} has no '{split}' split (found {sorted(dataset)})")
    if args.max_train_samples:
        dataset["train"] = dataset["train"].select(range(min(args.max_train_samples, len(dataset["train"]))))
    if args.max_eval_samples:
        for split in ("validation", "test"):
            dataset[split] = dataset[split].select(range(min(args.max_eval_samples, len(dataset[split]))))
    return dataset, metadata


def infer_task(dataset, metadata: dict[str, Any], requested: str | None) -> str:
    if requested:
        return requested
    if dataset["train"].features["labels"].dtype.startswith("int"):
        return "classification"
    return metadata.get("scale", "mosi")


# -------------------------------------------------------------------------------------------- model


def build_model(run: RunConfig, dataset, metadata: dict[str, Any], task: str):
    """Instantiate the method with dimensions, lengths and label count taken from the data."""
    import modeling

    if run.method not in modeling.METHODS:
        raise ValueError(f"unknown method {run.method!r}; available: {sorted(modeling.METHODS)}")
    config_class, model_class = modeling.METHODS[run.method]
    overrides = dict(run.model)
    text_model = overrides.pop("text_model", None)
    dims = feature_dims(dataset)
    kwargs: dict[str, Any] = {f"{m}_dim": dims[m] for m in dims}
    padded = metadata.get("padded_lengths") or {}
    for modality in MODALITIES:
        if modality in padded:
            kwargs[f"{modality}_length"] = int(padded[modality])
    if task == "classification":
        kwargs["num_labels"] = int(max(dataset["train"]["labels"])) + 1
    kwargs.update(overrides)
    dataset_name = run.data.preset_dataset or metadata.get("dataset")
    if text_model:
        return model_class.from_text_pretrained(text_model, preset=run.preset, dataset=dataset_name, **kwargs)
    if run.preset:
        config = config_class.from_preset(run.preset, dataset_name, **kwargs)
    else:
        config = config_class(**kwargs)
    return model_class(config)


def build_optimizer(model, args: TrainingArgs):
    """Adam/AdamW with an optional separate learning rate for the text encoder (only trainable params)."""
    text_params, other_params = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (text_params if name.startswith("text_encoder.") else other_params).append(param)
    text_lr = args.text_lr if args.text_lr is not None else args.lr
    groups = [g for g in ({"params": other_params, "lr": args.lr}, {"params": text_params, "lr": text_lr}) if g["params"]]
    optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(args.optimizer)
    if optimizer_class is None:
        raise ValueError(f"unknown optimizer {args.optimizer!r}; expected 'adam' or 'adamw'")
    return optimizer_class(groups, weight_decay=args.weight_decay, fused=args.fused_optimizer or None)


def build_scheduler(optimizer, args: TrainingArgs, total_steps: int):
    if args.scheduler == "none":
        return None
    if args.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=args.plateau_factor, patience=args.plateau_patience
        )
    from transformers import get_scheduler

    if args.scheduler in ("linear", "cosine"):
        return get_scheduler(args.scheduler, optimizer, int(args.warmup_ratio * total_steps), total_steps)
    raise ValueError(f"unknown scheduler {args.scheduler!r}; expected none, plateau, linear or cosine")


# ----------------------------------------------------------------------------------------- evaluate


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if k in MODEL_INPUTS}


@torch.no_grad()
def evaluate(model, dataloader, accelerator, task: str, loss_kind: str) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Predict a whole split (gathered over processes) and compute the task criterion and metrics on it."""
    from .losses import task_loss
    from .metrics import compute_metrics

    model.eval()
    predictions, references = [], []
    for batch in dataloader:
        inputs = model_inputs(batch)
        labels = inputs.pop("labels")
        with accelerator.autocast():
            logits = model(**inputs).logits
        logits, labels = accelerator.gather_for_metrics((logits.float().contiguous(), labels.contiguous()))
        predictions.append(logits.cpu())
        references.append(labels.cpu())
    logits = torch.cat(predictions)
    labels = torch.cat(references)
    kind = "ce" if task == "classification" else loss_kind
    loss = float(task_loss(logits, labels, kind))
    if task == "classification":
        metrics = compute_metrics(logits.numpy(), labels.numpy(), task)
        predictions_out = logits.argmax(-1).numpy()
    else:
        predictions_out = logits.view(-1).numpy()
        metrics = compute_metrics(predictions_out, labels.numpy(), task)
    metrics = {"loss": loss, **metrics}
    return metrics, predictions_out, labels.numpy()


def is_better(value: float, best: float | None, key: str, min_delta: float, ties_improve: bool) -> bool:
    from .metrics import METRIC_DIRECTIONS

    if best is None or (isinstance(best, float) and math.isnan(best)):
        return not math.isnan(value)
    if math.isnan(value):
        return False
    higher = METRIC_DIRECTIONS.get(key, False) if key != "loss" else False
    gain = value - best if higher else best - value
    return gain > min_delta or (ties_improve and gain == 0)


# -------------------------------------------------------------------------------------------- train


def environment() -> dict[str, Any]:
    import accelerate
    import datasets
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "accelerate": accelerate.__version__,
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_threads": torch.get_num_threads(),
        # what Accelerator() (built without a precision argument) reads: `accelerate launch --mixed_precision`
        "mixed_precision": os.environ.get("ACCELERATE_MIXED_PRECISION", "no"),
    }


def train(run: RunConfig) -> dict[str, Any]:
    """Train ``run.method`` once per seed; return (and write) per-seed test metrics and their mean ± std."""
    from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs

    args = run.training
    if args.push_to_hub:  # fail before hours of training, not after
        if not args.hub_model_id:
            raise ValueError("--push_to_hub needs --hub_model_id org/name")
        check_can_push(args.hub_model_id)
    log_with = None
    if args.tensorboard:
        try:
            import tensorboard  # noqa: F401

            log_with = "tensorboard"
        except ImportError:
            log_with = None
    accelerator = Accelerator(
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=args.find_unused_parameters)],
        log_with=log_with,
        project_dir=args.output_dir,
    )
    with accelerator.main_process_first():
        dataset, metadata = load_data(run.data)
    task = infer_task(dataset, metadata, run.data.task)
    os.makedirs(args.output_dir, exist_ok=True)
    if accelerator.is_main_process:
        with open(os.path.join(args.output_dir, "run_config.yaml"), "w") as fh:
            yaml.safe_dump(run.to_dict(), fh, sort_keys=False)

    per_seed: dict[int, dict[str, Any]] = {}
    for seed in args.seeds:
        per_seed[seed] = _train_one_seed(run, seed, accelerator, dataset, metadata, task)
    summary = summarise(per_seed, run, task, accelerator.num_processes)
    summary["dataset_metadata"] = card_metadata(metadata)  # for the model card of a later push
    if accelerator.is_main_process:
        write_summary(summary, args.output_dir)
        accelerator.print(summary["markdown"])
        if args.push_to_hub:
            push_best(summary, run)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary


def _train_one_seed(run, seed, accelerator, dataset, metadata, task) -> dict[str, Any]:
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from .data import MSACollator, build_dataloaders

    args, data = run.training, run.data
    seed_dir = os.path.join(args.output_dir, f"seed_{seed}")
    set_seed(seed)
    model = build_model(run, dataset, metadata, task)
    loss_kind = getattr(model.config, "task_loss", "mse")
    max_lengths = {m: getattr(data, f"max_{m}_length") for m in MODALITIES}
    if data.pad_to_max_length:
        max_lengths = {m: max_lengths[m] or getattr(model.config, f"{m}_length") for m in MODALITIES}
    collator = MSACollator(
        max_text_length=max_lengths["text"],
        max_audio_length=max_lengths["audio"],
        max_vision_length=max_lengths["vision"],
        pad_to_max_length=data.pad_to_max_length,
        drop_modalities=tuple(data.drop_modalities),
    )
    loaders = build_dataloaders(
        dataset,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size,
        collator=collator,
        seed=seed,
        length_grouped=data.length_grouped,
        num_workers=data.num_workers,
    )
    augment = None
    if args.missing_augmentation:
        from .data import MissingModality

        augment = MissingModality(**args.missing_augmentation)
    optimizer = build_optimizer(model, args)
    steps_per_epoch = max(len(loaders["train"]) // max(args.accumulate_steps, 1), 1)
    total_steps = args.max_steps or steps_per_epoch * args.epochs
    scheduler = build_scheduler(optimizer, args, total_steps)
    model, optimizer, train_dl, val_dl, test_dl = accelerator.prepare(
        model, optimizer, loaders["train"], loaders["validation"], loaders["test"]
    )
    if scheduler is not None and args.scheduler != "plateau":
        scheduler = accelerator.prepare(scheduler)
    if accelerator.is_main_process and accelerator.log_with:
        accelerator.init_trackers(f"seed_{seed}", config=_flat_config(run))

    state = {"epoch": 0, "step": 0, "best": None, "best_epoch": -1, "bad_epochs": 0, "history": []}
    best_weights = None
    resume = _resume_path(args, seed_dir)
    if resume:
        accelerator.load_state(resume)
        with open(os.path.join(resume, "trainer_state.json")) as fh:
            state = json.load(fh)
        best_path = os.path.join(seed_dir, "best_weights.pt")
        if os.path.exists(best_path):
            best_weights = torch.load(best_path, weights_only=True)
        accelerator.print(f"resumed seed {seed} from {resume} at epoch {state['epoch']}")

    log_path = os.path.join(seed_dir, "log.jsonl")
    if accelerator.is_main_process:
        os.makedirs(seed_dir, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    trained_samples = 0
    stop = False
    for epoch in range(state["epoch"], args.epochs):
        model.train()
        train_dl.set_epoch(epoch)
        generator.manual_seed(seed * 1000 + epoch)
        micro, totals, count = 0, {}, 0
        optimizer.zero_grad()
        bar = tqdm(train_dl, desc=f"seed {seed} epoch {epoch + 1}/{args.epochs}", disable=not accelerator.is_local_main_process, leave=False)
        for batch in bar:
            if augment is not None:
                batch = augment.apply_to_batch(batch, generator=generator)
            with accelerator.autocast():
                output = model(**model_inputs(batch))
            loss = output.loss
            if not args.drop_remainder:
                loss = loss / args.accumulate_steps
            accelerator.backward(loss)
            micro += 1
            if args.drop_remainder and args.clip_value is not None:
                accelerator.clip_grad_value_(model.parameters(), args.clip_value)
            if micro % args.accumulate_steps == 0:
                _optimizer_step(accelerator, model, optimizer, scheduler, args)
                state["step"] += 1
            trained_samples += batch["labels"].size(0) * accelerator.num_processes
            for name, value in output.loss_terms.items():
                totals[name] = totals.get(name, 0.0) + float(value.detach())
            totals["loss"] = totals.get("loss", 0.0) + float(output.loss.detach())
            count += 1
            if count % args.log_every == 0:
                bar.set_postfix(loss=f"{totals['loss'] / count:.4f}")
                accelerator.log({f"train/{k}": v / count for k, v in totals.items()}, step=state["step"])
            if args.max_steps and state["step"] >= args.max_steps:
                stop = True
                break
        if not args.drop_remainder and micro % args.accumulate_steps != 0:
            _optimizer_step(accelerator, model, optimizer, scheduler, args)
            state["step"] += 1

        val_metrics, _, _ = evaluate(model, val_dl, accelerator, task, loss_kind)
        if args.scheduler == "plateau":
            scheduler.step(val_metrics["loss"])
        key = args.select_on
        if key not in val_metrics:
            raise ValueError(f"select_on={key!r} is not a validation metric; available: {sorted(val_metrics)}")
        improved = is_better(val_metrics[key], state["best"], key, args.min_delta, args.ties_improve)
        if improved:
            state.update(best=val_metrics[key], best_epoch=epoch, bad_epochs=0)
            best_weights = {k: v.detach().cpu().clone() for k, v in accelerator.unwrap_model(model).state_dict().items()}
        else:
            state["bad_epochs"] += 1
        record = {
            "epoch": epoch + 1,
            "step": state["step"],
            "train": {k: v / max(count, 1) for k, v in totals.items()},
            "validation": val_metrics,
            "improved": improved,
            "lr": [g["lr"] for g in optimizer.param_groups],
            "elapsed_s": time.perf_counter() - start,
        }
        state["history"].append(record)
        state["epoch"] = epoch + 1
        accelerator.log({f"validation/{k}": v for k, v in val_metrics.items()}, step=state["step"])
        if accelerator.is_main_process:
            with open(log_path, "a") as fh:
                fh.write(json.dumps(record) + "\n")
        accelerator.print(
            f"seed {seed} epoch {epoch + 1}: train loss {record['train'].get('loss', float('nan')):.4f} "
            f"val {key} {val_metrics[key]:.4f}{' *' if improved else ''}"
        )
        if args.early_stopping_patience is not None and state["bad_epochs"] >= args.early_stopping_patience:
            stop = True
        if args.save_state:
            _save_checkpoint(accelerator, seed_dir, state, best_weights)
        if stop:
            break

    train_time = time.perf_counter() - start
    unwrapped = accelerator.unwrap_model(model)
    if best_weights is not None:
        unwrapped.load_state_dict(best_weights)
    test_metrics, predictions, labels = evaluate(model, test_dl, accelerator, task, loss_kind)
    val_metrics, _, _ = evaluate(model, val_dl, accelerator, task, loss_kind)
    result = {
        "seed": seed,
        "best_epoch": state["best_epoch"] + 1,
        "epochs_run": state["epoch"],
        "validation": val_metrics,
        "test": test_metrics,
        "test_samples": int(len(labels)),
        "optimizer_steps": state["step"],
        "train_time_s": train_time,
        "train_samples_per_s": trained_samples / max(train_time, 1e-9),
        "parameters": sum(p.numel() for p in unwrapped.parameters()),
        "trainable_parameters": sum(p.numel() for p in unwrapped.parameters() if p.requires_grad),
        "checkpoint": os.path.join(seed_dir, "best"),
    }
    if accelerator.is_main_process:
        best_dir = result["checkpoint"]
        unwrapped.save_pretrained(best_dir)
        np.save(os.path.join(seed_dir, "test_predictions.npy"), predictions)
        with open(os.path.join(seed_dir, "result.json"), "w") as fh:
            json.dump(result, fh, indent=2)
        from .model_card import write_model_card

        write_model_card(best_dir, run, result, task, metadata, environment(), accelerator.num_processes)
    accelerator.print(f"seed {seed} test: " + ", ".join(f"{k} {v:.4f}" for k, v in test_metrics.items()))
    for tracker in accelerator.trackers:  # one TensorBoard run per seed
        tracker.finish()
    accelerator.trackers = []
    accelerator.wait_for_everyone()
    return result


def _optimizer_step(accelerator, model, optimizer, scheduler, args: TrainingArgs) -> None:
    if not args.drop_remainder:
        if args.clip_value is not None:
            accelerator.clip_grad_value_(model.parameters(), args.clip_value)
        if args.clip_norm is not None:
            accelerator.clip_grad_norm_(model.parameters(), args.clip_norm)
    optimizer.step()
    if scheduler is not None and args.scheduler != "plateau":
        scheduler.step()
    optimizer.zero_grad()


def _resume_path(args: TrainingArgs, seed_dir: str) -> str | None:
    if not args.resume_from_checkpoint:
        return None
    path = os.path.join(seed_dir, "checkpoint") if args.resume_from_checkpoint == "auto" else args.resume_from_checkpoint
    if os.path.exists(os.path.join(path, "trainer_state.json")):
        return path
    if args.resume_from_checkpoint != "auto":
        raise FileNotFoundError(f"no trainer_state.json in checkpoint folder {path!r}")
    return None


def _save_checkpoint(accelerator, seed_dir: str, state: dict, best_weights) -> None:
    path = os.path.join(seed_dir, "checkpoint")
    accelerator.save_state(path)
    if accelerator.is_main_process:
        with open(os.path.join(path, "trainer_state.json"), "w") as fh:
            json.dump(state, fh)
        if best_weights is not None and state["bad_epochs"] == 0:
            torch.save(best_weights, os.path.join(seed_dir, "best_weights.pt"))
    accelerator.wait_for_everyone()


def _flat_config(run: RunConfig) -> dict[str, Any]:
    flat = {}
    for section, values in run.to_dict().items():
        if isinstance(values, dict):
            for key, value in values.items():
                if isinstance(value, (int, float, str, bool)):
                    flat[f"{section}.{key}"] = value
        elif isinstance(values, (int, float, str, bool)):
            flat[section] = values
    return flat


# ------------------------------------------------------------------------------------------ summary


def summarise(per_seed: dict[int, dict[str, Any]], run: RunConfig, task: str, num_processes: int) -> dict[str, Any]:
    """Mean ± std (sample std over seeds; 0 for one seed) of every test metric, as JSON and Markdown."""
    keys = list(next(iter(per_seed.values()))["test"])
    stats = {}
    for key in keys + ["train_time_s", "train_samples_per_s"]:
        values = [r["test"][key] if key in r["test"] else r[key] for r in per_seed.values()]
        values = [float(v) for v in values]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        stats[key] = {"mean": statistics.fmean(values), "std": std, "values": values}
    best_seed = min(
        per_seed,
        key=lambda s: per_seed[s]["validation"]["loss"],
    )
    header = "| metric | mean ± std | " + " | ".join(f"seed {s}" for s in per_seed) + " |"
    lines = [
        f"## {run.method} ({run.preset or 'default'}) on {run.data.path}: test metrics over {len(per_seed)} seed(s)",
        "",
        header,
        "|" + " --- |" * (2 + len(per_seed)),
    ]
    for key in keys:
        s = stats[key]
        lines.append(
            f"| {key} | {s['mean']:.4f} ± {s['std']:.4f} | " + " | ".join(f"{v:.4f}" for v in s["values"]) + " |"
        )
    lines.append("")
    lines.append(
        f"Training time per seed {stats['train_time_s']['mean']:.1f} s, "
        f"{stats['train_samples_per_s']['mean']:.1f} samples/s, {num_processes} process(es); "
        f"checkpoint of seed {best_seed} (best validation loss): {per_seed[best_seed]['checkpoint']}"
    )
    return {
        "method": run.method,
        "preset": run.preset,
        "task": task,
        "seeds": list(per_seed),
        "per_seed": per_seed,
        "stats": stats,
        "best_seed": best_seed,
        "num_processes": num_processes,
        "environment": environment(),
        "markdown": "\n".join(lines) + "\n",
    }


def write_summary(summary: dict[str, Any], output_dir: str) -> None:
    with open(os.path.join(output_dir, "results.json"), "w") as fh:
        json.dump({k: v for k, v in summary.items() if k != "markdown"}, fh, indent=2, default=str)
    with open(os.path.join(output_dir, "results.md"), "w") as fh:
        fh.write(summary["markdown"])


def push_best(summary: dict[str, Any], run: RunConfig) -> None:
    """Upload the best seed's checkpoint (weights, code, config, model card with mean ± std) to the Hub."""
    best = summary["per_seed"][summary["best_seed"]]
    url = push_checkpoint(best["checkpoint"], run.training.hub_model_id, private=run.training.hub_private or None)
    print(f"pushed {best['checkpoint']} to {run.training.hub_model_id}: {url}")
