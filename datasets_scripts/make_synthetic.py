"""Write the synthetic MOSI-shaped dataset (see :mod:`modeling.synthetic`) to a folder.

Usage: ``python datasets_scripts/make_synthetic.py --output DIR [--seed 0] [--unaligned] [--sizes 1284 229 686]
[--task regression|binary|emotion7]``;
read it back with ``modeling.features.load_msa_dataset(DIR)`` or ``datasets.load_from_disk(DIR)``.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from modeling.features import save_msa_dataset  # noqa: E402
from modeling.synthetic import make_synthetic, ridge_baselines  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="folder to write (save_to_disk layout + msa_metadata.json)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--unaligned", action="store_true", help="frame-level A/V lengths instead of word-aligned")
    parser.add_argument("--sizes", type=int, nargs=3, default=[1284, 229, 686], metavar=("TRAIN", "VALID", "TEST"))
    parser.add_argument("--audio-dim", type=int, default=5)
    parser.add_argument("--vision-dim", type=int, default=20)
    parser.add_argument("--task", default="regression", choices=["regression", "binary", "emotion7"],
                        help="MOSI-like scores, UR-FUNNY-like binary or MELD-like 7-class labels")
    parser.add_argument("--baselines", action="store_true", help="also print the ridge baselines")
    args = parser.parse_args(argv)

    dataset, metadata = make_synthetic(
        seed=args.seed,
        aligned=not args.unaligned,
        sizes=tuple(args.sizes),
        audio_dim=args.audio_dim,
        vision_dim=args.vision_dim,
        task=args.task,
    )
    save_msa_dataset(dataset, args.output, metadata)
    print(f"wrote {args.output}: " + ", ".join(f"{k} {len(v)}" for k, v in dataset.items()))
    if args.baselines:
        print(json.dumps(ridge_baselines(dataset, metadata), indent=2))


if __name__ == "__main__":
    main()
