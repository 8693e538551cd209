"""Training-step and inference throughput of every registered method on MOSI-shaped batches.

For each method in ``modeling.METHODS``, with a bert-base-sized randomly initialised text encoder and
aligned MOSI shapes (audio 5-d, vision 20-d):

* train step: forward + backward + gradient clipping by value + Adam step on a batch of 16 (plain Adam for
  the ``official`` preset, as the official code; ``train.py``'s default fused Adam for the default preset);
* forward-only: eval-mode ``torch.no_grad`` forward on a batch of 64 (inference);

each the median over ``--steps`` timed steps after ``--warmup`` untimed ones. The measurements of a method
are interleaved step by step (all its models stay in memory), so a change in machine load hits them alike.
Batches are collated from the synthetic set, whose token lengths follow real MOSI (mean 15.5 of 50
positions). Three measurements per
method: the ``official`` preset on ``padded-50`` batches (every sequence padded to 50, as the official code
does), and the default preset on ``padded-50`` and on ``mosi-lengths-grouped`` batches (each batch padded
to its own longest sequence, similar lengths batched together), the way ``train.py`` feeds it. ``--bf16``
adds a fourth: the default preset on grouped batches under bf16 autocast (``--mixed_precision bf16``), which
pays off on CPUs with native bf16 matrix instructions (AVX512-BF16, AMX).

Two ratios per row: samples/s against the official code measured on the same machine class (2 CPU cores,
torch 2.13 CPU, bert-base, MOSI aligned, batch 16 / 64; ``REFERENCE``), and against our own ``official``
preset in the same run. Above 1 is faster.

    python benchmarks/throughput.py [--steps 10] [--warmup 2] [--methods misa ...] [--threads N] [--bf16]
                                    [--quick] [--output-dir benchmarks/results]
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
#: the official code on 2 CPU cores, torch 2.13 CPU, bert-base, MOSI aligned: train s/step (batch 16) and
#: inference samples/s (batch 64)
REFERENCE = {
    "misa": {"train_step_s": 3.19, "inference_samples_per_s": 22.0},
    "dmd": {"train_step_s": 3.77, "inference_samples_per_s": 22.0},
    "dlf": {"train_step_s": 3.30, "inference_samples_per_s": 22.0},
}
#: (preset, layout) measured for every method
PLAN = (("official", "padded-50"), ("default", "padded-50"), ("default", "mosi-lengths-grouped"))
QUICK_TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
COLUMNS = [
    ("method", "method", "{}"),
    ("preset", "preset", "{}"),
    ("layout", "layout", "{}"),
    ("precision", "precision", "{}"),
    ("text padding (train batches)", "text_padding", "{:.0%}"),
    ("train step s (median)", "train_step_s", "{:.3f}"),
    ("train samples/s", "train_samples_per_s", "{:.2f}"),
    ("forward-only s (batch 64)", "forward_only_s", "{:.3f}"),
    ("inference samples/s", "inference_samples_per_s", "{:.1f}"),
    ("train ratio vs official code", "train_ratio", "{:.2f}×"),
    ("inference ratio vs official code", "inference_ratio", "{:.2f}×"),
    ("train ratio vs our official preset", "train_ratio_own", "{:.2f}×"),
    ("inference ratio vs our official preset", "inference_ratio_own", "{:.2f}×"),
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


def build_config(config_class, preset: str, text_config: BertConfig):
    shapes = dict(text_config=text_config, audio_dim=5, vision_dim=20)
    if preset == "default":
        return config_class(**shapes)
    return config_class.from_preset(preset, "mosi", **shapes)


class Runner:
    """One (model, optimizer, batches) combination; each call times one train step or one inference batch."""

    def __init__(self, model, train_batches: list[dict], infer_batches: list[dict], fused: bool,
                 bf16: bool = False):
        self.model = model
        self.bf16 = bf16
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=1e-4, fused=fused or None)
        self.train_batches, self.infer_batches = train_batches, infer_batches
        self.train_s: list[float] = []
        self.forward_s: list[float] = []

    def autocast(self):
        """bf16 autocast of the forward (and loss), as ``accelerate launch --mixed_precision bf16`` does."""
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def train_step(self, index: int) -> None:
        self.model.train()
        start = time.perf_counter()
        self.optimizer.zero_grad()
        with self.autocast():
            loss = self.model(**model_inputs(self.train_batches[index])).loss
        loss.backward()
        torch.nn.utils.clip_grad_value_(self.params, 1.0)
        self.optimizer.step()
        self.train_s.append(time.perf_counter() - start)

    @torch.no_grad()
    def forward(self, index: int) -> None:
        self.model.eval()
        inputs = {k: v for k, v in model_inputs(self.infer_batches[index]).items() if k != "labels"}
        start = time.perf_counter()
        with self.autocast():
            self.model(**inputs)
        self.forward_s.append(time.perf_counter() - start)

    def row(self, warmup: int, reference: dict | None) -> dict:
        train_s, forward_s = statistics.median(self.train_s[warmup:]), statistics.median(self.forward_s[warmup:])
        mask = torch.cat([b["attention_mask"].flatten() for b in self.train_batches])
        row = {
            "text_padding": 1 - mask.float().mean().item(),
            "train_step_s": train_s,
            "train_samples_per_s": TRAIN_BATCH / train_s,
            "forward_only_s": forward_s,
            "inference_samples_per_s": INFER_BATCH / forward_s,
        }
        if reference:
            row["train_ratio"] = reference["train_step_s"] / train_s
            row["inference_ratio"] = row["inference_samples_per_s"] / reference["inference_samples_per_s"]
        return row


def interleave(runners: list[Runner], count: int) -> None:
    """Step ``i`` of every runner before step ``i + 1`` of any: load drifts on a shared machine then hit all
    runners alike, so the ratios between them are steadier than those of back-to-back measurements."""
    for index in range(count):
        for runner in runners:
            runner.train_step(index)
        for runner in runners:
            runner.forward(index)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="timed steps per measurement (default 10; --quick 2)")
    parser.add_argument("--warmup", type=int, help="untimed warm-up steps (default 2; --quick 1)")
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=list(METHODS))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser.add_argument("--threads", type=int, default=cores, help="torch threads (default: all cores)")
    parser.add_argument("--quick", action="store_true", help="tiny text encoder, 2 steps (smoke test)")
    parser.add_argument("--bf16", action="store_true",
                        help="add a row per method: the default preset on grouped batches under bf16 autocast")
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
    layouts = {}
    for layout, padded, grouped in (("padded-50", True, False), ("mosi-lengths-grouped", False, True)):
        layouts[layout] = [
            batches(train_rows, size, warmup + steps, padded, grouped) for size in (TRAIN_BATCH, INFER_BATCH)
        ]

    rows = []
    for method in args.methods:
        config_class, model_class = METHODS[method]
        plan = [(p, l, False) for p, l in PLAN if p == "default" or p in config_class.presets]
        if args.bf16:
            plan.append(("default", "mosi-lengths-grouped", True))
        runners = []
        for preset, layout, bf16 in plan:
            torch.manual_seed(0)
            model = model_class(build_config(config_class, preset, text_config))
            # the official code's plain Adam for the official preset; train.py's default fused Adam otherwise
            runners.append(Runner(model, *layouts[layout], fused=preset != "official", bf16=bf16))
        interleave(runners, warmup + steps)
        own_official = None
        for (preset, layout, bf16), runner in zip(plan, runners):
            precision = "bf16 autocast" if bf16 else "fp32"
            row = {"method": method, "preset": preset, "layout": layout, "precision": precision}
            row.update(runner.row(warmup, None if args.quick else REFERENCE.get(method)))
            if preset == "official":
                own_official = row
            elif own_official is not None:
                row["train_ratio_own"] = row["train_samples_per_s"] / own_official["train_samples_per_s"]
                row["inference_ratio_own"] = row["inference_samples_per_s"] / own_official["inference_samples_per_s"]
            rows.append(row)
            print(f"{method} {preset} {layout} {row['precision']}: train {row['train_step_s']:.3f} s/step, "
                  f"forward {row['forward_only_s']:.3f} s/batch", flush=True)
        del runners

    table = markdown_table(rows, COLUMNS)
    notes = (
        f"Median of {steps} steps after {warmup} warm-up, the rows of a method interleaved step by step; "
        f"train batch {TRAIN_BATCH} (forward + backward + clip + Adam), inference batch {INFER_BATCH} (eval, no_grad); "
        f"text encoder "
        f"{'tiny (--quick)' if args.quick else 'bert-base-sized, random weights'}; aligned MOSI shapes.\n"
        f"Ratios vs the official code: its s/step ÷ ours (MISA 3.19, DMD 3.77, DLF 3.30 s/step at batch 16) and our "
        f"samples/s ÷ its 22 inference samples/s (no ratio with --quick); vs our official preset: samples/s of the "
        f"row ÷ those of the method's `official` row in this run.\n{describe(env)}.\n"
    )
    print("\n" + table + "\n" + notes)
    payload = {
        "environment": env,
        "settings": {"steps": steps, "warmup": warmup, "train_batch": TRAIN_BATCH, "inference_batch": INFER_BATCH,
                     "quick": args.quick, "bf16": args.bf16, "text_config": text_config.to_diff_dict()},
        "reference": REFERENCE,
        "rows": rows,
    }
    write_results("throughput", payload, "# Model throughput\n\n" + table + "\n" + notes, output_dir)
    return payload


if __name__ == "__main__":
    main()
