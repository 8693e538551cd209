r"""Convert an MMSA feature pickle (aligned_50.pkl / unaligned_50.pkl / SIMS / SIMS-v2) to the shared dataset layout.

    python datasets_scripts/convert_mmsa.py MOSI/Processed/aligned_50.pkl --output data/mosi_aligned \
        [--dataset mosi] [--aligned | --unaligned] [--push-to-hub org/cmu-mosi --config-name aligned_50]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling.converters import add_output_arguments, convert_mmsa_pickle, finish_cli  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="MMSA .pkl file")
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument("--aligned", dest="aligned", action="store_true", default=None, help="force word-aligned")
    layout.add_argument("--unaligned", dest="aligned", action="store_false", help="force unaligned")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    dataset, metadata = convert_mmsa_pickle(args.input, aligned=args.aligned, dataset_name=args.dataset)
    finish_cli(dataset, metadata, args)


if __name__ == "__main__":
    main()
