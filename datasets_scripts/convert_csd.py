r"""Convert CMU-MultimodalSDK .csd files (words, opinion labels, acoustic, visual) to the shared dataset layout.

Roles are guessed from file names / root keys in FOLDER; override any with --words/--labels/--audio/--vision.

    python datasets_scripts/convert_csd.py CMU_MOSI/ --folds standard_folds.csv --tokenizer path/to/bert \
        --output data/mosi_csd [--unaligned] [--max-length 50] [--push-to-hub org/name --config-name csd_aligned]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling.converters import add_output_arguments, convert_csd, finish_cli, resolve_csd_files  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="folder of .csd files")
    parser.add_argument("--folds", required=True, help="CSV with columns video_id,mode (train/valid/test)")
    parser.add_argument("--tokenizer", required=True, help="local tokenizer folder")
    parser.add_argument("--unaligned", action="store_true", help="keep raw frames instead of word averages")
    parser.add_argument("--max-length", type=int, default=50, help="max token ids incl. [CLS]/[SEP]")
    for role in ("words", "labels", "audio", "vision"):
        parser.add_argument(f"--{role}", default=None, help=f"explicit {role} .csd file")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    explicit = {r: getattr(args, r) for r in ("words", "labels", "audio", "vision") if getattr(args, r)}
    files = resolve_csd_files(args.input, overrides=explicit)
    dataset, metadata = convert_csd(
        files, args.folds, args.tokenizer, aligned=not args.unaligned, max_length=args.max_length,
        dataset_name=args.dataset,
    )
    finish_cli(dataset, metadata, args)


if __name__ == "__main__":
    main()
