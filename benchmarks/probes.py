"""Linear probes of a trained checkpoint's learned parts against the synthetic set's true factors.

For every part the model outputs (shared / private / utterance per modality, method-specific parts such as
TriDiRA's u*, their concatenations and the fused vector): test R² of a ridge probe to each generating factor
and to the label, the accuracy of a fresh logistic modality probe per group, and of the model's own modality
discriminator where it has one (FDMER, TriDiRA). See :mod:`modeling.analysis`.

    python benchmarks/probes.py --checkpoint runs/fdmer_synthetic/seed_1111/best --dataset synthetic
                                [--synthetic '{"seed": 0}'] [--output-dir benchmarks/results/probes] [--name NAME]

The synthetic set's arguments default to those of the checkpoint's ``train.py`` run (its ``run_config.yaml``);
``--synthetic`` (JSON) updates them. ``--dataset`` may also be a folder written by a converter (no factors
there: only the label and modality probes are meaningful). Writes ``NAME.json`` and ``NAME.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modeling.analysis import probe_checkpoint, probe_markdown, write_probe_report  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True,
                        help="a folder written by save_pretrained (train.py: <output_dir>/seed_N/best)")
    parser.add_argument("--dataset", default="synthetic", help="'synthetic' or a converted dataset folder")
    parser.add_argument("--synthetic", type=json.loads, default=None, help="make_synthetic arguments (JSON)")
    parser.add_argument("--cache-dir", default="data_cache")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output-dir", type=Path, default=ROOT / "benchmarks" / "results" / "probes")
    parser.add_argument("--name", help="file name stem (default: the method's model type)")
    parser.add_argument("--title", help="Markdown heading (default: the method's model type)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.checkpoint):
        parser.error(f"--checkpoint {args.checkpoint!r} is not a folder")
    results = probe_checkpoint(args.checkpoint, args.dataset, args.synthetic, args.cache_dir, args.batch_size)
    json_path, md_path = write_probe_report(results, str(args.output_dir), args.name or results["method"], args.title)
    print(probe_markdown(results, args.title))
    print(f"wrote {json_path} and {md_path}")
    return results


if __name__ == "__main__":
    main()
