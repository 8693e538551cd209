"""Train a disentangled MSA model.

    python train.py configs/misa_synthetic.yaml
    python train.py --config configs/misa_mosi.yaml training.seeds=[1,2,3] data.path=data/mosi_aligned
    accelerate launch train.py --config configs/misa_mosi.yaml            # one GPU (or CPU)
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 train.py --config ...   # 2 CPU processes

Overrides are ``section.key=value`` (YAML values); the flags below are shortcuts for common ones.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from modeling.training import load_config, train  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config_path", nargs="?", help="YAML run configuration")
    parser.add_argument("--config", dest="config_flag", help="YAML run configuration (same as the positional)")
    parser.add_argument("--output_dir")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--resume_from_checkpoint", help="checkpoint folder, or 'auto' for the latest")
    parser.add_argument("--push_to_hub", action="store_true")
    parser.add_argument("--hub_model_id")
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    args, extra = parser.parse_known_args(argv)
    overrides = list(args.overrides) + extra
    config_path = args.config_flag or args.config_path
    if config_path and "=" in config_path:
        overrides.insert(0, config_path)
        config_path = args.config_flag
    shortcuts = {
        "output_dir": args.output_dir,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "resume_from_checkpoint": args.resume_from_checkpoint,
        "hub_model_id": args.hub_model_id,
    }
    for key, value in shortcuts.items():
        if value is not None:
            overrides.append(f"training.{key}={value}")
    if args.push_to_hub:
        overrides.append("training.push_to_hub=true")
    return train(load_config(config_path, overrides))


if __name__ == "__main__":
    main()
