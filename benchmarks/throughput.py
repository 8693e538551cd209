"""Training-step and inference throughput of every registered method on MOSI-shaped batches.

For each method in ``modeling.METHODS`` and each preset (``official`` where the configuration class has
one, then the class defaults), with a bert-base-sized randomly initialised text encoder and aligned MOSI
shapes (audio 5-d, vision 20-d):

* train step: forward + backward + gradient clipping by value + Adam step on a batch of 16;
* forward-only: eval-mode ``torch.no_grad`` forward on a batch of 64 (inference);

each the median over ``--steps`` timed steps after ``--warmup`` untimed ones. Batches are collated from the
synthetic set (token lengths follow real MOSI) in two layouts: ``padded-50`` pads every sequence to 50 as
the official code does; ``mosi-lengths`` pads each batch to its own longest sequence (``--length-grouped``
additionally batches similar lengths together: ``mosi-lengths-grouped``). The ratios divide samples/s by
the official MISA code on the same machine class (2 CPU cores, torch 2.13 CPU, batch 16: 3.19 s per
training step = 5.0 samples/s; batch 64 inference: 22 samples/s); above 1 is faster.

    python benchmarks/throughput.py [--steps 10] [--warmup 2] [--methods misa ...] [--threads N]
                                    [--length-grouped] [--quick] [--output-dir benchmarks/results]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import BertConfig  # noqa: E402

from modeling import METHODS  # noqa: E402
from modeling.data import MSACollator, build_dataloaders  # noqa: E402
from modeling.synthetic import make_synthetic  # noqa: E402
from modeling.training import environment, model_inputs  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TRAIN_BATCH, INFER_BATCH, PADDED_LENGTH = 16, 64, 50
#: official MISA (declare-lab/MISA) on 2 CPU cores, torch 2.13 CPU, bert-base, MOSI aligned
REFERENCE = {"train_samples_per_s": TRAIN_BATCH / 3.19, "inference_samples_per_s": 22.0}
QUICK_TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
COLUMNS = [
    ("method", "method", "{}"),
    ("preset", "preset", "{}"),
    ("layout", "layout", "{}"),
    ("text padding (train batches)", "text_padding", "{:.0%}"),
    ("train step s (median)", "train_step_s", "{:.3f}"),
    ("train samples/s", "train_samples_per_s", "{:.2f}"),
    ("forward-only s (batch 64)", "forward_only_s", "{:.3f}"),
    ("inference samples/s", "inference_samples_per_s", "{:.1f}"),
    ("train ratio vs official", "train_ratio", "{:.2f}×"),
    ("inference ratio vs official", "inference_ratio", "{:.2f}×"),
]


def environment_info() -> dict:
    """``modeling.training.environment()`` plus the CPU model, core count and load average (busy machine?)."""
    cpu = platform.processor() or "unknown"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    return {**environment(), "cpu_model": cpu, "cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0]}


def describe(env: dict) -> str:
    return (
        f"torch {env['torch']}, transformers {env['transformers']}, {env['cpu_threads']} torch threads, "
        f"CPU {env['cpu_model']} ({env['cpu_count']} cores), load average {env['load_average_1min']:.2f} at start"
    )


def markdown_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Rows as a Markdown table; ``columns`` are (header, key, format), a missing value prints as —."""
    lines = ["| " + " | ".join(c[0] for c in columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        cells = [fmt.format(row[key]) if row.get(key) is not None else "—" for _, key, fmt in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(name: str, payload: dict, markdown: str, output_dir: Path) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (output_dir / f"{name}.md").write_text(markdown)
    print(f"wrote {output_dir / name}.json and .md")


def batches(dataset, batch_size: int, count: int, padded: bool, length_grouped: bool) -> list[dict]:
    """``count`` full batches from ``MSACollator`` (cycling over the epoch if it is too short)."""
    collator = MSACollator(
        max_text_length=PADDED_LENGTH,
        max_audio_length=PADDED_LENGTH,
        max_vision_length=PADDED_LENGTH,
        pad_to_max_length=padded,
    )
    loader = build_dataloaders({"train": dataset}, batch_size, collator=collator, length_grouped=length_grouped)
    full = (b for b in itertools.cycle(loader["train"]) if b["labels"].size(0) == batch_size)
    return list(itertools.islice(full, count))


def median_seconds(step, inputs: list[dict], warmup: int) -> float:
    times = []
    for i, batch in enumerate(inputs):
        start = time.perf_counter()
        step(batch)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_config(config_class, preset: str, text_config: BertConfig):
    shapes = dict(text_config=text_config, audio_dim=5, vision_dim=20)
    if preset == "default":
        return config_class(**shapes)
    return config_class.from_preset(preset, "mosi", **shapes)


def measure(model, train_batches: list[dict], infer_batches: list[dict], warmup: int) -> dict:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)

    def train_step(batch):
        optimizer.zero_grad()
        model(**model_inputs(batch)).loss.backward()
        torch.nn.utils.clip_grad_value_(params, 1.0)
        optimizer.step()

    @torch.no_grad()
    def forward(batch):
        model(**{k: v for k, v in model_inputs(batch).items() if k != "labels"})

    model.train()
    train_s = median_seconds(train_step, train_batches, warmup)
    model.eval()
    forward_s = median_seconds(forward, infer_batches, warmup)
    mask = torch.cat([b["attention_mask"].flatten() for b in train_batches])
    return {
        "text_padding": 1 - mask.float().mean().item(),
        "train_step_s": train_s,
        "train_samples_per_s": TRAIN_BATCH / train_s,
        "forward_only_s": forward_s,
        "inference_samples_per_s": INFER_BATCH / forward_s,
        "train_ratio": TRAIN_BATCH / train_s / REFERENCE["train_samples_per_s"],
        "inference_ratio": INFER_BATCH / forward_s / REFERENCE["inference_samples_per_s"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="timed steps per measurement (default 10; --quick 2)")
    parser.add_argument("--warmup", type=int, help="untimed warm-up steps (default 2; --quick 1)")
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=list(METHODS))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser.add_argument("--threads", type=int, default=cores, help="torch threads (default: all cores)")
    parser.add_argument("--length-grouped", action="store_true", help="length-grouped mosi-lengths batches")
    parser.add_argument("--quick", action="store_true", help="tiny text encoder, 2 steps (smoke test)")
    parser.add_argument("--output-dir", type=Path, help="default benchmarks/results (--quick: results/quick)")
    args = parser.parse_args(argv)
    steps = args.steps or (2 if args.quick else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    output_dir = args.output_dir or (RESULTS / "quick" if args.quick else RESULTS)

    torch.set_num_threads(args.threads)
    env = environment_info()
    print(describe(env))
    text_config = BertConfig(**QUICK_TEXT) if args.quick else BertConfig()
    sizes = (256, 16, 16) if args.quick else (1284, 229, 686)
    train_rows = make_synthetic(seed=0, aligned=True, sizes=sizes)[0]["train"]
    mosi_layout = "mosi-lengths-grouped" if args.length_grouped else "mosi-lengths"
    layouts = {}
    for layout, padded, grouped in (("padded-50", True, False), (mosi_layout, False, args.length_grouped)):
        layouts[layout] = [
            batches(train_rows, size, warmup + steps, padded, grouped) for size in (TRAIN_BATCH, INFER_BATCH)
        ]

    rows = []
    for method in args.methods:
        config_class, model_class = METHODS[method]
        for preset in (["official"] if "official" in config_class.presets else []) + ["default"]:
            torch.manual_seed(0)
            model = model_class(build_config(config_class, preset, text_config))
            for layout, (train_batches, infer_batches) in layouts.items():
                row = {"method": method, "preset": preset, "layout": layout}
                row.update(measure(model, train_batches, infer_batches, warmup))
                rows.append(row)
                print(f"{method} {preset} {layout}: train {row['train_step_s']:.3f} s/step, "
                      f"forward {row['forward_only_s']:.3f} s/batch", flush=True)

    table = markdown_table(rows, COLUMNS)
    notes = (
        f"Median of {steps} steps after {warmup} warm-up; train batch {TRAIN_BATCH} (forward + backward + clip + "
        f"Adam), inference batch {INFER_BATCH} (eval, no_grad); text encoder "
        f"{'tiny (--quick)' if args.quick else 'bert-base-sized, random weights'}; aligned MOSI shapes.\n"
        f"Ratios: samples/s ÷ official MISA on 2 CPU cores ({REFERENCE['train_samples_per_s']:.2f} train, "
        f"{REFERENCE['inference_samples_per_s']:.0f} inference samples/s).\n{describe(env)}.\n"
    )
    print("\n" + table + "\n" + notes)
    payload = {
        "environment": env,
        "settings": {"steps": steps, "warmup": warmup, "train_batch": TRAIN_BATCH, "inference_batch": INFER_BATCH,
                     "quick": args.quick, "text_config": text_config.to_diff_dict()},
        "reference": REFERENCE,
        "rows": rows,
    }
    write_results("throughput", payload, "# Model throughput\n\n" + table + "\n" + notes, output_dir)
    return payload


if __name__ == "__main__":
    main()
