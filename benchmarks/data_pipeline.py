"""Data-pipeline throughput: synthetic generation, save/load, and one collated training epoch.

For the aligned and the unaligned MOSI-shaped synthetic set (``modeling.synthetic``): the time to generate
it, to write it with ``save_msa_dataset`` and to read it back with ``load_msa_dataset``, and one epoch of
``build_dataloaders(...)["train"]`` (batch 32, ``num_workers=0``) over the loaded set in three layouts:

* ``padded-50``: every sequence padded to the set's padded lengths (text 50; audio/vision 50 aligned,
  375/500 unaligned), as the official code does;
* ``per-batch``: ``MSACollator`` pads each batch to its own longest sequence (text truncated to 50);
* ``length-grouped``: the same, with ``LengthGroupedBatchSampler`` batching similar text lengths.

Each is the median of ``--repeats`` runs; the padding columns are the fraction of padded positions among
all text tokens / audio / vision frames of the epoch.

    python benchmarks/data_pipeline.py [--repeats 3] [--quick] [--output-dir benchmarks/results]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets import disable_progress_bars  # noqa: E402
from throughput import RESULTS, describe, environment_info, markdown_table, write_results  # noqa: E402

from modeling.data import MSACollator, build_dataloaders  # noqa: E402
from modeling.features import load_msa_dataset, save_msa_dataset  # noqa: E402
from modeling.synthetic import make_synthetic  # noqa: E402

BATCH = 32
MODALITY_LENGTHS = {"text": "attention_mask", "audio": "audio_lengths", "vision": "vision_lengths"}
COLUMNS = [
    ("step", "step", "{}"),
    ("data", "data", "{}"),
    ("s (median)", "seconds", "{:.3f}"),
    ("samples", "samples", "{}"),
    ("samples/s", "samples_per_s", "{:,.0f}"),
    ("text padding", "text_padding", "{:.0%}"),
    ("audio padding", "audio_padding", "{:.0%}"),
    ("vision padding", "vision_padding", "{:.0%}"),
]


def median_seconds(fn, repeats: int):
    """Median wall time of ``repeats`` calls of ``fn`` and the last call's result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def epoch(dataset, collator: MSACollator, length_grouped: bool) -> dict[str, float]:
    """Iterate one training epoch; return the padding fraction of each modality."""
    loader = build_dataloaders({"train": dataset}, BATCH, collator=collator, length_grouped=length_grouped)
    real = dict.fromkeys(MODALITY_LENGTHS, 0)
    total = dict.fromkeys(MODALITY_LENGTHS, 0)
    for batch in loader["train"]:
        for modality, key in MODALITY_LENGTHS.items():
            real[modality] += int(batch[key].sum())
            total[modality] += batch[modality if modality != "text" else "input_ids"].shape[:2].numel()
    return {f"{m}_padding": 1 - real[m] / total[m] for m in MODALITY_LENGTHS}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, help="runs per measurement, median reported (default 3; --quick 1)")
    parser.add_argument("--quick", action="store_true", help="small sets, one run each (smoke test)")
    parser.add_argument("--output-dir", type=Path, help="default benchmarks/results (--quick: results/quick)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    sizes = (128, 32, 32) if args.quick else (1284, 229, 686)
    output_dir = args.output_dir or (RESULTS / "quick" if args.quick else RESULTS)
    disable_progress_bars()
    env = environment_info()
    print(describe(env))

    rows = []

    def record(step: str, data: str, seconds: float, samples: int, **extra) -> None:
        rows.append({"step": step, "data": data, "seconds": seconds, "samples": samples,
                     "samples_per_s": samples / seconds, **extra})
        print(f"{data} {step}: {seconds:.3f} s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        for aligned in (True, False):
            data = "aligned" if aligned else "unaligned"
            seconds, (dataset, metadata) = median_seconds(lambda: make_synthetic(aligned=aligned, sizes=sizes), repeats)
            record("generate", data, seconds, sum(sizes))
            folders = (f"{tmp}/{data}-{k}" for k in itertools.count())
            seconds, _ = median_seconds(lambda: save_msa_dataset(dataset, next(folders), metadata), repeats)
            record("save_msa_dataset", data, seconds, sum(sizes))
            seconds, (loaded, _) = median_seconds(lambda: load_msa_dataset(f"{tmp}/{data}-0"), repeats)
            record("load_msa_dataset", data, seconds, sum(sizes))

            train, padded = loaded["train"], metadata["padded_lengths"]
            per_batch = MSACollator(max_text_length=padded["text"])
            padded_collator = MSACollator(
                max_text_length=padded["text"],
                max_audio_length=padded["audio"],
                max_vision_length=padded["vision"],
                pad_to_max_length=True,
            )
            layouts = {"padded-50": (padded_collator, False), "per-batch": (per_batch, False),
                       "length-grouped": (per_batch, True)}
            for layout, (collator, grouped) in layouts.items():
                seconds, padding = median_seconds(lambda: epoch(train, collator, grouped), repeats)
                record(f"epoch {layout}", data, seconds, len(train), **padding)

    table = markdown_table(rows, COLUMNS)
    notes = (
        f"Median of {repeats} run(s); synthetic sizes {sizes} (train/validation/test); epochs over the loaded "
        f"train split, batch {BATCH}, num_workers 0.\n{describe(env)}.\n"
    )
    print("\n" + table + "\n" + notes)
    payload = {"environment": env, "settings": {"repeats": repeats, "sizes": sizes, "batch": BATCH}, "rows": rows}
    write_results("data_pipeline", payload, "# Data-pipeline throughput\n\n" + table + "\n" + notes, output_dir)
    return payload


if __name__ == "__main__":
    main()
